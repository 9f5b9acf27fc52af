"""Real runs: papermill, one kernel per task (about 2 s each, so few of them)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import psutil
import pytest

from lakehouse.jobs import JobState, TaskState, load_run, run_job

WriteJobs = Callable[[str], Path]
pytestmark = pytest.mark.slow


def test_happy_path_writes_notebooks_and_record(write_jobs: WriteJobs, project: Path) -> None:
    path = write_jobs("""
        jobs:
          daily:
            parameters:
              - {name: run_date, default: "2026-01-01"}
              - {name: out, default: ""}
            tasks:
              - task_key: bronze
                notebook: notebooks/write_params.ipynb
                parameters: {out_path: "{{job.parameters.out}}/bronze.json", run_date: "{{job.parameters.run_date}}", count: 3}
              - task_key: silver
                notebook: notebooks/write_params.ipynb
                depends_on: [{task_key: bronze}]
                parameters: {out_path: "{{job.parameters.out}}/silver.json", label: "{{task.name}}"}
        """)
    run = run_job(path, "daily", params={"run_date": "2026-11-26", "out": str(project)}, quiet=True)
    assert run.state == JobState.SUCCESS, run.error
    bronze = json.loads((project / "bronze.json").read_text())
    assert bronze["run_date"] == "2026-11-26" and bronze["count"] == 3
    assert bronze["lakehouse_home"] == str(project) and bronze["task_key"] == "bronze"
    assert bronze["cwd"] == str(project / "notebooks")
    assert json.loads((project / "silver.json").read_text())["label"] == "silver"
    run_dir = project / "runs" / "daily" / run.run_id
    executed = nbformat.read(run_dir / "bronze.ipynb", as_version=4)
    assert any("injected-parameters" in cell.metadata.get("tags", []) for cell in executed.cells)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["state"] == "SUCCESS" and record["params"]["run_date"] == "2026-11-26"
    for key in ("bronze", "silver"):
        task = record["tasks"][key]
        assert task["state"] == "SUCCESS" and task["attempts"] == 1
        assert task["output_notebook"] == str(run_dir / f"{key}.ipynb")
        assert task["duration_seconds"] > 0 and task["start_time"] and task["end_time"]


def test_failing_cell_fails_job_names_cell_and_runs_all_done(write_jobs: WriteJobs) -> None:
    path = write_jobs("""
        jobs:
          daily:
            tasks:
              - {task_key: explode, notebook: notebooks/fail.ipynb}
              - {task_key: after, notebook: notebooks/write_params.ipynb, depends_on: [{task_key: explode}]}
              - task_key: cleanup
                notebook: notebooks/write_params.ipynb
                depends_on: [{task_key: explode}]
                run_if: ALL_DONE
        """)
    run = run_job(path, "daily", quiet=True)
    assert run.state == JobState.FAILED
    assert [t.state for t in run.tasks.values()] == [
        TaskState.FAILED,
        TaskState.UPSTREAM_FAILED,
        TaskState.SUCCESS,
    ]
    error = run.tasks["explode"].error or ""
    assert "task 'explode'" in error and "notebooks/fail.ipynb" in error
    assert 'cell 2 (In [3]): raise ValueError("boom")' in error
    assert "ValueError: boom" in error
    assert str(Path(run.run_dir) / "explode.ipynb") in error
    assert run.error is not None and "ValueError: boom" in run.error
    assert run.tasks["after"].attempts == 0


def test_retry_counts_attempts_and_keeps_failed_notebook(write_jobs: WriteJobs, project: Path) -> None:
    path = write_jobs(f"""
        jobs:
          daily:
            tasks:
              - task_key: flaky
                notebook: notebooks/flaky.ipynb
                parameters: {{counter_path: "{project / "counter.txt"}", fail_times: 1}}
                max_retries: 2
                retry_interval_seconds: 0.5
        """)
    run = run_job(path, "daily", quiet=True)
    flaky = run.tasks["flaky"]
    assert run.ok and flaky.state == TaskState.SUCCESS and flaky.attempts == 2
    first, second = flaky.attempt_history
    assert first.state == TaskState.FAILED and "attempt 1 fails on purpose" in (first.error or "")
    assert first.output_notebook and Path(first.output_notebook).name == "flaky.attempt1.ipynb"
    assert Path(first.output_notebook).exists() and Path(flaky.output_notebook or "").exists()
    assert (second.start_time - first.end_time).total_seconds() >= 0.5  # type: ignore[operator]
    assert (project / "counter.txt").read_text() == "2"


def test_timeout_kills_the_kernel(write_jobs: WriteJobs, project: Path) -> None:
    pid_file = project / "kernel.pid"
    path = write_jobs(f"""
        jobs:
          daily:
            tasks:
              - task_key: sleepy
                notebook: notebooks/sleep.ipynb
                parameters: {{seconds: 120, pid_path: "{pid_file}"}}
                timeout_seconds: 10
        """)  # long enough for the kernel to start and write its pid on a loaded machine
    began = time.monotonic()
    run = run_job(path, "daily", quiet=True)
    elapsed = time.monotonic() - began
    sleepy = run.tasks["sleepy"]
    assert sleepy.state == TaskState.TIMED_OUT and run.state == JobState.FAILED
    assert 10 <= elapsed < 18, elapsed
    assert "timed out after 10s" in (sleepy.error or "") and "kernel was killed" in (sleepy.error or "")
    assert f"{path}:4" in (sleepy.error or ""), "names the task's line in jobs.yaml"
    kernel_pid = int(pid_file.read_text())
    time.sleep(0.2)
    assert not psutil.pid_exists(kernel_pid) or psutil.Process(kernel_pid).status() == psutil.STATUS_ZOMBIE
    assert load_run(run.run_dir).tasks["sleepy"].state == TaskState.TIMED_OUT


def test_kernel_death_is_reported(write_jobs: WriteJobs) -> None:
    path = write_jobs("""
        jobs:
          daily:
            tasks:
              - {task_key: crash, notebook: notebooks/die.ipynb, timeout_seconds: 60}
        """)
    began = time.monotonic()
    run = run_job(path, "daily", quiet=True)
    assert time.monotonic() - began < 30
    crash = run.tasks["crash"]
    assert crash.state == TaskState.FAILED
    assert "kernel died" in (crash.error or "") and "notebooks/die.ipynb" in (crash.error or "")
