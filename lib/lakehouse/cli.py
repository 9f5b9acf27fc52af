"""``lakehouse``: the command line of the project.

lakehouse quickstart            generate data, start PostgreSQL, run the daily job
lakehouse generate --help       synthetic sources into the landing zone and PostgreSQL
lakehouse jobs run daily        run a job of jobs.yaml (see `lakehouse jobs --help`)
lakehouse tables                Delta tables of the lake with row counts
lakehouse postgres status       where the embedded referential database runs
"""

from __future__ import annotations

import sys
import time

import click
from rich.console import Console
from rich.table import Table

from lakehouse.config import ConfigError, load_settings

# Wide enough for table paths when output goes to a file or CI log.
console = Console(width=None if sys.stdout.isatty() else 160)


class LazyGroup(click.Group):
    """Imports sub-command modules only when used, so ``--help`` answers at once."""

    _lazy = {
        "generate": ("lakehouse.generate", "generate_command"),
        "jobs": ("lakehouse.jobs.cli", "jobs_cli"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._lazy:
            import importlib

            module, attribute = self._lazy[name]
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """A notebook-first medallion lakehouse (bronze, silver, gold on Delta Lake) for
    pharma sales and machine energy data. Runs on an embedded Spark engine by
    default; set SPARK_REMOTE=sc://host:port to use a Spark Connect cluster.

    Configuration: conf/base/lakehouse.yaml, overridden by conf/local/lakehouse.yaml
    and LAKEHOUSE_* environment variables (e.g. LAKEHOUSE_LAKE_ROOT=s3://bucket/lake).
    """


@main.command()
@click.option(
    "--scale", type=float, default=None, help="Data volume factor (1.0 = 200 products, 20 machines)."
)
@click.option("--days", type=int, default=None, help="Days of history to generate, ending on the run date.")
@click.option("--run-date", default=None, help="YYYY-MM-DD; default today.")
@click.option("--max-parallel", type=int, default=2, show_default=True, help="Independent tasks run at once.")
def quickstart(scale: float | None, days: int | None, run_date: str | None, max_parallel: int) -> None:
    """Generate the sources, start PostgreSQL, run the `daily` job, and print where the
    tables, executed notebooks and run record are. Safe to run again: the same date
    gives the same tables.

    \b
    Example:
      lakehouse quickstart --scale 0.2 --days 7 --run-date 2026-11-26
    """
    from lakehouse.generate import GenerationError, generate_all
    from lakehouse.jobs import load_jobs, run_job
    from lakehouse.postgres import ensure_server

    generator = {k: v for k, v in {"scale": scale, "days": days}.items() if v is not None}
    try:
        settings = load_settings(run_date=run_date, generator=generator or None)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    started = time.monotonic()
    console.rule(
        f"[bold]1/3 Generate sources[/] (run date {settings.run_date}, scale {settings.generator.scale}, {settings.generator.days} days)"
    )
    endpoint = ensure_server(settings)
    try:
        report = generate_all(settings, endpoint=endpoint)
    except GenerationError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(str(report))

    console.rule("[bold]2/3 Run the daily job[/]")
    jobs = load_jobs(settings.project_root / "jobs.yaml", project_root=settings.project_root)
    run = run_job(
        jobs,
        "daily",
        params={"run_date": settings.run_date.isoformat(), "lake_root": settings.lake_root},
        project_root=settings.project_root,
        runs_dir=settings.runs_dir,
        max_parallel=max_parallel,
        console=console,
    )
    if not run.ok:
        console.print(f"[red]daily job failed[/]: {run.error}")
        console.print(f"Executed notebooks and run.json: {run.run_dir}")
        sys.exit(1)

    console.rule("[bold]3/3 What was built[/]")
    _print_tables(settings.lake_root)
    console.print(f"Lake:                {settings.lake_root}")
    console.print(f"Executed notebooks:  {run.run_dir}/*.ipynb")
    console.print(f"Run record:          {run.run_dir}/run.json")
    console.print(
        f"PostgreSQL data:     {settings.postgres_data_dir} (log: {settings.postgres_data_dir}/log)"
    )
    console.print(f"Ground truth:        {settings.ground_truth_dir}")
    console.print(f"Total wall time:     {time.monotonic() - started:.1f} s")


@main.command()
@click.option("--lake-root", default=None, help="Default: lake_root of the configuration.")
@click.option("--layer", type=click.Choice(["bronze", "silver", "gold", "_system"]), default=None)
def tables(lake_root: str | None, layer: str | None) -> None:
    """List the Delta tables of the lake with their row counts and versions."""
    settings = load_settings(lake_root=lake_root)
    _print_tables(settings.lake_root, layer=layer)


def _print_tables(root: str, *, layer: str | None = None) -> None:
    from lakehouse.catalog import describe_tables

    table = Table(title=f"Delta tables in {root}")
    for column in ("table", "rows", "version", "path"):
        table.add_column(column, justify="right" if column in ("rows", "version") else "left")
    for info in describe_tables(root):
        if layer is None or info.layer == layer:
            table.add_row(info.name, f"{info.rows:,}", str(info.version), info.path)
    console.print(table)


@main.group()
def postgres() -> None:
    """The referential PostgreSQL (embedded by default)."""


@postgres.command("status")
def postgres_status() -> None:
    """Start the embedded server if needed and print how to connect to it."""
    from lakehouse.postgres import connect, ensure_server

    settings = load_settings()
    endpoint = ensure_server(settings)
    with connect(endpoint) as conn:
        version = conn.execute("show server_version").fetchone()[0]
        tables = conn.execute(
            "select table_name from information_schema.tables where table_schema = %s order by 1",
            (endpoint.schema,),
        ).fetchall()
    console.print(f"PostgreSQL {version}, socket folder {endpoint.host}")
    console.print(f"JDBC: {endpoint.jdbc_url}")
    console.print(
        f"{endpoint.schema} tables: {', '.join(t[0] for t in tables) or '(none yet: run lakehouse generate)'}"
    )
    console.print(
        "The embedded server stops when this command exits: query it with `lakehouse postgres psql`."
    )


@postgres.command("psql", context_settings={"ignore_unknown_options": True})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def postgres_psql(psql_args: tuple[str, ...]) -> None:
    """Open psql on the referential database (the server runs while psql does).

    \b
    Examples:
      lakehouse postgres psql
      lakehouse postgres psql -c "select count(*) from referential.products"
    """
    import subprocess

    from lakehouse.postgres import ensure_server, psql_command

    endpoint = ensure_server(load_settings())
    sys.exit(subprocess.call([*psql_command(endpoint), *psql_args]))


if __name__ == "__main__":  # pragma: no cover
    main()
