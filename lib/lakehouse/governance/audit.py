"""The audit trail: who did what, to what, and when (a CloudTrail equivalent).

One append-only Delta table ``<lake>/_system/audit_log``, one row per event::

    seq         1, 2, 3, ...  (gap-free, the order of the chain)
    event_time  UTC timestamp (microseconds) when the event was recorded
    actor       who: a user, a service account, ``job:<name>``, an API caller's identity
    action      what: ``job.run``, ``export.write``, ``api.read``, ``gdpr.erase``, ``config.change``...
    target      on what: a table, a job, a customer id, a file
    details     canonical JSON of a dict (secrets are redacted before hashing)
    prev_hash   ``hash`` of the previous entry ("0" * 64 for the first)
    hash        SHA-256 of the canonical JSON of all the fields above

Each entry is chained to the previous one, so changing, deleting or reordering a row
breaks the chain at that row; ``verify`` (``lakehouse governance audit verify``) finds
the first bad sequence number. Writers are serialised by a lock held across read-tail,
hash and append: a thread lock within a process and an ``fcntl`` file lock between
processes of the same machine (job tasks run in separate kernels).

Written with delta-rs (no Spark session needed), so any process can record an event.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from lakehouse import maintenance
from lakehouse.lake import Lake, delta_exists, scheme

AUDIT_TABLE = "audit_log"
GENESIS_HASH = "0" * 64
REDACTED = "***"
# Keys whose values never reach the log, whatever the caller passes in ``details``.
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|credential|authori[sz]ation|private[_-]?key|pseudonymi[sz]ation[_-]?key", re.I)

SCHEMA = pa.schema(
    [
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("event_time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("actor", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("target", pa.string(), nullable=False),
        pa.field("details", pa.string(), nullable=False),
        pa.field("prev_hash", pa.string(), nullable=False),
        pa.field("hash", pa.string(), nullable=False),
    ]
)
_HASHED_FIELDS = ("seq", "event_time", "actor", "action", "target", "details", "prev_hash")


class AuditError(RuntimeError):
    """An event cannot be recorded (bad arguments) or the log cannot be read."""


@dataclass(frozen=True)
class AuditEvent:
    """One event to record; ``at`` defaults to the time of recording."""

    actor: str
    action: str
    target: str
    details: Mapping[str, Any] | None = None
    at: dt.datetime | None = None


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of ``verify``: ``first_bad_seq`` is None when the chain is intact."""

    path: str
    entries: int
    first_bad_seq: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- public API ---------------------------------------------------------------------------


def audit_path(lake: Lake | str) -> str:
    """``<lake root>/_system/audit_log`` for a ``Lake`` or a lake root."""
    return (lake if isinstance(lake, Lake) else Lake(str(lake))).system(AUDIT_TABLE)


