"""Plan a run of a job before its first task starts: the job's parameters resolved
(defaults, then the run's values), each task's parameters rendered and its notebook
resolved, the tasks in dependency order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse.jobs import templates
from lakehouse.jobs.graph import topological_order
from lakehouse.jobs.loader import JobsError, load_jobs
from lakehouse.jobs.records import new_run_id
from lakehouse.jobs.schema import Job, JobsFile, Task


class JobParameterError(JobsError):
    """A run's parameters do not match the job's declared parameters."""


@dataclass(frozen=True)
class PlannedTask:
    """A task with its parameters rendered and its notebook resolved."""

    task: Task
    parameters: dict[str, Any]
    input_notebook: Path
    where: str
    """``jobs.yaml:line`` of the task, for messages."""


@dataclass(frozen=True)
class JobPlan:
    """Everything decided before the first task starts."""

    job: Job
    run_id: str
    start_time: dt.datetime
    params: dict[str, str]
    tasks: list[PlannedTask]
    """In topological order (ties in ``jobs.yaml`` order)."""
    project_root: Path
    jobs_file: Path | None


def plan_job(
    jobs_file: JobsFile | str | Path,
    job_name: str,
    *,
    params: Mapping[str, str] | None = None,
    project_root: str | Path | None = None,
    run_id: str | None = None,
    start_time: dt.datetime | None = None,
) -> JobPlan:
    """Resolve job parameters (defaults, then ``params``), render task parameters and
    order the tasks. Raises :class:`JobParameterError` for unknown or missing
    parameters, ``KeyError`` for an unknown job, :class:`JobsFileError` for a bad file."""
    jobs, root = resolve_jobs(jobs_file, project_root)
    try:
        job = jobs.job(job_name)
    except KeyError as exc:
        raise JobsError(str(exc.args[0])) from None
    if not job.name:  # a JobsFile built in code rather than loaded
        job._name = job_name
    start_time = start_time or dt.datetime.now(dt.UTC)
    run_id = run_id or new_run_id(start_time)
    run_values = {
        "job.name": job.name,
        "job.run_id": run_id,
        **templates.start_time_values(start_time),
    }
    resolved = resolve_parameters(job, params or {}, run_values=run_values, where=jobs.where(job))
    values = {**run_values, **{f"job.parameters.{k}": v for k, v in resolved.items()}}
    by_key = {task.task_key: task for task in job.tasks}
    unknown = sorted({dep for task in job.tasks for dep in task.upstream} - set(by_key))
    if unknown:  # load_jobs rejects these; a JobsFile built in code may not
        raise JobsError(f"job {job.name!r}: depends_on names unknown tasks {unknown}")
    try:
        order = topological_order({task.task_key: task.upstream for task in job.tasks})
    except ValueError as exc:
        raise JobsError(f"job {job.name!r}: {exc}") from None
    planned = [
        PlannedTask(
            task=by_key[key],
            parameters=render_parameters(by_key[key], values),
            input_notebook=input_path(by_key[key], root, jobs.source),
            where=jobs.where(by_key[key]),
        )
        for key in order
    ]
    return JobPlan(job, run_id, start_time, resolved, planned, root, jobs.source)


def input_path(task: Task, root: Path, jobs_source: Path | None) -> Path:
    """The notebook a task executes, or for a ``run_job_task`` the jobs file it reads."""
    if task.notebook is not None:
        return (root / task.notebook).resolve()
    if jobs_source is None:
        raise JobsError(
            f"task {task.task_key!r} runs job {task.target!r}: run_job_task needs a jobs file "
            "on disk (load it with load_jobs)"
        )
    return jobs_source


def resolve_jobs(jobs_file: JobsFile | str | Path, project_root: str | Path | None) -> tuple[JobsFile, Path]:
    """The jobs file and the project root its notebook paths are relative to."""
    if isinstance(jobs_file, JobsFile):
        jobs = jobs_file
    else:
        jobs = load_jobs(jobs_file, project_root=project_root)
    root = project_root or jobs.project_root or Path.cwd()
    return jobs, Path(root).resolve()


def resolve_parameters(
    job: Job, overrides: Mapping[str, str], *, run_values: Mapping[str, str], where: str = "jobs.yaml"
) -> dict[str, str]:
    """Job parameter values: rendered defaults, replaced by ``overrides``."""
    declared = job.parameter_defaults()
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        known = ", ".join(declared) or "none"
        raise JobParameterError(
            f"job {job.name!r} has no parameter {', '.join(map(repr, unknown))}; its "
            f"parameters: {known}. Declare it under the job's parameters ({where}) "
            "or drop the --param"
        )
    resolved: dict[str, str] = {}
    for name, default in declared.items():
        if name in overrides:
            resolved[name] = str(overrides[name])
        elif default is None:
            raise JobParameterError(
                f"job {job.name!r} needs parameter {name!r} (no default in {where}); "
                f"pass --param {name}=VALUE"
            )
        else:
            resolved[name] = templates.render(default, run_values)
    return resolved


def render_parameters(task: Task, values: Mapping[str, str]) -> dict[str, Any]:
    """The task's parameters with references replaced; non-strings unchanged."""
    task_values = {**values, "task.name": task.task_key}
    return {
        key: templates.render(value, task_values) if isinstance(value, str) else value
        for key, value in task.declared_parameters.items()
    }
