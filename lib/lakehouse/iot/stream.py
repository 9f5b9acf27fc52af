"""Bronze ingestion of the IoT landing files, once or continuously.

Continuous mode is a loop over the existing incremental (exactly-once) ingestion of
``bronze/source=iot/table=readings`` with a trigger interval, like a Structured
Streaming ``processingTime`` trigger: each run reads only the files landed since the
previous one; a run that finds none is skipped quickly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable

from lakehouse.context import RunContext
from lakehouse.medallion import run_layer
from lakehouse.pipelines import PipelineRun


def ingest_once(context: RunContext, run_number: int = 0) -> PipelineRun:
    """One incremental run of the IoT bronze datasets (its own run id and ``_ingested_at``)."""
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    run_context = dataclasses.replace(
        context, batch_id=f"{context.batch_id}-{run_number:05d}", started_at=started
    )
    return run_layer(run_context, "bronze", under="source=iot")


def ingest_continuously(
    context: RunContext,
    *,
    trigger_seconds: float,
    stop: threading.Event | None = None,
    max_runs: int | None = None,
    on_run: Callable[[PipelineRun], None] | None = None,
) -> int:
    """Run :func:`ingest_once` every ``trigger_seconds`` (measured from each run's
    start) until ``stop`` is set or ``max_runs`` ran; returns the number of runs."""
    stop = stop or threading.Event()
    runs = 0
    while not stop.is_set() and (max_runs is None or runs < max_runs):
        started = time.monotonic()
        run = ingest_once(context, runs)
        runs += 1
        if on_run is not None:
            on_run(run)
        stop.wait(max(0.0, trigger_seconds - (time.monotonic() - started)))
    return runs
