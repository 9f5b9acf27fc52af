"""Test doubles shared by the jobs tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from lakehouse.jobs import TaskState
from lakehouse.jobs.executor import AttemptOutcome, AttemptSpec


class FakeExecutor:
    """Plays scripted outcomes per task (``ok``, ``fail``, ``timeout``) after ``delay``."""

    def __init__(
        self,
        script: dict[str, list[str]] | None = None,
        *,
        delay: float = 0.0,
        on_call: Callable[[AttemptSpec], None] | None = None,
    ) -> None:
        self.script = script or {}
        self.delay = delay
        self.on_call = on_call
        self.calls: list[tuple[str, int, float, float]] = []
        self.lock = threading.Lock()

    def __call__(self, spec: AttemptSpec, cancel: threading.Event) -> AttemptOutcome:
        began = time.monotonic()
        if self.on_call:
            self.on_call(spec)
        time.sleep(self.delay)
        outcomes = self.script.get(spec.task_key, ["ok"])
        outcome = outcomes[min(spec.attempt, len(outcomes)) - 1]
        with self.lock:
            self.calls.append((spec.task_key, spec.attempt, began, time.monotonic()))
        if outcome == "ok":
            return AttemptOutcome(TaskState.SUCCESS)
        if outcome == "timeout":
            return AttemptOutcome(TaskState.TIMED_OUT, f"task {spec.task_key!r} timed out")
        return AttemptOutcome(TaskState.FAILED, f"task {spec.task_key!r} failed: boom")
