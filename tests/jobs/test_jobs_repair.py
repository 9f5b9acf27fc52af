"""Repair: only the tasks that did not succeed, and their dependants, run again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakehouse.jobs import JobsError, JobState, TaskState, load_run, run_job
from lakehouse.jobs.cli import jobs_cli
from lakehouse.jobs.repair import repair_run
from tests.jobs.fakes import FakeExecutor

WriteJobs = Callable[[str], Path]
NB = "notebooks/write_params.ipynb"


@pytest.mark.slow
def test_repair_reruns_the_failed_task_and_its_dependants(write_jobs: WriteJobs, project: Path) -> None:
    marker = project / "marker"
    path = write_jobs(f"""
        jobs:
          job:
            parameters: [{{name: run_date, default: "2026-01-01"}}]
            tasks:
              - task_key: first
                notebook: {NB}
                parameters: {{out_path: "{project}/first.json", run_date: "{{{{job.parameters.run_date}}}}"}}
              - task_key: gate
                notebook: notebooks/needs_marker.ipynb
                depends_on: [{{task_key: first}}]
                parameters: {{marker_path: "{marker}"}}
              - task_key: last
                notebook: {NB}
                depends_on: [{{task_key: gate}}]
                parameters: {{out_path: "{project}/last.json", run_date: "{{{{job.parameters.run_date}}}}"}}
        """)
    failed = run_job(path, "job", params={"run_date": "2026-11-26"}, quiet=True, run_id="R-first")
    assert failed.state == JobState.FAILED
    assert [t.state for t in failed.tasks.values()] == [
        TaskState.SUCCESS,
        TaskState.FAILED,
        TaskState.UPSTREAM_FAILED,
    ]
    first_mtime = (project / "first.json").stat().st_mtime_ns
    marker.write_text("")

    result = CliRunner().invoke(jobs_cli, ["repair", "R-first", "-q"])
    assert result.exit_code == 0, result.stderr
    assert "re-running gate, last; keeping first" in result.stderr
    repaired = load_run(Path(failed.run_dir).with_name(_new_run_id(project, "R-first")))
    assert repaired.state == JobState.SUCCESS and repaired.repair_of == "R-first"
    assert repaired.trigger == "repair" and repaired.params == {"run_date": "2026-11-26"}
    kept = repaired.tasks["first"]
    assert kept.reused_from == "R-first" and kept.state == TaskState.SUCCESS
    assert kept.output_notebook == failed.tasks["first"].output_notebook, "kept record, not re-run"
    assert (project / "first.json").stat().st_mtime_ns == first_mtime
    assert repaired.tasks["gate"].state == TaskState.SUCCESS and repaired.tasks["gate"].reused_from is None
    assert repaired.tasks["last"].state == TaskState.SUCCESS
    assert Path(repaired.tasks["last"].output_notebook or "").parent == Path(repaired.run_dir)
    assert '"run_date": "2026-11-26"' in (project / "last.json").read_text(), "same parameters"
    assert load_run(failed.run_dir).repaired_by == [repaired.run_id]


def _new_run_id(project: Path, original: str) -> str:
    [run_id] = load_run(project / "runs" / "job" / original).repaired_by
    return run_id


def test_repair_selection_overrides_and_refusals(write_jobs: WriteJobs, project: Path) -> None:
    path = write_jobs(f"""
        jobs:
          job:
            parameters: [{{name: day, default: "1"}}]
            tasks:
              - {{task_key: a, notebook: {NB}}}
              - {{task_key: b, notebook: {NB}, parameters: {{label: "{{{{job.parameters.day}}}}"}}}}
              - {{task_key: c, notebook: {NB}, depends_on: [{{task_key: a}}]}}
              - {{task_key: d, notebook: {NB}, depends_on: [{{task_key: b}}], run_if: ALL_DONE}}
              - {{task_key: e, notebook: {NB}, depends_on: [{{task_key: a}}], run_if: ALL_FAILED}}
        """)
    original = run_job(path, "job", quiet=True, executor=FakeExecutor({"b": ["timeout"]}), run_id="R1")
    assert original.tasks["d"].state == TaskState.SUCCESS  # ALL_DONE ran after b timed out
    assert original.tasks["e"].state == TaskState.SKIPPED
    executor = FakeExecutor()
    repaired = repair_run(
        "R1", runs_dir=project / "runs", params={"day": "9"}, quiet=True, executor=executor, run_id="R2"
    )
    assert sorted(call[0] for call in executor.calls) == ["b", "d"], "b and its dependant d only"
    assert {k: t.reused_from for k, t in repaired.tasks.items()} == {
        "a": "R1",
        "b": None,
        "c": "R1",
        "d": None,
        "e": "R1",
    }
    assert repaired.tasks["e"].state == TaskState.SKIPPED
    assert repaired.tasks["b"].parameters["label"] == "9" and repaired.params == {"day": "9"}
    assert repaired.ok and load_run(repaired.run_dir).repair_of == "R1"
    with pytest.raises(JobsError, match="R2 of job 'job' has nothing to repair"):
        repair_run("R2", runs_dir=project / "runs", quiet=True, executor=FakeExecutor())
    with pytest.raises(JobsError, match="no run 'R404'"):
        repair_run("R404", runs_dir=project / "runs", quiet=True)
    # a repair of a repair keeps pointing at the run that produced each kept task
    failing = run_job(path, "job", quiet=True, executor=FakeExecutor({"c": ["fail"]}), run_id="R3")
    assert not failing.ok
    second = repair_run("R3", runs_dir=project / "runs", quiet=True, executor=FakeExecutor({"c": ["fail"]}))
    third = repair_run(second, quiet=True, executor=FakeExecutor())
    assert third.ok and third.repair_of == second.run_id
    assert third.tasks["a"].reused_from == "R3" and third.tasks["c"].reused_from is None
