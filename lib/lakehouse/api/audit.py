"""Every API read goes to the lake's audit log (lakehouse.governance.audit), buffered:
requests only append to memory; a background thread writes one Delta commit every
``flush_seconds`` or as soon as ``flush_events`` are waiting, so no request waits on a
Delta write."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("lakehouse.api.audit")
Sink = Callable[[str, list[dict[str, Any]]], None]
MAX_PENDING = 100_000  # if the log stays unwritable, keep memory bounded (oldest dropped, logged)


def _audit(lake_root: str, events: list[dict[str, Any]]) -> None:
    """Append events to ``<lake>/_system/audit_log`` in one hash-chained commit."""
    from lakehouse.governance.audit import record_events

    record_events(lake_root, events)


class AuditBuffer:
    def __init__(
        self,
        lake_root: str,
        *,
        flush_seconds: float = 2.0,
        flush_events: int = 500,
        sink: Sink = _audit,
    ) -> None:
        self.lake_root = lake_root
        self.flush_seconds = flush_seconds
        self.flush_events = flush_events
        self._sink = sink
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def record(self, *, actor: str, action: str, target: str, details: Mapping[str, Any] | None = None) -> None:
        event = {
            "actor": actor,
            "action": action,
            "target": target,
            "details": dict(details or {}),
            "at": dt.datetime.now(dt.UTC),
        }
        with self._lock:
            self._pending.append(event)
            full = len(self._pending) >= self.flush_events
        if full:
            self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="api-audit-flush", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()

    def flush(self) -> int:
        """Write the pending events now; returns how many were written."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            self._sink(self.lake_root, batch)
        except Exception:
            log.exception("could not write %d API audit events to %s; will retry", len(batch), self.lake_root)
            with self._lock:
                self._pending = (batch + self._pending)[-MAX_PENDING:]
            return 0
        return len(batch)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if not self._stopping:
                self.flush()
