"""Incremental refresh of silver iot_readings_hourly: only touched days are resampled
again (silver_iot_readings_resampled, refreshed by day), and the table always equals
a full rebuild."""

import datetime as dt
import json
from pathlib import Path

from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse import pipelines as dp
from lakehouse.bronze.sources import partition_date
from lakehouse.lake import read_delta, write_delta
from lakehouse.silver.energy import HOURLY_COLUMNS, clean_hourly_readings
from lakehouse.silver.energy_tables import BRONZE_READINGS_PATH, HOURLY_READINGS_PATH

BRONZE_SCHEMA = (
    "machine_id string, ts timestamp, kwh double, kw double, temperature_c double, vibration_mm_s double, "
    "_corrupt_record string, _source_file string, _line_number int, _ingested_at timestamp, "
    "year string, month string, day string"
)
RUNS_SCHEMA = (
    "batch_id string, machine_id string, site_id string, product_id string, start_ts timestamp, "
    "end_ts timestamp, units_produced bigint, units_rejected bigint"
)
DATASET = "silver_iot_readings_hourly"
RESAMPLED = "silver_iot_readings_resampled"  # the incremental part: resampled by day
EPOCH_DAY_NOV_1 = 20758  # (2026-11-01 - 1970-01-01).days


def _day(n: int) -> dt.date:
    return dt.date(2026, 11, n)


def _at(day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute)


def _append_drop(spark, lake, drop_day: int, readings: list[tuple]) -> None:
    """One bronze commit: the readings of one file dropped on 2026-11-<drop_day>."""
    file = f"landing/source=iot/readings/2026-11-{drop_day:02d}/r.jsonl"
    ingested = _at(drop_day, 23, 0)
    rows = [
        (machine, ts, kwh, kwh * 60, temp, 1.0, None, file, line, ingested, "2026", "11", f"{drop_day:02d}")
        for line, (machine, ts, kwh, temp) in enumerate(readings, start=1)
    ]
    frame = spark.createDataFrame(rows, BRONZE_SCHEMA)
    write_delta(
        frame, f"{lake.root}/{BRONZE_READINGS_PATH}", mode="append", partition_by=("year", "month", "day")
    )


def _write_referential(spark, lake, machines: list[str]) -> None:
    write_delta(
        spark.createDataFrame([(m,) for m in machines], "machine_id string"),
        f"{lake.root}/silver/domain=energy/table=machines",
    )
    runs = [("B1", "M001", "S01", "P1", _at(2, 10, 30), _at(2, 11, 0), 10, 0)]
    write_delta(
        spark.createDataFrame(runs, RUNS_SCHEMA), f"{lake.root}/silver/domain=energy/table=production_runs"
    )


def _runner(spark, lake, run_date: dt.date):
    graph = dp.load_graph("energy_test", ["lakehouse.bronze.tables", "lakehouse.silver.energy_tables"])
    return dp.PipelineRunner(spark, graph, lake, parameters={"run_date": run_date})


def _refresh(spark, lake, run_date: dt.date, *, full_refresh: bool = False):
    run = _runner(spark, lake, run_date).run(
        refresh=[DATASET], include_upstreams=False, full_refresh=full_refresh
    )
    assert run.status == "COMPLETED", run.error
    return run


def _reasons():
    """The rule names as one string (the engine cannot sort rows by an array)."""
    return F.array_join("_rejection_reasons", ",").alias("reasons")


def _stored(spark, lake):
    target = read_delta(spark, f"{lake.root}/{HOURLY_READINGS_PATH}")
    quarantine = read_delta(spark, f"{lake.root}/{HOURLY_READINGS_PATH}_quarantine")
    return target, quarantine.select(*HOURLY_COLUMNS, _reasons())


def _assert_equals_full_rebuild(spark, lake, run_date: dt.date) -> None:
    """The stored table and quarantine equal the non-incremental computation."""
    bronze = read_delta(spark, f"{lake.root}/{BRONZE_READINGS_PATH}").where(
        partition_date() <= F.lit(run_date)
    )
    machines = read_delta(spark, f"{lake.root}/silver/domain=energy/table=machines")
    runs = read_delta(spark, f"{lake.root}/silver/domain=energy/table=production_runs")
    expected, expected_quarantine = clean_hourly_readings(bronze, machines, runs)
    target, quarantine = _stored(spark, lake)
    assert_df_equality(target, expected, ignore_row_order=True, ignore_nullable=True)
    assert_df_equality(
        quarantine,
        expected_quarantine.select(*HOURLY_COLUMNS, _reasons()),
        ignore_row_order=True,
        ignore_nullable=True,
    )


