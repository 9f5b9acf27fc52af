"""Conformance of pipeline runs: expectations, incremental streaming tables, refresh
modes, atomicity and rollback, the event log. Hand-written inputs and expected rows."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality

from lakehouse import maintenance
from lakehouse import pipelines as dp
from lakehouse.lake import read_delta
from lakehouse.pipelines import runner as runner_module

EVENTS = "id int, qty int, kind string"


@pytest.fixture
def events(spark):
    """What the source 'emits' on the next run (tests change it between runs)."""
    box = {"rows": []}
    box["frame"] = lambda: spark.createDataFrame(box["rows"], EVENTS)
    return box


def _sales_graph(events, *, quarantine=True, fail_rule=None):
    with dp.graph("sales") as g:

        @dp.table
        def raw_events():
            """Appends whatever the source emits on each run."""
            return events["frame"]()

        @dp.table(quarantine=quarantine)
        @dp.expect("kind_known", "kind IN ('sale', 'return')")
        @dp.expect_or_drop("positive_qty", "qty > 0")
        @dp.expect_or_drop("id_present", "id IS NOT NULL")
        def clean_events(raw_events):
            return raw_events

        @dp.materialized_view
        def totals(clean_events):
            return clean_events.groupBy("kind").sum("qty").withColumnRenamed("sum(qty)", "qty")

        if fail_rule:
            dp.expect_or_fail(*fail_rule)(totals)
    return g


def test_expectations_count_keep_null_rows_and_quarantine_what_they_drop(spark, lake, events):
    events["rows"] = [(1, 5, "sale"), (2, -1, "sale"), (None, 3, "return"), (4, None, None), (5, 0, "gift")]
    run = dp.PipelineRunner(spark, _sales_graph(events), lake).run(run_id="r1")
    runner = dp.PipelineRunner(spark, _sales_graph(events), lake)

    clean = run.event("clean_events")
    assert (clean.rows_read, clean.rows_written, clean.rows_dropped, clean.rows_quarantined) == (5, 2, 3, 3)
    # qty NULL -> 'qty > 0' is NULL -> kept; kind NULL -> counted as passing
    assert {(r.name, r.passed, r.failed) for r in clean.expectations} == {
        ("kind_known", 4, 1),
        ("positive_qty", 3, 2),
        ("id_present", 4, 1),
    }
    assert_df_equality(
        read_delta(spark, runner.path("clean_events")).select("id", "qty", "kind"),
        spark.createDataFrame([(1, 5, "sale"), (4, None, None)], EVENTS),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    quarantine = {
        (r.id, r.qty, tuple(r._rejection_reasons))
        for r in read_delta(spark, runner.quarantine_path("clean_events")).collect()
    }
    assert quarantine == {(2, -1, ("positive_qty",)), (None, 3, ("id_present",)), (5, 0, ("positive_qty",))}


def test_expect_or_fail_commits_nothing_and_names_rule_table_and_rows(spark, lake, events):
    events["rows"] = [(1, 5, "sale")]
    dp.PipelineRunner(spark, _sales_graph(events), lake).run()
    runner = dp.PipelineRunner(spark, _sales_graph(events, fail_rule=("small_totals", "qty < 6")), lake)
    version_before = maintenance.version(runner.path("totals"))
    events["rows"] = [(2, 4, "sale")]  # sale total becomes 9
    with pytest.raises(dp.PipelineFailed) as failure:
        runner.run()
    message = str(failure.value)
    assert "small_totals" in message and "'totals'" in message and "qty < 6" in message
    assert "'kind': 'sale'" in message and "'qty': 9" in message  # a sample of the offending rows
    assert maintenance.version(runner.path("totals")) == version_before


def test_streaming_table_reads_only_new_upstream_commits(spark, lake, events):
    events["rows"] = [(1, 5, "sale"), (2, 1, "return")]
    dp.PipelineRunner(spark, _sales_graph(events), lake).run()
    events["rows"] = [(3, 2, "sale")]
    run = dp.PipelineRunner(spark, _sales_graph(events), lake).run()
    assert run.event("clean_events").rows_read == 1  # only the new commit of raw_events
    runner = dp.PipelineRunner(spark, _sales_graph(events), lake)
    assert read_delta(spark, runner.path("clean_events")).count() == 3
    assert_df_equality(
        read_delta(spark, runner.path("totals")),
        spark.createDataFrame([("sale", 7), ("return", 1)], "kind string, qty long"),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_nothing_new_is_skipped_and_full_refresh_recomputes_from_all_input(spark, lake, events):
    events["rows"] = [(1, 5, "sale")]
    runner = dp.PipelineRunner(spark, _sales_graph(events), lake)
    runner.run()
    events["rows"] = []
    quiet = dp.PipelineRunner(spark, _sales_graph(events), lake).run(refresh=["clean_events"])
    assert quiet.event("raw_events").rows_written == 0
    assert quiet.event("clean_events").status == "SKIPPED"
    assert [e.dataset for e in quiet.events] == ["raw_events", "clean_events"]  # selective: no totals
    full = dp.PipelineRunner(spark, _sales_graph(events), lake).run(
        full_refresh=["clean_events"], refresh=["clean_events"]
    )
    assert full.event("clean_events").rows_read == 1  # all of raw_events again, not appended twice
    assert read_delta(spark, runner.path("clean_events")).count() == 1


def test_a_failing_run_leaves_every_target_at_its_previous_version(spark, lake, events):
    events["rows"] = [(1, 5, "sale")]
    runner = dp.PipelineRunner(spark, _sales_graph(events), lake)
    runner.run()
    before = {
        name: maintenance.version(runner.path(name)) for name in ("raw_events", "clean_events", "totals")
    }
    failing = dp.PipelineRunner(spark, _sales_graph(events, fail_rule=("never", "qty < 0")), lake)
    events["rows"] = [(2, 3, "sale")]
    run = failing.run(raise_on_failure=False)
    assert run.status == "FAILED" and run.event("totals").status == "FAILED"
    assert run.event("raw_events").status == "ROLLED_BACK"
    after = {name: read_delta(spark, runner.path(name)).count() for name in ("raw_events", "clean_events")}
    assert after == {"raw_events": 1, "clean_events": 1}  # contents as before the run
    assert maintenance.version(runner.path("totals")) == before["totals"]
    # The input was not marked as read: once fixed, the next run takes it exactly once.
    events["rows"] = [(2, 3, "sale")]
    dp.PipelineRunner(spark, _sales_graph(events), lake).run()
    ids = sorted(r.id for r in read_delta(spark, runner.path("clean_events")).collect())
    assert ids == [1, 2]


def test_a_crash_after_writing_before_the_checkpoint_does_not_read_twice(spark, lake, events, monkeypatch):
    events["rows"] = [(1, 5, "sale")]
    dp.PipelineRunner(spark, _sales_graph(events), lake).run()
    events["rows"] = [(2, 3, "sale")]

    real_save = runner_module._save_offsets

    def crash_on_commit(checkpoint, *, committed=None, pending="keep"):
        if committed is not None:
            raise KeyboardInterrupt("power cut after the data commit")
        return real_save(checkpoint, committed=committed, pending=pending)

    monkeypatch.setattr(runner_module, "_save_offsets", crash_on_commit)
    with pytest.raises(KeyboardInterrupt):
        dp.PipelineRunner(spark, _sales_graph(events), lake).run()
    monkeypatch.setattr(runner_module, "_save_offsets", real_save)
    events["rows"] = []
    dp.PipelineRunner(spark, _sales_graph(events), lake).run()
    runner = dp.PipelineRunner(spark, _sales_graph(events), lake)
    assert sorted(r.id for r in read_delta(spark, runner.path("clean_events")).collect()) == [1, 2]


def test_event_log_has_one_row_per_flow_and_is_queryable_with_sql(spark, lake, events):
    events["rows"] = [(1, 5, "sale"), (2, -1, "sale")]
    dp.PipelineRunner(spark, _sales_graph(events), lake).run(run_id="run-42")
    read_delta(spark, lake.system("event_log")).createOrReplaceTempView("event_log")
    rows = spark.sql(
        """
        SELECT dataset, status, rows_written, rows_dropped, e.name AS rule, e.failed
        FROM event_log LATERAL VIEW explode(expectations) AS e
        WHERE run_id = 'run-42' AND dataset = 'clean_events'
        """
    ).collect()
    assert {(r.dataset, r.status, r.rows_written, r.rows_dropped, r.rule, r.failed) for r in rows} == {
        ("clean_events", "COMPLETED", 1, 1, "kind_known", 0),
        ("clean_events", "COMPLETED", 1, 1, "positive_qty", 1),
        ("clean_events", "COMPLETED", 1, 1, "id_present", 0),
    }
    datasets = spark.sql("SELECT dataset FROM event_log WHERE run_id = 'run-42'").collect()
    assert sorted(r.dataset for r in datasets) == ["clean_events", "raw_events", "totals"]


def test_dry_run_analyses_schemas_without_writing(spark, lake, events):
    events["rows"] = [(1, 5, "sale")]
    with dp.graph("broken") as g:

        @dp.table
        def raw_events():
            return events["frame"]()

        @dp.materialized_view(schema="kind string, qty long")
        def totals(raw_events):
            return raw_events.groupBy("kind").sum("qty").withColumnRenamed("sum(qty)", "qty")

        @dp.materialized_view
        @dp.expect("bad_rule", "no_such_column > 0")
        def typo(raw_events):
            return raw_events.select("id", "quantity")

    report = dp.PipelineRunner(spark, g, lake).dry_run()
    assert report.schemas["totals"] == "struct<kind:string,qty:bigint>"
    assert len(report.problems) == 1 and "'typo'" in report.problems[0]
    assert not (lake.root and __import__("os").path.exists(f"{lake.root}/pipelines"))


def test_preview_computes_one_dataset_with_its_expectation_counts(spark, lake, events):
    events["rows"] = [(1, 5, "sale"), (2, -1, "sale")]
    runner = dp.PipelineRunner(spark, _sales_graph(events), lake)
    runner.run(refresh=["raw_events"])
    sample, counts = runner.preview("clean_events")
    assert len(sample) == 2  # preview shows rows before drops, flagged
    assert {(c.name, c.failed) for c in counts} == {("kind_known", 0), ("positive_qty", 1), ("id_present", 0)}
    assert not __import__("os").path.exists(runner.path("clean_events"))  # nothing written


def test_a_failed_full_refresh_puts_checkpoints_back(spark, lake, events):
    """Otherwise the next ordinary run would read all input again into the restored table."""
    events["rows"] = [(1, 5, "sale")]
    runner = dp.PipelineRunner(spark, _sales_graph(events), lake)
    runner.run()
    events["rows"] = [(2, 3, "sale")]
    failing = dp.PipelineRunner(spark, _sales_graph(events, fail_rule=("never", "qty < 0")), lake)
    assert failing.run(full_refresh=True, raise_on_failure=False).status == "FAILED"
    events["rows"] = []
    dp.PipelineRunner(spark, _sales_graph(events), lake).run()
    assert sorted(r.id for r in read_delta(spark, runner.path("clean_events")).collect()) == [1]
    assert sorted(r.id for r in read_delta(spark, runner.path("raw_events")).collect()) == [1]


def test_a_rewritten_upstream_asks_for_a_full_refresh(spark, lake, events):
    from lakehouse.lake import write_delta

    events["rows"] = [(1, 5, "sale")]
    runner = dp.PipelineRunner(spark, _sales_graph(events), lake)
    runner.run()
    write_delta(spark.createDataFrame([(9, 9, "sale")], EVENTS), runner.path("raw_events"))  # overwritten
    run = runner.run(refresh=["clean_events"], include_upstreams=False, raise_on_failure=False)
    assert run.status == "FAILED" and "full refresh" in run.error and "'clean_events'" in run.error
    fixed = runner.run(refresh=["clean_events"], include_upstreams=False, full_refresh=["clean_events"])
    assert fixed.event("clean_events").rows_written == 1
    assert [r.id for r in read_delta(spark, runner.path("clean_events")).collect()] == [9]
