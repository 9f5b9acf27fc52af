"""Run a job of ``jobs.yaml``: each task is a notebook executed by papermill in its own
kernel, in dependency order, into ``runs/<job>/<run_id>/<task_key>.ipynb``.

The run is planned first (:mod:`lakehouse.jobs.planning`), then its record claimed (the
run folder and ``run.json``, within ``max_concurrent_runs``); the tasks whose upstream
tasks are final start (up to ``max_parallel`` at once) under their ``run_if``, each
attempt executed by :mod:`lakehouse.jobs.executor`, retried as the task says.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from lakehouse.config import Settings
from lakehouse.jobs.executor import (
    AttemptOutcome,
    AttemptSpec,
    Executor,
    PapermillExecutor,
    child_job_fields,
    kernel_env,
)
from lakehouse.jobs.loader import JobsError
from lakehouse.jobs.planning import JobPlan, PlannedTask, plan_job
from lakehouse.jobs.progress import NullProgress, RichProgress, RunProgress, format_duration
from lakehouse.jobs.records import (
    Attempt,
    JobRun,
    JobState,
    TaskRun,
    TaskState,
    file_lock,
    list_runs,
    write_run,
)
from lakehouse.jobs.schema import Job, JobsFile, RunIf, Task
from lakehouse.jobs.services import RunServices


class ConcurrentRunError(JobsError):
    """The job already has ``max_concurrent_runs`` runs in progress."""


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
    cancel: threading.Event | None = None,
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
    ``trigger`` is recorded (``manual``, ``schedule``, ``backfill``, ``run_job_task``).
    Setting ``cancel`` from another thread cancels the run as Ctrl-C does (kernels
    killed, run CANCELED), without raising: how a ``run_job_task`` stops its child job.
    """
    if max_parallel < 1:
        raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
    plan = plan_job(jobs_file, job_name, params=params, project_root=project_root, run_id=run_id)
    runs_root = resolve_runs_dir(plan.project_root, runs_dir)
    run = new_record(plan, runs_root / job_name / plan.run_id, max_parallel)
    run.trigger = trigger
    claim_run(run, plan.job, runs_root)
    services = RunServices(plan.job, settings=settings, record_history=record_history, notify=notify)
    return execute(
        plan, run, executor=executor, quiet=quiet, console=console, services=services, cancel=cancel
    )


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
    cancel: threading.Event | None = None,
) -> JobRun:
    """Run the tasks of ``run`` (a claimed record) that are not final yet; tasks already
    final (a repair's kept tasks) are left as they are. Setting ``cancel`` cancels the
    run (see :func:`run_job`)."""
    progress: RunProgress = NullProgress() if quiet else RichProgress(console=console)
    scheduler = _Scheduler(
        plan,
        run,
        executor or PapermillExecutor(),
        progress,
        run.max_parallel,
        services or RunServices(plan.job, record_history=False, notify=False),
        cancel=cancel or threading.Event(),
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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
            settings=self.services.settings,
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
