"""run_job_task: a job whose task runs another job (how `daily` chains the pipeline_* jobs)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from lakehouse.jobs import JobsFileError, JobState, TaskState, load_jobs, load_run, run_job
from lakehouse.jobs.executor import PapermillExecutor

WriteJobs = Callable[[str], Path]

CHAIN = """
    jobs:
      ingest:
        parameters: [{name: run_date, default: ""}, {name: out, default: ""}]
        tasks:
          - task_key: bronze
            notebook: notebooks/write_params.ipynb
            parameters: {out_path: "{{job.parameters.out}}/bronze.json", run_date: "{{job.parameters.run_date}}"}
      transform:
        parameters: [{name: out, default: ""}]
        tasks:
          - {task_key: explode, notebook: notebooks/fail.ipynb}
      daily:
        parameters: [{name: run_date, default: ""}, {name: out, default: ""}]
        tasks:
          - task_key: ingestion
            run_job_task:
              job_name: ingest
              job_parameters: {run_date: "{{job.parameters.run_date}}", out: "{{job.parameters.out}}"}
          - task_key: transformation
            depends_on: [{task_key: ingestion}]
            run_job_task: {job_name: transform}
          - task_key: load
            depends_on: [{task_key: transformation}]
            notebook: notebooks/write_params.ipynb
            parameters: {out_path: "{{job.parameters.out}}/load.json"}
    """


def test_unknown_child_job_and_job_cycle_are_rejected_with_lines(write_jobs: WriteJobs) -> None:
    path = write_jobs("""
        jobs:
          a:
            tasks:
              - {task_key: run_b, run_job_task: {job_name: b}}
          b:
            tasks:
              - {task_key: run_a, run_job_task: {job_name: a}}
              - {task_key: run_c, run_job_task: {job_name: nope, job_parameters: {x: "1"}}}
        """)
    with pytest.raises(JobsFileError) as error:
        load_jobs(path)
    message = str(error.value)
    assert "run_job_task names unknown job 'nope' (jobs: a, b)" in message
    assert "run_job_task cycle: a -> b -> a" in message


def test_a_task_is_a_notebook_or_a_job_not_both(write_jobs: WriteJobs) -> None:
    path = write_jobs("""
        jobs:
          a:
            tasks:
              - {task_key: both, notebook: notebooks/fail.ipynb, run_job_task: {job_name: a}}
        """)
    with pytest.raises(
        JobsFileError,
        match=r"jobs.yaml:4: job 'a', task 'both': set exactly one of notebook and run_job_task",
    ):
        load_jobs(path)


def test_child_parameters_must_be_declared_by_the_child(write_jobs: WriteJobs) -> None:
    path = write_jobs("""
        jobs:
          child:
            parameters: [{name: run_date, default: ""}]
            tasks: [{task_key: t, notebook: notebooks/fail.ipynb}]
          parent:
            tasks:
              - {task_key: c, run_job_task: {job_name: child, job_parameters: {lake: "x"}}}
        """)
    with pytest.raises(
        JobsFileError, match=r"job 'child' has no parameter 'lake' \(its parameters: run_date\)"
    ):
        load_jobs(path)


@pytest.mark.slow
def test_parent_runs_children_in_their_own_run_folders_and_stops_on_failure(
    write_jobs: WriteJobs, project: Path
) -> None:
    path = write_jobs(CHAIN)
    run = run_job(
        path, "daily", params={"run_date": "2026-11-26", "out": str(project)}, quiet=True, run_id="r1"
    )

    assert run.state == JobState.FAILED
    states = {key: task.state for key, task in run.tasks.items()}
    assert states == {
        "ingestion": TaskState.SUCCESS,
        "transformation": TaskState.FAILED,
        "load": TaskState.UPSTREAM_FAILED,
    }
    # The child got the parent's parameters and ran in its own, inspectable run.
    assert json.loads((project / "bronze.json").read_text())["run_date"] == "2026-11-26"
    child = load_run(project / "runs" / "ingest" / "r1-ingestion")
    assert child.state == JobState.SUCCESS and child.trigger == "run_job_task"
    assert child.pid == os.getpid(), "the child job ran in the runner's process"
    log = (project / "runs" / "daily" / "r1" / "ingestion.log").read_text()
    assert "job ingest run r1-ingestion: 1 tasks" in log and "bronze SUCCESS" in log
    failed_child = load_run(project / "runs" / "transform" / "r1-transformation")
    assert failed_child.tasks["explode"].state == TaskState.FAILED
    # The parent's error names the child run and the child's failing notebook.
    error = run.tasks["transformation"].error or ""
    assert "job 'transform' run r1-transformation ended FAILED" in error
    assert "notebooks/fail.ipynb" in error
    assert run.tasks["ingestion"].notebook == "job:ingest"
    assert not (project / "load.json").exists()


@pytest.mark.slow
def test_child_job_can_still_run_in_a_worker_process(write_jobs: WriteJobs, project: Path) -> None:
    executor = PapermillExecutor(child_jobs_in_process=False)
    parent = write_jobs(
        CHAIN
        + """
      parent:
        parameters: [{name: out, default: ""}]
        tasks:
          - task_key: ingestion
            run_job_task: {job_name: ingest, job_parameters: {run_date: "2026-11-28", out: "{{job.parameters.out}}"}}
    """
    )
    run = run_job(parent, "parent", params={"out": str(project)}, quiet=True, run_id="r3", executor=executor)
    assert run.state == JobState.SUCCESS, run.error
    child = load_run(project / "runs" / "ingest" / "r3-ingestion")
    assert child.state == JobState.SUCCESS and child.trigger == "run_job_task"
    assert child.pid != os.getpid(), "the child job ran in a worker process"
    assert json.loads((project / "bronze.json").read_text())["run_date"] == "2026-11-28"
    assert run.tasks["ingestion"].output_notebook == str(project / "runs" / "ingest" / "r3-ingestion")
