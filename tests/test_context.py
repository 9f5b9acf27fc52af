"""What the layer notebooks show of a run, read from the run itself."""

from __future__ import annotations

import datetime as dt

import pytest

from lakehouse.context import events_frame, expectations_frame
from lakehouse.pipelines.event_log import FlowEvent
from lakehouse.pipelines.expectations import ExpectationResult
from lakehouse.pipelines.runner import PipelineRun

T0 = dt.datetime(2026, 11, 26, 6)


def _run() -> PipelineRun:
    lines = FlowEvent("r1", "medallion", "silver_order_lines", "silver_order_lines", "materialized_view", T0,
                      status="COMPLETED", rows_read=10, rows_written=7, rows_dropped=3,
                      expectations=[ExpectationResult("known_product", "drop", 8, 2),
                                    ExpectationResult("positive_quantity", "drop", 10, 0),
                                    ExpectationResult("valid_order_date", "drop", 7, 3)])  # fmt: skip
    sites = FlowEvent(
        "r1", "medallion", "silver_sites", "silver_sites", "materialized_view", T0, status="SKIPPED"
    )
    return PipelineRun("r1", "medallion", status="COMPLETED", events=[lines, sites])


def test_expectations_frame_lists_the_runs_counts_of_one_dataset():
    frame = expectations_frame(_run(), "silver_order_lines")
    assert frame.to_dict("records") == [
        {"rule": "known_product", "action": "drop", "passed": 8, "failed": 2},
        {"rule": "positive_quantity", "action": "drop", "passed": 10, "failed": 0},
        {"rule": "valid_order_date", "action": "drop", "passed": 7, "failed": 3},
    ]


def test_expectations_frame_of_a_dataset_without_expectations_is_empty_with_its_columns():
    frame = expectations_frame(_run(), "silver_sites")
    assert frame.empty and list(frame.columns) == ["rule", "action", "passed", "failed"]


def test_expectations_frame_of_a_dataset_the_run_did_not_touch_names_those_it_did():
    with pytest.raises(KeyError, match=r"no event for 'silver_deliveries' in run r1.*silver_order_lines"):
        expectations_frame(_run(), "silver_deliveries")


def test_events_frame_has_one_row_per_flow_with_the_failed_expectations():
    frame = events_frame(_run())
    assert frame["dataset"].tolist() == ["silver_order_lines", "silver_sites"]
    assert frame.loc[0, "expectations failed"] == "known_product=2, valid_order_date=3"
    assert frame.loc[1, "expectations failed"] == "" and frame.loc[1, "status"] == "SKIPPED"
