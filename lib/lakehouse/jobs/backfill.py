"""Backfill: one run of a job per date (its ``run_date`` parameter), oldest first.

Resumable: a date is skipped when the latest run of the job for that date (same
``run_date`` and the same values of every ``--param`` given) succeeded, so invoking the
same backfill again only runs what is missing or failed (as a new full run; use
``lakehouse jobs repair`` to re-run only a run's failed tasks). Dates run one after
another; the first failure stops the backfill unless ``continue_on_failure``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from rich.console import Console

from lakehouse.config import Settings
from lakehouse.jobs.executor import Executor
from lakehouse.jobs.loader import JobsError
from lakehouse.jobs.planning import plan_job, resolve_jobs
from lakehouse.jobs.records import JobRun, JobState, list_runs
from lakehouse.jobs.runner import resolve_runs_dir, run_job
from lakehouse.jobs.schema import JobsFile

RUN_DATE = "run_date"
MAX_DAYS = 3660


class DayStatus(str, Enum):
    """Outcome of one date of a backfill."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    ALREADY_DONE = "ALREADY_DONE"
    """The latest run for the date had succeeded: not run again."""
    NOT_RUN = "NOT_RUN"
    """Not started: an earlier date failed (or the backfill was interrupted)."""


@dataclass
class BackfillDay:
    """One date of a backfill."""

    run_date: dt.date
    status: DayStatus
    run_id: str | None = None
    run_dir: str | None = None
    duration_seconds: float | None = None
    message: str | None = None


@dataclass
class Backfill:
    """What a backfill did, date by date."""

    job: str
    days: list[BackfillDay] = field(default_factory=list)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """No date failed and every date is done."""
        return all(d.status in (DayStatus.SUCCESS, DayStatus.ALREADY_DONE) for d in self.days)

    def count(self, status: DayStatus) -> int:
        """Dates with ``status``."""
        return sum(1 for d in self.days if d.status == status)


def dates_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """``start`` to ``end`` inclusive; ``ValueError`` if reversed or over ten years."""
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise ValueError(f"{days} dates from {start} to {end}: at most {MAX_DAYS} per backfill")
    return [start + dt.timedelta(days=i) for i in range(days)]


def latest_run_for(
    runs_dir: Path, job: str, run_date: dt.date, params: Mapping[str, str] | None = None
) -> JobRun | None:
    """The newest run of ``job`` with this ``run_date`` and these parameter values."""
    wanted = {**(params or {}), RUN_DATE: run_date.isoformat()}
    for run in list_runs(runs_dir, job=job):  # newest first
        if all(run.params.get(name) == value for name, value in wanted.items()):
            return run
    return None


def backfill_job(
    jobs_file: JobsFile | str | Path,
    job_name: str,
    start: dt.date,
    end: dt.date,
    *,
    params: Mapping[str, str] | None = None,
    continue_on_failure: bool = False,
    project_root: str | Path | None = None,
    runs_dir: str | Path | None = None,
    max_parallel: int = 1,
    quiet: bool = False,
    console: Console | None = None,
    executor: Executor | None = None,
    settings: Settings | None = None,
    on_day: Callable[[BackfillDay], None] | None = None,
) -> Backfill:
    """Run ``job_name`` once per date from ``start`` to ``end`` (see the module
    docstring); ``on_day`` is called as each date ends. Raises :class:`JobsError` before
    any run for a bad job, parameters or dates. Ctrl-C cancels the current run (recorded
    CANCELED) and returns with ``interrupted`` set and the remaining dates NOT_RUN."""
    params = dict(params or {})
    jobs, root = resolve_jobs(jobs_file, project_root)
    dates = _check(jobs, job_name, start, end, params, root)
    runs_root = resolve_runs_dir(root, runs_dir)
    result = Backfill(job_name)
    stop_reason: str | None = None
    for day in dates:
        if stop_reason is not None:
            entry = BackfillDay(day, DayStatus.NOT_RUN, message=stop_reason)
        else:
            entry, interrupted = _run_day(
                jobs,
                job_name,
                day,
                params,
                root=root,
                runs_root=runs_root,
                max_parallel=max_parallel,
                quiet=quiet,
                console=console,
                executor=executor,
                settings=settings,
            )
            if interrupted:
                result.interrupted = True
                stop_reason = "not run: the backfill was interrupted"
            elif entry.status == DayStatus.FAILED and not continue_on_failure:
                stop_reason = f"not run: stopped after {day} failed (use --continue-on-failure to go on)"
        result.days.append(entry)
        if on_day:
            on_day(entry)
    return result


