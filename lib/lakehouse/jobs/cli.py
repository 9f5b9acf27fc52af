"""``lakehouse jobs ...``: list, validate and run the jobs of ``jobs.yaml``, and show
their runs. Attach :data:`jobs_cli` to the top-level group with ``add_command``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from lakehouse.config import ConfigError, Settings, find_project_root, load_settings
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
            tree.add(f"[cyan]{key}[/cyan] {task.notebook}{after}{run_if}")
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
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_parse_params,
    help="Set a job parameter (repeatable); overrides its default in jobs.yaml.",
)
@click.option("--run-id", default=None, help="Run id (default: UTC start time + 4 hex digits).")
@click.option(
    "--max-parallel",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Independent tasks run at the same time (each has its own kernel).",
)
@click.option("--quiet", "-q", is_flag=True, help="No live progress, only the summary.")
@_file_option
def run_command(
    job: str,
    params: dict[str, str],
    run_id: str | None,
    max_parallel: int,
    quiet: bool,
    file: Path | None,
) -> None:
    """Run JOB: its tasks in dependency order, each notebook in its own kernel.

    Prints the run folder and a table of tasks; exits 1 if a task failed or timed
    out, with the failure (task, notebook, cell, error) on stderr.

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
    _keep_postgres_up(settings, quiet=quiet)
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
        )
    except JobsError as exc:
        _fail(f"error: {exc}")
    except KeyboardInterrupt:
        _fail("canceled: running kernels were killed", code=130)
    _print_summary(run)
    if not run.ok:
        _fail(run.error or f"job {job} {run.state.value}")


def _keep_postgres_up(settings: Settings, *, quiet: bool) -> None:
    """Start the embedded PostgreSQL (if configured) and keep it up for the whole run;
    the task kernels connect to the same server."""
    if settings.postgres.mode != "embedded":
        return
    from lakehouse.postgres import ensure_server

    try:
        ensure_server(settings)
    except Exception as exc:
        _fail(f"error: cannot start the embedded PostgreSQL ({settings.postgres_data_dir}): {exc}")
    if not quiet:
        click.echo(f"embedded PostgreSQL up (data in {settings.postgres_data_dir})", err=True)


def _print_summary(run: JobRun) -> None:
    click.echo(f"run folder: {run.run_dir}")
    console = _stdout_console()
    console.print(task_table(run))
    duration = format_duration(run.duration_seconds or 0)
    style = STATE_STYLES.get(run.state, "") if run.state != JobState.SUCCESS else "green"
    console.print(f"job {run.job} [{style}]{run.state.value}[/] in {duration}")


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
    for column in ("job", "run_id", "state", "started (UTC)", "duration", "tasks"):
        table.add_column(column, no_wrap=column != "tasks")
    for run in runs:
        state = "STALE (runner gone)" if run.is_stale() else run.state.value
        duration = format_duration(run.duration_seconds) if run.duration_seconds is not None else ""
        table.add_row(
            run.job,
            run.run_id,
            f"[{STATE_STYLES.get(run.state, '') if not run.ok else 'green'}]{state}[/]",
            f"{run.start_time:%Y-%m-%d %H:%M:%S}",
            duration,
            _task_counts(run),
        )
    console.print(table)
    if job:
        latest = runs[0]
        click.echo(f"latest run {latest.run_id}: {latest.run_dir}")
        console.print(task_table(latest))
        if latest.error:
            click.echo(latest.error)


def _task_counts(run: JobRun) -> str:
    """``3 SUCCESS, 1 FAILED``."""
    counts: dict[str, int] = {}
    for task in run.tasks.values():
        counts[task.state.value] = counts.get(task.state.value, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in counts.items())
