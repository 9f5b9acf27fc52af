"""``lakehouse generate``: the click command around :func:`generate_all`."""

from __future__ import annotations

import datetime as dt

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from lakehouse.config import ConfigError, Settings, load_settings
from lakehouse.generate.params import MAX_DAYS, MAX_SCALE, GenerationError
from lakehouse.generate.pipeline import STEPS, generate_all

EPILOG = """\b
Writes, for each day from RUN_DATE - DAYS + 1 to RUN_DATE:
  <lake_root>/landing/source=erp/{order_lines,stock_snapshots,deliveries,production_batches}/<date>/
  <lake_root>/landing/source=iot/readings/<date>/readings_<site>_<yyyymmdd>.jsonl
  <lake_root>/landing/source=regulatory/recalls/<date>/
the injected defects and anomalies to <var_dir>/ground_truth/, and the referential
(products, product_prices, sites, machines, customers) to the PostgreSQL schema
'referential' (dropped and recreated). Re-running replaces the same files.

\b
Paths come from the configuration; override them with environment variables, e.g.
  LAKEHOUSE_LAKE_ROOT=/tmp/lake LAKEHOUSE_VAR_DIR=/tmp/var lakehouse generate --days 7
"""


def settings_for(
    scale: float | None, days: int | None, seed: int | None, run_date: dt.date | None
) -> Settings:
    """Configuration with the options given on the command line applied on top."""
    base = load_settings()
    generator = base.generator.model_dump()
    given = {"scale": scale, "days": days, "seed": seed}
    generator.update({k: v for k, v in given.items() if v is not None})
    return load_settings(run_date=run_date, generator=generator)


@click.command("generate", epilog=EPILOG)
@click.option(
    "--scale",
    type=click.FloatRange(0, MAX_SCALE, min_open=True),
    default=None,
    help="Size multiplier: 1.0 = 200 products, 5 sites, 20 machines, 500 customers, "
    "~400 orders (~1,100 order lines) a day. [default: generator.scale of the configuration]",
)
@click.option(
    "--days",
    type=click.IntRange(1, MAX_DAYS),
    default=None,
    help="Days of history ending on the run date. [default: generator.days of the configuration]",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="Random seed; same seed, scale, days and run date give byte-identical files. "
    "[default: generator.seed of the configuration]",
)
@click.option(
    "--run-date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Last generated day, YYYY-MM-DD. [default: run_date of the configuration, i.e. today]",
)
@click.option(
    "--no-postgres",
    is_flag=True,
    help="Do not start the embedded PostgreSQL nor load the referential; files only.",
)
def generate_command(
    scale: float | None,
    days: int | None,
    seed: int | None,
    run_date: dt.datetime | None,
    no_postgres: bool,
) -> None:
    """Generate deterministic synthetic data for every source: ERP exports (order
    lines, stock, deliveries, production batches), machine energy readings, recall
    notices, and the PostgreSQL referential, with defects injected at known rates."""
    try:
        settings = settings_for(scale, days, seed, run_date.date() if run_date else None)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    console = Console()
    if not console.is_terminal:  # piped or captured: no terminal width to respect
        console = Console(width=140)
    progress_console = Console(stderr=True)
    endpoint = None
    if not no_postgres:
        from lakehouse.postgres import ensure_server

        with progress_console.status("starting PostgreSQL..."):
            endpoint = ensure_server(settings)
    steps = [s for s in STEPS if s != "postgres" or endpoint is not None]
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress_console,
    ) as bar:
        task = bar.add_task("generating", total=len(steps))

        def on_step(step: str, message: str) -> None:
            if step in steps:
                bar.console.print(f"[green]done[/] {step}: {message}")
                bar.advance(task)
                bar.update(task, description=f"{step} done")
            else:  # a file of a long step ('order_lines:<date>'): shown, not printed
                bar.update(task, description=f"{step.split(':')[0]} {message}")

        try:
            report = generate_all(settings, endpoint=endpoint, progress=on_step)
        except GenerationError as exc:
            raise click.ClickException(str(exc)) from exc
    console.print(report.to_table())
