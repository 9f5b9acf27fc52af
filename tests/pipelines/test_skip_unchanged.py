"""A run that would change nothing writes nothing: sources with nothing new, and
materialized views whose inputs and definition, or whose computed rows, are what
they were at their last refresh. Everything else is recomputed and rewritten."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from pyspark.sql import functions as F

from lakehouse import maintenance
from lakehouse import pipelines as dp
from lakehouse.lake import read_delta, write_delta
from lakehouse.pipelines.fingerprint import _normalise, fingerprint

ORDERS = "id int, qty int, kind string"


def _graph(source):
    """orders (a streaming table) -> totals (a view) -> labelled (a view using a
    run parameter) and ranked (a view over a table outside the graph)."""
    with dp.graph("shop") as g:

        @dp.table
        def orders():
            return source["frame"]()

        @dp.materialized_view
        def totals(orders):
            return orders.groupBy("kind").agg(F.sum("qty").alias("qty"))

        @dp.materialized_view
        @dp.expect_or_fail("label_allowed", "label <> 'bad'")
        def labelled(totals):
            return totals.withColumn("label", F.lit(dp.current().parameters["label"]))

        @dp.materialized_view
        def big_kinds(totals):
            return totals.where("qty > 10").select("kind")

    return g


def _source(spark):
    box = {"rows": [(1, 5, "sale"), (2, 7, "sale"), (3, 2, "return")]}
    box["frame"] = lambda: None if box["rows"] is None else spark.createDataFrame(box["rows"], ORDERS)
    return box


def _run(spark, lake, source, label="v1", **kwargs):
    run = dp.PipelineRunner(spark, _graph(source), lake, parameters={"label": label}).run(**kwargs)
    return {e.dataset: e for e in run.events}, run


def _versions(lake, spark, source):
    runner = dp.PipelineRunner(spark, _graph(source), lake, parameters={"label": "v1"})
    return {
        name: maintenance.version(runner.path(name)) for name in ("orders", "totals", "labelled", "big_kinds")
    }


def test_a_source_returning_none_is_skipped_and_commits_nothing(spark, lake):
    source = _source(spark)
    _run(spark, lake, source)
    before = _versions(lake, spark, source)
    source["rows"] = None

    events, run = _run(spark, lake, source)

    assert run.status == "COMPLETED"
    assert (events["orders"].status, events["orders"].details) == (
        "SKIPPED",
        "the source returned no new data",
    )
    assert _versions(lake, spark, source) == before


def test_previewing_a_source_with_nothing_new_says_so(spark, lake):
    source = _source(spark)
    source["rows"] = None
    with pytest.raises(dp.GraphError, match="'orders': its source has no new data to preview"):
        dp.PipelineRunner(spark, _graph(source), lake, parameters={"label": "v1"}).preview("orders")


def test_views_whose_inputs_and_definition_are_unchanged_are_not_even_computed(spark, lake):
    source = _source(spark)
    _run(spark, lake, source)
    before = _versions(lake, spark, source)
    source["rows"] = None

    events, _ = _run(spark, lake, source)

    for name in ("totals", "labelled", "big_kinds"):
        assert events[name].status == "SKIPPED", name
        assert events[name].details == "inputs and definition unchanged since the last refresh"
        assert events[name].rows_read == 0  # nothing evaluated
        assert events[name].target_version == before[name]
    assert _versions(lake, spark, source) == before


def test_a_view_whose_rows_come_out_the_same_keeps_its_version_and_its_readers_skip(spark, lake):
    source = _source(spark)
    _run(spark, lake, source)
    before = _versions(lake, spark, source)
    source["rows"] = [(4, 0, "sale")]  # a new order: totals recomputed, same rows

    events, _ = _run(spark, lake, source)

    assert events["orders"].status == "COMPLETED"
    assert (events["totals"].status, events["totals"].rows_read) == ("SKIPPED", 2)
    assert events["totals"].details == "result unchanged since the last refresh: nothing written"
    assert events["labelled"].status == events["big_kinds"].status == "SKIPPED"
    assert _versions(lake, spark, source) == {**before, "orders": before["orders"] + 1}


def test_changed_rows_a_new_parameter_another_writer_or_a_full_refresh_rewrite_the_view(spark, lake):
    source = _source(spark)
    _run(spark, lake, source)
    runner = dp.PipelineRunner(spark, _graph(source), lake, parameters={"label": "v1"})

    source["rows"] = [(4, 1, "return")]
    events, _ = _run(spark, lake, source)
    statuses = [events[n].status for n in ("totals", "labelled", "big_kinds")]
    assert statuses == ["COMPLETED", "COMPLETED", "SKIPPED"]  # still only 'sale' above 10
    assert {(r.kind, r.qty) for r in read_delta(spark, runner.path("totals")).collect()} == {
        ("sale", 12),
        ("return", 3),
    }

    source["rows"] = None
    events, _ = _run(spark, lake, source, label="v2")  # the parameter is a literal of the plan
    assert events["labelled"].status == "COMPLETED"
    assert {r.label for r in read_delta(spark, runner.path("labelled")).collect()} == {"v2"}
    assert events["big_kinds"].status == "SKIPPED"

    write_delta(spark.createDataFrame([("gift",)], "kind string"), runner.path("big_kinds"))  # another writer
    events, _ = _run(spark, lake, source, label="v2")
    assert events["big_kinds"].status == "COMPLETED"
    assert [r.kind for r in read_delta(spark, runner.path("big_kinds")).collect()] == ["sale"]

    events, _ = _run(spark, lake, source, label="v2", full_refresh=True)
    assert all(events[n].status == "COMPLETED" for n in ("totals", "labelled", "big_kinds"))


def test_a_failed_run_leaves_its_views_to_be_recomputed(spark, lake):
    source = _source(spark)
    _run(spark, lake, source)
    source["rows"] = [(5, 20, "sale")]
    events, run = _run(spark, lake, source, label="bad", raise_on_failure=False)
    assert (run.status, events["totals"].status) == ("FAILED", "ROLLED_BACK")

    source["rows"] = None
    events, _ = _run(spark, lake, source)  # totals was restored: a new version, so recomputed

    assert events["totals"].status == "COMPLETED"
    runner = dp.PipelineRunner(spark, _graph(source), lake, parameters={"label": "v1"})
    assert {(r.kind, r.qty) for r in read_delta(spark, runner.path("totals")).collect()} == {
        ("sale", 12),
        ("return", 2),
    }


def test_a_stateful_view_is_computed_and_written_on_every_run(spark, lake):
    """An incremental view keeps state about what it wrote; skipping its write would
    leave that state waiting for a commit that never comes."""
    calls = []
    with dp.graph("stateful") as g:

        @dp.materialized_view(stateful=True)
        def running_total():
            calls.append(1)
            return dp.current().spark.createDataFrame([(1,)], "n int")

    runner = dp.PipelineRunner(spark, g, lake)
    runner.run()
    events = {e.dataset: e for e in runner.run().events}
    assert (events["running_total"].status, len(calls)) == ("COMPLETED", 2)
    assert maintenance.version(runner.path("running_total")) == 1


def test_plans_with_non_deterministic_functions_or_non_delta_reads_are_not_reproducible(spark, tmp_path):
    table = str(tmp_path / "t")
    write_delta(spark.createDataFrame([(1,)], "x int"), table)
    stored = read_delta(spark, table)

    def plan():
        return read_delta(spark, table).where(F.col("x") > 0)

    first = fingerprint(plan(), lambda path: 7)
    again = fingerprint(plan(), lambda path: 7)
    in_a_thread = ThreadPoolExecutor(1).submit(lambda: fingerprint(plan(), lambda path: 7)).result()
    assert first is not None and first.reproducible
    assert first == again == in_a_thread  # plan ids do not count
    # nor call sites, which the client records on some threads only
    bare, with_site = (plan()._plan.to_proto(spark.client) for _ in range(2))
    bare.root.filter.condition.ClearField("common")
    with_site.root.filter.condition.common.origin.python_origin.call_site = "notebook.py:12"
    for proto in (bare, with_site):
        _normalise(proto, {}, set(), {"reproducible": True})
    assert bare.SerializeToString(deterministic=True) == with_site.SerializeToString(deterministic=True)
    assert first.tables == {table: 7}
    assert fingerprint(stored.where(F.col("x") > 1), lambda path: 7).digest != first.digest
    assert not fingerprint(stored.withColumn("at", F.current_timestamp()), lambda path: 7).reproducible
    assert not fingerprint(stored.withColumn("r", F.rand(1)), lambda path: 7).reproducible
    spark.createDataFrame([(1,)], "x int").write.mode("overwrite").parquet(str(tmp_path / "p"))
    assert not fingerprint(spark.read.parquet(str(tmp_path / "p")), lambda path: 7).reproducible
    assert not fingerprint(stored, lambda path: None).reproducible  # a path holding no table
