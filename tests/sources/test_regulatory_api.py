"""RecallApiClient against a real local HTTP server serving canned openFDA-shaped pages."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from lakehouse.sources.regulatory_api import (
    RecallApiClient,
    RecallApiError,
    fetch_to_landing,
    latest_report_date,
    load_watermark,
    next_window,
    save_watermark,
    write_landing,
)


@dataclass
class Reply:
    status: int = 200
    body: object = None  # dict -> JSON; bytes -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # sleep before answering (client timeouts)
    content_length: int | None = None  # announce more than is sent (short read)

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


@dataclass
class FakeApi:
    """Replies scripted per ``skip``: each request takes the next reply; the last one repeats."""

    base_url: str
    script: dict[int, list[Reply]]
    requests: list[str] = field(default_factory=list)

    def count(self, skip: int | None = None) -> int:
        if skip is None:
            return len(self.requests)
        return sum(1 for r in self.requests if parse_qs(urlsplit(r).query)["skip"] == [str(skip)])


@pytest.fixture
def api() -> Iterator[FakeApi]:
    lock = threading.Lock()
    fake = FakeApi(base_url="", script={})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            with lock:
                fake.requests.append(self.path)
                query = parse_qs(urlsplit(self.path).query)
                skip = int(query["skip"][0])
                replies = fake.script.get(skip) or [Reply(404, {"error": {"code": "NOT_FOUND"}})]
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
            if reply.delay:
                time.sleep(reply.delay)
            payload = reply.payload()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(reply.content_length or len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)
            if reply.content_length:
                self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def notice(n: int, report_date: str = "20240110") -> dict:
    return {
        "recall_number": f"D-{n:04d}-2024",
        "status": "Ongoing",
        "classification": "Class II",
        "product_description": f"Product {n} — 10 mg tablets",
        "reason_for_recall": "CGMP deviations",
        "report_date": report_date,
        "recalling_firm": "Acme Pharma",
        "openfda": {"brand_name": [f"Brand{n}"]},
    }


def page(notices: list[dict], skip: int, total: int, limit: int) -> Reply:
    return Reply(
        200, {"meta": {"results": {"skip": skip, "limit": limit, "total": total}}, "results": notices}
    )


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(api: FakeApi, **kwargs) -> tuple[RecallApiClient, Sleeps]:
    sleeps = Sleeps()
    kwargs.setdefault("page_size", 2)
    kwargs.setdefault("backoff_seconds", 0.5)
    kwargs.setdefault("timeout_seconds", 5)
    return RecallApiClient(api.base_url, sleep=sleeps, **kwargs), sleeps


D1, D2 = dt.date(2024, 1, 1), dt.date(2024, 1, 31)


def test_pages_through_skip_and_limit_until_total(api: FakeApi) -> None:
    all_notices = [notice(i) for i in range(5)]
    api.script = {
        0: [page(all_notices[0:2], 0, 5, 2)],
        2: [page(all_notices[2:4], 2, 5, 2)],
        4: [page(all_notices[4:5], 4, 5, 2)],
    }
    client, sleeps = client_for(api)

    assert list(client.fetch(D1, D2)) == all_notices
    assert api.count() == 3 and sleeps == []
    first = urlsplit(api.requests[0])
    assert first.path == "/drug/enforcement.json"
    assert "%2B" not in first.query and "+TO+" in first.query
    assert unquote(first.query) == "search=report_date:[20240101+TO+20240131]&limit=2&skip=0"


def test_retries_500_then_429_honouring_retry_after(api: FakeApi) -> None:
    api.script = {
        0: [
            Reply(500, {"error": "boom"}),
            Reply(429, {"error": "slow down"}, {"Retry-After": "2"}),
            page([notice(1)], 0, 1, 2),
        ]
    }
    client, sleeps = client_for(api)

    assert list(client.fetch(D1, D2)) == [notice(1)]
    assert sleeps == [0.5, 2.0]
    assert api.count() == 3


def test_retries_a_truncated_json_body(api: FakeApi) -> None:
    good = page([notice(1), notice(2)], 0, 2, 2)
    api.script = {0: [Reply(200, good.payload()[:40]), good]}
    client, sleeps = client_for(api)

    assert list(client.fetch(D1, D2)) == [notice(1), notice(2)]
    assert sleeps == [0.5] and api.count() == 2


def test_retries_a_body_shorter_than_its_content_length(api: FakeApi) -> None:
    good = page([notice(1)], 0, 1, 2)
    api.script = {0: [Reply(200, good.payload()[:40], content_length=len(good.payload())), good]}
    client, sleeps = client_for(api)

    assert list(client.fetch(D1, D2)) == [notice(1)]
    assert sleeps == [0.5] and api.count() == 2


def test_404_not_found_means_no_notices(api: FakeApi) -> None:
    api.script = {0: [Reply(404, {"error": {"code": "NOT_FOUND", "message": "No matches found!"}})]}
    client, sleeps = client_for(api)

    assert list(client.fetch(D1, D2)) == []
    assert api.count() == 1 and sleeps == []


def test_other_4xx_fails_at_once(api: FakeApi) -> None:
    api.script = {0: [Reply(400, {"error": {"code": "BAD_REQUEST"}})]}
    client, sleeps = client_for(api)

    with pytest.raises(RecallApiError, match="HTTP 400") as info:
        list(client.fetch(D1, D2))
    assert info.value.attempts == 1 and api.count() == 1 and sleeps == []


def test_persistent_503_gives_up_naming_url_status_and_attempts(api: FakeApi) -> None:
    api.script = {0: [Reply(503, {"error": "unavailable"})]}
    client, sleeps = client_for(api, max_retries=3)

    with pytest.raises(RecallApiError) as info:
        list(client.fetch(D1, D2))
    message = str(info.value)
    assert f"{api.base_url}/drug/enforcement.json?search=report_date:[20240101+TO+20240131]" in message
    assert "HTTP 503" in message and "4 attempts" in message
    assert (info.value.status, info.value.attempts) == (503, 4)
    assert api.count() == 4
    assert sleeps == [0.5, 1.0, 2.0]  # exponential backoff


def test_timeout_then_success(api: FakeApi) -> None:
    good = page([notice(7)], 0, 1, 2)
    api.script = {0: [Reply(200, good.payload(), delay=0.6), good]}
    client, sleeps = client_for(api, timeout_seconds=0.2)

    assert list(client.fetch(D1, D2)) == [notice(7)]
    assert sleeps == [0.5] and api.count() == 2


def test_connection_refused_is_retried_then_reported() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    client = RecallApiClient(f"http://127.0.0.1:{port}", max_retries=2, sleep=sleeps, timeout_seconds=1)
    with pytest.raises(RecallApiError, match="3 attempts") as info:
        list(client.fetch(D1, D2))
    assert info.value.status is None and len(sleeps) == 2


def test_write_landing_is_exactly_the_notices_as_json_lines(tmp_path: Path) -> None:
    notices = [notice(1), notice(2, "20240111")]
    path = write_landing(iter(notices), tmp_path / "landing", report_date_from=D1, report_date_to=D2)

    assert path == tmp_path / "landing" / "2024-01-31" / "recalls_api_20240101_20240131.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == notices
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_write_landing_lands_nothing_when_the_fetch_fails(tmp_path: Path) -> None:
    def failing():
        yield notice(1)
        raise RecallApiError("boom", url="u", status=503, attempts=6)

    with pytest.raises(RecallApiError):
        write_landing(failing(), tmp_path, report_date_from=D1, report_date_to=D2)
    assert list((tmp_path / "2024-01-31").iterdir()) == []


def test_watermark_second_window_starts_the_day_after_the_last_report_date(
    api: FakeApi, tmp_path: Path
) -> None:
    state, landing = tmp_path / "state" / "recalls.json", tmp_path / "landing"
    first = [notice(1, "20240105"), notice(2, "20240112")]
    api.script = {0: [page(first, 0, 2, 2)]}
    client, _ = client_for(api)

    assert next_window(state, dt.date(2024, 1, 20), initial_from=D1) == (D1, dt.date(2024, 1, 20))
    path = fetch_to_landing(client, landing, state, dt.date(2024, 1, 20), initial_from=D1)
    assert path is not None and [json.loads(x) for x in path.read_text().splitlines()] == first
    assert load_watermark(state) == dt.date(2024, 1, 12)

    second = [notice(3, "20240119")]
    api.script = {0: [page(second, 0, 1, 2)]}
    assert next_window(state, dt.date(2024, 1, 27)) == (dt.date(2024, 1, 13), dt.date(2024, 1, 27))
    path = fetch_to_landing(client, landing, state, dt.date(2024, 1, 27))
    assert path == landing / "2024-01-27" / "recalls_api_20240113_20240127.jsonl"
    assert "search=report_date:[20240113+TO+20240127]" in unquote(api.requests[-1])
    assert load_watermark(state) == dt.date(2024, 1, 19)


def test_watermark_never_moves_back_and_up_to_date_means_no_window(tmp_path: Path) -> None:
    state = tmp_path / "recalls.json"
    assert save_watermark(state, "20240112") == dt.date(2024, 1, 12)
    assert save_watermark(state, dt.date(2024, 1, 3)) == dt.date(2024, 1, 12)
    assert save_watermark(state, None) == dt.date(2024, 1, 12)
    assert next_window(state, dt.date(2024, 1, 12)) is None
    assert latest_report_date([notice(1, "20240102"), notice(2, "20240109")]) == dt.date(2024, 1, 9)
    assert latest_report_date([]) is None
