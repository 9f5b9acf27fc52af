"""``lakehouse jobs run | repair | backfill``: the commands that run a job here, with
live progress, the services the application registered kept up, and Ctrl-C or SIGTERM
canceling the run."""

from __future__ import annotations

import datetime as dt
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lakehouse.config import Settings
from lakehouse.jobs import hooks
from lakehouse.jobs.cli_shared import (
    fail,
    file_option,
    load_or_exit,
    max_parallel_option,
    params_option,
    settings_or_exit,
    stdout_console,
)
from lakehouse.jobs.loader import JobsError
from lakehouse.jobs.planning import plan_job
from lakehouse.jobs.progress import STATE_STYLES, format_duration, task_table
from lakehouse.jobs.records import JobRun, JobState
from lakehouse.jobs.runner import run_job


@click.command("run")
@click.argument("job")
@params_option
@click.option("--run-id", default=None, help="Run id (default: UTC start time + 4 hex digits).")
@click.option(
    "--max-parallel",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Independent tasks run at the same time (each has its own kernel).",
)
@click.option("--quiet", "-q", is_flag=True, help="No live progress, only the summary.")
@click.option(
    "--trigger",
    type=click.Choice(["manual", "schedule"]),
    default="manual",
    hidden=True,
    help="Recorded in run.json (the scheduler passes 'schedule').",
)
@file_option
def run_command(
    job: str,
    params: dict[str, str],
    run_id: str | None,
    max_parallel: int,
    quiet: bool,
    trigger: str,
    file: Path | None,
) -> None:
    """Run JOB: its tasks in dependency order, each notebook in its own kernel.

    Prints the run folder and a table of tasks; exits 1 if a task failed or timed
    out, with the failure (task, notebook, cell, error) on stderr. The run is also
    appended to the Delta table <lake_root>/_system/job_runs, and the job's
    notifications are sent. Ctrl-C or SIGTERM cancels the run (kernels killed, run
    recorded CANCELED; resume it with `lakehouse jobs repair RUN_ID`).

    \b
    Examples:
      lakehouse jobs run daily
      lakehouse jobs run daily -p run_date=2026-11-26 --max-parallel 2
    """
    settings = settings_or_exit()
    jobs = load_or_exit(file, settings.project_root)
    try:
        plan = plan_job(jobs, job, params=params, project_root=settings.project_root, run_id=run_id)
    except JobsError as exc:
        fail(f"error: {exc}")
    _start_services(settings, quiet=quiet)
    with _cancel_on_sigterm():
        try:
            run = run_job(
                jobs,
                job,
                params=params,
                project_root=settings.project_root,
                runs_dir=settings.runs_dir,
                run_id=plan.run_id,
                max_parallel=max_parallel,
                quiet=quiet,
                console=Console(stderr=True),
                settings=settings,
                trigger=trigger,
            )
        except JobsError as exc:
            fail(f"error: {exc}")
        except KeyboardInterrupt:
            fail(
                f"canceled: running kernels were killed; resume with `lakehouse jobs repair {plan.run_id}`",
                code=130,
            )
    print_summary(run)
    if not run.ok:
        fail(run.error or f"job {job} {run.state.value}")


@contextmanager
def _cancel_on_sigterm() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C (the runner kills the kernels and records CANCELED)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _start_services(settings: Settings, *, quiet: bool) -> None:
    """Start the services the application registered for runs (a database, say)
    and keep them up for the whole run; the task kernels connect to them. The fork
    server of the notebook workers starts first, so its imports overlap theirs."""
    from lakehouse.jobs import forkserver

    forkserver.shared().start()
    try:
        lines = hooks.start_services(settings)
    except Exception as exc:
        fail(f"error: {exc}")
    if not quiet:
        for line in lines:
            click.echo(line, err=True)


def print_summary(run: JobRun) -> None:
    click.echo(f"run folder: {run.run_dir}")
    if run.repair_of:
        click.echo(f"repair of run {run.repair_of}")
    console = stdout_console()
    console.print(task_table(run))
    duration = format_duration(run.duration_seconds or 0)
    style = STATE_STYLES.get(run.state, "") if run.state != JobState.SUCCESS else "green"
    console.print(f"job {run.job} [{style}]{run.state.value}[/] in {duration}")
    for note in run.notifications:
        if not note.ok:
            click.echo(
                f"warning: {note.channel} {note.event} to {note.target} not sent: {note.error}", err=True
            )
    for warning in run.warnings:
        click.echo(f"warning: {warning}", err=True)


