"""Repair a run: re-run only the tasks that did not succeed, and everything downstream.

A repair is a NEW run (new run id, its own folder ``runs/<job>/<new_run_id>/``) with
``repair_of`` set to the repaired run; the repaired run's record gets the new id in
``repaired_by``. Tasks that are not re-run are copied into the new record unchanged,
with ``reused_from`` naming the run that produced them (their notebooks stay where they
are). The job parameters are the repaired run's (``params`` overrides some of them) and
``{{job.start_time.*}}`` references render to the repaired run's start, so the re-run
tasks see what they saw the first time; ``{{job.run_id}}`` is the new run id.

Re-run: tasks FAILED, TIMED_OUT, UPSTREAM_FAILED or CANCELED (also PENDING/RUNNING in a
run whose runner died), tasks added to the job since, and every task downstream of
those in the job's current graph. Kept: SUCCESS and SKIPPED tasks upstream of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from lakehouse.config import Settings
from lakehouse.jobs.executor import Executor
from lakehouse.jobs.loader import JobsError, load_jobs
from lakehouse.jobs.planning import plan_job
from lakehouse.jobs.records import (
    JobRun,
    JobState,
    TaskState,
    file_lock,
    find_run,
    load_run,
    new_run_id,
    write_run,
)
from lakehouse.jobs.runner import claim_run, execute, new_record
from lakehouse.jobs.schema import Job, JobsFile
from lakehouse.jobs.services import RunServices

REPAIRED_STATES = frozenset(
    {
        TaskState.FAILED,
        TaskState.TIMED_OUT,
        TaskState.UPSTREAM_FAILED,
        TaskState.CANCELED,
        TaskState.PENDING,
        TaskState.RUNNING,
    }
)


def tasks_to_repair(job: Job, run: JobRun) -> list[str]:
    """Task keys a repair of ``run`` re-runs, in ``jobs.yaml`` order (module docstring)."""
    downstream: dict[str, list[str]] = {task.task_key: [] for task in job.tasks}
    for task in job.tasks:
        for upstream in task.upstream:
            downstream.setdefault(upstream, []).append(task.task_key)
    chosen = {
        task.task_key
        for task in job.tasks
        if task.task_key not in run.tasks or run.tasks[task.task_key].state in REPAIRED_STATES
    }
    stack = list(chosen)
    while stack:
        for child in downstream.get(stack.pop(), []):
            if child not in chosen:
                chosen.add(child)
                stack.append(child)
    return [task.task_key for task in job.tasks if task.task_key in chosen]


def repair_run(
    run: str | JobRun,
    *,
    jobs_file: JobsFile | str | Path | None = None,
    params: Mapping[str, str] | None = None,
    project_root: str | Path | None = None,
    runs_dir: str | Path | None = None,
    run_id: str | None = None,
    max_parallel: int | None = None,
    quiet: bool = False,
    console: Console | None = None,
    executor: Executor | None = None,
    settings: Settings | None = None,
    record_history: bool = True,
    notify: bool = True,
) -> JobRun:
    """Repair ``run`` (a run id, looked up under ``runs_dir``, or a record) and return the
    repair run's record. ``jobs_file`` and ``project_root`` default to the repaired
    run's; ``max_parallel`` too. Raises :class:`JobsError` when the run is still running,
    has nothing to repair, or its job is gone from the jobs file."""
    original = _find(run, runs_dir)
    if original.state == JobState.RUNNING and not original.is_stale():
        raise JobsError(
            f"run {original.run_id} of job {original.job!r} is still running (pid {original.pid} on "
            f"{original.host}); wait for it to end, or stop it, then repair it"
        )
    root = Path(project_root or original.project_root)
    jobs = _jobs(jobs_file, original, root)
    try:
        job = jobs.job(original.job)
    except KeyError as exc:
        raise JobsError(f"cannot repair run {original.run_id}: {exc.args[0]}") from None
    rerun = tasks_to_repair(job, original)
    if not rerun:
        raise JobsError(
            f"run {original.run_id} of job {original.job!r} has nothing to repair: every task "
            "succeeded or was skipped. Start a new run with `lakehouse jobs run` instead"
        )
    declared = job.parameter_defaults()
    dropped = sorted(set(original.params) - set(declared))
    kept_params = {k: v for k, v in original.params.items() if k in declared}
    now = dt.datetime.now(dt.UTC)
    plan = plan_job(
        jobs,
        original.job,
        params={**kept_params, **(params or {})},
        project_root=root,
        run_id=run_id or new_run_id(now),
        start_time=original.start_time,
    )
    runs_root = Path(runs_dir).resolve() if runs_dir else Path(original.run_dir).parent.parent
    record = new_record(plan, runs_root / original.job / plan.run_id, max_parallel or original.max_parallel)
    record.start_time = now
    record.trigger = "repair"
    record.repair_of = original.run_id
    if dropped:
        record.warnings.append(
            f"parameters {', '.join(dropped)} of run {original.run_id} are no longer declared by job "
            f"{original.job!r}; the repair runs without them"
        )
    for key in record.tasks:
        if key not in rerun and key in original.tasks:
            kept = original.tasks[key].model_copy(deep=True)
            kept.reused_from = kept.reused_from or original.run_id
            record.tasks[key] = kept
    claim_run(record, job, runs_root)
    _mark_repaired(original, record.run_id, runs_root)
    services = RunServices(job, settings=settings, record_history=record_history, notify=notify)
    return execute(plan, record, executor=executor, quiet=quiet, console=console, services=services)


def _find(run: str | JobRun, runs_dir: str | Path | None) -> JobRun:
    if isinstance(run, JobRun):
        return run
    folder = Path(runs_dir) if runs_dir else Path.cwd() / "runs"
    try:
        return find_run(folder, run)
    except LookupError as exc:
        raise JobsError(str(exc)) from None


def _jobs(jobs_file: JobsFile | str | Path | None, original: JobRun, root: Path) -> JobsFile:
    if isinstance(jobs_file, JobsFile):
        return jobs_file
    path = jobs_file or original.jobs_file
    if path is None:
        raise JobsError(
            f"run {original.run_id} does not say which jobs file it came from; pass --file jobs.yaml"
        )
    return load_jobs(path, project_root=root)


def _mark_repaired(original: JobRun, repair_id: str, runs_root: Path) -> None:
    """Add the repair to the repaired run's ``repaired_by`` (under the job's lock)."""
    path = Path(original.run_dir)
    if not (path / "run.json").is_file():
        return
    with file_lock(runs_root / original.job / ".lock"):
        current = load_run(path)
        current.repaired_by.append(repair_id)
        write_run(current)
