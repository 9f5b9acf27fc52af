"""Flows whose inputs are ready run side by side (``parallelism``): same results as
one at a time, each after what it reads, and a failure anywhere rolls back every
table the run wrote."""

from __future__ import annotations

import threading
import time

import pytest
from pyspark.sql import functions as F

from lakehouse import maintenance
from lakehouse import pipelines as dp
from lakehouse.lake import read_delta


def _graph(log, *, fail_right=False):
    """source -> left -> joined <- right <- source (left and right independent)."""

    def note(name):
        log.append((name, "start", time.monotonic(), threading.current_thread().name))
        time.sleep(0.2)  # long enough for the two branches to overlap

    with dp.graph("diamond") as g:

        @dp.materialized_view
        def source():
            note("source")
            rows = [(i, dp.current().parameters["factor"] * i) for i in range(1, 5)]
            return dp.current().spark.createDataFrame(rows, "id int, value int")

        @dp.materialized_view
        def left(source):
            note("left")
            return source.select("id", (F.col("value") + 1).alias("left_value"))

        @dp.materialized_view
        @dp.expect_or_fail("small", "right_value < 100")
        def right(source):
            note("right")
            return source.select("id", (F.col("value") * (1000 if fail_right else 2)).alias("right_value"))

        @dp.materialized_view
        def joined(left, right):
            note("joined")
            return left.join(right, "id")

    return g


def test_independent_flows_overlap_and_each_starts_after_its_inputs(spark, lake):
    log = []
    run = dp.PipelineRunner(spark, _graph(log), lake, parameters={"factor": 10}, parallelism=2).run()

    assert run.status == "COMPLETED"
    starts = {name: t for name, _, t, _ in log}
    assert starts["source"] < starts["left"] and starts["source"] < starts["right"]
    assert abs(starts["left"] - starts["right"]) < 0.2, "left and right ran side by side"
    assert starts["joined"] > max(starts["left"], starts["right"])
    threads = {thread for _, _, _, thread in log}
    assert all(t.startswith("pipeline-diamond") for t in threads) and len(threads) >= 2
    path = dp.PipelineRunner(spark, _graph([]), lake).path("joined")
    assert sorted(tuple(r) for r in read_delta(spark, path).orderBy("id").collect()) == [
        (1, 11, 20),
        (2, 21, 40),
        (3, 31, 60),
        (4, 41, 80),
    ]


def test_a_failing_branch_rolls_back_the_other_branch_and_starts_nothing_after_it(spark, lake):
    dp.PipelineRunner(spark, _graph([]), lake, parameters={"factor": 1}, parallelism=2).run()
    runner = dp.PipelineRunner(spark, _graph([]), lake)
    before = {n: maintenance.version(runner.path(n)) for n in ("source", "left", "right", "joined")}
    log = []
    failing = dp.PipelineRunner(
        spark, _graph(log, fail_right=True), lake, parameters={"factor": 2}, parallelism=2
    )

    with pytest.raises(dp.PipelineFailed, match="right"):
        failing.run()

    assert "joined" not in {name for name, *_ in log}
    statuses = {e.dataset: e.status for e in failing_events(spark, lake)}
    assert statuses["right"] == "FAILED" and statuses["left"] == "ROLLED_BACK"
    values = {r.id: r.left_value for r in read_delta(spark, runner.path("left")).collect()}
    assert values == {1: 2, 2: 3, 3: 4, 4: 5}, "left is back to factor 1"
    after = {n: maintenance.version(runner.path(n)) for n in ("source", "left", "right", "joined")}
    assert after["right"] == before["right"] and after["joined"] == before["joined"]


def failing_events(spark, lake):
    log = read_delta(spark, lake.system("event_log"))
    last = log.orderBy(F.col("started_at").desc()).first()["run_id"]
    return log.where(F.col("run_id") == last).collect()


def test_the_longest_chain_starts_first_from_the_last_runs_durations():
    """a -> b -> c (3 s in all) and d, e, f (1 s each), one at a time of two slots: d,
    e and f come first in the ready list, but a heads the longest chain."""
    from lakehouse.pipelines.planner import critical_paths, update_in_order

    upstream = {"a": set(), "b": {"a"}, "c": {"b"}, "d": set(), "e": set(), "f": set()}
    durations = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0, "e": 1.0, "f": 0.5}
    assert critical_paths(upstream, durations) == {"a": 3.0, "b": 2.0, "c": 1.0, "d": 1.0, "e": 1.0, "f": 0.5}
    assert critical_paths(upstream, {}) == dict.fromkeys(upstream, 0.0), "no record: no preference"

    class Graph:
        name = "chains"

        def upstream(self, name):
            return upstream[name]

    started = []
    lock = threading.Lock()

    def update(name):
        with lock:
            started.append(name)
        time.sleep(0.05)

    update_in_order(Graph(), ["d", "e", "f", "a", "b", "c"], 1 + 1, update, durations)
    assert set(started[:2]) == {"a", "d"}, started  # without durations: d and e
    assert started.index("b") < started.index("f"), "b (2 s to go) before f (0.5 s)"
