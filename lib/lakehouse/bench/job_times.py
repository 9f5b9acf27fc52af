"""Where a job run's time went: start-up against work, per task, and the work on the
job's critical path (what ``bench/daily_job.py`` prints; docs/benchmark.md).

For a notebook task (its last attempt), from the executed notebook's cell timings:
``setup`` is the first code cell after the parameters (imports, settings, session),
``work`` every later code cell, ``pipelines`` the cells that call ``run_layer(`` and
``start_up`` the rest of the attempt (the worker's start, the kernel's start and end).
For a ``run_job_task``, ``start_up`` is the attempt minus its child run, whose tasks
follow one level deeper. The critical-path work is the longest chain of ``work``
through the job's dependencies (a child job counts its own critical path): what the
run would take if nothing started up and every ready task ran at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lakehouse.jobs import load_run
from lakehouse.jobs.records import JobRun, TaskRun

_PARAMETER_TAGS = {"parameters", "injected-parameters"}


@dataclass(frozen=True)
class TaskTimes:
    task: str
    depth: int
    wall: float
    start_up: float
    setup: float = 0.0
    work: float = 0.0
    pipelines: float = 0.0
    child_job: bool = False


@dataclass(frozen=True)
class RunTimes:
    seconds: float
    critical_work: float
    pipelines: float
    tasks: list[TaskTimes]

    @property
    def over_critical_work(self) -> float:
        return self.seconds / self.critical_work

    @property
    def over_pipelines(self) -> float:
        return self.seconds / self.pipelines


def run_times(run_dir: Path) -> RunTimes:
    """The times of the run in ``run_dir`` (its ``run.json`` and executed notebooks)."""
    run = load_run(run_dir)
    tasks: list[TaskTimes] = []
    critical = _critical_work(run, tasks, depth=0)
    leaves = [t for t in tasks if not t.child_job]
    return RunTimes(run.duration_seconds or 0.0, critical, sum(t.pipelines for t in leaves), tasks)


def _critical_work(run: JobRun, tasks: list[TaskTimes], depth: int) -> float:
    finished: dict[str, float] = {}

    def finish(key: str) -> float:
        if key not in finished:
            task = run.tasks[key]
            start = max((finish(d) for d in task.depends_on if d in run.tasks), default=0.0)
            finished[key] = start + _task_work(task, tasks, depth)
        return finished[key]

    return max((finish(key) for key in run.tasks), default=0.0)


def _task_work(task: TaskRun, tasks: list[TaskTimes], depth: int) -> float:
    """Record ``task``'s times (and its child run's) in ``tasks``; its critical work."""
    if not task.attempt_history:  # skipped, or not reached
        return 0.0
    attempt = task.attempt_history[-1]
    wall = attempt.duration_seconds or 0.0
    if not task.notebook.endswith(".ipynb"):  # a run_job_task: its output is the child run
        child = load_run(Path(attempt.output_notebook or ""))
        tasks.append(
            TaskTimes(task.task_key, depth, wall, wall - (child.duration_seconds or 0.0), child_job=True)
        )
        return _critical_work(child, tasks, depth + 1)
    setup, work, pipelines = notebook_cells(Path(attempt.output_notebook or ""))
    tasks.append(TaskTimes(task.task_key, depth, wall, wall - setup - work, setup, work, pipelines))
    return work


def notebook_cells(path: Path) -> tuple[float, float, float]:
    """``(setup, work, pipelines)`` seconds of an executed notebook (papermill's cell
    timings); the parameters cells count as start-up."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = [
        cell
        for cell in notebook["cells"]
        if cell["cell_type"] == "code" and not _PARAMETER_TAGS & set(cell["metadata"].get("tags", []))
    ]
    seconds = [cell["metadata"].get("papermill", {}).get("duration") or 0.0 for cell in cells]
    pipelines = sum(
        s for cell, s in zip(cells, seconds, strict=True) if "run_layer(" in "".join(cell["source"])
    )
    return (seconds[0] if seconds else 0.0), sum(seconds[1:]), pipelines
