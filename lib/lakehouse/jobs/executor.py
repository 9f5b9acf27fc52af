"""Execute one attempt of a task: its notebook run by papermill in a killable child
process, the child's report translated into an outcome.

Timeouts: each attempt of a notebook task runs in a child process in its own session,
forked from the runner's fork server (:mod:`lakehouse.jobs.forkserver`, which has
papermill imported already), or started as ``python -m lakehouse.jobs._worker`` when the
fork server cannot be used; papermill starts the kernel from there. The runner waits on
that process with a wall-clock deadline; when it passes (or the run is interrupted) the
child is stopped and it and all its descendants (the kernel and anything the kernel
started) are killed with SIGKILL. The child reports the outcome as JSON (cell error, dead
kernel); a child that vanishes without a report is a failure that points at the task's
log.

A ``run_job_task`` runs its child job in a thread of the runner's process (its tasks are
processes of their own anyway): the deadline or a cancel sets the child run's cancel
event, so the child kills its running kernels and records itself CANCELED, and the task
is TIMED_OUT or CANCELED. ``PapermillExecutor(child_jobs_in_process=False)`` runs the
child job in a worker process instead, killed like a notebook's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from lakehouse.jobs import forkserver
from lakehouse.jobs.planning import PlannedTask
from lakehouse.jobs.records import TaskState

if TYPE_CHECKING:
    from lakehouse.config import Settings

_POLL_SECONDS = 0.1
CHILD_JOB_GRACE_SECONDS = 60.0
"""How long a canceled or timed-out child job gets to kill its kernels and write its
record before the task's outcome is returned without it."""


@dataclass(frozen=True)
class AttemptSpec:
    """One execution of a task's notebook."""

    job: str
    run_id: str
    task_key: str
    attempt: int
    notebook: str
    input_notebook: Path
    output_notebook: Path
    log_file: Path
    parameters: dict[str, Any]
    cwd: Path
    env: dict[str, str]
    timeout_seconds: int
    kernel: str | None
    where: str
    run_job: str | None = None
    """For a ``run_job_task``: the child job, run from ``input_notebook`` (the jobs file)
    into the runs folder ``runs_dir`` with ``parameters`` as its job parameters."""
    runs_dir: Path | None = None
    max_parallel: int = 1
    settings: Settings | None = None
    """The parent run's settings, handed to a ``run_job_task``'s child job run in process."""

    @property
    def output_path(self) -> str:
        """What a person opens after the attempt: the executed notebook, or for a
        ``run_job_task`` the child run's folder."""
        if self.run_job and self.runs_dir:
            return str(self.runs_dir / self.run_job / self.child_run_id)
        return str(self.output_notebook)

    @property
    def child_run_id(self) -> str:
        """Run id of a ``run_job_task``'s child run (one per attempt)."""
        suffix = f"-attempt{self.attempt}" if self.attempt > 1 else ""
        return f"{self.run_id}-{self.task_key}{suffix}"


@dataclass(frozen=True)
class AttemptOutcome:
    """SUCCESS, FAILED, TIMED_OUT or CANCELED, with a message naming the task."""

    state: TaskState
    error: str | None = None


Executor = Callable[[AttemptSpec, threading.Event], AttemptOutcome]


class _Process(Protocol):
    """What :func:`_wait` needs of a worker: a ``subprocess.Popen`` or a
    :class:`~lakehouse.jobs.forkserver.ForkedWorker`."""

    pid: int
    returncode: int | None

    def wait(self, timeout: float | None = None) -> int: ...


