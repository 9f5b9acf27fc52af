"""Incremental refresh beyond one day: ``by_day(lookback_days=, latest_per=)`` for a
rolling window and a latest-row flag, ``by_month`` for monthly rows; each refresh
equals a full rebuild and the event lists exactly the days (months) recomputed."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from lakehouse import pipelines as dp
from lakehouse.lake import read_delta, read_json
from lakehouse.pipelines import incremental
from lakehouse.pipelines.graph import GraphError
from lakehouse.pipelines.incremental import (
    ByDay,
    by_month,
    combined_by_month,
    month_days,
    partition_fingerprints,
)

READINGS = "machine string, ts timestamp, kwh int"
SALES = "day date, product string, amount int"


def _at(day: int, hour: int, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour)


def rolling(readings: DataFrame) -> DataFrame:
    """kWh per machine and hour, the 24 h total (that hour and the 23 before), and
    whether it is the machine's latest hour."""
    window = Window.partitionBy("machine").orderBy(F.unix_seconds(F.col("ts"))).rangeBetween(-23 * 3600, 0)
    return readings.select(
        "machine",
        "ts",
        "kwh",
        F.sum("kwh").over(window).alias("kwh_24h"),
        (F.col("ts") == F.max("ts").over(Window.partitionBy("machine"))).alias("is_latest"),
    )


def monthly(sales: DataFrame) -> DataFrame:
    return sales.groupBy(F.trunc("day", "month").alias("month"), "product").agg(
        F.sum("amount").cast("long").alias("amount")
    )


@pytest.fixture
def source():
    return {"readings": [], "sales": [], "lookback": 1}


def _graph(spark, source):
    with dp.graph("windows") as g:

        @dp.materialized_view
        def readings():
            return spark.createDataFrame(source["readings"], READINGS)

        @dp.materialized_view
        def sales():
            return spark.createDataFrame(source["sales"], SALES)

        @dp.materialized_view(
            incremental=dp.by_day(
                source="readings",
                source_day="ts",
                lookback_days=source["lookback"],
                latest_per=["machine"],
            )
        )
        def machine_hours(readings):
            label = dp.current().parameters["label"]
            return rolling(readings).withColumn("computed_in", F.lit(label))

        @dp.materialized_view(incremental=by_month(source="sales", source_day="day", target_day="month"))
        def sales_per_month(sales):
            label = dp.current().parameters["label"]
            return monthly(sales).withColumn("computed_in", F.lit(label))

    return g


def _run(spark, lake, source, label):
    runner = dp.PipelineRunner(spark, _graph(spark, source), lake, parameters={"label": label})
    run = runner.run(raise_on_failure=False)
    assert run.status == "COMPLETED", run.error
    return runner, run


def _details(run, name) -> dict:
    return json.loads(run.event(name).details)


def _assert_equals_full(spark, runner, name, rows, schema, build):
    """The table (without its run label) equals the definition over the whole source."""
    actual = read_delta(spark, runner.path(name)).drop("computed_in")
    assert_df_equality(
        actual, build(spark.createDataFrame(rows, schema)), ignore_row_order=True, ignore_nullable=True
    )


def _labels(spark, runner, name, key) -> dict:
    return {key(r): r.computed_in for r in read_delta(spark, runner.path(name)).collect()}


