"""What a notebook needs to start: settings, a Spark session, the lake, run metadata.

Notebook parameters default to empty strings (papermill and JupyterLab both need a
literal); empty means "take it from the configuration".
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakehouse.config import Settings, load_settings
from lakehouse.engine import get_spark
from lakehouse.lake import Lake

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class RunContext:
    settings: Settings
    spark: SparkSession
    lake: Lake
    run_date: dt.date
    batch_id: str  # one id per notebook run, written to bronze's _batch_id
    started_at: dt.datetime  # UTC, written to bronze's _ingested_at


def start_run(
    *, run_date: str = "", lake_root: str = "", batch_id: str = "", app_name: str = "lakehouse"
) -> RunContext:
    """Load settings (parameters win over configuration) and open the Spark session."""
    settings = load_settings(run_date=run_date or None, lake_root=lake_root or None)
    started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    return RunContext(
        settings=settings,
        spark=get_spark(settings, app_name=app_name),
        lake=Lake(settings.lake_root),
        run_date=settings.run_date,
        batch_id=batch_id or f"{started_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
        started_at=started_at,
    )


def events_frame(run: object) -> pd.DataFrame:
    """One row per flow of a pipeline run, with its expectation counts, for display."""
    import pandas as pd

    rows = []
    for event in run.events:  # type: ignore[attr-defined]
        rows.append(
            {
                "dataset": event.dataset,
                "status": event.status,
                "rows_read": event.rows_read,
                "rows_written": event.rows_written,
                "rows_dropped": event.rows_dropped,
                "seconds": event.duration_seconds,
                "expectations failed": ", ".join(
                    f"{e.name}={e.failed}" for e in event.expectations if e.failed
                ),
                "error": event.error,
            }
        )
    return pd.DataFrame(rows)


def expectations_frame(run: object, dataset: str) -> pd.DataFrame:
    """What the run checked on ``dataset``: one row per expectation (rule, action, rows
    passed, rows failed), read from the run's event, so without a query."""
    import pandas as pd

    event = run.event(dataset)  # type: ignore[attr-defined]
    return pd.DataFrame(
        [(e.name, e.action, e.passed, e.failed) for e in event.expectations],
        columns=["rule", "action", "passed", "failed"],
    )
