"""Where a job run's time went (lakehouse.bench.job_times, what bench/daily_job.py
prints): a real run of notebooks that sleep known times, a child job beside a task."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from lakehouse.bench.job_times import run_times
from lakehouse.jobs import JobState, run_job

WriteJobs = Callable[[str], Path]


def _notebook(path: Path, *work: str) -> None:
    """A parameters cell, a set-up cell, then one cell per ``work`` source."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell("unused = 0")
    parameters.metadata["tags"] = ["parameters"]
    setup = nbformat.v4.new_code_cell("import time\nrun_layer = time.sleep")
    notebook.cells = [parameters, setup, *(nbformat.v4.new_code_cell(source) for source in work)]
    nbformat.write(notebook, path)


@pytest.mark.slow
def test_times_split_start_up_from_work_along_the_critical_path(write_jobs: WriteJobs, project: Path) -> None:
    notebooks = project / "notebooks"
    _notebook(notebooks / "long.ipynb", "run_layer(0.6)", "time.sleep(0.2)")  # 0.8 s of work
    _notebook(notebooks / "short.ipynb", "time.sleep(0.25)")
    _notebook(notebooks / "last.ipynb", "time.sleep(0.1)")
    path = write_jobs("""
        jobs:
          child:
            tasks:
              - {task_key: a, notebook: notebooks/short.ipynb}
              - {task_key: b, notebook: notebooks/short.ipynb, depends_on: [{task_key: a}]}
          parent:
            tasks:
              - {task_key: long, notebook: notebooks/long.ipynb}
              - {task_key: stage, run_job_task: {job_name: child}}
              - task_key: last
                notebook: notebooks/last.ipynb
                depends_on: [{task_key: long}, {task_key: stage}]
        """)
    run = run_job(path, "parent", quiet=True, max_parallel=2, run_id="R-times")
    assert run.state == JobState.SUCCESS, run.error

    times = run_times(Path(run.run_dir))
    by_task = {task.task: task for task in times.tasks}
    assert [(t.task, t.depth, t.child_job) for t in times.tasks] == [
        ("long", 0, False),
        ("stage", 0, True),
        ("a", 1, False),
        ("b", 1, False),
        ("last", 0, False),
    ]
    # the longest chain: long (0.8 s) then last (0.1 s), not the child's a + b (0.5 s)
    long, last, a, b = (by_task[key] for key in ("long", "last", "a", "b"))
    assert times.critical_work == pytest.approx(long.work + last.work)
    assert long.work + last.work > a.work + b.work
    assert 0.8 <= long.work < 1.2 and 0.25 <= a.work < 0.6  # slept, plus the cells' own time
    assert 0.6 <= times.pipelines < long.work  # the run_layer cell only
    assert long.pipelines == times.pipelines and a.pipelines == 0
    for task in times.tasks:
        if not task.child_job:  # start-up is what the cells leave of the attempt
            assert task.start_up + task.setup + task.work == pytest.approx(task.wall)
            assert 0 < task.setup < task.start_up
    child_run = by_task["stage"]
    assert 0 < child_run.start_up < child_run.wall
    assert times.seconds == run.duration_seconds
    assert times.over_critical_work == pytest.approx(times.seconds / times.critical_work)
    assert times.over_pipelines == pytest.approx(times.seconds / times.pipelines)