def test_a_rolling_window_and_a_latest_flag_recompute_the_days_they_reach(spark, lake, source):
    source["readings"] = [
        ("M1", _at(1, 22), 1),
        ("M1", _at(2, 1), 2),  # its window reaches day 1's 22:00
        ("M1", _at(3, 1), 4),
        ("M2", _at(1, 10), 10),
        ("M2", _at(2, 10), 20),  # M2's latest hour: day 2
        ("M3", _at(3, 5), None),  # a NULL reading still counts as the latest hour
    ]
    runner, first = _run(spark, lake, source, "r1")
    assert _details(first, "machine_hours")["mode"] == "full"

    # a new day 4 for M1: day 4 itself, M1's latest day before (3); M2's latest (2) and
    # M3's (3) are latest days too; day 1 is neither and keeps its rows
    source["readings"].append(("M1", _at(4, 0), 8))
    runner, second = _run(spark, lake, source, "r2")
    assert _details(second, "machine_hours") == {
        "mode": "days",
        "days": ["2026-11-02", "2026-11-03", "2026-11-04"],
        "reason": "source days changed; the latest day per machine before and now",
    }
    _assert_equals_full(spark, runner, "machine_hours", source["readings"], READINGS, rolling)
    labels = _labels(spark, runner, "machine_hours", lambda r: (r.machine, r.ts.day))
    assert labels == {
        ("M1", 1): "r1",
        ("M1", 2): "r2",
        ("M1", 3): "r2",
        ("M1", 4): "r2",
        ("M2", 1): "r1",
        ("M2", 2): "r2",
        ("M3", 3): "r2",
    }
    rows = {
        (r.machine, r.ts.day): (r.kwh_24h, r.is_latest)
        for r in read_delta(spark, runner.path("machine_hours")).collect()
    }
    assert rows[("M1", 3)] == (4, False)  # no longer M1's latest hour
    assert rows[("M1", 4)] == (12, True)  # 01:00 of day 3 is 23 h before: 4 + 8

    # a late correction of day 1 (22:00: 1 -> 5 kWh): day 2 reads it through its window
    source["readings"][0] = ("M1", _at(1, 22), 5)
    runner, third = _run(spark, lake, source, "r3")
    assert _details(third, "machine_hours") == {
        "mode": "days",
        "days": ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"],
        "reason": "source days changed; the 1 day(s) after them read them; "
        "the latest day per machine before and now",
    }
    _assert_equals_full(spark, runner, "machine_hours", source["readings"], READINGS, rolling)
    rows = {
        (r.machine, r.ts.day): r.kwh_24h for r in read_delta(spark, runner.path("machine_hours")).collect()
    }
    assert (rows[("M1", 1)], rows[("M1", 2)]) == (5, 7)

    runner, again = _run(spark, lake, source, "r4")
    assert (again.event("machine_hours").status, _details(again, "machine_hours")["days"]) == ("SKIPPED", [])

    # day 4 deleted: M1's latest hour goes back to day 3, which is flagged again
    source["readings"].pop()
    runner, fourth = _run(spark, lake, source, "r5")
    assert _details(fourth, "machine_hours")["days"] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    _assert_equals_full(spark, runner, "machine_hours", source["readings"], READINGS, rolling)
    latest = {
        (r.machine, r.ts.day)
        for r in read_delta(spark, runner.path("machine_hours")).collect()
        if r.is_latest
    }
    assert latest == {("M1", 3), ("M2", 2), ("M3", 3)}

    source["lookback"] = 2
    runner, widened = _run(spark, lake, source, "r6")
    assert _details(widened, "machine_hours") == {
        "mode": "full",
        "days": [],
        "reason": "lookback_days or latest_per changed",
    }


def test_by_month_recomputes_whole_months(spark, lake, source):
    source["sales"] = [
        (dt.date(2026, 10, 31), "P1", 1),
        (dt.date(2026, 11, 1), "P1", 2),
        (dt.date(2026, 11, 2), "P1", 4),
        (dt.date(2026, 11, 2), "P2", None),
    ]
    runner, first = _run(spark, lake, source, "r1")
    assert _details(first, "sales_per_month")["mode"] == "full"

    source["sales"].append((dt.date(2026, 11, 30), "P1", 8))  # a new day of November
    runner, second = _run(spark, lake, source, "r2")
    assert _details(second, "sales_per_month") == {
        "mode": "months",
        "months": ["2026-11"],
        "reason": "source months changed",
    }
    labels = _labels(spark, runner, "sales_per_month", lambda r: (r.month.month, r.product))
    assert labels == {(10, "P1"): "r1", (11, "P1"): "r2", (11, "P2"): "r2"}
    _assert_equals_full(spark, runner, "sales_per_month", source["sales"], SALES, monthly)
    amounts = {
        (r.month, r.product): r.amount for r in read_delta(spark, runner.path("sales_per_month")).collect()
    }
    assert amounts == {
        (dt.date(2026, 10, 1), "P1"): 1,
        (dt.date(2026, 11, 1), "P1"): 14,  # 2 + 4 + 8
        (dt.date(2026, 11, 1), "P2"): None,
    }

    source["sales"][0] = (dt.date(2026, 10, 31), "P1", 3)  # a late correction of October
    runner, third = _run(spark, lake, source, "r3")
    assert _details(third, "sales_per_month")["months"] == ["2026-10"]
    _assert_equals_full(spark, runner, "sales_per_month", source["sales"], SALES, monthly)

    runner, again = _run(spark, lake, source, "r4")
    assert _details(again, "sales_per_month")["mode"] == "unchanged"


