"""``lakehouse jobs scheduler``: start the jobs of ``jobs.yaml`` whose ``schedule`` is due.

How it works:

* Every poll (and at each fire time) the scheduler re-reads ``jobs.yaml`` (an invalid
  file is reported and the previous version kept) and, for each job with an
  UNPAUSED ``schedule``, computes the fire times (croniter, in the schedule's time
  zone) since the time it last evaluated, kept in ``runs/<job>/.scheduler.json``.
* A due run is started as a child process ``lakehouse jobs run JOB --trigger
  schedule`` (output in ``runs/<job>/.scheduler-logs/<run_id>.log``), with
  ``run_date`` set to the fire time's date in the schedule's time zone when the job
  declares a ``run_date`` parameter.
* ``max_concurrent_runs``: when the job already has that many runs in progress (started
  by this scheduler or by hand), the fire is skipped and logged.
* Catch-up policy: fire times that passed while the scheduler was stopped are MISSED:
  logged, listed in ``.scheduler.json`` (``missed``), never run on their own; only the
  latest one runs. ``lakehouse jobs backfill`` runs missed dates on demand. On its very
  first start for a job the scheduler only looks forward (like cron).
* SIGTERM or SIGINT (Ctrl-C) stops the scheduler: it starts nothing more and CANCELS
  the runs it started (SIGTERM to each: kernels killed, runs recorded CANCELED;
  ``lakehouse jobs repair RUN_ID`` resumes them), waiting up to ``grace_seconds``
  before killing what is left, then exits.
* ``--once`` evaluates once, waits for the runs it started, and exits (1 if one
  failed): for cron users and tests.

Several schedulers on one project do not start a fire twice (the state file is updated
under a lock), but one is enough.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field
from rich.console import Console
from rich.text import Text

from lakehouse.jobs import cron
from lakehouse.jobs.executor import kill_process_tree
from lakehouse.jobs.loader import JobsError, load_jobs
from lakehouse.jobs.records import JobState, file_lock, list_runs, load_run, new_run_id
from lakehouse.jobs.schema import Job, JobsFile

STATE_FILE = ".scheduler.json"
LOG_FOLDER = ".scheduler-logs"
MISSED_KEPT = 100


class ScheduleState(BaseModel):
    """``runs/<job>/.scheduler.json``."""

    job: str
    evaluated_until: dt.datetime
    """Fire times up to here have been handled (run, skipped or reported missed)."""
    last_fire_time: dt.datetime | None = None
    """The latest fire time acted upon (run or skipped)."""
    last_run_id: str | None = None
    missed: list[dt.datetime] = Field(default_factory=list)
    """Fire times not run because the scheduler was stopped (the latest 100)."""


def state_path(runs_dir: Path, job: str) -> Path:
    """``runs/<job>/.scheduler.json``."""
    return runs_dir / job / STATE_FILE


def load_state(runs_dir: Path, job: str) -> ScheduleState | None:
    """The job's scheduler state, or ``None`` if never scheduled (or unreadable)."""
    try:
        return ScheduleState.model_validate_json(state_path(runs_dir, job).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def save_state(runs_dir: Path, state: ScheduleState) -> None:
    """Write the state atomically."""
    path = state_path(runs_dir, state.job)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    temporary.write_text(state.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


# --- launching runs -------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchRequest:
    """A run the scheduler wants started."""

    job: str
    run_id: str
    params: dict[str, str]
    fire_time: dt.datetime
    jobs_file: Path
    project_root: Path
    runs_dir: Path


class RunHandle(Protocol):
    """A started run."""

    job: str
    run_id: str

    def poll(self) -> int | None:
        """Exit code once finished, else ``None``."""
        ...

    def terminate(self) -> None:
        """Ask the run to cancel itself (kill its kernels, record CANCELED)."""
        ...

    def kill(self) -> None:
        """Kill the run and everything it started."""
        ...


Launcher = Callable[[LaunchRequest], RunHandle]


@dataclass
class ProcessRun:
    """A run in a child ``lakehouse jobs run`` process."""

    job: str
    run_id: str
    process: subprocess.Popen[bytes]
    log_file: Path

    def poll(self) -> int | None:
        return self.process.poll()

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        kill_process_tree(self.process.pid)
        self.process.wait()


def launch_process(request: LaunchRequest) -> ProcessRun:
    """Start ``lakehouse jobs run`` for ``request`` in its own session."""
    log_dir = request.runs_dir / request.job / LOG_FOLDER
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{request.run_id}.log"
    command = [
        sys.executable,
        "-m",
        "lakehouse.cli",
        "jobs",
        "run",
        request.job,
        "--file",
        str(request.jobs_file),
        "--run-id",
        request.run_id,
        "--trigger",
        "schedule",
        "--quiet",
    ]
    for name, value in request.params.items():
        command += ["--param", f"{name}={value}"]
    env = dict(os.environ, LAKEHOUSE_HOME=str(request.project_root), LAKEHOUSE_RUNS_DIR=str(request.runs_dir))
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=request.project_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ProcessRun(request.job, request.run_id, process, log_file)


# --- decisions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What the scheduler did for one job at one evaluation."""

    job: str
    action: str
    """``started``, ``skipped`` (max_concurrent_runs), ``paused``, ``first_start``,
    ``idle`` (nothing due) or ``error``."""
    message: str
    fire_time: dt.datetime | None = None
    missed: list[dt.datetime] = field(default_factory=list)
    run_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)


def missed_message(job: Job, due: cron.Due) -> str:
    """``missed 2 runs of daily: 2026-11-24 06:00, 2026-11-25 06:00 Europe/Paris;
    running the latest only (2026-11-26 06:00)``."""
    assert job.schedule is not None and due.run is not None
    count = len(due.missed)
    latest = due.run.astimezone(cron.timezone(job.schedule))
    return (
        f"missed {count} run{'s' if count != 1 else ''} of {job.name}: "
        f"{cron.format_fire_times(due.missed, job.schedule)}; running the latest only "
        f"({latest:%Y-%m-%d %H:%M})"
    )


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Scheduler:
    """Evaluates schedules and starts runs; see the module docstring."""

    def __init__(
        self,
        jobs_file: str | Path,
        *,
        project_root: str | Path,
        runs_dir: str | Path,
        launcher: Launcher = launch_process,
        clock: Callable[[], dt.datetime] = _utc_now,
        console: Console | None = None,
    ) -> None:
        self.jobs_file = Path(jobs_file).resolve()
        self.project_root = Path(project_root).resolve()
        self.runs_dir = Path(runs_dir).resolve()
        self.launcher = launcher
        self.clock = clock
        self.console = console or Console(stderr=True)
        self.jobs: JobsFile | None = None
        self.running: list[RunHandle] = []
        self.finished: list[tuple[RunHandle, int]] = []
        self._jobs_mtime: float | None = None

    # --- jobs file ------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read ``jobs.yaml`` if it changed; keep the previous jobs if it became
        invalid. Returns True when jobs are loaded."""
        try:
            mtime = self.jobs_file.stat().st_mtime
        except OSError as exc:
            self._log(f"cannot read {self.jobs_file}: {exc}", style="red")
            return self.jobs is not None
        if mtime == self._jobs_mtime:
            return self.jobs is not None
        self._jobs_mtime = mtime
        try:
            jobs = load_jobs(self.jobs_file, project_root=self.project_root)
        except JobsError as exc:
            keeping = "keeping the previous version" if self.jobs else "nothing scheduled"
            self._log(f"{exc}\n{keeping}; fix the file, it is re-read at each poll", style="red")
            return self.jobs is not None
        if self.jobs is not None:
            self._log(f"reloaded {self.jobs_file}")
        self.jobs = jobs
        return True

    def scheduled_jobs(self) -> list[Job]:
        """Jobs with a schedule (paused ones included)."""
        if self.jobs is None:
            return []
        return [job for job in self.jobs.jobs.values() if job.schedule is not None]

    # --- evaluation -----------------------------------------------------------------

    def evaluate(self, now: dt.datetime | None = None) -> list[Decision]:
        """Start what is due at ``now`` (default: the clock); one decision per scheduled job."""
        now = now or self.clock()
        self.reap()
        decisions = []
        for job in self.scheduled_jobs():
            try:
                decisions.append(self._evaluate_job(job, now))
            except Exception as exc:  # one bad job must not stop the others
                decisions.append(Decision(job.name, "error", f"{job.name}: {type(exc).__name__}: {exc}"))
        return decisions

    def _evaluate_job(self, job: Job, now: dt.datetime) -> Decision:
        schedule = job.schedule
        assert schedule is not None
        (self.runs_dir / job.name).mkdir(parents=True, exist_ok=True)
        with file_lock(self.runs_dir / job.name / ".scheduler.lock"):
            state = load_state(self.runs_dir, job.name)
            if state is None:
                save_state(self.runs_dir, ScheduleState(job=job.name, evaluated_until=now))
                return Decision(job.name, "first_start", f"{job.name}: {self._describe(job, now)}")
            due = cron.due(schedule, state.evaluated_until, now)
            state.evaluated_until = now
            if due.run is None:
                save_state(self.runs_dir, state)
                return Decision(job.name, "idle", f"{job.name}: nothing due")
            fire = due.run
            when = cron.format_fire_times([fire], schedule)
            if schedule.pause_status == "PAUSED":
                save_state(self.runs_dir, state)
                return Decision(job.name, "paused", f"{job.name} is paused: not running {when}", fire)
            message = missed_message(job, due) + "\n" if due.missed else ""
            state.missed = (state.missed + due.missed)[-MISSED_KEPT:]
            state.last_fire_time = fire
            busy = self._active_run_ids(job.name)
            if len(busy) >= job.max_concurrent_runs:
                save_state(self.runs_dir, state)
                return Decision(
                    job.name,
                    "skipped",
                    message + f"{job.name}: skipped the run of {when}: max_concurrent_runs="
                    f"{job.max_concurrent_runs} reached (in progress: {', '.join(busy)})",
                    fire,
                    due.missed,
                )
            run_id = new_run_id(now)
            params = self._params(job, fire)
            state.last_run_id = run_id
            save_state(self.runs_dir, state)
            handle = self.launcher(
                LaunchRequest(
                    job.name, run_id, params, fire, self.jobs_file, self.project_root, self.runs_dir
                )
            )
            self.running.append(handle)
            shown = " ".join(f"{k}={v}" for k, v in params.items())
            return Decision(
                job.name,
                "started",
                message + f"{job.name}: started run {run_id} for {when}" + (f" ({shown})" if shown else ""),
                fire,
                due.missed,
                run_id,
                params,
            )

    def _params(self, job: Job, fire: dt.datetime) -> dict[str, str]:
        """``run_date`` = the fire time's local date, when the job declares it."""
        if "run_date" not in job.parameter_defaults():
            return {}
        return {"run_date": fire.date().isoformat()}

    def _active_run_ids(self, job: str) -> list[str]:
        """Runs of ``job`` in progress: started here and still alive, or live records."""
        mine = [h.run_id for h in self.running if h.job == job]
        others = [
            r.run_id
            for r in list_runs(self.runs_dir, job=job)
            if r.state == JobState.RUNNING and not r.is_stale() and r.run_id not in mine
        ]
        return mine + others

    def _describe(self, job: Job, now: dt.datetime) -> str:
        schedule = job.schedule
        assert schedule is not None
        expression = cron.cron_expression(schedule)
        if schedule.pause_status == "PAUSED":
            return f"schedule {expression} ({schedule.timezone}) is PAUSED"
        upcoming = cron.next_fire_time(schedule, now)
        return f"schedule {expression} ({schedule.timezone}); next run {upcoming:%Y-%m-%d %H:%M %Z}"

    # --- runs ---------------------------------------------------------------------------

    def reap(self) -> list[tuple[RunHandle, int]]:
        """Runs that ended since the last call, with their exit codes (also logged)."""
        ended = []
        for handle in list(self.running):
            code = handle.poll()
            if code is None:
                continue
            self.running.remove(handle)
            ended.append((handle, code))
            self.finished.append((handle, code))
            self._log(f"{handle.job}: run {handle.run_id} ended: {self._outcome(handle, code)}")
        return ended

    def _outcome(self, handle: RunHandle, code: int) -> str:
        try:
            record = load_run(self.runs_dir / handle.job / handle.run_id)
        except (OSError, ValueError):
            log = self.runs_dir / handle.job / LOG_FOLDER / f"{handle.run_id}.log"
            return f"exit code {code}, no run record (see {log})"
        return f"{record.state.value} in {record.duration_seconds or 0:.1f}s ({record.run_dir})"

    def shutdown(self, grace_seconds: float = 30.0) -> None:
        """Cancel the runs started here: SIGTERM, wait up to ``grace_seconds``, kill."""
        if not self.running:
            return
        for handle in self.running:
            self._log(
                f"{handle.job}: canceling run {handle.run_id} (resume it later with "
                f"`lakehouse jobs repair {handle.run_id}`)"
            )
            handle.terminate()
        deadline = time.monotonic() + grace_seconds
        while self.running and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.1)
        for handle in list(self.running):
            self._log(
                f"{handle.job}: run {handle.run_id} did not stop in {grace_seconds:g}s; killing it",
                style="red",
            )
            handle.kill()
        self.reap()

    # --- the loop -------------------------------------------------------------------------

    def serve(
        self,
        stop: threading.Event,
        *,
        poll_seconds: float = 30.0,
        once: bool = False,
        grace_seconds: float = 30.0,
    ) -> int:
        """Evaluate until ``stop`` is set (or once); return 0, or 1 when ``once`` and a
        run it started did not succeed."""
        if not self.reload():
            return 2
        now = self.clock()
        scheduled = self.scheduled_jobs()
        if not scheduled:
            self._log(f"no job of {self.jobs_file} has a schedule")
        for job in scheduled:
            self._log(f"{job.name}: {self._describe(job, now)}")
        while not stop.is_set():
            self.reload()
            for decision in self.evaluate():
                if decision.action not in ("idle", "first_start"):
                    self._log(decision.message, style="red" if decision.action == "error" else "")
            if once:
                break
            stop.wait(self._sleep_seconds(poll_seconds))
        if once:
            while self.running and not stop.is_set():
                self.reap()
                stop.wait(0.2)
        if stop.is_set():
            self._log("stopping: canceling the runs in progress" if self.running else "stopping")
            self.shutdown(grace_seconds)
        self.reap()
        failed = [h for h, code in self.finished if code != 0]
        return 1 if once and failed else 0

    def _sleep_seconds(self, poll_seconds: float) -> float:
        """Until the next poll or the next fire time, whichever comes first."""
        now = self.clock()
        wait = poll_seconds
        for job in self.scheduled_jobs():
            assert job.schedule is not None
            try:
                upcoming = cron.next_fire_time(job.schedule, now)
            except cron.ScheduleError:
                continue
            wait = min(wait, (upcoming - now).total_seconds() + 0.05)
        return max(wait, 0.05)

    def _log(self, message: str, *, style: str = "") -> None:
        """One timestamped line per line of ``message`` (plain text, no markup),
        unwrapped for log files."""
        stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S%z")
        for line in message.splitlines():
            self.console.print(Text(f"{stamp} ", style="dim") + Text(line, style=style), soft_wrap=True)
