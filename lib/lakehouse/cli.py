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
        "ml": ("lakehouse.ml.cli", "ml_cli"),
        "bi": ("lakehouse.bi.cli", "bi_cli"),
        "quality": ("lakehouse.quality.cli", "quality_cli"),
        "governance": ("lakehouse.governance.cli", "governance_cli"),
        "api": ("lakehouse.api.cli", "api_cli"),
        "iot": ("lakehouse.iot.cli", "iot_cli"),
        "bench": ("lakehouse.bench.cli", "bench_cli"),
        "spark": ("lakehouse.spark_server", "spark_cli"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == "jobs" and _runs_a_job(sys.argv):
            from lakehouse.jobs import forkserver

            # Its imports (1.3 s) overlap the command's own (0.85 s) instead of following them.
            forkserver.shared().start()
        if name in self._lazy:
            import importlib

            module, attribute = self._lazy[name]
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)


def _runs_a_job(argv: list[str]) -> bool:
    """Whether the command line runs notebook tasks now (``jobs run``, ``repair``,
    ``backfill``), so the fork server of their workers can start first."""
    if "--help" in argv or "-h" in argv or "jobs" not in argv:
        return False
    rest = argv[argv.index("jobs") + 1 :]
    return bool(rest) and rest[0] in {"run", "repair", "backfill"}


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
    from lakehouse.jobs import executed_notebooks, load_jobs, run_job
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
    notebooks = executed_notebooks(run)
    folders = sorted({str(path.parent) for path in notebooks})
    console.print(
        f"Executed notebooks:  {len(notebooks)} in {len(folders)} run folders under {settings.runs_dir}"
    )
    for folder in folders:
        console.print(f"                     {folder}")
    console.print(f"Run record:          {run.run_dir}/run.json")
    _print_outputs(settings)
    console.print(
        f"PostgreSQL data:     {settings.postgres_data_dir} (log: {settings.postgres_data_dir}/log)"
    )
    console.print(f"Ground truth:        {settings.ground_truth_dir}")
    console.print(f"Total wall time:     {time.monotonic() - started:.1f} s")


def _print_outputs(settings) -> None:
    """Where the daily job's restitution, quality and model outputs are."""
    from lakehouse.bi.restitution import dashboards_dir, tableau_dir

    console.print(f"Dashboards:          {dashboards_dir(settings) / 'index.html'}")
    console.print(f"Tableau extracts:    {tableau_dir(settings)}/*.hyper")
    console.print("BI views:            schema bi of PostgreSQL (`lakehouse postgres psql`)")
    console.print(f"Quality summary:     {settings.runs_dir / settings.quality.docs_dir / 'summary.html'}")
    from lakehouse.ml.tracking import champion_lines

    console.print("Energy models:       champions of the MLflow registry (runs: make mlflow-ui)")
    for line in champion_lines(settings):
        console.print(f"                     {line}")
    console.print(
        f"Model outputs:       {settings.lake_root}/gold/domain=energy/model=prediction/"
        "table={consumption_forecast,anomaly_scores}"
    )


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
def pipeline() -> None:
    """Declarative pipelines: the project of the spark-pipeline.yml found in the current
    folder or its parents (or named by --spec), else the built-in medallion pipeline
    (bronze, silver, gold datasets).

    \b
    Examples:
      lakehouse pipeline init my_pipeline && cd my_pipeline && lakehouse pipeline run
      lakehouse pipeline dry-run
      lakehouse pipeline run --refresh silver_order_lines --run-date 2026-11-26
      lakehouse pipeline lineage --format svg --out lineage.svg
      lakehouse pipeline events
    """


def _spec_option(command):  # noqa: ANN001, ANN202 - a click decorator
    return click.option(
        "--spec",
        "spec",
        type=click.Path(),
        default=None,
        help="spark-pipeline.yml (or its folder); default: the one in the current folder or "
        "its parents, else the built-in medallion pipeline.",
    )(command)


def _project(spec: str | None):  # noqa: ANN202 - PipelineProject | None
    """The pipeline project of ``--spec`` or found from the cwd; None: the built-in one."""
    from lakehouse.pipelines.project import SpecError, find_spec_file, load_project

    path = spec or find_spec_file()
    if path is None:
        return None
    try:
        return load_project(path)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from exc


def _project_runner(project, run_date: str | None):  # noqa: ANN001, ANN202
    from lakehouse.pipelines.graph import GraphError
    from lakehouse.pipelines.project import SpecError

    try:
        return project.runner(run_date=run_date)
    except (SpecError, GraphError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc


@pipeline.command("init")
@click.argument("name")
def pipeline_init(name: str) -> None:
    """Create the pipeline project NAME/: a spark-pipeline.yml and one example dataset
    under transformations/ (a materialized view with an expectation)."""
    from lakehouse.pipelines.project import SpecError, init_project

    try:
        spec_file = init_project(name)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"pipeline project written: {spec_file}", highlight=False)
    for path in sorted(spec_file.parent.rglob("*")):
        if path.is_file():
            console.print(f"  {path.relative_to(spec_file.parent)}", highlight=False)
    console.print(f"next: cd {name} && lakehouse pipeline run && lakehouse pipeline events", highlight=False)