def test_a_window_widens_to_the_following_known_days_and_reads_the_ones_before():
    spec = dp.by_day(source="readings", source_day="ts", lookback_days=2)
    known = {"2026-11-01", "2026-11-02", "2026-11-03", "2026-11-05"}
    assert spec.following({"2026-11-01"}, known) == {"2026-11-01", "2026-11-02", "2026-11-03"}
    assert spec.following({"2026-11-03"}, known) == {"2026-11-03", "2026-11-05"}  # 11-04 has no rows
    assert spec.read_partitions(["2026-11-03", "2026-11-05"]) == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
        "2026-11-04",
        "2026-11-05",
    ]
    plain = dp.by_day(source="readings", source_day="ts")
    assert (plain.window(), plain.following({"2026-11-01"}, known)) == (None, {"2026-11-01"})
    assert isinstance(by_month(source="sales", source_day="day"), ByDay)


def test_month_days_cover_each_month_to_its_last_day():
    assert month_days(["2028-02"])[-1] == "2028-02-29"  # leap year
    assert len(month_days(["2026-12", "2027-01"])) == 62
    assert month_days(["2026-11"])[:2] == ["2026-11-01", "2026-11-02"]
    assert month_days([]) == []


def test_window_options_are_checked_when_declared():
    with pytest.raises(GraphError, match="lookback_days is a whole number >= 0, got -1"):
        dp.by_day(source="readings", source_day="ts", lookback_days=-1)
    with pytest.raises(GraphError, match="latest_per is a list of column names, got 'machine'"):
        dp.by_day(source="readings", source_day="ts", latest_per="machine")


def test_a_view_over_an_incremental_view_takes_its_day_fingerprints(spark, lake, source, monkeypatch):
    """Reading them from the view's refresh (no second pass over its table) gives what a
    pass would: the same fingerprints, summed into months for a view by month."""
    with dp.graph("chain") as g:

        @dp.materialized_view
        def sales():
            return spark.createDataFrame(source["sales"], SALES)

        @dp.materialized_view(incremental=dp.by_day(source="sales", source_day="day"))
        def sales_ok(sales):
            return sales.where("amount IS NOT NULL")

        @dp.materialized_view(incremental=dp.by_day(source="sales_ok", source_day="day"))
        def per_day(sales_ok):
            return sales_ok.groupBy("day").agg(F.sum("amount").cast("long").alias("amount"))

        @dp.materialized_view(incremental=by_month(source="sales_ok", source_day="day", target_day="month"))
        def per_month(sales_ok):
            return monthly(sales_ok)

    computed = []
    passes = incremental._source_partitions
    monkeypatch.setattr(
        incremental,
        "_source_partitions",
        lambda ex, spec, df: computed.append(spec.source) or passes(ex, spec, df),
    )
    runner = dp.PipelineRunner(spark, g, lake)
    source["sales"] = [
        (dt.date(2026, 10, 31), "P1", 1),
        (dt.date(2026, 11, 1), "P1", 2),
        (dt.date(2026, 11, 1), "P2", None),
    ]
    assert runner.run().status == "COMPLETED"
    source["sales"].append((dt.date(2026, 11, 2), "P1", 4))
    second = runner.run()
    assert json.loads(second.event("per_day").details)["days"] == ["2026-11-02"]
    assert json.loads(second.event("per_month").details)["months"] == ["2026-11"]
    assert computed == ["sales", "sales"]  # the views over sales_ok took its fingerprints, both runs

    table = read_delta(spark, runner.path("sales_ok"))
    recorded = {
        name: read_json(lake.system(f"incremental/chain/{name}.json"))["source"]
        for name in ("per_day", "per_month")
    }
    assert recorded["per_day"] == partition_fingerprints(table, F.col("day").cast("date"))
    assert recorded["per_month"] == partition_fingerprints(table, F.date_format("day", "yyyy-MM"))
    assert set(recorded["per_month"]) == {"2026-10", "2026-11"}

    third = runner.run()  # nothing new: every view unchanged, no pass over any source
    assert [json.loads(third.event(n).details)["mode"] for n in ("per_day", "per_month")] == ["unchanged"] * 2
    assert computed == ["sales", "sales"]


def test_day_fingerprints_sum_into_months():
    days = {"2026-10-31": "1:5", "2026-11-01": "2:-7", "2026-11-30": "1:10", "None": "1:3"}
    assert combined_by_month(days) == {"2026-10": "1:5", "2026-11": "3:3", "None": "1:3"}
