"""Run a job of ``jobs.yaml``: each task is a notebook executed by papermill in its own
kernel, in dependency order, into ``runs/<job>/<run_id>/<task_key>.ipynb``.

Timeouts: each attempt runs in a child process (``python -m lakehouse.jobs._worker``) in
its own session; papermill starts the kernel from there. The runner waits on that
process with a wall-clock deadline; when it passes (or the run is interrupted) the child
is stopped and it and all its descendants (the kernel and anything the kernel started)
are killed with SIGKILL. The child reports the outcome as JSON (cell error, dead kernel);
a child that vanishes without a report is a failure that points at the task's log.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from lakehouse.config import Settings
from lakehouse.jobs import templates
from lakehouse.jobs.graph import topological_order
from lakehouse.jobs.loader import JobsError, load_jobs
from lakehouse.jobs.progress import NullProgress, RichProgress, RunProgress, format_duration
from lakehouse.jobs.records import (
    Attempt,
    JobRun,
    JobState,
    TaskRun,
    TaskState,
    list_runs,
    new_run_id,
    write_run,
)
from lakehouse.jobs.schema import Job, JobsFile, RunIf, Task
from lakehouse.jobs.services import RunServices

_POLL_SECONDS = 0.1


class JobParameterError(JobsError):
    """A run's parameters do not match the job's declared parameters."""


class ConcurrentRunError(JobsError):
    """The job already has ``max_concurrent_runs`` runs in progress."""


# --- plan -----------------------------------------------------------------------------


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
            input_notebook=_input_path(by_key[key], root, jobs.source),
            where=jobs.where(by_key[key]),
        )
        for key in order
    ]
    return JobPlan(job, run_id, start_time, resolved, planned, root, jobs.source)


def _input_path(task: Task, root: Path, jobs_source: Path | None) -> Path:
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


# --- run_if ---------------------------------------------------------------------------


def should_run(run_if: RunIf, upstream: list[TaskState]) -> bool:
    """Whether a task runs given the final states of the tasks it depends on.

    FAILED, TIMED_OUT and UPSTREAM_FAILED count as failed; SKIPPED as neither
    succeeded nor failed.
    """
    succeeded = sum(1 for state in upstream if state == TaskState.SUCCESS)
    failed = sum(1 for state in upstream if state.failed)
    rules = {
        RunIf.ALL_SUCCESS: succeeded == len(upstream),
        RunIf.ALL_DONE: True,
        RunIf.AT_LEAST_ONE_SUCCESS: succeeded >= 1,
        RunIf.NONE_FAILED: failed == 0 and succeeded >= 1,
        RunIf.ALL_FAILED: failed == len(upstream),
        RunIf.AT_LEAST_ONE_FAILED: failed >= 1,
    }
    return rules[RunIf(run_if)]


def not_run_state(upstream: list[TaskState]) -> TaskState:
    """State of a task whose ``run_if`` is not met: UPSTREAM_FAILED if an upstream
    task failed, CANCELED if one was canceled, else SKIPPED."""
    if any(state.failed for state in upstream):
        return TaskState.UPSTREAM_FAILED
    if TaskState.CANCELED in upstream:
        return TaskState.CANCELED
    return TaskState.SKIPPED


# --- one attempt ----------------------------------------------------------------------


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


class PapermillExecutor:
    """Runs an attempt in a killable child process (see the module docstring)."""

    def __call__(self, spec: AttemptSpec, cancel: threading.Event) -> AttemptOutcome:
        """Execute, wait with the task's deadline, and translate the child's report."""
        result = spec.output_notebook.with_name(f".{spec.task_key}.attempt{spec.attempt}.json")
        result.unlink(missing_ok=True)
        payload = {
            "input": str(spec.input_notebook),
            "output": str(spec.output_notebook),
            "parameters": spec.parameters,
            "kernel": spec.kernel,
            "cwd": str(spec.cwd),
            "result": str(result),
        }
        if spec.run_job:
            payload |= {
                "job": spec.run_job,
                "run_id": spec.child_run_id,
                "runs_dir": str(spec.runs_dir),
                "max_parallel": spec.max_parallel,
            }
        with open(spec.log_file, "a", encoding="utf-8") as log:
            log.write(f"=== {spec.task_key} attempt {spec.attempt} {_now().isoformat()}\n")
            log.flush()
            process = subprocess.Popen(
                [sys.executable, "-m", "lakehouse.jobs._worker", json.dumps(payload)],
                cwd=spec.cwd,
                env=spec.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ended = _wait(process, spec.timeout_seconds, cancel)
        try:
            if ended == "timeout":
                return AttemptOutcome(TaskState.TIMED_OUT, _timeout_message(spec))
            if ended == "canceled":
                return AttemptOutcome(TaskState.CANCELED, f"task {spec.task_key!r} canceled")
            return _outcome(spec, result, process.returncode)
        finally:
            result.unlink(missing_ok=True)


def _wait(process: subprocess.Popen[bytes], timeout: int, cancel: threading.Event) -> str:
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


def _outcome(spec: AttemptSpec, result: Path, returncode: int) -> AttemptOutcome:
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


# --- the run --------------------------------------------------------------------------


def run_job(
    jobs_file: JobsFile | str | Path,
    job_name: str,
    *,
    params: Mapping[str, str] | None = None,
    project_root: str | Path | None = None,
    runs_dir: str | Path | None = None,
    run_id: str | None = None,
    max_parallel: int = 1,
    quiet: bool = False,
    console: Console | None = None,
    executor: Executor | None = None,
    settings: Settings | None = None,
    record_history: bool = True,
    notify: bool = True,
    trigger: str = "manual",
) -> JobRun:
    """Run a job and return its record (also in ``runs/<job>/<run_id>/run.json``).

    ``params`` override job parameter defaults. ``project_root`` defaults to the jobs
    file's folder and ``runs_dir`` to ``<project_root>/runs``. Up to ``max_parallel``
    independent tasks run at once. A failed run is returned with state FAILED and an
    ``error`` naming each failed task; call ``.raise_for_state()`` to raise instead.
    Raises :class:`JobsError` subclasses before any task starts for a bad file, job or
    parameters, or when ``max_concurrent_runs`` is reached. Ctrl-C kills running
    kernels, records CANCELED and re-raises ``KeyboardInterrupt``.

    At the end the run is appended to the Delta table ``<lake_root>/_system/job_runs``
    (``record_history``; see :mod:`lakehouse.jobs.history`) and the job's notifications
    are sent (``notify``); neither can change the run's state: their failures are
    logged and kept in the record's ``warnings`` and ``notifications``. ``settings``
    (SMTP server, lake root) are loaded from ``conf/`` when needed and not given.
    ``trigger`` is recorded (``manual``, ``schedule``, ``backfill``).
    """
    if max_parallel < 1:
        raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
    plan = plan_job(jobs_file, job_name, params=params, project_root=project_root, run_id=run_id)
    runs_root = resolve_runs_dir(plan.project_root, runs_dir)
    run = new_record(plan, runs_root / job_name / plan.run_id, max_parallel)
    run.trigger = trigger
    claim_run(run, plan.job, runs_root)
    services = RunServices(plan.job, settings=settings, record_history=record_history, notify=notify)
    return execute(plan, run, executor=executor, quiet=quiet, console=console, services=services)


def resolve_runs_dir(project_root: Path, runs_dir: str | Path | None) -> Path:
    """``runs_dir`` made absolute; by default ``<project_root>/runs``."""
    return Path(runs_dir).resolve() if runs_dir else project_root / "runs"


def execute(
    plan: JobPlan,
    run: JobRun,
    *,
    executor: Executor | None = None,
    quiet: bool = False,
    console: Console | None = None,
    services: RunServices | None = None,
) -> JobRun:
    """Run the tasks of ``run`` (a claimed record) that are not final yet; tasks already
    final (a repair's kept tasks) are left as they are."""
    progress: RunProgress = NullProgress() if quiet else RichProgress(console=console)
    scheduler = _Scheduler(
        plan,
        run,
        executor or PapermillExecutor(),
        progress,
        run.max_parallel,
        services or RunServices(plan.job, record_history=False, notify=False),
    )
    return scheduler.run()


def new_record(plan: JobPlan, run_dir: Path, max_parallel: int) -> JobRun:
    """The initial record: every task PENDING with its rendered parameters."""
    tasks = {
        p.task.task_key: TaskRun(
            task_key=p.task.task_key,
            notebook=p.task.target,
            input_notebook=str(p.input_notebook),
            parameters=p.parameters,
            depends_on=p.task.upstream,
            run_if=p.task.run_if.value,
        )
        for p in plan.tasks
    }
    return JobRun(
        job=plan.job.name,
        run_id=plan.run_id,
        run_dir=str(run_dir),
        jobs_file=str(plan.jobs_file) if plan.jobs_file else None,
        project_root=str(plan.project_root),
        params=plan.params,
        start_time=plan.start_time,
        max_parallel=max_parallel,
        tasks=tasks,
    )


def claim_run(run: JobRun, job: Job, runs_root: Path) -> None:
    """Create the run folder and write the first record, unless the job already has
    ``max_concurrent_runs`` live runs on this machine (checked under a file lock)."""
    job_dir = runs_root / run.job
    job_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(job_dir / ".lock"):
        active = [
            r
            for r in list_runs(runs_root, job=run.job)
            if r.state == JobState.RUNNING and r.host == run.host and not r.is_stale()
        ]
        if len(active) >= job.max_concurrent_runs:
            others = ", ".join(f"{r.run_id} (pid {r.pid})" for r in active)
            raise ConcurrentRunError(
                f"job {run.job!r} allows max_concurrent_runs={job.max_concurrent_runs} and "
                f"these runs are in progress: {others}. Wait for them to finish or raise "
                "max_concurrent_runs in jobs.yaml"
            )
        try:
            Path(run.run_dir).mkdir()
        except FileExistsError:
            raise JobsError(f"run folder {run.run_dir} already exists; choose another --run-id") from None
        write_run(run)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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


@dataclass
class _Scheduler:
    """Starts ready tasks (up to ``max_parallel``), applies ``run_if`` and keeps the
    record and the progress display current."""

    plan: JobPlan
    record: JobRun
    executor: Executor
    progress: RunProgress
    max_parallel: int
    services: RunServices
    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def run(self) -> JobRun:
        """Run every task; return the final record. Re-raises ``KeyboardInterrupt``
        after recording the run as CANCELED."""
        started = time.monotonic()
        self.progress.start(self.record)
        self.services.started(self.record, self.lock)
        crash: BaseException | None = None
        interrupted = False
        try:
            interrupted = self._loop()
        except BaseException as exc:  # a runner bug: record it, then let it propagate
            crash = exc
            self.cancel.set()
            raise
        finally:
            self._finish(time.monotonic() - started, crash)
            self.progress.stop(self.record)
            self.services.finished(self.record, self.lock)
        if interrupted:
            raise KeyboardInterrupt
        return self.record

    def _loop(self) -> bool:
        """Schedule until every task is final; return True if Ctrl-C was pressed."""
        pending = [
            p.task.task_key for p in self.plan.tasks if not self.record.tasks[p.task.task_key].state.done
        ]
        planned = {p.task.task_key: p for p in self.plan.tasks}
        running: dict[Future[None], str] = {}
        interrupted = False
        with ThreadPoolExecutor(self.max_parallel, thread_name_prefix="task") as pool:
            while pending or running:
                try:
                    for key in list(pending):
                        decision = self._decide(planned[key].task)
                        if decision is None:
                            continue
                        if decision == TaskState.RUNNING:
                            if len(running) >= self.max_parallel:
                                continue
                            self._mark_running(key)
                            running[pool.submit(self._run_task, planned[key])] = key
                        else:
                            self._skip(key, decision)
                        pending.remove(key)
                    if pending and not running:
                        raise RuntimeError(f"tasks {pending} can never start (dependency cycle?)")
                    if running:
                        done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                        for future in done:
                            running.pop(future)
                            future.result()
                except KeyboardInterrupt:  # task threads see the flag and kill kernels
                    interrupted = True
                    self.cancel.set()
        return interrupted

    def _decide(self, task: Task) -> TaskState | None:
        """RUNNING if the task should start now, a final state if it never will, None
        while upstream tasks are unfinished."""
        states = [self.record.tasks[key].state for key in task.upstream]
        if not all(state.done for state in states):
            return None
        if self.cancel.is_set():
            return TaskState.CANCELED
        if should_run(task.run_if, states):
            return TaskState.RUNNING
        return not_run_state(states)

    def _skip(self, key: str, state: TaskState) -> None:
        """Record a task that will not run, with the reason."""
        task_run = self.record.tasks[key]
        upstream = ", ".join(f"{k} {self.record.tasks[k].state.value}" for k in task_run.depends_on)
        with self.lock:
            task_run.state = state
            task_run.error = f"not run: run_if {task_run.run_if} not met (upstream: {upstream})"
            if state == TaskState.CANCELED:
                task_run.error = "not run: the job run was canceled"
            self._changed(key, state.value)

    def _mark_running(self, key: str) -> None:
        with self.lock:
            task_run = self.record.tasks[key]
            task_run.state = TaskState.RUNNING
            task_run.start_time = _now()
            self._changed(key, "started")

    def _run_task(self, planned: PlannedTask) -> None:
        """Attempts of one task (retries included), in a pool thread."""
        try:
            self._run_attempts(planned)
        except Exception as exc:  # a runner bug must fail the task, not hang the run
            with self.lock:
                task_run = self.record.tasks[planned.task.task_key]
                task_run.state = TaskState.FAILED
                task_run.error = f"task {task_run.task_key!r}: runner error: {exc!r}"
                task_run.end_time = _now()
                self._changed(task_run.task_key, "FAILED (runner error)")

    def _run_attempts(self, planned: PlannedTask) -> None:
        task, key = planned.task, planned.task.task_key
        task_run = self.record.tasks[key]
        started = time.monotonic()
        outcome = AttemptOutcome(TaskState.CANCELED, "not run: the job run was canceled")
        for number in range(1, task.max_retries + 2):
            if self.cancel.is_set():
                break
            outcome = self._attempt(planned, number)
            retryable = outcome.state == TaskState.FAILED or (
                outcome.state == TaskState.TIMED_OUT and task.retry_on_timeout
            )
            if not retryable or number > task.max_retries or self.cancel.is_set():
                break
            self._keep_failed_notebook(key, number)
            with self.lock:
                wait_text = f" in {task.retry_interval_seconds:g}s" if task.retry_interval_seconds else ""
                self._changed(key, f"attempt {number} {outcome.state.value}, retrying{wait_text}")
            if self.cancel.wait(task.retry_interval_seconds):
                outcome = AttemptOutcome(TaskState.CANCELED, "canceled while waiting to retry")
                break
        with self.lock:
            task_run.state = outcome.state
            task_run.error = outcome.error
            task_run.end_time = _now()
            task_run.duration_seconds = round(time.monotonic() - started, 3)
            self._changed(key, f"{outcome.state.value} in {format_duration(task_run.duration_seconds)}")

    def _attempt(self, planned: PlannedTask, number: int) -> AttemptOutcome:
        """Execute one attempt and record it."""
        key = planned.task.task_key
        run_dir = Path(self.record.run_dir)
        spec = AttemptSpec(
            job=self.record.job,
            run_id=self.record.run_id,
            task_key=key,
            attempt=number,
            notebook=planned.task.target,
            input_notebook=planned.input_notebook,
            output_notebook=run_dir / f"{key}.ipynb",
            log_file=run_dir / f"{key}.log",
            parameters=planned.parameters,
            cwd=planned.input_notebook.parent,
            env=self._kernel_env(key),
            timeout_seconds=planned.task.timeout_seconds,
            kernel=planned.task.kernel,
            where=planned.where,
            **child_job_fields(planned, run_dir.parent.parent, self.record.max_parallel),
        )
        attempt = Attempt(
            number=number,
            state=TaskState.RUNNING,
            start_time=_now(),
            output_notebook=spec.output_path,
        )
        task_run = self.record.tasks[key]
        with self.lock:
            task_run.attempts = number
            task_run.output_notebook = spec.output_path
            task_run.log_file = str(spec.log_file)
            task_run.attempt_history.append(attempt)
            if number > 1:
                self._changed(key, f"attempt {number} started")
            else:
                write_run(self.record)
        began = time.monotonic()
        try:
            outcome = self.executor(spec, self.cancel)
        except Exception as exc:  # a bug in an executor must not hang the run
            outcome = AttemptOutcome(TaskState.FAILED, f"task {key!r}: runner error: {exc!r}")
        with self.lock:
            attempt.state = outcome.state
            attempt.error = outcome.error
            attempt.end_time = _now()
            attempt.duration_seconds = round(time.monotonic() - began, 3)
            write_run(self.record)
        return outcome

    def _keep_failed_notebook(self, key: str, number: int) -> None:
        """Move a failed attempt's notebook aside so the retry writes a fresh one."""
        run_dir = Path(self.record.run_dir)
        output = run_dir / f"{key}.ipynb"
        kept = run_dir / f"{key}.attempt{number}.ipynb"
        if output.exists():
            os.replace(output, kept)
        with self.lock:
            self.record.tasks[key].attempt_history[-1].output_notebook = str(kept)

    def _kernel_env(self, key: str) -> dict[str, str]:
        return kernel_env(
            self.plan.project_root, self.record.job, self.record.run_id, key, self.record.run_dir
        )

    def _changed(self, key: str, event: str) -> None:
        """Persist the record and report the event (caller holds the lock)."""
        write_run(self.record)
        self.progress.task_changed(self.record, key, event)

    def _finish(self, elapsed: float, crash: BaseException | None) -> None:
        """Final job state, failure summary and record."""
        with self.lock:
            for task_run in self.record.tasks.values():
                if not task_run.state.done:
                    task_run.state = TaskState.CANCELED
                    task_run.error = task_run.error or "not run: the job run was canceled"
            self.record.end_time = _now()
            self.record.duration_seconds = round(elapsed, 3)
            failed = self.record.failed_tasks
            if crash is not None and not isinstance(crash, KeyboardInterrupt):
                self.record.state = JobState.FAILED
                self.record.error = (
                    f"job {self.record.job!r} run {self.record.run_id}: runner error: {crash!r}"
                )
            elif self.cancel.is_set():
                self.record.state = JobState.CANCELED
                self.record.error = f"job {self.record.job!r} run {self.record.run_id} was canceled"
            elif failed:
                self.record.state = JobState.FAILED
                self.record.error = failure_summary(self.record)
            else:
                self.record.state = JobState.SUCCESS
            write_run(self.record)


def failure_summary(run: JobRun) -> str:
    """``job 'x' run R failed: ...`` followed by each failed task's message."""
    failed = run.failed_tasks
    names = ", ".join(f"{t.task_key} ({t.state.value})" for t in failed)
    downstream = [t.task_key for t in run.tasks.values() if t.state == TaskState.UPSTREAM_FAILED]
    lines = [f"job {run.job!r} run {run.run_id} failed: {names}"]
    if downstream:
        lines[0] += f"; not run because of it: {', '.join(downstream)}"
    lines += [t.error for t in failed if t.error]
    lines.append(f"run folder: {run.run_dir}")
    return "\n".join(lines)
