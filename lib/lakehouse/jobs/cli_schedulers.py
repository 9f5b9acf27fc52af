"""``lakehouse jobs scheduler | export-airflow | run-task``: runs started by a
scheduler, ours (cron schedules of jobs.yaml) or Airflow's (an exported DAG whose tasks
call ``run-task``)."""

from __future__ import annotations

import datetime as dt
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from lakehouse.jobs.cli_shared import (
    JOBS_FILE,
    fail,
    file_option,
    load_or_exit,
    params_option,
    project_root_or_exit,
    settings_or_exit,
)
from lakehouse.jobs.loader import JobsError


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Evaluate the schedules once, wait for the runs started, exit.")
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=0.05),
    default=30.0,
    show_default=True,
    help="How often jobs.yaml is re-read (the scheduler also wakes at each fire time).",
)
@click.option(
    "--grace-seconds",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="On SIGTERM/Ctrl-C, how long canceled runs get to stop before being killed.",
)
@file_option
def scheduler_command(once: bool, poll_seconds: float, grace_seconds: float, file: Path | None) -> None:
    """Start the jobs whose `schedule` is due, until SIGTERM or Ctrl-C.

    Each due run is a `lakehouse jobs run JOB` child process (run_date = the fire
    time's date in the schedule's time zone); max_concurrent_runs is respected (a fire
    is skipped and logged when reached). The last evaluated time of each job is kept in
    runs/<job>/.scheduler.json: fire times missed while the scheduler was stopped are
    reported and listed there, and only the latest one runs (backfill the others).

    On SIGTERM or Ctrl-C the scheduler starts nothing more and CANCELS the runs it
    started (their kernels are killed, the runs recorded CANCELED: resume them with
    `lakehouse jobs repair RUN_ID`), then exits.

    \b
    Examples:
      lakehouse jobs scheduler                      # foreground, logs to stderr
      lakehouse jobs scheduler --once               # from cron: * * * * *
      nohup lakehouse jobs scheduler > var/scheduler.log 2>&1 &
    """
    from lakehouse.jobs.scheduler import Scheduler

    settings = settings_or_exit()
    jobs_file = file or settings.project_root / JOBS_FILE
    scheduler = Scheduler(jobs_file, project_root=settings.project_root, runs_dir=settings.runs_dir)
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = scheduler.serve(stop, poll_seconds=poll_seconds, once=once, grace_seconds=grace_seconds)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.exit(code)


@click.command("export-airflow")
@click.argument("job")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the DAG file into (e.g. Airflow's dags/ folder).",
)
@click.option(
    "--lakehouse-bin",
    default=None,
    help="The lakehouse command on the Airflow workers. Default: the one of this virtualenv.",
)
@file_option
def export_airflow_command(job: str, out_dir: Path, lakehouse_bin: str | None, file: Path | None) -> None:
    """Write an Airflow DAG for JOB: one BashOperator per task running
    `lakehouse jobs run-task`, with the same dependencies, trigger rules (from run_if),
    retries, retry delay, execution_timeout and schedule (cron + time zone).

    \b
    Example:
      lakehouse jobs export-airflow daily --out ~/airflow/dags
    """
    from lakehouse.jobs.airflow_export import export_airflow

    root = project_root_or_exit()
    jobs = load_or_exit(file, root)
    try:
        path = export_airflow(jobs, job, out_dir, project_root=root, lakehouse_bin=lakehouse_bin)
    except JobsError as exc:
        fail(f"error: {exc}")
    click.echo(f"wrote {path}")


@click.command("run-task")
@click.argument("job")
@click.argument("task_key")
@click.option("--run-id", required=True, help="Run id; output goes to runs/<job>/<run_id>/<task_key>.ipynb.")
@params_option
@click.option("--attempt", type=click.IntRange(min=1), default=1, show_default=True, help="Attempt number.")
@click.option(
    "--start-time",
    default=None,
    help="ISO start time of the whole run, for {{job.start_time.*}} references. Default: now.",
)
@file_option
def run_task_command(
    job: str,
    task_key: str,
    run_id: str,
    params: dict[str, str],
    attempt: int,
    start_time: str | None,
    file: Path | None,
) -> None:
    """Run one task of JOB alone (no dependencies, no retries): what the tasks of a DAG
    exported with `export-airflow` call. Exits 1 if the notebook failed or timed out.

    \b
    Example:
      lakehouse jobs run-task daily silver_pharma --run-id debug-1 -p run_date=2026-11-26
    """
    from lakehouse.jobs import forkserver
    from lakehouse.jobs.single import run_single_task

    # One notebook in this process: its fork server need not import, in the
    # background, the quality and ML libraries for tasks that will not come.
    forkserver.shared().later = ()
    settings = settings_or_exit()
    jobs = load_or_exit(file, settings.project_root)
    started = None
    if start_time:
        try:
            started = dt.datetime.fromisoformat(start_time)
        except ValueError:
            fail(f"error: --start-time {start_time!r} is not an ISO date-time (2026-11-26T05:00:00+00:00)")
        if started.tzinfo is None:
            started = started.replace(tzinfo=dt.UTC)
    cancel = threading.Event()

    def request_cancel(signum: int, frame: Any) -> None:
        cancel.set()

    previous = {sig: signal.signal(sig, request_cancel) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        record = run_single_task(
            jobs,
            job,
            task_key,
            run_id=run_id,
            params=params,
            start_time=started,
            attempt=attempt,
            project_root=settings.project_root,
            runs_dir=settings.runs_dir,
            cancel=cancel,
        )
    except JobsError as exc:
        fail(f"error: {exc}")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(
        f"task {task_key} of {job} run {run_id}: {record.state.value}; notebook {record.output_notebook}"
    )
    if record.state.value != "SUCCESS":
        fail(record.error or f"task {task_key} {record.state.value}")
