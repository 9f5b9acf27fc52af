"""Run history in the lake: ``<lake_root>/_system/job_runs``, a Delta table with one row
per run × task, appended by delta-rs at the end of every run (``run.json`` stays the
record the runner works from; this table is for SQL, dashboards and audits).

Which lake: the run's ``lake_root`` job parameter when it is set (the run wrote its
tables there), else ``lake_root`` of the configuration.

Query it::

    from deltalake import DeltaTable
    DeltaTable("lake/_system/job_runs").to_pandas()
    # or: spark.read.format("delta").load(lake.system("job_runs"))
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any

import pyarrow as pa

from lakehouse.jobs.records import JobRun
from lakehouse.lake import Lake

TABLE_NAME = "job_runs"
_UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("job", pa.string()),
        ("run_id", pa.string()),
        ("run_state", pa.string()),
        ("trigger", pa.string()),
        ("repair_of", pa.string()),
        ("task_key", pa.string()),
        ("state", pa.string()),
        ("attempts", pa.int32()),
        ("start", _UTC_TIMESTAMP),
        ("end", _UTC_TIMESTAMP),
        ("duration_seconds", pa.float64()),
        ("output_notebook", pa.string()),
        ("error", pa.string()),
        ("params", pa.string()),
        ("reused_from", pa.string()),
        ("host", pa.string()),
        ("recorded_at", _UTC_TIMESTAMP),
    ]
)
_write_lock = threading.Lock()


def table_path(run: JobRun, default_lake_root: str | None) -> str | None:
    """Where the run's rows go (see the module docstring); ``None`` if no lake is known."""
    root = (run.params.get("lake_root") or "").strip() or default_lake_root
    if not root:
        return None
    return Lake(root.rstrip("/")).system(TABLE_NAME)


def rows(run: JobRun, recorded_at: dt.datetime | None = None) -> pa.Table:
    """The run as one row per task, in the table's schema."""
    recorded_at = recorded_at or dt.datetime.now(dt.UTC)
    params = json.dumps(run.params, sort_keys=True)
    records: list[dict[str, Any]] = [
        {
            "job": run.job,
            "run_id": run.run_id,
            "run_state": run.state.value,
            "trigger": run.trigger,
            "repair_of": run.repair_of,
            "task_key": task.task_key,
            "state": task.state.value,
            "attempts": task.attempts,
            "start": task.start_time,
            "end": task.end_time,
            "duration_seconds": task.duration_seconds,
            "output_notebook": task.output_notebook,
            "error": task.error,
            "params": params,
            "reused_from": task.reused_from,
            "host": run.host,
            "recorded_at": recorded_at,
        }
        for task in run.tasks.values()
    ]
    return pa.Table.from_pylist(records, schema=SCHEMA)


def append_run(run: JobRun, path: str, *, retries: int = 3) -> None:
    """Append the run's rows in one commit (retried when another writer committed first)."""
    from deltalake import write_deltalake
    from deltalake.exceptions import CommitFailedError

    from lakehouse.maintenance import storage_options

    table = rows(run)
    for attempt in range(1, retries + 1):
        try:
            with _write_lock:
                write_deltalake(
                    path,
                    table,
                    mode="append",
                    schema_mode="merge",
                    storage_options=storage_options(path),
                )
            return
        except CommitFailedError:
            if attempt == retries:
                raise
            time.sleep(0.1 * attempt)
