"""Incremental refresh of materialized views (``incremental=dp.by_day`` / ``dp.by_key``)
on a tiny hand-made pipeline: only changed partitions are recomputed, the others keep
their rows, the write is the runner's (quarantine, roll-back, event log), and the
table always equals a full rebuild."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse import maintenance
from lakehouse import pipelines as dp
from lakehouse.lake import read_delta, read_json, write_delta

D1, D2, D3, D4 = (dt.date(2026, 11, d) for d in (1, 2, 3, 4))
SALES = "day date, id int, amount int"
RATES = "rate int"
TARGET = "day date, id int, amount int, amount_eur int, computed_in string"


@pytest.fixture
def source(spark):
    """What the upstream views give on the next run (tests change it between runs)."""
    return {"sales": [], "rates": [(2,)], "cap": 1000}


def _graph(spark, source, *, by_key=False):
    incremental = (
        dp.by_key(source="sales", keys=["id"]) if by_key else dp.by_day(source="sales", source_day="day")
    )
    with dp.graph("shop") as g:

        @dp.materialized_view
        def sales():
            return spark.createDataFrame(source["sales"], SALES)

        @dp.materialized_view
        def rates():
            return spark.createDataFrame(source["rates"], RATES)

        @dp.materialized_view(quarantine=True, incremental=incremental)
        @dp.expect_or_drop("positive_amount", "amount > 0")
        @dp.expect_or_fail("amount_known", "amount IS NOT NULL")
        def sales_eur(sales, rates):
            """One row per sale; ``computed_in`` tells which run computed the row."""
            label = dp.current().parameters["label"]
            return sales.crossJoin(rates).selectExpr(
                "day", "id", "amount", "amount * rate AS amount_eur", f"'{label}' AS computed_in"
            )

        @dp.materialized_view
        @dp.expect_or_fail("below_the_cap", f"total < {source['cap']}")
        def total(sales_eur):
            return sales_eur.selectExpr("sum(amount_eur) AS total")

    return g


def _run(spark, lake, source, label, **options):
    runner = dp.PipelineRunner(spark, _graph(spark, source, **options), lake, parameters={"label": label})
    return runner, runner.run(raise_on_failure=False)


def _details(run) -> dict:
    return json.loads(run.event("sales_eur").details)


def _rows(spark, runner, dataset="sales_eur"):
    return read_delta(spark, runner.path(dataset))


def _assert_rows(spark, runner, rows, dataset="sales_eur"):
    assert_df_equality(
        _rows(spark, runner, dataset),
        spark.createDataFrame(rows, TARGET),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_only_changed_days_are_recomputed_late_corrected_and_deleted_rows_included(spark, lake, source):
    source["sales"] = [(D1, 1, 10), (D2, 2, 20), (D2, 3, -5), (D3, 4, 40)]
    runner, first = _run(spark, lake, source, "r1")
    assert first.status == "COMPLETED", first.error
    assert _details(first) == {"mode": "full", "days": [], "reason": "no previous incremental state"}
    assert [
        tuple(r) for r in read_delta(spark, runner.quarantine_path("sales_eur")).select("id").collect()
    ] == [(3,)]

    # a late sale for day 1, day 2's negative sale corrected, a new day 4; day 3 unchanged
    source["sales"] = [(D1, 1, 10), (D1, 5, 1), (D2, 2, 20), (D2, 3, 5), (D3, 4, 40), (D4, 6, 60)]
    runner, second = _run(spark, lake, source, "r2")
    event = second.event("sales_eur")
    assert (event.status, event.rows_written) == ("COMPLETED", 5)  # days 1, 2 and 4 only
    assert _details(second) == {
        "mode": "days",
        "days": ["2026-11-01", "2026-11-02", "2026-11-04"],
        "reason": "source days changed",
    }
    _assert_rows(
        spark,
        runner,
        [
            (D1, 1, 10, 20, "r2"),
            (D1, 5, 1, 2, "r2"),
            (D2, 2, 20, 40, "r2"),
            (D2, 3, 5, 10, "r2"),
            (D3, 4, 40, 80, "r1"),  # untouched: still the row of the first run
            (D4, 6, 60, 120, "r2"),
        ],
    )
    assert read_delta(spark, runner.quarantine_path("sales_eur")).count() == 0, "day 2 replaced there too"
    assert _rows(spark, runner, "total").first()["total"] == 272  # downstream views read the new rows

    # day 4 deleted, a row of day 1 deleted: their rows leave the table
    source["sales"] = [(D1, 1, 10), (D2, 2, 20), (D2, 3, 5), (D3, 4, 40)]
    runner, third = _run(spark, lake, source, "r3")
    assert _details(third)["days"] == ["2026-11-01", "2026-11-04"]
    assert third.event("sales_eur").rows_written == 1
    _assert_rows(
        spark,
        runner,
        [(D1, 1, 10, 20, "r3"), (D2, 2, 20, 40, "r2"), (D2, 3, 5, 10, "r2"), (D3, 4, 40, 80, "r1")],
    )

    runner, again = _run(spark, lake, source, "r4")
    assert (again.event("sales_eur").status, _details(again)["mode"]) == ("SKIPPED", "unchanged")

    runner = dp.PipelineRunner(spark, _graph(spark, source), lake, parameters={"label": "r5"})
    full = runner.run(full_refresh=["sales_eur"])  # rebuilds every day, state reset
    assert _details(full) == {"mode": "full", "days": [], "reason": "full refresh"}
    _assert_rows(
        spark,
        runner,
        [(D1, 1, 10, 20, "r5"), (D2, 2, 20, 40, "r5"), (D2, 3, 5, 10, "r5"), (D3, 4, 40, 80, "r5")],
    )
    source["sales"].append((D3, 7, 1))
    runner.run(refresh=["sales"], include_upstreams=False)
    assert runner.incremental_plan("sales_eur").partitions == ["2026-11-03"]  # what the next run does


def test_another_input_changing_rebuilds_every_day(spark, lake, source):
    source["sales"] = [(D1, 1, 10), (D2, 2, 20)]
    _run(spark, lake, source, "r1")
    source["rates"] = [(3,)]
    runner, run = _run(spark, lake, source, "r2")
    assert _details(run) == {"mode": "full", "days": [], "reason": "other inputs changed: rates"}
    _assert_rows(spark, runner, [(D1, 1, 10, 30, "r2"), (D2, 2, 20, 60, "r2")])


def test_a_failure_after_the_write_rolls_back_and_leaves_the_state_uncommitted(spark, lake, source):
    source["sales"] = [(D1, 1, 10), (D2, 2, 20)]
    runner, _ = _run(spark, lake, source, "r1")
    state_file = lake.system("incremental/shop/sales_eur.json")
    state_before, version_before = read_json(state_file), maintenance.version(runner.path("sales_eur"))

    source["sales"], source["cap"] = [(D1, 1, 10), (D2, 2, 900)], 1000  # total 1820: fails below_the_cap
    runner, failed = _run(spark, lake, source, "r2")
    assert failed.status == "FAILED" and failed.event("total").status == "FAILED"
    assert failed.event("sales_eur").status == "ROLLED_BACK"
    assert read_json(state_file) == state_before
    assert maintenance.version(runner.path("sales_eur")) > version_before  # the restore is a commit
    _assert_rows(spark, runner, [(D1, 1, 10, 20, "r1"), (D2, 2, 20, 40, "r1")])

    source["cap"] = 10_000  # fixed: the same day is rebuilt, the rest is not
    runner, fixed = _run(spark, lake, source, "r3")
    assert fixed.status == "COMPLETED", fixed.error
    assert _details(fixed)["days"] == ["2026-11-02"]
    _assert_rows(spark, runner, [(D1, 1, 10, 20, "r1"), (D2, 2, 900, 1800, "r3")])


def test_a_failing_expectation_on_the_rebuilt_days_commits_nothing(spark, lake, source):
    source["sales"] = [(D1, 1, 10)]
    runner, _ = _run(spark, lake, source, "r1")
    version_before = maintenance.version(runner.path("sales_eur"))
    state_before = read_json(lake.system("incremental/shop/sales_eur.json"))
    source["sales"] = [(D1, 1, 10), (D2, 2, None)]
    runner, run = _run(spark, lake, source, "r2")
    assert run.status == "FAILED" and "amount_known" in run.error
    assert maintenance.version(runner.path("sales_eur")) == version_before
    assert read_json(lake.system("incremental/shop/sales_eur.json")) == state_before
    source["sales"] = [(D1, 1, 10), (D2, 2, 7)]
    runner, fixed = _run(spark, lake, source, "r3")
    assert _details(fixed)["days"] == ["2026-11-02"]
    _assert_rows(spark, runner, [(D1, 1, 10, 20, "r1"), (D2, 2, 7, 14, "r3")])


def test_rows_another_writer_changed_are_rebuilt_by_day(spark, lake, source):
    source["sales"] = [(D1, 1, 10), (D2, 2, 20)]
    runner, _ = _run(spark, lake, source, "r1")
    stray = spark.createDataFrame([(D2, 9, 1, 1, "someone")], TARGET)
    write_delta(stray, runner.path("sales_eur"), mode="append")
    plan = runner.incremental_plan("sales_eur")
    assert (plan.partitions, plan.reason) == (
        ["2026-11-02"],
        "the table's days changed since the last refresh",
    )
    runner, run = _run(spark, lake, source, "r2")
    _assert_rows(spark, runner, [(D1, 1, 10, 20, "r1"), (D2, 2, 20, 40, "r2")])


def test_days_the_table_has_no_row_of_are_appended_and_their_quarantine_still_replaced(spark, lake, source):
    """A recomputed day the table holds no row of (new, or every row dropped before) is
    appended instead of replaced (a replaceWhere reads and rewrites the files of the
    other days); its quarantined rows are still replaced. A day another writer put rows
    in is replaced, not appended next to them."""
    source["sales"] = [(D1, 1, 10), (D2, 2, -5)]  # day 2: its only row dropped
    runner, _ = _run(spark, lake, source, "r1")
    assert read_delta(spark, runner.quarantine_path("sales_eur")).count() == 1

    source["sales"] = [(D1, 1, 10), (D2, 3, 5), (D3, 4, 40)]
    runner, run = _run(spark, lake, source, "r2")
    assert _details(run)["days"] == ["2026-11-02", "2026-11-03"]
    last = maintenance.open_table(runner.path("sales_eur")).history(1)[0]
    assert (last["operation"], last["operationParameters"]["mode"]) == ("WRITE", "Append")
    _assert_rows(spark, runner, [(D1, 1, 10, 20, "r1"), (D2, 3, 5, 10, "r2"), (D3, 4, 40, 80, "r2")])
    assert read_delta(spark, runner.quarantine_path("sales_eur")).count() == 0, "day 2's dropped row gone"

    stray = spark.createDataFrame([(D4, 9, 1, 1, "someone")], TARGET)
    write_delta(stray, runner.path("sales_eur"), mode="append")
    source["sales"].append((D4, 6, 60))
    runner, run = _run(spark, lake, source, "r3")
    assert _details(run)["days"] == ["2026-11-04"]
    _assert_rows(
        spark,
        runner,
        [(D1, 1, 10, 20, "r1"), (D2, 3, 5, 10, "r2"), (D3, 4, 40, 80, "r2"), (D4, 6, 60, 120, "r3")],
    )


def test_by_key_replaces_only_the_changed_keys(spark, lake, source):
    source["sales"] = [(D1, 1, 10), (D1, 2, 20), (D2, 3, 30)]
    runner, first = _run(spark, lake, source, "r1", by_key=True)
    assert json.loads(first.event("sales_eur").details)["mode"] == "full"
    source["sales"] = [(D1, 1, 10), (D2, 2, 25), (D2, 4, 40)]  # 2 corrected, 3 deleted, 4 new
    runner, second = _run(spark, lake, source, "r2", by_key=True)
    assert json.loads(second.event("sales_eur").details) == {
        "mode": "keys",
        "keys": ['{"id":2}', '{"id":3}', '{"id":4}'],
        "reason": "source keys changed",
    }
    _assert_rows(spark, runner, [(D1, 1, 10, 20, "r1"), (D2, 2, 25, 50, "r2"), (D2, 4, 40, 80, "r2")])


def test_an_incremental_option_that_cannot_apply_is_refused(spark, lake):
    with dp.graph("bad") as g:

        @dp.materialized_view
        def orders():
            return dp.current().spark.range(1)

        @dp.materialized_view(incremental=dp.by_day(source="order_lines", source_day="day"))
        def totals(orders):
            return orders

    with pytest.raises(dp.GraphError, match="reads the source 'order_lines', which is not one of its inputs"):
        dp.PipelineRunner(spark, g, lake)
    with pytest.raises(dp.GraphError, match="keys is a list of column names"):
        dp.by_key(source="orders", keys="id")


def test_a_private_incremental_step_is_refreshed_with_its_reader(spark, lake, source):
    """The split of silver_iot_readings_hourly: a private view refreshed by day holds
    the costly step; refreshing its public reader alone refreshes it too."""
    with dp.graph("split") as g:

        @dp.materialized_view
        def sales():
            return spark.createDataFrame(source["sales"], SALES)

        @dp.materialized_view(private=True, incremental=dp.by_day(source="sales", source_day="day"))
        def daily(sales):
            return sales.groupBy("day").agg({"amount": "sum"}).withColumnRenamed("sum(amount)", "amount")

        @dp.materialized_view
        def report(daily):
            return daily.selectExpr("day", "amount * 10 AS amount")

    runner = dp.PipelineRunner(spark, g, lake)
    source["sales"] = [(D1, 1, 1), (D1, 2, 2), (D2, 3, 4)]
    runner.run(refresh=["sales"], include_upstreams=False)
    first = runner.run(refresh=["report"], include_upstreams=False)
    assert [e.dataset for e in first.events] == ["daily", "report"]
    source["sales"] = [(D1, 1, 1), (D1, 2, 2), (D2, 3, 5)]
    runner.run(refresh=["sales"], include_upstreams=False)
    second = runner.run(refresh=["report"], include_upstreams=False)
    assert json.loads(second.event("daily").details)["days"] == ["2026-11-02"]
    rows = {(r.day, r.amount) for r in read_delta(spark, runner.path("report")).collect()}
    assert rows == {(D1, 30), (D2, 50)}


def test_the_target_day_may_be_sql_over_the_views_columns(spark, lake, source):
    """E.g. the day in an id: the view has no day column, SQL over its columns gives it."""
    with dp.graph("ids") as g:

        @dp.materialized_view
        def sales():
            return spark.createDataFrame(source["sales"], SALES)

        @dp.materialized_view(
            incremental=dp.by_day(source="sales", source_day="day", target_day="to_date(substr(ref, 3, 10))")
        )
        def refs(sales):
            label = dp.current().parameters["label"]
            return sales.selectExpr("concat('S-', CAST(day AS STRING), '-', id) AS ref", f"'{label}' AS run")

    def run(label):
        runner = dp.PipelineRunner(spark, g, lake, parameters={"label": label})
        outcome = runner.run()
        rows = {(r.ref, r.run) for r in read_delta(spark, runner.path("refs")).collect()}
        return json.loads(outcome.event("refs").details), rows

    source["sales"] = [(D1, 1, 10), (D2, 2, 20)]
    assert run("r1")[0]["mode"] == "full"
    source["sales"] = [(D1, 1, 10), (D2, 2, 20), (D2, 3, 30), (D3, 4, 40)]
    details, rows = run("r2")
    assert details == {"mode": "days", "days": ["2026-11-02", "2026-11-03"], "reason": "source days changed"}
    assert rows == {
        ("S-2026-11-01-1", "r1"),  # day 1 untouched
        ("S-2026-11-02-2", "r2"),
        ("S-2026-11-02-3", "r2"),
        ("S-2026-11-03-4", "r2"),
    }


def test_counts_and_kept_fingerprints_in_one_pass_equal_the_two_passes(spark):
    """``tally`` by partition (what an incremental write records) gives the counts of
    ``tally`` without partition, the rows ``split`` drops and the fingerprints of the
    rows it keeps, without its check columns; a partition whose rows are all dropped
    has none."""
    from lakehouse.pipelines import expectations as ex
    from lakehouse.pipelines.graph import Action, Expectation
    from lakehouse.pipelines.incremental import partition_fingerprints

    rules = [
        Expectation("positive", "amount > 0", Action.DROP),
        Expectation("small", "amount < 50", Action.WARN),
        Expectation("not_c", "_check_raw != 'c'", Action.DROP),  # c fails two DROP rules: dropped once
    ]
    rows = [
        (dt.date(2026, 11, 1), 10, "a"),
        (dt.date(2026, 11, 1), 60, "b"),  # warned, kept
        (dt.date(2026, 11, 2), -1, "c"),  # dropped: day 2 keeps nothing
        (dt.date(2026, 11, 3), None, "d"),  # NULL passes
    ]
    frame = spark.createDataFrame(rows, "day date, amount int, _check_raw string")
    flagged = ex.flag(frame, rules)
    counts = ex.tally(flagged, rules, partition=F.col("day"), kept_columns=["day", "amount"])
    whole = ex.tally(flagged, rules)
    assert (counts.total, counts.results, counts.dropped) == (whole.total, whole.results, whole.dropped)
    assert [(r.name, r.passed, r.failed) for r in counts.results] == [
        ("positive", 3, 1),
        ("small", 3, 1),
        ("not_c", 3, 1),
    ]
    assert (counts.total, counts.dropped) == (4, 1)
    kept, dropped = ex.split(flagged, rules)
    assert dropped.count() == counts.dropped
    fingerprints = counts.fingerprints
    assert fingerprints == partition_fingerprints(kept.drop("_check_raw"), F.col("day"))
    assert sorted(fingerprints) == ["2026-11-01", "2026-11-03"]
    assert fingerprints["2026-11-01"].startswith("2:")


def test_day_conditions_compare_a_column_as_its_type_and_an_expression_as_its_date(spark):
    """A TIMESTAMP column is selected by half-open ranges (files of other days can be
    skipped); an expression by its partition label, a DATE, whatever its type (the
    engine is not asked for it). Both select the rows of their days, no more."""
    frame = spark.createDataFrame(
        [
            (dt.datetime(2026, 11, 1, 23, 59), "O20261101-1"),
            (dt.datetime(2026, 11, 2, 0, 0), "O20261102-1"),
            (dt.datetime(2026, 11, 3, 12, 0), "O20261103-1"),
            (dt.datetime(2026, 11, 4, 0, 0), "O20261104-1"),
        ],
        "ts timestamp, order_id string",
    )
    by_time = dp.by_day(source="s", source_day="ts")
    by_id = dp.by_day(source="s", source_day="to_timestamp(substr(order_id, 2, 8), 'yyyyMMdd')")
    days = ["2026-11-02", "2026-11-03"]

    assert by_time.replace_condition(days, frame) == (
        "(ts >= TIMESTAMP'2026-11-02 00:00:00' AND ts < TIMESTAMP'2026-11-04 00:00:00')"
    )
    assert by_id.replace_condition(days, frame) == (
        "(CAST((to_timestamp(substr(order_id, 2, 8), 'yyyyMMdd')) AS DATE) "
        "BETWEEN DATE'2026-11-02' AND DATE'2026-11-03')"
    )
    for spec in (by_time, by_id):
        selected = frame.where(spec.source_condition(days, frame)).select("order_id").collect()
        assert sorted(r.order_id for r in selected) == ["O20261102-1", "O20261103-1"]


def test_the_arrival_days_of_changed_days_select_their_rows_only(spark):
    """The arrival days holding rows of some days come from the recorded fingerprints
    (never the rows of no arrival day); ``arrived_on`` selects those rows by
    ``arrival_where`` when given, else by the arrival day's ranges, none for no day."""
    from lakehouse.pipelines.incremental import arrival_days

    arrivals = {
        "days": {
            "2026-11-01": {"2026-11-01": "2:5"},
            "2026-11-02": {"2026-11-02": "1:3"},
            "2026-11-04": {"2026-11-01": "1:7", "2026-11-04": "3:9"},
            "None": {"2026-11-01": "1:1"},
        }
    }
    assert arrival_days(arrivals, ["2026-11-01"]) == ["2026-11-01", "2026-11-04"]
    assert arrival_days(arrivals, ["2026-11-03"]) == []

    frame = spark.createDataFrame([(D1, "a"), (D2, "b"), (D4, "c"), (None, "d")], "arrived date, id string")
    by_ranges = dp.by_day(source="s", source_day="day", arrival_day="arrived")
    by_label = dp.by_day(
        source="s",
        source_day="day",
        arrival_day="arrived",
        arrival_where=lambda days: f"date_format(arrived, 'yyyy-MM-dd') IN ({', '.join(map(repr, days))})",
    )
    for spec in (by_ranges, by_label):
        for days, ids in ((["2026-11-01", "2026-11-04"], ["a", "c"]), ([], [])):
            assert sorted(r.id for r in frame.where(spec.arrived_on(days)).collect()) == ids
    with pytest.raises(
        dp.GraphError, match="arrival_where is a function of arrival days and needs arrival_day"
    ):
        dp.by_day(source="s", source_day="day", arrival_where=lambda days: "true")
