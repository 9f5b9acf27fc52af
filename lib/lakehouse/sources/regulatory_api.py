"""Drug recall notices from an openFDA-shaped drug enforcement API, landed as JSON lines.

The endpoint (https://open.fda.gov/apis/drug/enforcement/)::

    GET {base_url}/drug/enforcement.json?search=report_date:[YYYYMMDD+TO+YYYYMMDD]&limit=N&skip=M

answers ``{"meta": {"results": {"skip", "limit", "total"}}, "results": [...]}``; a 404
with ``{"error": {"code": "NOT_FOUND"}}`` means "no notice in that window".

Typical incremental run (one landing file per fetch, the watermark is the last
``report_date`` landed, the next window starts the day after)::

    client = RecallApiClient("https://api.fda.gov")
    window = next_window(state_file, dt.date.today())
    if window is not None:
        notices = list(client.fetch(*window))
        path = write_landing(notices, landing_folder, report_date_from=window[0], report_date_to=window[1])
        save_watermark(state_file, latest_report_date(notices))

``fetch_to_landing`` does exactly that. The landing file goes to
``<landing_folder>/<YYYY-MM-DD of report_date_to>/recalls_api_<from>_<to>.jsonl`` and
appears atomically (a hidden temp file in the same folder, then a rename), so the
incremental file ingestion never sees a half-written file.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import requests

log = logging.getLogger(__name__)

ENDPOINT = "/drug/enforcement.json"
# openFDA refuses skip beyond 25000; larger windows need a narrower date range.
OPENFDA_MAX_SKIP = 25_000
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class RecallApiError(RuntimeError):
    """The recall API could not be read; the message names the URL, the status and the attempts."""

    def __init__(self, message: str, *, url: str, status: int | None, attempts: int) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.attempts = attempts


class _Retryable(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(self, reason: str, status: int | None = None, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.wait = wait


def _as_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = value.strip()
    for fmt in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"not a date (YYYYMMDD or YYYY-MM-DD): {value!r}")


def _retry_after_seconds(header: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not header:
        return None
    header = header.strip()
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


class RecallApiClient:
    """Reads drug recall notices page by page, retrying transient failures.

    ``max_retries`` is the number of retries after the first attempt, so one page costs at
    most ``max_retries + 1`` requests. Retried: HTTP 5xx (500/502/503/504), 429 (waiting
    ``Retry-After`` seconds when given), connection errors, timeouts and a truncated or
    invalid JSON body. Waits otherwise grow as ``backoff_seconds * 2**(retry - 1)``.
    Other 4xx fail at once. ``sleep`` is injectable so tests don't wait.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 10,
        max_retries: int = 5,
        backoff_seconds: float = 0.5,
        page_size: int = 100,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_skip: int = OPENFDA_MAX_SKIP,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.page_size = page_size
        self.max_skip = max_skip
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        self.sleep = sleep

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> RecallApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def page_url(self, report_date_from: dt.date, report_date_to: dt.date, skip: int) -> str:
        # Built by hand: openFDA wants a literal ``+TO+`` (a space), not %2B; requests sends the
        # brackets as %5B/%5D, which the server decodes back.
        return (
            f"{self.base_url}{ENDPOINT}?search=report_date:[{report_date_from:%Y%m%d}+TO+{report_date_to:%Y%m%d}]"
            f"&limit={self.page_size}&skip={skip}"
        )

    def fetch(
        self, report_date_from: dt.date | str, report_date_to: dt.date | str
    ) -> Iterator[dict[str, Any]]:
        """Every notice with ``report_date_from <= report_date <= report_date_to``, in API order."""
        start, end = _as_date(report_date_from), _as_date(report_date_to)
        if start > end:
            raise ValueError(f"empty window: {start} > {end}")
        skip = 0
        while True:
            url = self.page_url(start, end, skip)
            if skip > self.max_skip:
                raise RecallApiError(
                    f"{url}: skip {skip} is beyond the API's limit {self.max_skip}; fetch a narrower date window",
                    url=url,
                    status=None,
                    attempts=0,
                )
            page = self._get_page(url)
            if page is None:  # 404 NOT_FOUND: nothing (more) in this window
                return
            results = page["results"]
            yield from results
            total = int(page["meta"]["results"]["total"])
            skip += len(results)
            if not results or skip >= total:
                return

    def _get_page(self, url: str) -> dict[str, Any] | None:
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._attempt(url)
            except _Retryable as failure:
                if attempt == attempts:
                    status = f"HTTP {failure.status}" if failure.status is not None else "no HTTP status"
                    raise RecallApiError(
                        f"GET {url} failed after {attempt} attempts ({status}): {failure.reason}",
                        url=url,
                        status=failure.status,
                        attempts=attempt,
                    ) from failure
                wait = failure.wait if failure.wait is not None else self.backoff_seconds * 2 ** (attempt - 1)
                log.warning(
                    "recall API attempt %d/%d for %s failed (%s); retrying in %.2fs",
                    attempt,
                    attempts,
                    url,
                    failure.reason,
                    wait,
                )
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, url: str) -> dict[str, Any] | None:
        try:
            response = self.session.get(
                url, timeout=self.timeout_seconds, headers={"Accept": "application/json"}
            )
            body = response.content  # reads the whole body: a short read raises here
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
            raise _Retryable(f"truncated body: {exc}") from exc

        status = response.status_code
        if status == 404 and _error_code(body) == "NOT_FOUND":
            return None
        if status in _RETRYABLE_STATUS:
            wait = _retry_after_seconds(response.headers.get("Retry-After")) if status == 429 else None
            raise _Retryable(f"HTTP {status}", status=status, wait=wait)
        if status != 200:
            raise RecallApiError(
                f"GET {url} failed after 1 attempt (HTTP {status}): {body[:200]!r}",
                url=url,
                status=status,
                attempts=1,
            )
        try:
            page = json.loads(body)
            page["meta"]["results"]["total"]
            if not isinstance(page["results"], list):
                raise TypeError("results is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise _Retryable(f"invalid JSON body ({len(body)} bytes): {exc}", status=status) from exc
        return page


def _error_code(body: bytes) -> str | None:
    try:
        return json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


# --- landing ---------------------------------------------------------------------------


def landing_path(
    landing_folder: str | os.PathLike[str], report_date_from: dt.date, report_date_to: dt.date
) -> Path:
    return (
        Path(landing_folder)
        / report_date_to.isoformat()
        / f"recalls_api_{report_date_from:%Y%m%d}_{report_date_to:%Y%m%d}.jsonl"
    )


def write_landing(
    notices: Iterable[dict[str, Any]],
    landing_folder: str | os.PathLike[str],
    *,
    report_date_from: dt.date | str,
    report_date_to: dt.date | str,
) -> Path:
    """Writes the notices as JSON lines, atomically; returns the file's path.

    The notices stream into a hidden temp file (``.``-prefixed, which Spark's file sources
    skip) in the target folder, then it is renamed into place; if ``notices`` raises (a
    failed fetch), nothing lands. An empty window still lands an empty file. Re-landing
    the same window replaces the file of that name.
    """
    start, end = _as_date(report_date_from), _as_date(report_date_to)
    target = landing_path(landing_folder, start, end)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            for notice in notices:
                out.write(json.dumps(notice, ensure_ascii=False, separators=(",", ":")))
                out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


# --- watermark -------------------------------------------------------------------------


def latest_report_date(notices: Iterable[dict[str, Any]]) -> dt.date | None:
    """The greatest ``report_date`` among the notices (None for none)."""
    dates = [_as_date(n["report_date"]) for n in notices if n.get("report_date")]
    return max(dates) if dates else None


def load_watermark(state_file: str | os.PathLike[str]) -> dt.date | None:
    path = Path(state_file)
    if not path.exists():
        return None
    value = json.loads(path.read_text(encoding="utf-8")).get("last_report_date")
    return _as_date(value) if value else None


def save_watermark(
    state_file: str | os.PathLike[str], last_report_date: dt.date | str | None
) -> dt.date | None:
    """Stores ``last_report_date`` (atomically); never moves the watermark backwards.

    Returns the stored watermark. ``None`` (an empty fetch) keeps the current one.
    """
    current = load_watermark(state_file)
    new = _as_date(last_report_date) if last_report_date is not None else None
    if new is None or (current is not None and new <= current):
        return current
    path = Path(state_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"last_report_date": new.isoformat()}, out)
            out.write("\n")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return new