@pipeline.command("dry-run")
@click.option("--run-date", default=None, help="YYYY-MM-DD; default today.")
@_spec_option
def pipeline_dry_run(run_date: str | None, spec: str | None) -> None:
    """Check the graph and analyse every dataset's schema; reads and writes no data."""
    project = _project(spec)
    if project is None:
        from lakehouse.context import start_run
        from lakehouse.medallion import runner

        report = runner(start_run(run_date=run_date or "")).dry_run()
    else:
        report = _project_runner(project, run_date).dry_run()
    for name, schema in report.schemas.items():
        console.print(f"[green]ok[/] {name}: {schema}", highlight=False)
    for problem in report.problems:
        console.print(f"[red]problem[/] {problem}", highlight=False)
    sys.exit(0 if report.ok else 1)


@pipeline.command("run")
@click.option("--refresh", "refresh", multiple=True, help="Dataset to update (repeat); default: all.")
@click.option("--full-refresh", is_flag=True, help="Rebuild streaming tables from all their input.")
@click.option("--run-date", default=None, help="YYYY-MM-DD; default today.")
@_spec_option
def pipeline_run(
    refresh: tuple[str, ...], full_refresh: bool, run_date: str | None, spec: str | None
) -> None:
    """Update the pipeline (or the named datasets and what they need) and print the
    event of each flow. Exit 1 if the run failed (its targets are rolled back)."""
    from lakehouse.context import events_frame

    project = _project(spec)
    if project is None:
        from lakehouse.context import start_run
        from lakehouse.medallion import runner

        context = start_run(run_date=run_date or "")
        run = runner(context).run(
            refresh=list(refresh) or None,
            full_refresh=full_refresh,
            run_id=context.batch_id,
            ingested_at=context.started_at,
            raise_on_failure=False,
        )
    else:
        from lakehouse.pipelines.graph import GraphError

        try:
            run = _project_runner(project, run_date).run(
                refresh=list(refresh) or None, full_refresh=full_refresh, raise_on_failure=False
            )
        except GraphError as exc:  # e.g. an unknown dataset in --refresh
            raise click.ClickException(str(exc)) from exc
        console.print(
            f"pipeline {project.name}: run {run.run_id}, storage {project.storage}", highlight=False
        )
    console.print(events_frame(run).to_string(index=False))
    if run.status != "COMPLETED":
        console.print(f"[red]run {run.run_id} failed[/]: {run.error}", highlight=False)
        sys.exit(1)


@pipeline.command("lineage")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "svg"]), default="mermaid", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="File to write; default stdout.")
@_spec_option
def pipeline_lineage(fmt: str, out: str | None, spec: str | None) -> None:
    """The dataset lineage as Mermaid text or a standalone SVG picture."""
    from lakehouse.pipelines.graph import lineage_svg

    project = _project(spec)
    if project is None:
        from lakehouse.medallion import medallion_graph

        graph = medallion_graph()
    else:  # on the engine: definitions reading spark.read.table("x") are called to see what they read
        graph = _project_runner(project, None).graph
    text = graph.to_mermaid() if fmt == "mermaid" else lineage_svg(graph)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text)
        console.print(f"lineage written to {out}")
    else:
        click.echo(text)


@pipeline.command("events")
@click.option("--run-id", default=None, help="Default: the latest run.")
@_spec_option
def pipeline_events(run_id: str | None, spec: str | None) -> None:
    """Show the event log rows of one pipeline run (flows, rows, expectations)."""
    from lakehouse.lake import Lake, delta_exists
    from lakehouse.maintenance import open_table

    project = _project(spec)
    root = project.storage if project is not None else load_settings().lake_root
    path = Lake(root).system("event_log")
    if not delta_exists(path):
        raise click.ClickException(f"no event log at {path}: run the pipeline first")
    log = open_table(path).to_pandas()
    if project is not None:  # the storage may be shared with other pipelines
        log = log[log["pipeline"] == project.name]
        if log.empty:
            raise click.ClickException(f"pipeline {project.name!r} has no run in {path}: run it first")
    chosen = run_id or log.sort_values("started_at")["run_id"].iloc[-1]
    rows = log[log["run_id"] == chosen].sort_values("started_at")
    if rows.empty:
        raise click.ClickException(f"run {chosen!r} is not in the event log")
    rows = rows.assign(
        expectations_failed=rows["expectations"].map(
            lambda items: ", ".join(f"{e['name']}={e['failed']}" for e in items if e["failed"])
        ),
        skipped_because=[
            d if s == "SKIPPED" else "" for s, d in zip(rows["status"], rows["details"], strict=True)
        ],
    )
    columns = [
        "dataset",
        "status",
        "rows_read",
        "rows_written",
        "rows_dropped",
        "duration_seconds",
        "expectations_failed",
        "skipped_because",
    ]
    console.print(f"run {chosen}")
    console.print(rows[columns].to_string(index=False))


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
