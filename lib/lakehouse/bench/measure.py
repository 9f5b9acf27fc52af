"""Measuring tools of the benchmark: wall time, peak memory, table sizes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.05


def tree_rss_bytes(process: psutil.Process) -> int:
    """Resident memory of ``process`` and all its descendants (the embedded engine runs
    in-process; PostgreSQL and a classic Spark JVM are children)."""
    total = 0
    for member in (process, *process.children(recursive=True)):
        try:
            total += member.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # a child that ended between listing and reading
    return total


class PeakMemory:
    """Samples the process tree's RSS in a background thread; ``peak`` since ``reset``."""

    def __init__(self, interval_seconds: float = SAMPLE_SECONDS) -> None:
        self._process = psutil.Process()
        self._interval = interval_seconds
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)

    def __enter__(self) -> PeakMemory:
        self.reset()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.observe()

    def observe(self) -> int:
        rss = tree_rss_bytes(self._process)
        with self._lock:
            self._peak = max(self._peak, rss)
        return rss

    def reset(self) -> None:
        with self._lock:
            self._peak = 0
        self.observe()

    @property
    def peak(self) -> int:
        self.observe()
        with self._lock:
            return self._peak


@dataclass
class StageResult:
    """One measured stage: wall time, rows in and out, peak RSS of the process tree."""

    stage: str
    seconds: float = 0.0
    rows_in: int = 0
    rows_out: int = 0
    peak_rss_bytes: int = 0
    details: dict[str, object] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        """Rows written per wall second (the event log's rows read count only some inputs)."""
        return self.rows_out / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "stage": self.stage,
            "seconds": round(self.seconds, 3),
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_per_second": round(self.rows_per_second, 1),
            "peak_rss_mib": round(self.peak_rss_bytes / 2**20, 1),
            **({"details": self.details} if self.details else {}),
        }


@contextmanager
def stage(name: str, memory: PeakMemory) -> Iterator[StageResult]:
    """Time the ``with`` block and record the peak memory seen during it."""
    result = StageResult(name)
    memory.reset()
    started = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - started
        result.peak_rss_bytes = memory.peak


def folder_bytes(path: str | Path) -> int:
    """Bytes of every file below ``path`` (a Delta table: data files and log)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
