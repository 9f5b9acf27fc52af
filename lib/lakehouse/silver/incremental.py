"""Incremental refresh of silver ``iot_readings_hourly``: re-resample only the days
the new bronze readings touch.

Resampling the minute readings (latest copy per ``(machine_id, ts)``, then hourly
aggregates) is the expensive part, and a reading only affects the hours of its own
UTC day. So each run:

1. finds the touched days: the UTC days of the readings appended to
   ``bronze_iot_readings`` since the version read last (the framework's incremental
   Delta read, ``read_appended``), plus, when the run date moved, the days of the
   readings whose drop date entered or left the ``<= run_date`` window;
2. re-resamples those days from all of bronze (every copy of a minute falls on the
   minute's day, so deduplication per day is exact), and keeps the stored hourly
   aggregates of the other days (target and quarantine rows together);
3. re-applies the cheap steps to every hour (known machine, production minutes), so
   a change of the referential or of the production runs still reaches old days.

The table stays a materialized view replaced in one commit, so the quarantine,
expectations, rollback and event log are the framework's. What was read is kept in
``_system/incremental/silver/iot_readings_hourly.json``: the ``committed`` state
(bronze version, run date, the hourly table's version it describes) and the
``pending`` one of the last computation, which counts as committed only once the
hourly table shows the write it announced (the next version, committed after the
state was saved, not a restore). Anything else (no state, the table changed since,
another schema, bronze rewritten, e.g. by a full refresh of bronze) falls back to a
full resample, which is always what a full rebuild gives. ``forget_state`` forces
the next run to resample everything (a full refresh of this table).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import maintenance
from lakehouse.bronze.sources import partition_date
from lakehouse.lake import Lake, delta_exists, filesystem, read_delta, read_json, write_json
from lakehouse.pipelines.delta_source import UpstreamRewritten, read_appended
from lakehouse.silver.energy import HOURLY_COLUMNS, finish_hourly_readings, resample_hourly

_log = logging.getLogger(__name__)
SECONDS_PER_DAY = 86_400
STATE_NAME = "incremental/silver/iot_readings_hourly.json"
QUARANTINE_SUFFIX = "_quarantine"
AGGREGATE_COLUMNS = tuple(c for c in HOURLY_COLUMNS if c != "production_minutes")


@dataclass(frozen=True)
class HourlyState:
    """The hourly table at ``target_version`` holds the readings of bronze at
    ``bronze_version`` whose drop date is ``<= run_date``."""

    bronze_version: int
    run_date: str
    target_version: int
    schema: str
    saved_at_ms: int


@dataclass(frozen=True)
class HourlyPlan:
    """What a run recomputes: ``days`` (UTC day numbers) or everything (``days`` None)."""

    days: list[int] | None
    reason: str


def utc_day(column: str | Column) -> Column:
    """Days since 1970-01-01 in UTC (independent of the session time zone)."""
    col = F.col(column) if isinstance(column, str) else column
    return F.floor(F.unix_seconds(col) / SECONDS_PER_DAY)


def as_date(value: dt.date | dt.datetime | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def state_uri(lake: Lake) -> str:
    return lake.system(STATE_NAME)


def hourly_readings(
    bronze: DataFrame,
    machines: DataFrame,
    runs: DataFrame,
    *,
    spark: SparkSession,
    lake: Lake,
    run_date: dt.date | str,
    bronze_path: str,
    target_path: str,
) -> DataFrame:
    """Hourly readings before expectations (as ``prepare_hourly_readings`` on the
    readings dropped up to ``run_date``), re-resampling only the touched days."""
    run_date = as_date(run_date)
    in_window = bronze.where(partition_date() <= F.lit(run_date))
    if not delta_exists(bronze_path):  # e.g. a dry run before any ingestion: no state to keep
        return finish_hourly_readings(resample_hourly(in_window), machines, runs)
    schema = resample_hourly(in_window).schema.simpleString()  # analysis only
    bronze_version = maintenance.version(bronze_path)
    plan = plan_refresh(spark, lake, bronze_path, target_path, run_date=run_date, schema=schema)
    _log_plan(plan)
    if plan.days is None:
        hourly = resample_hourly(in_window)
    else:
        hourly = _stored_aggregates(spark, target_path, in_window, plan.days)
        if plan.days:
            fresh = resample_hourly(in_window.where(utc_day("ts").isin(plan.days)))
            hourly = hourly.unionByName(fresh)
    target_version = maintenance.version(target_path) + 1 if delta_exists(target_path) else 0
    pending = HourlyState(
        bronze_version, run_date.isoformat(), target_version, schema, int(time.time() * 1000)
    )
    _save_pending(state_uri(lake), pending)
    return finish_hourly_readings(hourly, machines, runs)


def plan_refresh(
    spark: SparkSession, lake: Lake, bronze_path: str, target_path: str, *, run_date: dt.date, schema: str
) -> HourlyPlan:
    """The days to re-resample, or a full resample with the reason."""
    state = load_committed(state_uri(lake), target_path)
    if state is None:
        return HourlyPlan(None, "no valid incremental state")
    if not delta_exists(target_path + QUARANTINE_SUFFIX):
        return HourlyPlan(None, "no quarantine table")
    if state.schema != schema:
        return HourlyPlan(None, "the resample gives another schema")
    try:
        appended, _ = read_appended(spark, bronze_path, since_version=state.bronze_version)
    except UpstreamRewritten:
        return HourlyPlan(None, "bronze readings were rewritten")
    changed: list[DataFrame] = []
    if appended is not None:
        changed.append(appended.where(partition_date() <= F.lit(run_date)).select("ts"))
    before = dt.date.fromisoformat(state.run_date)
    if before != run_date:  # readings entering or leaving the drop-date window
        low, high = min(before, run_date), max(before, run_date)
        window = (partition_date() > F.lit(low)) & (partition_date() <= F.lit(high))
        changed.append(read_delta(spark, bronze_path).where(window).select("ts"))
    days: set[int] = set()
    for frame in changed:
        rows = frame.select(utc_day("ts").alias("day")).where("day IS NOT NULL").distinct().collect()
        days.update(int(r["day"]) for r in rows)
    return HourlyPlan(sorted(days), "touched days" if days else "no new reading")


def _log_plan(plan: HourlyPlan) -> None:
    if plan.days is None:
        _log.info("iot_readings_hourly: every day resampled (%s)", plan.reason)
        return
    days = [str(dt.date(1970, 1, 1) + dt.timedelta(days=d)) for d in plan.days]
    _log.info("iot_readings_hourly: %d day(s) resampled (%s): %s", len(days), plan.reason, ", ".join(days))


def _stored_aggregates(spark: SparkSession, target_path: str, like: DataFrame, days: list[int]) -> DataFrame:
    """Hourly aggregates already stored (kept and quarantined hours) outside ``days``,
    typed as a fresh resample gives them."""
    types = dict(resample_hourly(like).dtypes)
    frames = [read_delta(spark, path) for path in (target_path, target_path + QUARANTINE_SUFFIX)]
    stored = frames[0].select(*AGGREGATE_COLUMNS).unionByName(frames[1].select(*AGGREGATE_COLUMNS))
    stored = stored.select(*[F.col(c).cast(types[c]).alias(c) for c in AGGREGATE_COLUMNS])
    return stored.where(~utc_day("hour_ts").isin(days)) if days else stored


# ------------------------------------------------------------------ state
def _read_state(uri: str) -> dict:
    return read_json(uri) or {}


def _write_state(uri: str, state: dict) -> None:
    write_json(uri, state)  # whole or not at all: a crash leaves the previous state


def _save_pending(uri: str, pending: HourlyState) -> None:
    state = _read_state(uri)
    state["pending"] = asdict(pending)
    _write_state(uri, state)


def _landed(target_path: str, pending: HourlyState) -> bool:
    """True if the hourly table's version is the one the pending state announced, a
    replacement of the table (not a restore, append or compaction) committed after
    the state was saved."""
    if not delta_exists(target_path) or maintenance.version(target_path) != pending.target_version:
        return False
    commit = maintenance.history(target_path, limit=1)[0]
    operation = str(commit.get("operation", "")).upper()
    mode = str((commit.get("operationParameters") or {}).get("mode", "")).upper()
    replaced = operation.startswith("CREATE") or (operation == "WRITE" and mode == "OVERWRITE")
    return replaced and int(commit.get("timestamp") or 0) >= pending.saved_at_ms


def load_committed(uri: str, target_path: str) -> HourlyState | None:
    """The state that describes the hourly table as it is now, if any."""
    state = _read_state(uri)
    pending = HourlyState(**state["pending"]) if state.get("pending") else None
    if pending is not None and _landed(target_path, pending):
        state = {"committed": asdict(pending), "pending": None}
        _write_state(uri, state)
    committed = HourlyState(**state["committed"]) if state.get("committed") else None
    if committed is None or not delta_exists(target_path):
        return None
    return committed if maintenance.version(target_path) == committed.target_version else None


def forget_state(lake: Lake) -> None:
    """Make the next run resample every day (a full refresh of the hourly table)."""
    fs, path = filesystem(state_uri(lake))
    try:
        fs.delete_file(path)
    except FileNotFoundError:
        pass