class PapermillExecutor:
    """Runs an attempt in a killable child process (see the module docstring).

    ``fork_server=False`` starts each worker as ``python -m lakehouse.jobs._worker``;
    ``child_jobs_in_process=False`` runs a ``run_job_task``'s child job in such a worker
    too. The fork server is started when the executor is made, so it imports papermill
    while the run is planned and its first tasks start.
    """

    def __init__(self, *, fork_server: bool = True, child_jobs_in_process: bool = True) -> None:
        self.fork_server = fork_server
        self.child_jobs_in_process = child_jobs_in_process
        if fork_server:
            forkserver.shared().start()

    def __call__(self, spec: AttemptSpec, cancel: threading.Event) -> AttemptOutcome:
        """Execute, wait with the task's deadline, and translate the child's report."""
        if spec.run_job and self.child_jobs_in_process:
            return self._run_child_job(spec, cancel)
        result = spec.output_notebook.with_name(f".{spec.task_key}.attempt{spec.attempt}.json")
        result.unlink(missing_ok=True)
        payload = _worker_spec(spec) | {"result": str(result)}
        with open(spec.log_file, "a", encoding="utf-8") as log:
            _write_header(spec, log)
            process = self._start(spec, payload, log)
        ended = _wait(process, spec.timeout_seconds, cancel)
        try:
            if ended == "timeout":
                return AttemptOutcome(TaskState.TIMED_OUT, _timeout_message(spec))
            if ended == "canceled":
                return AttemptOutcome(TaskState.CANCELED, f"task {spec.task_key!r} canceled")
            return outcome_from_report(spec, result, process.wait())
        finally:
            result.unlink(missing_ok=True)

    def _start(self, spec: AttemptSpec, payload: dict[str, Any], log: IO[str]) -> _Process:
        """Fork the worker from the fork server, or start it as a new process."""
        if self.fork_server and not spec.run_job:
            request = {"log": str(spec.log_file), "cwd": str(spec.cwd), "env": spec.env, "spec": payload}
            try:
                return forkserver.shared().spawn(request)
            except forkserver.ForkServerError as exc:
                log.write(f"fork server unavailable ({exc}); the worker starts as a new process\n")
                log.flush()
        return subprocess.Popen(
            [sys.executable, "-m", "lakehouse.jobs._worker", json.dumps(payload)],
            cwd=spec.cwd,
            env=spec.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _run_child_job(self, spec: AttemptSpec, cancel: threading.Event) -> AttemptOutcome:
        """Run a ``run_job_task``'s child job in a thread; on the deadline or a cancel,
        cancel it and wait for it to kill its kernels and record itself."""
        from rich.console import Console

        from lakehouse.jobs import _worker

        child_cancel = threading.Event()
        report: dict[str, Any] = {}
        log = open(spec.log_file, "a", encoding="utf-8")  # noqa: SIM115 (closed once the thread ends)
        _write_header(spec, log)

        def run_child() -> None:
            report.update(
                _worker.execute_job(
                    _worker_spec(spec),
                    cancel=child_cancel,
                    console=Console(file=log),
                    settings=spec.settings,
                    executor=self,
                )
            )

        thread = threading.Thread(target=run_child, name=f"job-{spec.child_run_id}", daemon=True)
        thread.start()
        ended = _wait_thread(thread, spec.timeout_seconds, cancel, child_cancel)
        if not thread.is_alive():
            log.close()
        if ended == "timeout":
            return AttemptOutcome(TaskState.TIMED_OUT, _timeout_message(spec))
        if ended == "canceled":
            return AttemptOutcome(TaskState.CANCELED, f"task {spec.task_key!r} canceled")
        if not report:
            return AttemptOutcome(
                TaskState.FAILED,
                f"task {spec.task_key!r}: job {spec.run_job!r} run {spec.child_run_id} ended "
                f"without a report. Log: {spec.log_file}",
            )
        return outcome_from_status(spec, report)


def _worker_spec(spec: AttemptSpec) -> dict[str, Any]:
    """What the worker (or an in-process child job) is told to run."""
    payload: dict[str, Any] = {
        "input": str(spec.input_notebook),
        "output": str(spec.output_notebook),
        "parameters": spec.parameters,
        "kernel": spec.kernel,
        "cwd": str(spec.cwd),
    }
    if spec.run_job:
        payload |= {
            "job": spec.run_job,
            "run_id": spec.child_run_id,
            "runs_dir": str(spec.runs_dir),
            "max_parallel": spec.max_parallel,
        }
    return payload


def _write_header(spec: AttemptSpec, log: IO[str]) -> None:
    log.write(f"=== {spec.task_key} attempt {spec.attempt} {dt.datetime.now(dt.UTC).isoformat()}\n")
    log.flush()


def _wait(process: _Process, timeout: int, cancel: threading.Event) -> str:
    """Wait for the child: ``"exited"``, or ``"timeout"``/``"canceled"`` after killing it."""
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        try:
            process.wait(timeout=_POLL_SECONDS)
            return "exited"
        except subprocess.TimeoutExpired:
            pass
        if cancel.is_set():
            kill_process_tree(process.pid)
            process.wait()
            return "canceled"
        if deadline is not None and time.monotonic() >= deadline:
            kill_process_tree(process.pid)
            process.wait()
            return "timeout"


def _wait_thread(
    thread: threading.Thread, timeout: int, cancel: threading.Event, child_cancel: threading.Event
) -> str:
    """Wait for a child job's thread: ``"exited"``, or ``"timeout"``/``"canceled"``
    after canceling the child job (it gets :data:`CHILD_JOB_GRACE_SECONDS` to end)."""
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        thread.join(_POLL_SECONDS)
        if not thread.is_alive():
            return "exited"
        if cancel.is_set():
            ended = "canceled"
        elif deadline is not None and time.monotonic() >= deadline:
            ended = "timeout"
        else:
            continue
        child_cancel.set()
        thread.join(CHILD_JOB_GRACE_SECONDS)
        return ended


def kill_process_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (the kernel runs in its own session,
    so a process-group kill would miss it). The root is stopped first so it cannot
    start new children while they are collected."""
    import psutil  # a dependency of ipykernel

    try:
        root = psutil.Process(pid)
        root.send_signal(signal.SIGSTOP)
        victims = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for process in victims:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(_dead(p) for p in victims):
        time.sleep(0.02)


def _dead(process: object) -> bool:
    """Gone, or a zombie (dead; its parent or init will reap it)."""
    import psutil

    assert isinstance(process, psutil.Process)
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def outcome_from_report(spec: AttemptSpec, result: Path, returncode: int) -> AttemptOutcome:
    """Translate the child's JSON report (or its absence) into an outcome."""
    try:
        report = json.loads(result.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return AttemptOutcome(
            TaskState.FAILED,
            f"task {spec.task_key!r}: the papermill process for {spec.notebook} exited with "
            f"code {returncode} without a report (killed? out of memory?). "
            f"Log: {spec.log_file}",
        )
    return outcome_from_status(spec, report)


def outcome_from_status(spec: AttemptSpec, report: Mapping[str, Any]) -> AttemptOutcome:
    """Translate a worker's report (see :mod:`lakehouse.jobs._worker`) into an outcome."""
    status = report["status"]
    if status == "ok":
        return AttemptOutcome(TaskState.SUCCESS)
    if status == "job_failed":
        return AttemptOutcome(
            TaskState.FAILED,
            f"task {spec.task_key!r}: job {spec.run_job!r} run {spec.child_run_id} ended "
            f"{report.get('state')}:\n{report.get('message')}",
        )
    if status == "cell_error":
        return AttemptOutcome(TaskState.FAILED, cell_error_message(spec, report))
    if status == "kernel_died":
        return AttemptOutcome(
            TaskState.FAILED,
            f"task {spec.task_key!r}: kernel died while running {spec.notebook} (the "
            "kernel process exited: os._exit, a crash, or out of memory). Partial output "
            f"notebook: {spec.output_notebook}; log: {spec.log_file}",
        )
    return AttemptOutcome(
        TaskState.FAILED,
        f"task {spec.task_key!r}: papermill could not run {spec.notebook}: "
        f"{report.get('type')}: {report.get('message')}. Log: {spec.log_file}",
    )


def cell_error_message(spec: AttemptSpec, report: Mapping[str, Any]) -> str:
    """Message for an exception raised by a cell (papermill's PapermillExecutionError)."""
    source = str(report.get("source") or "")
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    count = report.get("exec_count")
    label = f"cell {report.get('cell_index')}" + (f" (In [{count}])" if count else "")
    return (
        f"task {spec.task_key!r} failed: notebook {spec.notebook} raised in {label}: "
        f"{first}\n"
        f"  {report.get('ename')}: {report.get('evalue')}\n"
        f"  output notebook (with the traceback): {spec.output_notebook}"
    )


def child_job_fields(planned: PlannedTask, runs_root: Path, max_parallel: int) -> dict[str, Any]:
    """The ``AttemptSpec`` fields of a ``run_job_task`` (none for a notebook task)."""
    if planned.task.run_job_task is None:
        return {}
    return {
        "run_job": planned.task.run_job_task.job_name,
        "runs_dir": runs_root,
        "max_parallel": max_parallel,
    }


def _timeout_message(spec: AttemptSpec) -> str:
    return (
        f"task {spec.task_key!r} timed out after {spec.timeout_seconds}s running "
        f"{spec.notebook}; its kernel was killed. Partial output notebook: "
        f"{spec.output_notebook}. Raise timeout_seconds ({spec.where}) or speed it up"
    )


def kernel_env(project_root: Path, job: str, run_id: str, task_key: str, run_dir: str) -> dict[str, str]:
    """Environment of the papermill child and its kernel."""
    env = dict(os.environ)
    env.update(
        LAKEHOUSE_HOME=str(project_root),
        LAKEHOUSE_JOB=job,
        LAKEHOUSE_RUN_ID=run_id,
        LAKEHOUSE_TASK_KEY=task_key,
        LAKEHOUSE_RUN_DIR=run_dir,
        PYTHONUNBUFFERED="1",
    )
    return env
