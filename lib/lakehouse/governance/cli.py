"""``lakehouse governance``: catalog, audit trail, right to erasure.

\b
lakehouse governance catalog build      publish _system/catalog, catalog.json, catalog.html
lakehouse governance catalog check      exit 1 on governance problems (owners, PII in gold)
lakehouse governance audit verify       check the audit log's hash chain
lakehouse governance audit show         the latest audit entries
lakehouse governance audit compact      merge the log's small files (chain unchanged)
lakehouse governance erase --customer-id C00042   remove one data subject from the lake
"""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from lakehouse.config import ConfigError, Settings, load_settings

console = Console(width=None if sys.stdout.isatty() else 160)
_LAKE_ROOT = click.option("--lake-root", default=None, help="Default: lake_root of the configuration.")


def _settings(lake_root: str | None) -> Settings:
    try:
        return load_settings(lake_root=lake_root)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def catalog_of(settings: Settings):
    """The built catalog entries of the configured lake, and catalog.yaml."""
    from lakehouse.governance.catalog import CatalogError, catalog_for

    try:
        return catalog_for(settings)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("governance")
def governance_cli() -> None:
    """Data governance: catalog, audit trail, GDPR erasure."""


@governance_cli.group("catalog")
def catalog_group() -> None:
    """The data catalog generated from the pipeline, the tables and conf/base/catalog.yaml."""


@catalog_group.command("build")
@_LAKE_ROOT
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Folder for catalog.json and catalog.html; default <var_dir>/catalog.")
def catalog_build(lake_root: str | None, out: str | None) -> None:
    """Publish the catalog: Delta table _system/catalog, catalog.json and catalog.html."""
    from lakehouse.governance.catalog import CatalogError, check, publish_catalog

    settings = _settings(lake_root)
    try:
        entries, config, published = publish_catalog(settings, out)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc
    table = Table(title=f"Catalog of {settings.lake_root}")
    for column in ("table", "layer", "owner", "rows", "PII"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for entry in entries:
        rows = f"{entry.row_count:,}" if entry.row_count is not None else "not built"
        table.add_row(entry.name, entry.layer, entry.owner or "-", rows, "yes" if entry.has_personal_data else "")
    console.print(table)
    console.print(f"Delta table: {published.table_path}\nJSON:        {published.json_path}\nHTML:        {published.html_path}")
    for problem in check(entries, config):
        console.print(f"[yellow]problem[/] {problem}", highlight=False)


@catalog_group.command("check")
@_LAKE_ROOT
def catalog_check(lake_root: str | None) -> None:
    """List governance problems (gold without owner/description, personal data in gold,
    catalog.yaml naming missing tables or columns); exit 1 if any."""
    from lakehouse.governance.catalog import check

    entries, config = catalog_of(_settings(lake_root))
    problems = check(entries, config)
    for problem in problems:
        console.print(f"[red]problem[/] {problem}", highlight=False)
    if problems:
        sys.exit(1)
    console.print(f"[green]ok[/] {len(entries)} tables, no governance problem")


@governance_cli.group("audit")
def audit_group() -> None:
    """The append-only, hash-chained audit log (_system/audit_log)."""


@audit_group.command("verify")
@_LAKE_ROOT
def audit_verify(lake_root: str | None) -> None:
    """Recompute the hash chain; exit 1 and name the first bad sequence number on tampering."""
    from lakehouse.governance.audit import verify

    report = verify(_settings(lake_root).lake_root)
    if report.ok:
        console.print(f"[green]ok[/] {report.entries} entries, chain intact ({report.path})")
        return
    where = f"first bad seq: {report.first_bad_seq}" if report.first_bad_seq else "chain intact, history altered"
    console.print(f"[red]TAMPERED[/] {report.path} ({where})", highlight=False)
    for problem in report.problems:
        console.print(f"  {problem}", highlight=False)
    sys.exit(1)


@audit_group.command("compact")
@_LAKE_ROOT
def audit_compact(lake_root: str | None) -> None:
    """Merge the audit log's small files (one per commit); entries and chain unchanged."""
    from lakehouse.governance.audit import compact

    metrics = compact(_settings(lake_root).lake_root)
    console.print(
        f"files removed {metrics.get('numFilesRemoved', 0)}, added {metrics.get('numFilesAdded', 0)}"
    )


@audit_group.command("show")
@_LAKE_ROOT
@click.option("--last", type=int, default=20, show_default=True, help="Entries to show.")
@click.option("--action", default=None, help="Only this action, e.g. gdpr.erase.")
def audit_show(lake_root: str | None, last: int, action: str | None) -> None:
    """The latest audit entries, newest last."""
    from lakehouse.governance.audit import read_log

    rows = read_log(_settings(lake_root).lake_root).to_pylist()
    rows = [r for r in rows if action is None or r["action"] == action][-last:]
    table = Table()
    for column in ("seq", "event_time", "actor", "action", "target", "details"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["seq"]), row["event_time"].isoformat(timespec="seconds"), row["actor"], row["action"], row["target"], row["details"])
    console.print(table)


@governance_cli.command("erase")
@click.option("--customer-id", required=True, help="The data subject's customer_id, e.g. C00042.")
@_LAKE_ROOT
@click.option("--dry-run", is_flag=True, help="Report what would be removed; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase(customer_id: str, lake_root: str | None, dry_run: bool, yes: bool) -> None:
    """Remove one customer's personal data from every layer of the lake (bronze, silver,
    landing text files), vacuum it from older versions, and record it in the audit log.

    The PostgreSQL referential is the source system and is NOT changed: delete the
    customer there first, or the next referential load brings them back.
    """
    from lakehouse.governance import audit
    from lakehouse.governance.erasure import ErasureError, erase_subject
    from lakehouse.governance.pseudonymise import PseudonymisationKeyError, pseudonym, pseudonymisation_key

    settings = _settings(lake_root)
    if not dry_run and not yes:
        click.confirm(f"Erase customer {customer_id} from {settings.lake_root}? This cannot be undone", abort=True)
    entries, config = catalog_of(settings)
    try:
        label = pseudonym(customer_id, pseudonymisation_key(settings))
        report = erase_subject(
            settings.lake_root, entries, config, subject=customer_id, subject_label=label,
            actor=audit.current_actor(), dry_run=dry_run,
        )
    except (ErasureError, PseudonymisationKeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    table = Table(title=f"{'Would erase' if dry_run else 'Erased'} customer {customer_id}")
    for column in ("table", "rows", "files vacuumed", "history truncated"):
        table.add_column(column)
    for item in report.tables:
        table.add_row(item.table, str(item.rows_deleted), str(item.files_vacuumed), "yes" if item.history_truncated else "")
    for file, lines in report.landing_files.items():
        table.add_row(file, f"{lines} line(s)", "", "")
    console.print(table)
    if not report.tables and not report.landing_files:
        console.print(f"customer {customer_id} is in no erasable table of the lake")
    for file in report.residual_system_files:
        console.print(f"[yellow]review[/] {file} still holds the subject's values (system table)", highlight=False)
    if report.full_refresh_needed:
        names = " ".join(f"--refresh {n}" for n in report.full_refresh_needed)
        console.print(f"Next, rebuild their readers once: lakehouse pipeline run {names} --full-refresh")
    console.print("PostgreSQL referential (the source) is not changed by this command: delete the customer there.")
    click.echo(json.dumps({"subject": customer_id, "rows_deleted": report.rows_deleted, "dry_run": dry_run}))
