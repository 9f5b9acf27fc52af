"""``lakehouse bi``: Tableau extracts, the PostgreSQL BI schema and static dashboards."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from lakehouse.config import ConfigError, load_settings

console = Console()


def _settings(lake_root: str | None):
    try:
        return load_settings(lake_root=lake_root)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("bi")
def bi_cli() -> None:
    """Restitution of gold: Tableau .hyper extracts, the PostgreSQL BI schema (views
    for the dashboards, read-only role) and static HTML dashboards.

    \b
    Examples:
      lakehouse bi export-tableau
      lakehouse bi export-tableau --single-table
      lakehouse bi load-postgres --mode merge
      lakehouse bi dashboards
    """


@bi_cli.command("export-tableau")
@click.option("--lake-root", default=None, help="Default: lake_root of the configuration.")
@click.option(
    "--single-table/--star", default=None, help="One denormalised table per fact (old Tableau servers)."
)
def export_tableau_command(lake_root: str | None, single_table: bool | None) -> None:
    """Write one .hyper extract per subject area (atomically) and print their sizes."""
    from lakehouse.bi.gold import BiExportError
    from lakehouse.bi.restitution import export_extracts

    try:
        reports = export_extracts(_settings(lake_root), single_table=single_table, progress=console.print)
    except BiExportError as exc:
        raise click.ClickException(str(exc)) from exc
    table = Table(title="Tableau extracts")
    for column in ("file", "tables", "rows", "size (MiB)", "seconds"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for r in reports:
        table.add_row(
            str(r.path),
            str(len(r.rows)),
            f"{sum(r.rows.values()):,}",
            f"{r.size_bytes / 2**20:.2f}",
            f"{r.seconds:.2f}",
        )
    console.print(table)


@bi_cli.command("load-postgres")
@click.option("--lake-root", default=None, help="Default: lake_root of the configuration.")
@click.option(
    "--mode", type=click.Choice(["replace", "merge"]), default=None, help="Default: bi.postgres_mode."
)
def load_postgres_command(lake_root: str | None, mode: str | None) -> None:
    """Load gold into the BI schema in one transaction, with the dashboard views."""
    from lakehouse.bi.gold import BiExportError
    from lakehouse.bi.restitution import load_postgres

    try:
        report = load_postgres(_settings(lake_root), mode=mode, progress=console.print)  # type: ignore[arg-type]
    except BiExportError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(
        f"schema {report.schema} ({report.mode}): {sum(report.rows.values()):,} rows in "
        f"{len(report.rows)} tables, views {', '.join(report.views) or 'none'}, {report.seconds:.2f} s"
    )


@bi_cli.command("dashboards")
@click.option("--lake-root", default=None, help="Default: lake_root of the configuration.")
def dashboards_command(lake_root: str | None) -> None:
    """Regenerate the static HTML dashboards (open index.html in any browser, offline)."""
    from lakehouse.bi.gold import BiExportError
    from lakehouse.bi.restitution import build_pages

    try:
        report = build_pages(_settings(lake_root))
    except BiExportError as exc:
        raise click.ClickException(str(exc)) from exc
    for slug, path in report.pages.items():
        console.print(f"[green]ok[/] {slug}: {path}")
    for slug, why in report.skipped.items():
        console.print(f"[yellow]skipped[/] {slug}: {why}")
    console.print(f"index: {report.index} ({report.seconds:.2f} s)")