class _Plan:
    """The days the next refresh resamples, as UTC day numbers; None: every day."""

    def __init__(self, partitions: list[str] | None) -> None:
        epoch = dt.date(1970, 1, 1)
        self.days = (
            None if partitions is None else [(dt.date.fromisoformat(d) - epoch).days for d in partitions]
        )


def _plan(spark, lake, run_date: dt.date) -> _Plan:
    return _Plan(_runner(spark, lake, run_date).incremental_plan(RESAMPLED).partitions)


def _hour(spark, lake, machine: str, hour_ts: dt.datetime):
    target, _ = _stored(spark, lake)
    rows = target.where((F.col("machine_id") == machine) & (F.col("hour_ts") == hour_ts)).collect()
    assert len(rows) == 1, rows
    return rows[0]


def test_late_readings_and_duplicates_recompute_only_their_days_and_equal_a_full_rebuild(spark, lake):
    _write_referential(spark, lake, ["M001"])
    for day in (1, 2, 3):  # day d's readings dropped on day d; M999 is unknown: quarantined
        _append_drop(
            spark, lake, day, [("M001", _at(day, 10, 0), 1.0, 20.0), ("M999", _at(day, 10, 0), 5.0, 30.0)]
        )
    _refresh(spark, lake, _day(3))
    assert _plan(spark, lake, _day(3)).days == [], "nothing new since the first build"
    _assert_equals_full_rebuild(spark, lake, _day(3))

    _append_drop(
        spark,
        lake,
        4,
        [
            ("M001", _at(4, 10, 0), 2.0, 21.0),
            ("M001", _at(2, 10, 1), 3.0, 22.0),  # late reading of day 2
            ("M001", _at(1, 10, 0), 4.0, 23.0),  # day 1's minute sent again: this copy wins
        ],
    )
    _append_drop(spark, lake, 5, [("M001", _at(3, 10, 5), 6.0, 24.0)])  # dropped after the run date
    plan = _plan(spark, lake, _day(4))
    assert plan.days == [EPOCH_DAY_NOV_1 + 0, EPOCH_DAY_NOV_1 + 1, EPOCH_DAY_NOV_1 + 3], plan
    _refresh(spark, lake, _day(4))
    _assert_equals_full_rebuild(spark, lake, _day(4))
    day1 = _hour(spark, lake, "M001", _at(1, 10, 0))
    assert (day1["kwh"], day1["minutes_observed"]) == (4.0, 1), "the latest copy replaces the first"
    day2 = _hour(spark, lake, "M001", _at(2, 10, 0))
    # 1.0 + 3.0 kWh over two minutes; the batch ran 10:30-11:00 = 30 minutes of the hour
    assert (day2["kwh"], day2["minutes_observed"], day2["production_minutes"]) == (4.0, 2, 30.0)
    assert _hour(spark, lake, "M001", _at(3, 10, 0))["minutes_observed"] == 1, "day 5's drop not yet"

    # the run date moves on: the reading dropped on day 5 (for day 3) enters the window
    assert _plan(spark, lake, _day(5)).days == [EPOCH_DAY_NOV_1 + 2]
    _refresh(spark, lake, _day(5))
    _assert_equals_full_rebuild(spark, lake, _day(5))
    assert _hour(spark, lake, "M001", _at(3, 10, 0))["minutes_observed"] == 2


