"""Run history: one row per run x task in <lake_root>/_system/job_runs (Delta)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakehouse.jobs import JobState, load_run, run_job
from tests.jobs.fakes import FakeExecutor

WriteJobs = Callable[[str], Path]
NB = "notebooks/write_params.ipynb"
JOBS = f"""
jobs:
  job:
    parameters: [{{name: lake_root, default: ""}}, {{name: day, default: "1"}}]
    tasks:
      - {{task_key: a, notebook: {NB}}}
      - {{task_key: b, notebook: {NB}, depends_on: [{{task_key: a}}]}}
"""


def test_each_run_appends_one_row_per_task(write_jobs: WriteJobs, project: Path) -> None:
    path = write_jobs(JOBS)
    ok = run_job(path, "job", quiet=True, executor=FakeExecutor(), run_id="R-ok", params={"day": "2"})
    failed = run_job(path, "job", quiet=True, executor=FakeExecutor({"a": ["fail", "ok"]}), run_id="R-bad")
    assert ok.warnings == [] and failed.warnings == []
    table = DeltaTable(str(project / "lake" / "_system" / "job_runs"))  # lake_root of conf/
    rows = sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: (r["run_id"], r["task_key"]))
    assert [(r["run_id"], r["task_key"], r["state"], r["run_state"]) for r in rows] == [
        ("R-bad", "a", "FAILED", "FAILED"),
        ("R-bad", "b", "UPSTREAM_FAILED", "FAILED"),
        ("R-ok", "a", "SUCCESS", "SUCCESS"),
        ("R-ok", "b", "SUCCESS", "SUCCESS"),
    ]
    bad_a, bad_b, ok_a, _ = rows
    assert json.loads(ok_a["params"]) == {"day": "2", "lake_root": ""}
    assert ok_a["job"] == "job" and ok_a["attempts"] == 1 and ok_a["trigger"] == "manual"
    assert ok_a["start"] is not None and ok_a["end"] >= ok_a["start"]
    assert ok_a["duration_seconds"] >= 0 and ok_a["output_notebook"].endswith("R-ok/a.ipynb")
    assert "task 'a' failed: boom" in bad_a["error"] and bad_b["attempts"] == 0
    assert {f.name for f in table.schema().fields} >= {
        "job",
        "run_id",
        "task_key",
        "state",
        "attempts",
        "start",
        "end",
        "duration_seconds",
        "output_notebook",
        "error",
        "params",
    }


def test_lake_root_parameter_wins_and_a_failed_write_is_only_a_warning(
    write_jobs: WriteJobs, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_jobs(JOBS)
    other = project / "other-lake"
    run_job(path, "job", quiet=True, executor=FakeExecutor(), params={"lake_root": str(other)})
    assert DeltaTable(str(other / "_system" / "job_runs")).to_pyarrow_table().num_rows == 2
    blocked = project / "blocked"
    blocked.write_text("a file where the lake folder should be")
    with caplog.at_level(logging.WARNING):
        run = run_job(path, "job", quiet=True, executor=FakeExecutor(), params={"lake_root": str(blocked)})
    assert run.state == JobState.SUCCESS, "the job's own result is kept"
    warning, audit_warning = run.warnings  # the audit entry goes to the same lake
    assert "audit entry not written" in audit_warning
    assert warning.startswith(
        f"job 'job' run {run.run_id}: run history not written to {blocked}/_system/job_runs"
    )
    assert load_run(run.run_dir).warnings == [warning, audit_warning]
    assert warning in caplog.text