def next_window(
    state_file: str | os.PathLike[str],
    today: dt.date,
    *,
    initial_from: dt.date | None = None,
    lookback_days: int = 30,
) -> tuple[dt.date, dt.date] | None:
    """``(from, to)`` for the next fetch, or None when already up to date.

    ``from`` is the day after the watermark (or ``initial_from``, default ``today -
    lookback_days``, on the first run); ``to`` is ``today``.
    """
    watermark = load_watermark(state_file)
    if watermark is not None:
        start = watermark + dt.timedelta(days=1)
    else:
        start = initial_from if initial_from is not None else today - dt.timedelta(days=lookback_days)
    if start > today:
        return None
    return start, today


def fetch_to_landing(
    client: RecallApiClient,
    landing_folder: str | os.PathLike[str],
    state_file: str | os.PathLike[str],
    today: dt.date,
    *,
    initial_from: dt.date | None = None,
) -> Path | None:
    """One incremental run: next window -> fetch -> landing file -> watermark. None if up to date."""
    window = next_window(state_file, today, initial_from=initial_from)
    if window is None:
        return None
    start, end = window
    notices = list(client.fetch(start, end))
    path = write_landing(notices, landing_folder, report_date_from=start, report_date_to=end)
    save_watermark(state_file, latest_report_date(notices))
    log.info("landed %d recall notices for %s..%s in %s", len(notices), start, end, path)
    return path
