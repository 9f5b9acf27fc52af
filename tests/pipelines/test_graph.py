"""Definitions and graph validation: no engine needed."""

import pytest

from lakehouse import pipelines as dp
from lakehouse.pipelines.graph import Action, DatasetKind


def test_parameter_names_are_the_inputs_and_order_follows_them():
    with dp.graph("g") as g:

        @dp.materialized_view
        def c(a, b):
            return None

        @dp.table
        def a():
            return None

        @dp.temporary_view
        def b(a):
            return None

    assert g.upstream("c") == {"a", "b"}
    assert g.order() == ["a", "b", "c"]
    assert g.datasets["a"].kind == DatasetKind.STREAMING_TABLE
    assert g.validate() == []


def test_expectations_stack_in_either_order_around_the_table():
    with dp.graph("g") as g:

        @dp.expect("above", "x > 0")
        @dp.materialized_view(comment="grain: one row per x")
        @dp.expect_or_drop("below", "x < 10")
        @dp.expect_all_or_fail({"f1": "x IS NOT NULL", "f2": "x <> 5"})
        def t():
            return None

    rules = {e.name: e.action for e in g.datasets["t"].expectations}
    assert rules == {"f1": Action.FAIL, "f2": Action.FAIL, "below": Action.DROP, "above": Action.WARN}
    assert g.datasets["t"].comment == "grain: one row per x"


def test_cycles_missing_inputs_duplicates_and_orphans_are_reported():
    with dp.graph("g") as g:

        @dp.materialized_view
        def x(z):
            return None

        @dp.materialized_view
        def y(x):
            return None

        @dp.materialized_view
        def z(y):
            return None

        @dp.materialized_view
        def w(missing):
            return None

        dp.create_streaming_table("no_flow")

    problems = "\n".join(g.validate())
    assert "'w' reads 'missing', which is not a dataset" in problems
    assert "has a cycle" in problems and all(n in problems for n in ("x", "y", "z"))
    assert "dataset 'no_flow' has no flow writing it" in problems
    with pytest.raises(dp.GraphError, match="defined twice"):
        with dp.graph("g2"):

            @dp.table(name="same")
            def one():
                return None

            @dp.table(name="same")
            def two():
                return None


def test_append_flow_needs_a_streaming_target_and_selective_order_keeps_upstreams():
    with dp.graph("g") as g:

        @dp.materialized_view
        def mv():
            return None

        @dp.append_flow(target="mv")
        def into_mv():
            return None

        dp.create_streaming_table("events")

        @dp.append_flow(target="events")
        def from_a(a):
            return None

        @dp.table
        def a():
            return None

        @dp.materialized_view
        def unrelated():
            return None

    assert any("only streaming tables take append" in p for p in g.validate())
    assert g.order(["events"]) == ["a", "events"]
    with pytest.raises(dp.GraphError, match="unknown datasets"):
        g.order(["nope"])


def test_bad_arguments_are_refused_when_the_decorator_runs():
    with pytest.raises(dp.GraphError, match="identifier"):
        dp.table(name="bad name")
    with pytest.raises(dp.GraphError, match="SQL string"):
        dp.expect("r", "")
    with pytest.raises(dp.GraphError, match=r"\*args"):
        with dp.graph("g"):

            @dp.table
            def f(*inputs):
                return None


def test_lineage_renders_as_mermaid():
    with dp.graph("g") as g:

        @dp.table
        def raw():
            return None

        @dp.materialized_view
        def clean(raw):
            return None

    text = g.to_mermaid()
    assert text.splitlines()[0] == "flowchart LR"
    assert "raw --> clean" in text and "raw[[raw]]" in text and "clean[(clean)]" in text