@click.command("repair")
@click.argument("run_id")
@params_option
@max_parallel_option
@click.option("--quiet", "-q", is_flag=True, help="No live progress, only the summary.")
@file_option
def repair_command(
    run_id: str, params: dict[str, str], max_parallel: int | None, quiet: bool, file: Path | None
) -> None:
    """Re-run the tasks of RUN_ID that did not succeed, and everything downstream.

    Tasks FAILED, TIMED_OUT, UPSTREAM_FAILED or CANCELED are re-run with the run's
    parameters (--param overrides one); tasks that succeeded keep their results. The
    repair is a new run (own run id and folder, `repair_of` in its run.json); the
    repaired run lists it in `repaired_by`. Exits 1 if the repair run fails (repair
    it again).

    \b
    Examples:
      lakehouse jobs status daily            # find the failed run id
      lakehouse jobs repair 20261126T050000Z-1a2b
      lakehouse jobs repair 20261126T050000Z-1a2b -p lake_root=/data/lake --max-parallel 2
    """
    from lakehouse.jobs.records import find_run
    from lakehouse.jobs.repair import repair_run, tasks_to_repair

    settings = settings_or_exit()
    try:
        original = find_run(settings.runs_dir, run_id)
    except LookupError as exc:
        fail(f"error: {exc}")
    jobs = load_or_exit(
        file or (Path(original.jobs_file) if original.jobs_file else None), settings.project_root
    )
    if original.job in jobs.jobs:
        rerun = tasks_to_repair(jobs.job(original.job), original)
        kept = [key for key in original.tasks if key not in rerun]
        click.echo(
            f"repairing run {run_id} of {original.job}: re-running {', '.join(rerun) or 'nothing'}"
            + (f"; keeping {', '.join(kept)}" if kept else ""),
            err=True,
        )
    _start_services(settings, quiet=quiet)
    with _cancel_on_sigterm():
        try:
            run = repair_run(
                original,
                jobs_file=jobs,
                params=params,
                project_root=settings.project_root,
                runs_dir=settings.runs_dir,
                max_parallel=max_parallel,
                quiet=quiet,
                console=Console(stderr=True),
                settings=settings,
            )
        except JobsError as exc:
            fail(f"error: {exc}")
        except KeyboardInterrupt:
            fail("canceled: running kernels were killed", code=130)
    print_summary(run)
    if not run.ok:
        fail(run.error or f"repair of {run_id} {run.state.value}")


def _parse_date(ctx: click.Context, param: click.Parameter, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date YYYY-MM-DD, got {value!r}", ctx=ctx, param=param) from None


@click.command("backfill")
@click.argument("job")
@click.option(
    "--from", "start", required=True, callback=_parse_date, metavar="YYYY-MM-DD", help="First date."
)
@click.option(
    "--to", "end", required=True, callback=_parse_date, metavar="YYYY-MM-DD", help="Last date (included)."
)
@params_option
@click.option(
    "--continue-on-failure",
    is_flag=True,
    help="Go on with the next dates after a failed one (default: stop).",
)
@max_parallel_option
@click.option("--quiet", "-q", is_flag=True, help="No live progress of each run, only the per-date lines.")
@file_option
def backfill_command(
    job: str,
    start: dt.date,
    end: dt.date,
    params: dict[str, str],
    continue_on_failure: bool,
    max_parallel: int | None,
    quiet: bool,
    file: Path | None,
) -> None:
    """Run JOB once per date from --from to --to (run_date=YYYY-MM-DD), oldest first.

    Resumable: a date whose latest run (same run_date and same --param values)
    succeeded is skipped, so running the same command again only runs what is missing
    or failed. Dates run one after another; the first failure stops the backfill unless
    --continue-on-failure. Prints one line per date, then a summary; exits 1 if a date
    failed, 130 on Ctrl-C.

    \b
    Examples:
      lakehouse jobs backfill daily --from 2026-11-01 --to 2026-11-07
      lakehouse jobs backfill daily --from 2026-11-01 --to 2026-11-30 --continue-on-failure -q
    """
    from lakehouse.jobs.backfill import BackfillDay, DayStatus, backfill_job

    settings = settings_or_exit()
    jobs = load_or_exit(file, settings.project_root)
    err = Console(stderr=True)

    def report(day: BackfillDay) -> None:
        style = {DayStatus.SUCCESS: "green", DayStatus.ALREADY_DONE: "dim"}.get(day.status, "bold red")
        line = f"{day.run_date} [{style}]{day.status.value}[/] {day.run_id or ''} {escape(day.message or '')}"
        err.print(line.rstrip(), soft_wrap=True, highlight=False)

    _start_services(settings, quiet=quiet)
    with _cancel_on_sigterm():
        try:
            result = backfill_job(
                jobs,
                job,
                start,
                end,
                params=params,
                continue_on_failure=continue_on_failure,
                project_root=settings.project_root,
                runs_dir=settings.runs_dir,
                max_parallel=max_parallel or 1,
                quiet=quiet,
                console=err,
                settings=settings,
                on_day=report,
            )
        except JobsError as exc:
            fail(f"error: {exc}")
    table = Table(show_header=True, header_style="bold", title=f"backfill of {job}")
    for column in ("run_date", "status", "run_id", "duration", "notes"):
        table.add_column(column, overflow="fold")
    for day in result.days:
        duration = format_duration(day.duration_seconds) if day.duration_seconds is not None else ""
        table.add_row(str(day.run_date), day.status.value, day.run_id or "", duration, day.message or "")
    stdout_console().print(table)
    counts = ", ".join(f"{result.count(s)} {s.value}" for s in DayStatus if result.count(s))
    click.echo(f"{len(result.days)} dates: {counts}")
    if result.interrupted:
        fail("backfill interrupted; run the same command again to resume", code=130)
    if not result.ok:
        fail(f"backfill of {job} incomplete; fix the failure, then run the same command again to resume")
