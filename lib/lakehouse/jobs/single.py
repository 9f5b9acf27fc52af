"""Run ONE task of a job, without its dependencies: what each Airflow task of an
exported DAG calls (``lakehouse jobs run-task``), and a way to debug a task alone.

The task's parameters are rendered exactly as in a full run (job parameters, run id,
start time), and the notebook runs in the same killable child process with the same
environment, into ``runs/<job>/<run_id>/<task_key>.ipynb`` (and ``.log``). Retries,
dependencies and run_if are the caller's business (Airflow's). The outcome is written
to ``runs/<job>/<run_id>/<task_key>.task.json``; no ``run.json`` is written, so these
runs do not appear in ``lakehouse jobs status``.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from lakehouse.jobs.executor import (
    AttemptOutcome,
    AttemptSpec,
    Executor,
    PapermillExecutor,
    child_job_fields,
    kernel_env,
)
from lakehouse.jobs.loader import JobsError
from lakehouse.jobs.planning import plan_job
from lakehouse.jobs.records import Attempt, TaskRun, TaskState
from lakehouse.jobs.runner import resolve_runs_dir
from lakehouse.jobs.schema import JobsFile


def run_single_task(
    jobs_file: JobsFile | str | Path,
    job_name: str,
    task_key: str,
    *,
    run_id: str,
    params: Mapping[str, str] | None = None,
    start_time: dt.datetime | None = None,
    attempt: int = 1,
    project_root: str | Path | None = None,
    runs_dir: str | Path | None = None,
    executor: Executor | None = None,
    cancel: threading.Event | None = None,
) -> TaskRun:
    """Run ``task_key`` of ``job_name`` once as attempt ``attempt`` of run ``run_id``;
    return its record. Setting ``cancel`` kills the kernel (CANCELED)."""
    plan = plan_job(
        jobs_file, job_name, params=params, project_root=project_root, run_id=run_id, start_time=start_time
    )
    planned = next((p for p in plan.tasks if p.task.task_key == task_key), None)
    if planned is None:
        known = ", ".join(p.task.task_key for p in plan.tasks)
        raise JobsError(f"job {job_name!r} has no task {task_key!r}; its tasks: {known}")
    run_dir = resolve_runs_dir(plan.project_root, runs_dir) / job_name / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    output = run_dir / f"{task_key}.ipynb"
    if attempt > 1 and output.exists():  # keep the failed attempt's notebook
        os.replace(output, run_dir / f"{task_key}.attempt{attempt - 1}.ipynb")
    spec = AttemptSpec(
        job=job_name,
        run_id=run_id,
        task_key=task_key,
        attempt=attempt,
        notebook=planned.task.target,
        input_notebook=planned.input_notebook,
        output_notebook=output,
        log_file=run_dir / f"{task_key}.log",
        parameters=planned.parameters,
        cwd=planned.input_notebook.parent,
        env=kernel_env(plan.project_root, job_name, run_id, task_key, str(run_dir)),
        timeout_seconds=planned.task.timeout_seconds,
        kernel=planned.task.kernel,
        where=planned.where,
        **child_job_fields(planned, run_dir.parent.parent, 1),
    )
    began = dt.datetime.now(dt.UTC)
    try:
        outcome = (executor or PapermillExecutor())(spec, cancel or threading.Event())
    except Exception as exc:
        outcome = AttemptOutcome(TaskState.FAILED, f"task {task_key!r}: runner error: {exc!r}")
    ended = dt.datetime.now(dt.UTC)
    duration = round((ended - began).total_seconds(), 3)
    record = TaskRun(
        task_key=task_key,
        state=outcome.state,
        attempts=attempt,
        start_time=began,
        end_time=ended,
        duration_seconds=duration,
        notebook=planned.task.target,
        input_notebook=str(planned.input_notebook),
        output_notebook=str(output),
        log_file=str(spec.log_file),
        parameters=planned.parameters,
        depends_on=planned.task.upstream,
        run_if=planned.task.run_if.value,
        error=outcome.error,
        attempt_history=[
            Attempt(
                number=attempt,
                state=outcome.state,
                start_time=began,
                end_time=ended,
                duration_seconds=duration,
                output_notebook=str(output),
                error=outcome.error,
            )
        ],
    )
    (run_dir / f"{task_key}.task.json").write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return record
