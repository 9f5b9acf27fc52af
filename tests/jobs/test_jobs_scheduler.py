"""Scheduling, run_if, retries, records and run limits with a fake executor (no kernels)."""

from __future__ import annotations

import io
import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from lakehouse.jobs import ConcurrentRunError, JobsError, JobState, TaskState, load_run, run_job
from lakehouse.jobs.executor import AttemptOutcome, AttemptSpec, cell_error_message, outcome_from_report
from tests.jobs.fakes import FakeExecutor

WriteJobs = Callable[[str], Path]
NB = "notebooks/write_params.ipynb"


def _run(path: Path, executor: FakeExecutor, **options: object):
    return run_job(path, "job", quiet=True, executor=executor, **options)  # type: ignore[arg-type]


def test_independent_tasks_overlap_only_with_max_parallel(write_jobs: WriteJobs) -> None:
    path = write_jobs(f"""
        jobs:
          job:
            tasks:
              - {{task_key: a, notebook: {NB}}}
              - {{task_key: b, notebook: {NB}}}
              - {{task_key: c, notebook: {NB}, depends_on: [{{task_key: a}}, {{task_key: b}}]}}
        """)
    parallel = FakeExecutor(delay=0.4)
    run = _run(path, parallel, max_parallel=2)
    assert run.ok
    (_, _, a_start, a_end), (_, _, b_start, b_end) = sorted(parallel.calls)[:2]
    assert a_start < b_end and b_start < a_end, "a and b should run at the same time"
    c_start = [c for c in parallel.calls if c[0] == "c"][0][2]
    assert c_start >= max(a_end, b_end)
    serial = FakeExecutor(delay=0.2)
    _run(path, serial)
    starts_ends = sorted((s, e) for _, _, s, e in serial.calls)
    assert all(prev_end <= start for (_, prev_end), (start, _) in zip(starts_ends, starts_ends[1:]))
    assert [c[0] for c in serial.calls] == ["a", "b", "c"]


def test_run_if_propagation_and_failure_summary(write_jobs: WriteJobs) -> None:
    path = write_jobs(f"""
        jobs:
          job:
            tasks:
              - {{task_key: a, notebook: {NB}}}
              - {{task_key: b, notebook: {NB}, depends_on: [{{task_key: a}}]}}
              - {{task_key: c, notebook: {NB}, depends_on: [{{task_key: b}}]}}
              - {{task_key: d, notebook: {NB}, depends_on: [{{task_key: a}}], run_if: AT_LEAST_ONE_FAILED}}
              - {{task_key: e, notebook: {NB}, depends_on: [{{task_key: d}}], run_if: ALL_FAILED}}
              - {{task_key: f, notebook: {NB}, depends_on: [{{task_key: c}}], run_if: ALL_DONE}}
        """)
    run = _run(path, FakeExecutor({"a": ["fail"]}))
    states = {key: task.state for key, task in run.tasks.items()}
    assert states == {
        "a": TaskState.FAILED,
        "b": TaskState.UPSTREAM_FAILED,
        "c": TaskState.UPSTREAM_FAILED,
        "d": TaskState.SUCCESS,
        "e": TaskState.SKIPPED,
        "f": TaskState.SUCCESS,
    }
    assert run.state == JobState.FAILED
    assert run.error is not None
    assert run.error.startswith(f"job 'job' run {run.run_id} failed: a (FAILED); not run because of it: b, c")
    assert "task 'a' failed: boom" in run.error
    assert "run_if ALL_FAILED not met (upstream: d SUCCESS)" in (run.tasks["e"].error or "")


def test_retries_wait_and_are_counted(write_jobs: WriteJobs) -> None:
    path = write_jobs(f"""
        jobs:
          job:
            tasks:
              - task_key: flaky
                notebook: {NB}
                max_retries: 3
                retry_interval_seconds: 0.2
              - {{task_key: slow, notebook: {NB}, max_retries: 2}}
        """)
    executor = FakeExecutor({"flaky": ["fail", "fail", "ok"], "slow": ["timeout"]})
    run = _run(path, executor)
    flaky = run.tasks["flaky"]
    assert flaky.state == TaskState.SUCCESS and flaky.attempts == 3
    assert [a.state for a in flaky.attempt_history] == [TaskState.FAILED, TaskState.FAILED, TaskState.SUCCESS]
    starts = [c[2] for c in executor.calls if c[0] == "flaky"]
    assert starts[1] - starts[0] >= 0.2 and starts[2] - starts[1] >= 0.2
    slow = run.tasks["slow"]
    assert slow.state == TaskState.TIMED_OUT and slow.attempts == 1, (
        "timeouts retry only with retry_on_timeout"
    )
    assert run.state == JobState.FAILED


