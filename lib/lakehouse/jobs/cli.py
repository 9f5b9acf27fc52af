"""``lakehouse jobs ...``: list, validate and run the jobs of ``jobs.yaml``, and show
their runs. Attach :data:`jobs_cli` to the top-level group with ``add_command``.

This module holds the group and the commands that read jobs.yaml and the run records;
the commands that run a job are in :mod:`lakehouse.jobs.cli_runs`, the scheduler and
Airflow ones in :mod:`lakehouse.jobs.cli_schedulers`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table
from rich.tree import Tree

from lakehouse.jobs import cli_runs, cli_schedulers
from lakehouse.jobs.cli_shared import (
    file_option,
    load_or_exit,
    project_root_or_exit,
    settings_or_exit,
    stdout_console,
)
from lakehouse.jobs.graph import topological_order
from lakehouse.jobs.progress import STATE_STYLES, format_duration, task_table
from lakehouse.jobs.records import JobRun, list_runs
from lakehouse.jobs.schema import json_schema


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
@file_option
def list_command(file: Path | None) -> None:
    """Show the jobs, their parameters and their tasks in run order.

    \b
    Example:
      lakehouse jobs list --file jobs.yaml
    """
    root = project_root_or_exit()
    jobs = load_or_exit(file, root)
    console = stdout_console()
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
@file_option
def validate_command(file: Path | None) -> None:
    """Check jobs.yaml: keys, notebooks, dependencies, cycles, parameter references.

    Exits 0 when valid, 1 with one line per problem (file:line, job, task) otherwise.

    \b
    Example:
      lakehouse jobs validate --file jobs.yaml
    """
    root = project_root_or_exit()
    jobs = load_or_exit(file, root)
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
    settings = settings_or_exit()
    runs = list_runs(settings.runs_dir, job=job)[:limit]
    console = stdout_console()
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


for command in (
    cli_runs.run_command,
    cli_runs.repair_command,
    cli_runs.backfill_command,
    cli_schedulers.scheduler_command,
    cli_schedulers.export_airflow_command,
    cli_schedulers.run_task_command,
):
    jobs_cli.add_command(command)
