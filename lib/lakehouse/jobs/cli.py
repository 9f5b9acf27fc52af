"""``lakehouse jobs ...``: list, validate and run the jobs of ``jobs.yaml``, and show
their runs. Attach :data:`jobs_cli` to the top-level group with ``add_command``."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from lakehouse.config import ConfigError, Settings, find_project_root, load_settings
from lakehouse.jobs import hooks
from lakehouse.jobs.graph import topological_order
from lakehouse.jobs.loader import JobsError, load_jobs
from lakehouse.jobs.progress import STATE_STYLES, format_duration, task_table
from lakehouse.jobs.records import JobRun, JobState, list_runs
from lakehouse.jobs.runner import plan_job, run_job
from lakehouse.jobs.schema import JobsFile, json_schema

JOBS_FILE = "jobs.yaml"
_file_option = click.option(
    "--file",
    "-f",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Jobs file. Default: {JOBS_FILE} in the project root.",
)


def _fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    click.echo(message, err=True)
    sys.exit(code)


def _stdout_console() -> Console:
    """Rich console for stdout; wide when piped so paths and run ids stay whole."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def _project_root() -> Path:
    try:
        return find_project_root()
    except ConfigError as exc:
        _fail(f"error: {exc}")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        _fail(f"error: {exc}")


def _load(file: Path | None, project_root: Path) -> JobsFile:
    """Load the jobs file or exit 1 with the validation errors."""
    try:
        return load_jobs(file or project_root / JOBS_FILE, project_root=project_root)
    except JobsError as exc:
        _fail(f"error: {exc}")


def _parse_params(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """``('a=1', 'b=x=y')`` to ``{'a': '1', 'b': 'x=y'}``."""
    parsed: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", ctx=ctx, param=param)
        parsed[name.strip()] = value
    return parsed


_params_option = click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_parse_params,
    help="Set a job parameter (repeatable); overrides its default in jobs.yaml.",
)


@click.group("jobs")
def jobs_cli() -> None:
    """Jobs of notebook tasks declared in jobs.yaml (Databricks jobs vocabulary).

    Each task is a notebook run by papermill in its own kernel, in dependency order;
    executed notebooks and a run.json record go to runs/<job>/<run_id>/.

    \b
    Examples:
      lakehouse jobs list
      lakehouse jobs validate
      lakehouse jobs run daily --param run_date=2026-11-26
      lakehouse jobs status daily
      lakehouse jobs repair 20261126T050000Z-1a2b
      lakehouse jobs backfill daily --from 2026-11-01 --to 2026-11-07
      lakehouse jobs scheduler
      lakehouse jobs export-airflow daily --out dags/
    """


@jobs_cli.command("list")
@_file_option
def list_command(file: Path | None) -> None:
    """Show the jobs, their parameters and their tasks in run order.

    \b
    Example:
      lakehouse jobs list --file jobs.yaml
    """
    root = _project_root()
    jobs = _load(file, root)
    console = _stdout_console()
    if not jobs.jobs:
        console.print(f"no jobs in {jobs.source}")
        return
    for name, job in jobs.jobs.items():
        description = " ".join(job.description.split())
        title = f"[bold]{name}[/bold]" + (f" — {description}" if description else "")
        tree = Tree(title)
        if job.parameters:
            params = ", ".join(
                f"{p.name}={p.default!r}" if p.default is not None else f"{p.name} (required)"
                for p in job.parameters
            )
            tree.add(f"[dim]parameters:[/dim] {params}")
        if job.schedule:
            expression = job.schedule.quartz_cron_expression or job.schedule.cron
            tree.add(f"[dim]schedule:[/dim] {expression} ({job.schedule.timezone})")
        by_key = {task.task_key: task for task in job.tasks}
        for key in topological_order({t.task_key: t.upstream for t in job.tasks}):
            task = by_key[key]
            after = f" [dim]after {', '.join(task.upstream)}[/dim]" if task.upstream else ""
            run_if = (
                f" [dim]run_if {task.run_if.value}[/dim]"
                if task.upstream and task.run_if.value != "ALL_SUCCESS"
                else ""
            )
            tree.add(f"[cyan]{key}[/cyan] {task.target}{after}{run_if}")
        console.print(tree)


