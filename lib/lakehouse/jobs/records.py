"""Run records: ``runs/<job>/<run_id>/run.json``, rewritten after every task change so a
crash leaves a partial record."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, Field

RUN_RECORD = "run.json"


class TaskState(str, Enum):
    """State of a task in a run. Terminal: all but PENDING and RUNNING."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    SKIPPED = "SKIPPED"
    CANCELED = "CANCELED"

    @property
    def done(self) -> bool:
        """True once the task will not change any more."""
        return self not in (TaskState.PENDING, TaskState.RUNNING)

    @property
    def failed(self) -> bool:
        """Outcomes that count as failures for ``run_if`` (UPSTREAM_FAILED included)."""
        return self in (TaskState.FAILED, TaskState.TIMED_OUT, TaskState.UPSTREAM_FAILED)


class JobState(str, Enum):
    """State of a job run."""

    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class Attempt(BaseModel):
    """One execution of a task's notebook."""

    number: int
    state: TaskState
    start_time: dt.datetime
    end_time: dt.datetime | None = None
    duration_seconds: float | None = None
    output_notebook: str | None = None
    error: str | None = None


class TaskRun(BaseModel):
    """A task's part of a run record."""

    task_key: str
    state: TaskState = TaskState.PENDING
    attempts: int = 0
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    duration_seconds: float | None = None
    notebook: str
    """The notebook as written in jobs.yaml."""
    input_notebook: str
    """Absolute path of the notebook executed."""
    output_notebook: str | None = None
    """Executed notebook of the last attempt (``runs/<job>/<run_id>/<task_key>.ipynb``);
    for a ``run_job_task``, the child run's folder."""
    log_file: str | None = None
    """Papermill and kernel log of the attempts, cell outputs included."""
    parameters: dict[str, str | bool | int | float | None] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    run_if: str = "ALL_SUCCESS"
    error: str | None = None
    attempt_history: list[Attempt] = Field(default_factory=list)
    reused_from: str | None = None
    """In a repair run: the run whose successful result this task kept (not re-run)."""


class NotificationRecord(BaseModel):
    """One notification sent (or not) for a run."""

    event: str
    """``on_start``, ``on_success``, ``on_failure`` or ``on_duration_warning_threshold_exceeded``."""
    channel: str
    """``email`` or ``webhook``."""
    target: str
    """Recipients, or the webhook URL without its query string and credentials."""
    time: dt.datetime
    ok: bool
    error: str | None = None


class JobRun(BaseModel):
    """A job run: what ``run_job`` returns and ``run.json`` holds."""

    job: str
    run_id: str
    run_dir: str
    jobs_file: str | None = None
    project_root: str
    params: dict[str, str] = Field(default_factory=dict)
    state: JobState = JobState.RUNNING
    start_time: dt.datetime
    end_time: dt.datetime | None = None
    duration_seconds: float | None = None
    max_parallel: int = 1
    host: str = Field(default_factory=socket.gethostname)
    pid: int = Field(default_factory=os.getpid)
    error: str | None = None
    """Failure summary naming each failed task (``None`` on success)."""
    tasks: dict[str, TaskRun] = Field(default_factory=dict)
    """Tasks in execution (topological) order."""
    trigger: str = "manual"
    """What started the run: ``manual``, ``schedule``, ``backfill`` or ``repair``."""
    repair_of: str | None = None
    """For a repair run: the run it repairs (its failed tasks and their dependants are
    re-run here; the others are copied with ``reused_from``)."""
    repaired_by: list[str] = Field(default_factory=list)
    """Repair runs started from this run, oldest first."""
    notifications: list[NotificationRecord] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    """Problems that did not change the run's state: run history not written to the
    lake, a notification not sent..."""

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.state == JobState.SUCCESS

    @property
    def failed_tasks(self) -> list[TaskRun]:
        """Tasks that FAILED or TIMED_OUT (not those merely UPSTREAM_FAILED)."""
        return [t for t in self.tasks.values() if t.state in (TaskState.FAILED, TaskState.TIMED_OUT)]

    @property
    def record_path(self) -> Path:
        """Path of ``run.json``."""
        return Path(self.run_dir) / RUN_RECORD

    def is_stale(self) -> bool:
        """A RUNNING record whose process is gone (killed runner, crashed machine)."""
        if self.state != JobState.RUNNING or self.host != socket.gethostname():
            return False
        return not _pid_alive(self.pid)

    def raise_for_state(self) -> JobRun:
        """Raise :class:`JobFailedError` unless the run succeeded; return ``self``."""
        if not self.ok:
            raise JobFailedError(self)
        return self


class JobFailedError(Exception):
    """A job run did not succeed; ``run`` is its record."""

    def __init__(self, run: JobRun) -> None:
        self.run = run
        super().__init__(run.error or f"job {run.job!r} run {run.run_id} ended {run.state.value}")


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable run id: ``20261126T083012Z-1a2b`` (UTC start, 4 random hex digits)."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def write_run(run: JobRun) -> None:
    """Write ``run.json`` atomically (a reader never sees half a file)."""
    path = run.record_path
    temporary = path.with_name(f".{RUN_RECORD}.{os.getpid()}.tmp")
    temporary.write_text(run.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def load_run(path: str | Path) -> JobRun:
    """Read a ``run.json`` (or the run folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / RUN_RECORD
    return JobRun.model_validate(json.loads(path.read_text(encoding="utf-8")))


def executed_notebooks(run: JobRun) -> list[Path]:
    """The executed notebooks of a run, those of its child runs (``run_job_task``)
    included, in task order."""
    found: list[Path] = []
    for task in run.tasks.values():
        if not task.output_notebook:
            continue
        output = Path(task.output_notebook)
        if output.suffix == ".ipynb":
            found += [output] if output.is_file() else []
        elif (output / "run.json").is_file():
            found += executed_notebooks(load_run(output))
    return found


def list_runs(runs_dir: str | Path, *, job: str | None = None) -> list[JobRun]:
    """Run records under ``runs_dir`` (of ``job`` only if given), newest first.
    Unreadable records are skipped."""
    runs_dir = Path(runs_dir)
    pattern = f"{job}/*/{RUN_RECORD}" if job else f"*/*/{RUN_RECORD}"
    runs: list[JobRun] = []
    for path in runs_dir.glob(pattern):
        try:
            runs.append(load_run(path))
        except (OSError, ValueError):
            continue
    return sorted(runs, key=lambda r: (r.start_time, r.run_id), reverse=True)


def find_run(runs_dir: str | Path, run_id: str, *, job: str | None = None) -> JobRun:
    """The record of ``run_id`` under ``runs_dir`` (any job unless ``job``); raises
    ``LookupError`` saying where it looked."""
    runs_dir = Path(runs_dir)
    pattern = f"{job or '*'}/{run_id}/{RUN_RECORD}"
    matches = sorted(runs_dir.glob(pattern))
    if not matches:
        raise LookupError(
            f"no run {run_id!r} in {runs_dir} (looked for {pattern}); list runs with `lakehouse jobs status`"
        )
    if len(matches) > 1:
        jobs = ", ".join(m.parent.parent.name for m in matches)
        raise LookupError(f"run id {run_id!r} exists for several jobs ({jobs}); name the job")
    return load_run(matches[0])


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a job's ``.lock``) between processes."""
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
