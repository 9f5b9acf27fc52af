"""The event log: one row per run x flow, in ``_system/event_log`` (Delta).

Query it with plain SQL::

    spark.read.format("delta").load(lake.system("event_log")).createOrReplaceTempView("event_log")
    spark.sql("SELECT dataset, status, rows_written, rows_dropped FROM event_log WHERE run_id = '...'")
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from pyspark.sql import SparkSession

from lakehouse.pipelines.expectations import ExpectationResult

EVENT_LOG_SCHEMA = (
    "run_id string, pipeline string, dataset string, flow string, flow_type string, "
    "started_at timestamp, ended_at timestamp, duration_seconds double, status string, "
    "rows_read long, rows_written long, rows_dropped long, rows_quarantined long, "
    "expectations array<struct<name:string, action:string, passed:long, failed:long>>, "
    "target_version long, details string, error string"
)


@dataclass
class FlowEvent:
    """What one flow did in one run (also returned to the caller of ``run``)."""

    run_id: str
    pipeline: str
    dataset: str
    flow: str
    flow_type: str
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    duration_seconds: float | None = None
    status: str = "RUNNING"  # COMPLETED, FAILED, SKIPPED, ROLLED_BACK
    rows_read: int | None = None
    rows_written: int | None = None
    rows_dropped: int | None = None
    rows_quarantined: int | None = None
    expectations: list[ExpectationResult] = field(default_factory=list)
    target_version: int | None = None
    details: str | None = None  # e.g. new files read, schema changes, CDC counts
    error: str | None = None

    def as_row(self) -> tuple:
        values = asdict(self)
        values["expectations"] = [
            (e["name"], e["action"], e["passed"], e["failed"]) for e in values["expectations"]
        ]
        return tuple(values.values())


def append_events(spark: SparkSession, path: str, events: Sequence[FlowEvent]) -> None:
    """Append the events of one run in one commit."""
    if not events:
        return
    frame = spark.createDataFrame([e.as_row() for e in events], EVENT_LOG_SCHEMA)
    frame.write.format("delta").mode("append").option("mergeSchema", "true").save(path)