@jobs_cli.command("validate")
@_file_option
def validate_command(file: Path | None) -> None:
    """Check jobs.yaml: keys, notebooks, dependencies, cycles, parameter references.

    Exits 0 when valid, 1 with one line per problem (file:line, job, task) otherwise.

    \b
    Example:
      lakehouse jobs validate --file jobs.yaml
    """
    root = _project_root()
    jobs = _load(file, root)
    tasks = sum(len(job.tasks) for job in jobs.jobs.values())
    click.echo(f"{jobs.source} is valid: {len(jobs.jobs)} jobs, {tasks} tasks")


@jobs_cli.command("schema")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the JSON Schema here instead of printing it.",
)
def schema_command(output: Path | None) -> None:
    """Print (or write) the JSON Schema of jobs.yaml for editors.

    \b
    Example (VS Code with the YAML extension):
      lakehouse jobs schema -o .vscode/jobs.schema.json
      # then first line of jobs.yaml:
      # yaml-language-server: $schema=.vscode/jobs.schema.json
    """
    text = json.dumps(json_schema(), indent=2)
    if output is None:
        click.echo(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text + "\n", encoding="utf-8")
    click.echo(f"wrote {output}")


@jobs_cli.command("run")
@click.argument("job")
@_params_option
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
@_file_option
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
    settings = _settings()
    jobs = _load(file, settings.project_root)
    try:
        plan = plan_job(jobs, job, params=params, project_root=settings.project_root, run_id=run_id)
    except JobsError as exc:
        _fail(f"error: {exc}")
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
            _fail(f"error: {exc}")
        except KeyboardInterrupt:
            _fail(
                f"canceled: running kernels were killed; resume with `lakehouse jobs repair {plan.run_id}`",
                code=130,
            )
    _print_summary(run)
    if not run.ok:
        _fail(run.error or f"job {job} {run.state.value}")


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
    and keep them up for the whole run; the task kernels connect to them."""
    try:
        lines = hooks.start_services(settings)
    except Exception as exc:
        _fail(f"error: {exc}")
    if not quiet:
        for line in lines:
            click.echo(line, err=True)


def _print_summary(run: JobRun) -> None:
    click.echo(f"run folder: {run.run_dir}")
    if run.repair_of:
        click.echo(f"repair of run {run.repair_of}")
    console = _stdout_console()
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


@jobs_cli.command("status")
@click.argument("job", required=False)
@click.option("--limit", "-n", default=10, show_default=True, help="Runs to show.")
def status_command(job: str | None, limit: int) -> None:
    """Latest runs (of JOB, if given) from their run.json records; with JOB, also the
    tasks of its latest run.

    \b
    Examples:
      lakehouse jobs status
      lakehouse jobs status daily -n 3
    """
    settings = _settings()
    runs = list_runs(settings.runs_dir, job=job)[:limit]
    console = _stdout_console()
    if not runs:
        console.print(f"no runs{' of ' + job if job else ''} in {settings.runs_dir}")
        return
    table = Table(show_header=True, header_style="bold")
    for column in ("job", "run_id", "state", "started (UTC)", "duration", "trigger", "tasks"):
        table.add_column(column, no_wrap=column not in ("tasks", "trigger"))
    for run in runs:
        state = "STALE (runner gone)" if run.is_stale() else run.state.value
        duration = format_duration(run.duration_seconds) if run.duration_seconds is not None else ""
        table.add_row(
            run.job,
            run.run_id,
            f"[{STATE_STYLES.get(run.state, '') if not run.ok else 'green'}]{state}[/]",
            f"{run.start_time:%Y-%m-%d %H:%M:%S}",
            duration,
            _trigger(run),
            _task_counts(run),
        )
    console.print(table)
    if job:
        latest = runs[0]
        click.echo(f"latest run {latest.run_id}: {latest.run_dir}")
        console.print(task_table(latest))
        if latest.error:
            click.echo(latest.error)


def _trigger(run: JobRun) -> str:
    """``manual``, ``schedule``, ``repair of R``, plus ``repaired by R2``."""
    text = f"repair of {run.repair_of}" if run.repair_of else run.trigger
    if run.repaired_by:
        text += f"; repaired by {', '.join(run.repaired_by)}"
    return text


def _task_counts(run: JobRun) -> str:
    """``3 SUCCESS, 1 FAILED``."""
    counts: dict[str, int] = {}
    for task in run.tasks.values():
        counts[task.state.value] = counts.get(task.state.value, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in counts.items())


_max_parallel_option = click.option(
    "--max-parallel",
    type=click.IntRange(min=1),
    default=None,
    help="Independent tasks run at the same time (each has its own kernel).",
)


@jobs_cli.command("repair")
@click.argument("run_id")
@_params_option
@_max_parallel_option
@click.option("--quiet", "-q", is_flag=True, help="No live progress, only the summary.")
@_file_option
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

    settings = _settings()
    try:
        original = find_run(settings.runs_dir, run_id)
    except LookupError as exc:
        _fail(f"error: {exc}")
    jobs = _load(file or (Path(original.jobs_file) if original.jobs_file else None), settings.project_root)
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
            _fail(f"error: {exc}")
        except KeyboardInterrupt:
            _fail("canceled: running kernels were killed", code=130)
    _print_summary(run)
    if not run.ok:
        _fail(run.error or f"repair of {run_id} {run.state.value}")


def _parse_date(ctx: click.Context, param: click.Parameter, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date YYYY-MM-DD, got {value!r}", ctx=ctx, param=param) from None


@jobs_cli.command("backfill")
@click.argument("job")
@click.option(
    "--from", "start", required=True, callback=_parse_date, metavar="YYYY-MM-DD", help="First date."
)
@click.option(
    "--to", "end", required=True, callback=_parse_date, metavar="YYYY-MM-DD", help="Last date (included)."
)
@_params_option
@click.option(
    "--continue-on-failure",
    is_flag=True,
    help="Go on with the next dates after a failed one (default: stop).",
)
@_max_parallel_option
@click.option("--quiet", "-q", is_flag=True, help="No live progress of each run, only the per-date lines.")
@_file_option
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

    settings = _settings()
    jobs = _load(file, settings.project_root)
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
            _fail(f"error: {exc}")
    table = Table(show_header=True, header_style="bold", title=f"backfill of {job}")
    for column in ("run_date", "status", "run_id", "duration", "notes"):
        table.add_column(column, overflow="fold")
    for day in result.days:
        duration = format_duration(day.duration_seconds) if day.duration_seconds is not None else ""
        table.add_row(str(day.run_date), day.status.value, day.run_id or "", duration, day.message or "")
    _stdout_console().print(table)
    counts = ", ".join(f"{result.count(s)} {s.value}" for s in DayStatus if result.count(s))
    click.echo(f"{len(result.days)} dates: {counts}")
    if result.interrupted:
        _fail("backfill interrupted; run the same command again to resume", code=130)
    if not result.ok:
        _fail(f"backfill of {job} incomplete; fix the failure, then run the same command again to resume")


@jobs_cli.command("scheduler")
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
@_file_option
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

    settings = _settings()
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


@jobs_cli.command("export-airflow")
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
@_file_option
def export_airflow_command(job: str, out_dir: Path, lakehouse_bin: str | None, file: Path | None) -> None:
    """Write an Airflow DAG for JOB: one BashOperator per task running
    `lakehouse jobs run-task`, with the same dependencies, trigger rules (from run_if),
    retries, retry delay, execution_timeout and schedule (cron + time zone).

    \b
    Example:
      lakehouse jobs export-airflow daily --out ~/airflow/dags
    """
    from lakehouse.jobs.airflow_export import export_airflow

    root = _project_root()
    jobs = _load(file, root)
    try:
        path = export_airflow(jobs, job, out_dir, project_root=root, lakehouse_bin=lakehouse_bin)
    except JobsError as exc:
        _fail(f"error: {exc}")
    click.echo(f"wrote {path}")


@jobs_cli.command("run-task")
@click.argument("job")
@click.argument("task_key")
@click.option("--run-id", required=True, help="Run id; output goes to runs/<job>/<run_id>/<task_key>.ipynb.")
@_params_option
@click.option("--attempt", type=click.IntRange(min=1), default=1, show_default=True, help="Attempt number.")
@click.option(
    "--start-time",
    default=None,
    help="ISO start time of the whole run, for {{job.start_time.*}} references. Default: now.",
)
@_file_option
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
    from lakehouse.jobs.single import run_single_task

    settings = _settings()
    jobs = _load(file, settings.project_root)
    started = None
    if start_time:
        try:
            started = dt.datetime.fromisoformat(start_time)
        except ValueError:
            _fail(f"error: --start-time {start_time!r} is not an ISO date-time (2026-11-26T05:00:00+00:00)")
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
        _fail(f"error: {exc}")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(
        f"task {task_key} of {job} run {run_id}: {record.state.value}; notebook {record.output_notebook}"
    )
    if record.state.value != "SUCCESS":
        _fail(record.error or f"task {task_key} {record.state.value}")