def test_record_is_written_before_and_after_each_task(write_jobs: WriteJobs, project: Path) -> None:
    path = write_jobs(f"""
        jobs:
          job:
            parameters: [{{name: day, default: "1"}}]
            tasks:
              - {{task_key: a, notebook: {NB}}}
              - {{task_key: b, notebook: {NB}, depends_on: [{{task_key: a}}]}}
        """)
    seen: dict[str, dict[str, str]] = {}

    def snapshot(spec: AttemptSpec) -> None:
        record = json.loads((spec.output_notebook.parent / "run.json").read_text())
        seen[spec.task_key] = {k: t["state"] for k, t in record["tasks"].items()}
        assert record["state"] == "RUNNING"

    run = _run(path, FakeExecutor(on_call=snapshot), run_id="20261126T000000Z-abcd", params={"day": "2"})
    assert seen == {"a": {"a": "RUNNING", "b": "PENDING"}, "b": {"a": "SUCCESS", "b": "RUNNING"}}
    assert Path(run.run_dir) == project / "runs" / "job" / "20261126T000000Z-abcd"
    stored = load_run(run.run_dir)
    assert stored.state == JobState.SUCCESS and stored.params == {"day": "2"}
    assert stored.tasks["b"].duration_seconds is not None and stored.duration_seconds is not None
    with pytest.raises(JobsError, match="already exists"):
        _run(path, FakeExecutor(), run_id="20261126T000000Z-abcd")


def test_max_concurrent_runs(write_jobs: WriteJobs, project: Path) -> None:
    path = write_jobs(f"""
        jobs:
          job:
            tasks:
              - {{task_key: a, notebook: {NB}}}
        """)
    first = _run(path, FakeExecutor())
    record = json.loads(Path(first.record_path).read_text())
    record.update(state="RUNNING", run_id="20261126T000000Z-live")
    live = project / "runs" / "job" / "20261126T000000Z-live"
    live.mkdir()
    (live / "run.json").write_text(json.dumps(record))  # this process: alive
    with pytest.raises(ConcurrentRunError, match="max_concurrent_runs=1.*20261126T000000Z-live"):
        _run(path, FakeExecutor())
    record["pid"] = 2**22 + 12345  # no such process: a stale record does not block
    (live / "run.json").write_text(json.dumps(record))
    assert _run(path, FakeExecutor()).ok


def test_ctrl_c_cancels_running_and_pending_tasks(write_jobs: WriteJobs) -> None:
    path = write_jobs(f"""
        jobs:
          job:
            tasks:
              - {{task_key: long, notebook: {NB}}}
              - {{task_key: next, notebook: {NB}, depends_on: [{{task_key: long}}]}}
        """)

    def wait_for_cancel(spec: AttemptSpec, cancel: threading.Event) -> AttemptOutcome:
        while not cancel.wait(0.05):
            pass
        return AttemptOutcome(TaskState.CANCELED, f"task {spec.task_key!r} canceled")

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_job(path, "job", quiet=True, executor=wait_for_cancel, run_id="R-cancel")
    finally:
        signal.signal(signal.SIGALRM, previous)
    record = load_run(Path(path).parent / "runs" / "job" / "R-cancel")
    assert record.state == JobState.CANCELED
    assert {k: t.state for k, t in record.tasks.items()} == {
        "long": TaskState.CANCELED,
        "next": TaskState.CANCELED,
    }


def test_live_table_and_event_lines(write_jobs: WriteJobs) -> None:
    path = write_jobs(f"""
        jobs:
          job:
            tasks:
              - {{task_key: a, notebook: {NB}}}
              - {{task_key: b, notebook: {NB}, depends_on: [{{task_key: a}}]}}
        """)
    for terminal in (True, False):
        out = io.StringIO()
        console = Console(file=out, force_terminal=terminal, width=100)
        run_job(path, "job", console=console, executor=FakeExecutor({"b": ["fail"]}))
        text = out.getvalue()
        assert "a" in text and "FAILED" in text


def test_vanished_worker_and_cell_error_messages(tmp_path: Path) -> None:
    spec = AttemptSpec(
        job="job",
        run_id="R",
        task_key="t",
        attempt=1,
        notebook="notebooks/x.ipynb",
        input_notebook=tmp_path / "x.ipynb",
        output_notebook=tmp_path / "t.ipynb",
        log_file=tmp_path / "t.log",
        parameters={},
        cwd=tmp_path,
        env={},
        timeout_seconds=0,
        kernel=None,
        where="jobs.yaml:3",
    )
    vanished = outcome_from_report(spec, tmp_path / "missing.json", -9)
    assert vanished.state == TaskState.FAILED
    assert "exited with code -9 without a report" in (vanished.error or "")
    assert str(spec.log_file) in (vanished.error or "")
    message = cell_error_message(
        spec,
        {
            "cell_index": 4,
            "exec_count": 3,
            "source": "\n# load\ndf = load()\nmore()",
            "ename": "KeyError",
            "evalue": "'x'",
        },
    )
    assert message.splitlines() == [
        "task 't' failed: notebook notebooks/x.ipynb raised in cell 4 (In [3]): # load",
        "  KeyError: 'x'",
        f"  output notebook (with the traceback): {spec.output_notebook}",
    ]