def test_full_refresh_and_referential_changes_reach_every_day(spark, lake):
    _write_referential(spark, lake, ["M001"])
    for day in (1, 2):
        _append_drop(
            spark, lake, day, [("M001", _at(day, 10, 0), 1.0, 20.0), ("M999", _at(day, 10, 0), 5.0, 30.0)]
        )
    _refresh(spark, lake, _day(2))
    incremental_target, incremental_quarantine = (df.collect() for df in _stored(spark, lake))
    assert len(incremental_quarantine) == 2, "M999's two hours"

    full = _refresh(spark, lake, _day(2), full_refresh=True)  # a full refresh of the table
    assert json.loads(full.event(RESAMPLED).details)["mode"] == "full", "every day resampled"
    target, quarantine = _stored(spark, lake)
    assert sorted(target.collect()) == sorted(incremental_target)
    assert sorted(quarantine.collect()) == sorted(incremental_quarantine)

    # M999 joins the referential, no new reading: its stored hours leave the quarantine
    _write_referential(spark, lake, ["M001", "M999"])
    assert _plan(spark, lake, _day(2)).days == []
    _refresh(spark, lake, _day(2))
    _assert_equals_full_rebuild(spark, lake, _day(2))
    target, quarantine = _stored(spark, lake)
    assert (target.count(), quarantine.count()) == (4, 0)


def test_a_computation_whose_write_did_not_land_is_not_trusted(spark, lake):
    _write_referential(spark, lake, ["M001"])
    _append_drop(spark, lake, 1, [("M001", _at(1, 10, 0), 1.0, 20.0)])
    _refresh(spark, lake, _day(1))
    _append_drop(spark, lake, 2, [("M001", _at(2, 10, 0), 2.0, 20.0)])
    runner = _runner(spark, lake, _day(2))
    runner.preview(DATASET)  # computes day 2 but writes nothing
    assert _plan(spark, lake, _day(2)).days == [EPOCH_DAY_NOV_1 + 1], "day 2 still to do"
    _refresh(spark, lake, _day(2))
    _assert_equals_full_rebuild(spark, lake, _day(2))

    runner.preview(DATASET)
    for path in (f"{lake.root}/{HOURLY_READINGS_PATH}", runner.path(RESAMPLED)):  # another writer's append
        one_row = spark.createDataFrame(
            read_delta(spark, path).limit(1).collect(), read_delta(spark, path).schema
        )
        write_delta(one_row, path, mode="append")
    day_of_row = (one_row.first()["hour_ts"].date() - dt.date(1970, 1, 1)).days
    assert _plan(spark, lake, _day(2)).days == [day_of_row], "the day the other writer changed is not trusted"
    _refresh(spark, lake, _day(2))  # resampling that day again puts it right
    _assert_equals_full_rebuild(spark, lake, _day(2))


def test_a_preview_before_any_run_resamples_everything_and_keeps_no_state(spark, lake):
    """E.g. developing the definition before the pipeline ever ran."""
    _write_referential(spark, lake, ["M001"])
    _append_drop(spark, lake, 1, [("M001", _at(1, 10, 0), 1.0, 20.0)])
    sample, _ = _runner(spark, lake, _day(1)).preview(DATASET)
    assert [(r.machine_id, r.kwh, r.minutes_observed) for r in sample.itertuples()] == [("M001", 1.0, 1)]
    assert not Path(lake.system("incremental")).exists()


def test_a_corrupt_reading_arriving_recomputes_no_day(spark, lake):
    """The resampled readings read only the well-formed bronze rows with a time
    (``source_where``): a corrupt line arriving, with or without a time, changes no
    day's fingerprint."""
    _write_referential(spark, lake, ["M001"])
    _append_drop(spark, lake, 1, [("M001", _at(1, 10, 0), 1.0, 20.0)])
    _refresh(spark, lake, _day(1))
    file, at = "landing/source=iot/readings/2026-11-01/bad.jsonl", _at(1, 23, 0)
    corrupt = [
        (
            "M001",
            None,
            None,
            None,
            None,
            None,
            '{"machine_id": "M001", "ts": ',
            file,
            1,
            at,
            "2026",
            "11",
            "01",
        ),
        ("M001", _at(1, 10, 0), 9.0, 540.0, 20.0, 1.0, "kwh: 9,0", file, 2, at, "2026", "11", "01"),
    ]
    path = f"{lake.root}/{BRONZE_READINGS_PATH}"
    write_delta(
        spark.createDataFrame(corrupt, BRONZE_SCHEMA),
        path,
        mode="append",
        partition_by=("year", "month", "day"),
    )
    assert _plan(spark, lake, _day(1)).days == []
    run = _refresh(spark, lake, _day(1))
    assert json.loads(run.event(RESAMPLED).details)["mode"] == "unchanged"
    _assert_equals_full_rebuild(spark, lake, _day(1))
    assert _hour(spark, lake, "M001", _at(1, 10, 0))["kwh"] == 1.0
