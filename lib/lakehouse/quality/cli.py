"""``lakehouse quality``: run the suites, check the gate, show the summary."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from lakehouse.config import ConfigError, load_settings

console = Console(width=None if sys.stdout.isatty() else 160)


@click.group("quality")
def quality_cli() -> None:
    """Data quality suites (Great Expectations) over silver and gold.

    \b
    Examples:
      lakehouse quality run --run-date 2026-11-26
      lakehouse quality run --suite fact_ventes --suite dim_produit
      lakehouse quality gate --run-date 2026-11-26          # exit 1 on failed critical expectations
      lakehouse quality summary
    """


@quality_cli.command("run")
@click.option("--run-date", default=None, help="YYYY-MM-DD; default today.")
@click.option("--lake-root", default=None, help="Default: lake_root of the configuration.")
@click.option(
    "--suite", "suites", multiple=True, help="Suite to run (repeat), e.g. fact_ventes; default all."
)
@click.option("--run-id", default=None, help="Default: a new id from the time.")
def run_command(
    run_date: str | None, lake_root: str | None, suites: tuple[str, ...], run_id: str | None
) -> None:
    """Validate the suites, append the results to _system/quality_results, write the Data
    Docs and the summary page under the runs folder. Exit 1 if a critical expectation failed."""
    from lakehouse.context import start_run
    from lakehouse.quality.run import run_quality

    try:
        ctx = start_run(
            run_date=run_date or "", lake_root=lake_root or "", batch_id=run_id or "", app_name="quality"
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    run = run_quality(
        ctx.spark,
        ctx.lake,
        ctx.run_date,
        run_id=ctx.batch_id,
        settings=ctx.settings.quality,
        runs_dir=ctx.settings.runs_dir,
        suites=list(suites) or None,
        on_suite=lambda s: console.print(
            f"{s.suite}: {sum(r.success for r in s.results)}/{len(s.results)} passed in {s.seconds:.2f} s",
            highlight=False,
        ),
    )
    _print_failures(run.failed())
    console.print(f"Data Docs: {run.docs_index}")
    console.print(f"Summary:   {ctx.settings.runs_dir / ctx.settings.quality.docs_dir / 'summary.html'}")
    sys.exit(1 if run.failed("critical") else 0)


@quality_cli.command("gate")
@click.option("--run-date", default=None, help="YYYY-MM-DD; default today.")
@click.option("--lake-root", default=None, help="Default: lake_root of the configuration.")
@click.option("--fail-on", type=click.Choice(["critical", "warning"]), default="critical", show_default=True)
def gate_command(run_date: str | None, lake_root: str | None, fail_on: str) -> None:
    """Exit 1 naming the failed expectations when the latest quality run of the date failed."""
    from lakehouse.lake import Lake
    from lakehouse.quality.results import QualityGateError, check_gate, results_path

    settings = load_settings(run_date=run_date, lake_root=lake_root)
    path = results_path(Lake(settings.lake_root), settings.quality.results_table)
    try:
        check_gate(path, settings.run_date, fail_on=fail_on, require_run=settings.quality.require_run)
    except QualityGateError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"[green]quality gate passed[/] for {settings.run_date}")


@quality_cli.command("summary")
@click.option("--lake-root", default=None, help="Default: lake_root of the configuration.")
def summary_command(lake_root: str | None) -> None:
    """Pass rate per table of the latest run date, and its failures."""
    from lakehouse.lake import Lake
    from lakehouse.quality.report import latest_failures, pass_rates
    from lakehouse.quality.results import read_results, results_path

    settings = load_settings(lake_root=lake_root)
    results = read_results(results_path(Lake(settings.lake_root), settings.quality.results_table))
    rates = pass_rates(results)
    if rates.empty:
        raise click.ClickException("no quality results yet: run `lakehouse quality run` first")
    latest = rates[rates["run_date"] == rates["run_date"].max()]
    table = Table(title=f"Quality of {latest['run_date'].iloc[0]}")
    for column in ("suite", "checks", "passed", "failed critical", "pass rate"):
        table.add_column(column)
    for row in latest.to_dict("records"):
        table.add_row(
            row["suite"],
            str(row["checks"]),
            str(row["passed"]),
            str(row["failed_critical"]),
            f"{row['pass_rate']:.0%}",
        )
    console.print(table)
    failures = latest_failures(results)
    for row in failures.to_dict("records"):
        console.print(
            f"[red]{row['severity']}[/] {row['suite']}: {row['expectation']} "
            f"unexpected={row['unexpected_count']} sample={row['sample']}",
            highlight=False,
        )


def _print_failures(failed: list) -> None:
    for r in failed:
        colour = "red" if r.severity == "critical" else "yellow"
        console.print(
            f"[{colour}]{r.severity}[/] {r.suite}: {r.expectation} unexpected={r.unexpected_count} "
            f"observed={r.observed_value} sample={r.sample} {r.exception or ''}",
            highlight=False,
        )