def _check(
    jobs: JobsFile, job_name: str, start: dt.date, end: dt.date, params: dict[str, str], root: Path
) -> list[dt.date]:
    """Dates to run; the job, its parameters and the first plan are checked first."""
    try:
        job = jobs.job(job_name)
    except KeyError as exc:
        raise JobsError(str(exc.args[0])) from None
    if RUN_DATE not in job.parameter_defaults():
        raise JobsError(
            f"job {job_name!r} has no {RUN_DATE} parameter; a backfill passes run_date=YYYY-MM-DD to "
            f"each run. Declare it under the job's parameters ({jobs.where(job)}): "
            f'- {{name: {RUN_DATE}, default: ""}}'
        )
    if RUN_DATE in params:
        raise JobsError(f"drop --param {RUN_DATE}: the backfill sets it from --from and --to")
    try:
        dates = dates_between(start, end)
    except ValueError as exc:
        raise JobsError(f"backfill of {job_name!r}: {exc}") from None
    plan_job(jobs, job_name, params={**params, RUN_DATE: start.isoformat()}, project_root=root)
    return dates


def _run_day(
    jobs: JobsFile,
    job_name: str,
    day: dt.date,
    params: dict[str, str],
    *,
    root: Path,
    runs_root: Path,
    max_parallel: int,
    quiet: bool,
    console: Console | None,
    executor: Executor | None,
    settings: Settings | None,
) -> tuple[BackfillDay, bool]:
    """Run one date unless already done; return its entry and whether Ctrl-C was pressed."""
    previous = latest_run_for(runs_root, job_name, day, params)
    if previous is not None and previous.ok:
        return BackfillDay(
            day,
            DayStatus.ALREADY_DONE,
            run_id=previous.run_id,
            run_dir=previous.run_dir,
            duration_seconds=previous.duration_seconds,
            message=f"run {previous.run_id} succeeded",
        ), False
    try:
        run = run_job(
            jobs,
            job_name,
            params={**params, RUN_DATE: day.isoformat()},
            project_root=root,
            runs_dir=runs_root,
            max_parallel=max_parallel,
            quiet=quiet,
            console=console,
            executor=executor,
            settings=settings,
            trigger="backfill",
        )
    except KeyboardInterrupt:
        latest = latest_run_for(runs_root, job_name, day, params)
        return BackfillDay(
            day,
            DayStatus.CANCELED,
            run_id=latest.run_id if latest else None,
            run_dir=latest.run_dir if latest else None,
            message="canceled (Ctrl-C)",
        ), True
    except JobsError as exc:  # e.g. max_concurrent_runs reached
        return BackfillDay(day, DayStatus.FAILED, message=str(exc)), False
    status = {JobState.SUCCESS: DayStatus.SUCCESS, JobState.CANCELED: DayStatus.CANCELED}.get(
        run.state, DayStatus.FAILED
    )
    return BackfillDay(
        day,
        status,
        run_id=run.run_id,
        run_dir=run.run_dir,
        duration_seconds=run.duration_seconds,
        message=_failure_line(run),
    ), False


def _failure_line(run: JobRun) -> str | None:
    """First line of each failed task's error, or of the run's error."""
    lines = [t.error.splitlines()[0] for t in run.failed_tasks if t.error]
    if lines:
        return "; ".join(lines)
    return run.error.splitlines()[0] if run.error else None