def record_event(
    lake: Lake | str,
    *,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> None:
    """Append one event to the lake's audit log (creating the table on first use)."""
    record_events(lake, [AuditEvent(actor=actor, action=action, target=target, details=details, at=at)])


def record_events(lake: Lake | str, events: Iterable[AuditEvent | Mapping[str, Any]]) -> None:
    """Append events in one commit, chained in the given order. Each event is an
    ``AuditEvent`` or a dict with ``actor``, ``action``, ``target`` and optional
    ``details`` and ``at``."""
    batch = [_as_event(event) for event in events]
    if not batch:
        return
    path = audit_path(lake)
    with _writer_lock(path):
        delta = maintenance.open_table(path) if delta_exists(path) else None
        seq, prev_hash = _tail(path, delta)
        next_version = delta.version() + 1 if delta is not None else 0
        rows = []
        for event in batch:
            seq += 1
            row = _entry(seq, event, prev_hash)
            prev_hash = row["hash"]
            rows.append(row)
        write_deltalake(
            delta if delta is not None else path,
            pa.Table.from_pylist(rows, schema=SCHEMA),
            mode="append",
            storage_options=None if delta is not None else maintenance.storage_options(path),
        )
        # Our commit's version, unless a writer outside this lock came in between: then
        # the cache misses next time and the tail is read from the table.
        _tails[path] = (next_version, seq, prev_hash)


def read_log(lake: Lake | str) -> pa.Table:
    """All entries, ordered by ``seq`` (empty table if nothing was recorded yet)."""
    path = audit_path(lake)
    if not delta_exists(path):
        return SCHEMA.empty_table()
    table = maintenance.open_table(path).to_pyarrow_table()
    return table.sort_by("seq")


def verify(lake: Lake | str) -> VerifyReport:
    """Check the chain: sequence numbers 1..n without gap or duplicate, each hash
    recomputed from its row, each ``prev_hash`` equal to the previous row's hash, and
    only append commits in the table's history. Names the first bad sequence number."""
    path = audit_path(lake)
    if not delta_exists(path):
        return VerifyReport(path=path, entries=0)
    rows = read_log(lake).to_pylist()
    problems: list[str] = []
    first_bad: int | None = None
    prev_hash = GENESIS_HASH
    for expected_seq, row in enumerate(rows, start=1):
        problem = _check_row(row, expected_seq, prev_hash)
        if problem:
            problems.append(problem)
            first_bad = row["seq"] if row["seq"] is not None else expected_seq
            break
        prev_hash = row["hash"]
    problems.extend(_history_problems(path))
    return VerifyReport(path=path, entries=len(rows), first_bad_seq=first_bad, problems=problems)


def compact(lake: Lake | str) -> dict[str, Any]:
    """Merge the log's small files (one per commit) into few; rows and chain unchanged.
    Old files stay for time travel until a vacuum removes them."""
    path = audit_path(lake)
    if not delta_exists(path):
        return {}
    with _writer_lock(path):
        metrics = maintenance.open_table(path).optimize.compact()
        _tails.pop(path, None)
    return metrics


# --- internals ------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the same dict always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(row: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of the hashed fields of ``row``."""
    payload = {name: row[name] for name in _HASHED_FIELDS}
    payload["event_time"] = _utc(payload["event_time"]).isoformat()
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def redact(details: Any) -> Any:
    """``details`` with the values of secret-looking keys replaced by ``***``."""
    if isinstance(details, Mapping):
        return {
            str(key): REDACTED if _SECRET_KEY.search(str(key)) else redact(value)
            for key, value in details.items()
        }
    if isinstance(details, list | tuple):
        return [redact(item) for item in details]
    return details


def _as_event(event: AuditEvent | Mapping[str, Any]) -> AuditEvent:
    if isinstance(event, Mapping):
        unknown = set(event) - {"actor", "action", "target", "details", "at"}
        if unknown:
            raise AuditError(f"audit event has unknown fields {sorted(unknown)}: {dict(event)!r}")
        try:
            event = AuditEvent(**event)
        except TypeError as exc:
            raise AuditError(f"audit event needs actor, action and target: {dict(event)!r}") from exc
    for name in ("actor", "action", "target"):
        value = getattr(event, name)
        if not isinstance(value, str) or not value.strip():
            raise AuditError(f"audit event field {name!r} must be a non-empty string, got {value!r}")
    if event.details is not None and not isinstance(event.details, Mapping):
        raise AuditError(f"audit event details must be a dict, got {type(event.details).__name__}")
    return event


def _entry(seq: int, event: AuditEvent, prev_hash: str) -> dict[str, Any]:
    at = _utc(event.at or dt.datetime.now(dt.UTC))
    row = {
        "seq": seq,
        "event_time": at,
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "details": canonical_json(redact(dict(event.details or {}))),
        "prev_hash": prev_hash,
    }
    row["hash"] = entry_hash(row)
    return row


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# path -> (table version, last seq, last hash) after this process's last append, so a
# busy writer (the API) does not re-read the whole log on every commit.
_tails: dict[str, tuple[int, int, str]] = {}


def _tail(path: str, delta: DeltaTable | None) -> tuple[int, str]:
    """The last sequence number and hash (0 and the genesis hash for a new log)."""
    if delta is None:
        return 0, GENESIS_HASH
    cached = _tails.get(path)
    if cached and cached[0] == delta.version():  # nobody else appended since
        return cached[1], cached[2]
    table = delta.to_pyarrow_table(columns=["seq", "hash"])
    if table.num_rows == 0:
        return 0, GENESIS_HASH
    last = table.sort_by([("seq", "descending")]).slice(0, 1).to_pylist()[0]
    return int(last["seq"]), str(last["hash"])


def _check_row(row: Mapping[str, Any], expected_seq: int, prev_hash: str) -> str | None:
    seq = row["seq"]
    if seq != expected_seq:
        what = "duplicated" if seq is not None and seq < expected_seq else "missing (deleted row?)"
        return f"seq {expected_seq} is {what}: found seq {seq} in its place"
    if row["prev_hash"] != prev_hash:
        return f"seq {seq}: prev_hash does not match the hash of seq {seq - 1} (row deleted, inserted or reordered)"
    if entry_hash(row) != row["hash"]:
        return f"seq {seq}: hash does not match the row's content (row changed)"
    return None


# Commits that add no data and change none: compaction rewrites the same rows.
_MAINTENANCE_OPERATIONS = ("CREATE TABLE", "OPTIMIZE", "VACUUM START", "VACUUM END")


def _history_problems(path: str) -> list[str]:
    """An audit log is only ever appended to (and compacted): any other commit is a
    tampering sign."""
    problems = []
    for commit in maintenance.history(path):
        operation = commit.get("operation", "")
        mode = str((commit.get("operationParameters") or {}).get("mode", "")).lower()
        is_append = operation == "WRITE" and mode in ("append", "errorifexists", "")
        if operation in _MAINTENANCE_OPERATIONS or is_append:
            continue
        problems.append(f"version {commit.get('version')}: {operation} {mode} commit on an append-only log")
    return problems


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextmanager
def _writer_lock(path: str) -> Iterator[None]:
    """One writer at a time per log: a thread lock, then a file lock for other
    processes (next to the table for local lakes, in the temp folder for s3://)."""
    with _thread_locks_guard:
        lock = _thread_locks.setdefault(path, threading.Lock())
    with lock:
        if scheme(path):
            lock_file = Path(tempfile.gettempdir()) / f"lakehouse-audit-{hashlib.sha256(path.encode()).hexdigest()[:16]}.lock"
        else:
            lock_file = Path(path).parent / f".{AUDIT_TABLE}.lock"
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_file, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# --- hooks for other parts of the project ----------------------------------------------------


def current_actor() -> str:
    """Who runs this process: ``LAKEHOUSE_ACTOR`` (set by a scheduler or a service)
    else the operating-system user."""
    import getpass
    import os

    return os.environ.get("LAKEHOUSE_ACTOR") or getpass.getuser()


def record_job_run(run: Any, services: Any) -> None:
    """Record a finished job run as ``job.run`` (a run listener registered by
    ``lakehouse.wiring``), in the lake its run history goes to; never raises (a failure
    becomes a run warning)."""
    if not getattr(services, "record_history", False):
        return
    try:
        settings = getattr(services, "settings", None)
        root = (run.params.get("lake_root") or "").strip() or (settings.lake_root if settings else None)
        if not root:
            return
        details = {
            "run_id": run.run_id,
            "state": getattr(run.state, "value", str(run.state)),
            "trigger": run.trigger,
            "host": run.host,
            "params": dict(run.params),
            "duration_seconds": run.duration_seconds,
            "failed_tasks": [task.task_key for task in run.failed_tasks],
        }
        record_event(root.rstrip("/"), actor=current_actor(), action="job.run", target=f"job:{run.job}", details=details)
    except Exception as exc:  # the run's own outcome matters more than its audit entry
        run.warnings.append(f"job {run.job!r} run {run.run_id}: audit entry not written: {type(exc).__name__}: {exc}")
