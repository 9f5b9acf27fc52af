"""Backfill: one run per date, resumable, stops at the first failure unless told."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakehouse.jobs import JobsError, TaskState
from lakehouse.jobs.backfill import DayStatus, backfill_job, latest_run_for
from lakehouse.jobs.cli import jobs_cli
from lakehouse.jobs.executor import AttemptOutcome, AttemptSpec

WriteJobs = Callable[[str], Path]
NB = "notebooks/write_params.ipynb"
JOBS = f"""
jobs:
  job:
    parameters: [{{name: run_date, default: ""}}, {{name: lake_root, default: ""}}]
    tasks:
      - task_key: only
        notebook: {NB}
        parameters: {{run_date: "{{{{job.parameters.run_date}}}}", out_path: "{{{{job.parameters.run_date}}}}.json"}}
"""
NOV = [dt.date(2026, 11, day) for day in (24, 25, 26)]


class DateExecutor:
    """Fails the dates in ``failing``; records the dates it ran."""

    def __init__(self, failing: set[str] | None = None) -> None:
        self.failing = failing or set()
        self.dates: list[str] = []

    def __call__(self, spec: AttemptSpec, cancel: threading.Event) -> AttemptOutcome:
        run_date = str(spec.parameters["run_date"])
        self.dates.append(run_date)
        if run_date in self.failing:
            return AttemptOutcome(TaskState.FAILED, f"task {spec.task_key!r} failed on {run_date}")
        return AttemptOutcome(TaskState.SUCCESS)


def test_backfill_stops_at_a_failure_and_resumes(write_jobs: WriteJobs, project: Path) -> None:
    path = write_jobs(JOBS)
    seen = []
    first = backfill_job(
        path, "job", NOV[0], NOV[2], quiet=True, executor=DateExecutor({"2026-11-25"}), on_day=seen.append
    )
    assert [d.status for d in first.days] == [DayStatus.SUCCESS, DayStatus.FAILED, DayStatus.NOT_RUN]
    assert seen == first.days and not first.ok
    assert "failed on 2026-11-25" in (first.days[1].message or "")
    assert "stopped after 2026-11-25 failed" in (first.days[2].message or "")

    fixed = DateExecutor()
    second = backfill_job(path, "job", NOV[0], NOV[2], quiet=True, executor=fixed)
    assert fixed.dates == ["2026-11-25", "2026-11-26"], "the date that succeeded is skipped"
    assert [d.status for d in second.days] == [DayStatus.ALREADY_DONE, DayStatus.SUCCESS, DayStatus.SUCCESS]
    assert second.days[0].run_id == first.days[0].run_id and second.ok
    latest = latest_run_for(project / "runs", "job", NOV[1])
    assert latest is not None and latest.ok and latest.trigger == "backfill"

    again = DateExecutor()
    assert backfill_job(path, "job", NOV[0], NOV[2], quiet=True, executor=again).ok
    assert again.dates == [], "nothing left to do"
    other_lake = DateExecutor()
    backfill_job(
        path, "job", NOV[0], NOV[0], params={"lake_root": "/elsewhere"}, quiet=True, executor=other_lake
    )
    assert other_lake.dates == ["2026-11-24"], "a run with other --param values does not count"


def test_continue_on_failure_and_refusals(write_jobs: WriteJobs) -> None:
    path = write_jobs(JOBS)
    executor = DateExecutor({"2026-11-24"})
    result = backfill_job(
        path, "job", NOV[0], NOV[2], quiet=True, executor=executor, continue_on_failure=True
    )
    assert [d.status for d in result.days] == [DayStatus.FAILED, DayStatus.SUCCESS, DayStatus.SUCCESS]
    assert executor.dates == ["2026-11-24", "2026-11-25", "2026-11-26"]
    with pytest.raises(JobsError, match="drop --param run_date"):
        backfill_job(path, "job", NOV[0], NOV[1], params={"run_date": "x"}, quiet=True)
    with pytest.raises(JobsError, match="--to 2026-11-24 is before --from 2026-11-26"):
        backfill_job(path, "job", NOV[2], NOV[0], quiet=True)
    path.write_text(
        JOBS.replace('{name: run_date, default: ""}, ', "").replace("{{job.parameters.run_date}}", "x")
    )
    with pytest.raises(JobsError, match="job 'job' has no run_date parameter"):
        backfill_job(path, "job", NOV[0], NOV[1], quiet=True)


@pytest.mark.slow
def test_backfill_cli_runs_the_notebook_per_date(write_jobs: WriteJobs, project: Path) -> None:
    write_jobs(JOBS)
    cli = CliRunner()
    result = cli.invoke(jobs_cli, ["backfill", "job", "--from", "2026-11-26", "--to", "2026-11-26", "-q"])
    assert result.exit_code == 0, result.stderr
    assert json.loads((project / "notebooks" / "2026-11-26.json").read_text())["run_date"] == "2026-11-26"
    assert "2026-11-26 SUCCESS" in result.stderr and "1 dates: 1 SUCCESS" in result.stdout
    again = cli.invoke(jobs_cli, ["backfill", "job", "--from", "2026-11-26", "--to", "2026-11-26", "-q"])
    assert again.exit_code == 0 and "ALREADY_DONE" in again.stdout
    bad = cli.invoke(jobs_cli, ["backfill", "job", "--from", "2026-11-31", "--to", "2026-12-01"])
    assert bad.exit_code == 2 and "expected a date YYYY-MM-DD" in bad.stderr
