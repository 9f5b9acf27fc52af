"""Right to erasure (GDPR art. 17): remove one data subject from the lake, physically.

Which tables: those with an ``erasure_key`` in ``conf/base/catalog.yaml`` (today the
customers tables of bronze and silver, including the append-only change log
``bronze_customers_changes``), plus their quarantine tables. Gold holds no personal data
(checked by the catalog), and a ``customer_id`` left in sales facts names an
organisation whose contact person is no longer anywhere in the lake.

Steps, per table holding the subject: delete the rows (delta-rs), vacuum with retention
0 so the files of older versions are deleted, then, if the subject's values are still
in the transaction log (Delta keeps per-file min/max statistics there), checkpoint and
drop the log before it: older versions can no longer be time-travelled to. Landing text
files that contain the subject's contact values lose those lines. The erasure is
recorded in the audit trail with the row counts (never the erased values).

Out of scope: the PostgreSQL referential (the source system): delete the customer there
first, or the next referential load brings them back. Downstream streaming readers of an
erased append-only table (``bronze_customers`` reads ``bronze_customers_changes``) need
one full refresh of that reader afterwards: the report says which.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakehouse import maintenance
from lakehouse.governance import audit
from lakehouse.governance.catalog import SENSITIVE, CatalogConfig, CatalogEntry
from lakehouse.lake import Lake, scheme

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_TEXT_SUFFIXES = {".csv", ".json", ".jsonl", ".txt", ".tsv", ".ndjson"}


class ErasureError(RuntimeError):
    """The erasure cannot run (bad id, remote lake without support...)."""


@dataclass
class TableErasure:
    table: str
    path: str
    rows_deleted: int
    files_vacuumed: int
    history_truncated: bool


@dataclass
class ErasureReport:
    subject: str
    key: str
    tables: list[TableErasure] = field(default_factory=list)
    landing_files: dict[str, int] = field(default_factory=dict)  # file -> lines removed
    full_refresh_needed: list[str] = field(default_factory=list)
    residual_system_files: list[str] = field(default_factory=list)
    """Files under ``_system/`` still holding the subject (e.g. a failed expectation's
    sample rows in the event log): not rewritten automatically, listed for review."""
    dry_run: bool = False

    @property
    def rows_deleted(self) -> int:
        return sum(t.rows_deleted for t in self.tables)


def erase_subject(
    lake: Lake | str,
    entries: Iterable[CatalogEntry],
    config: CatalogConfig,
    *,
    subject: str,
    actor: str,
    subject_label: str | None = None,
    dry_run: bool = False,
) -> ErasureReport:
    """Erase the rows whose erasure key equals ``subject`` from every erasable table of
    ``entries`` (a built catalog), then vacuum; record it in the audit trail under
    ``subject_label`` (default the id; the CLI passes its pseudonym, so the audit log
    proves the erasure without naming the subject)."""
    entries = list(entries)
    by_name = {entry.name: entry for entry in entries}
    lake = lake if isinstance(lake, Lake) else Lake(str(lake))
    if scheme(lake.root):
        raise ErasureError(f"erasure of a remote lake ({lake.root}) is not supported yet: run it where the lake is a local folder")
    if not _SAFE_ID.match(subject):
        raise ErasureError(f"subject id {subject!r} is not a plain identifier (letters, digits, _ . : -)")
    targets = [e for e in entries if e.erasure_key and e.exists]
    if not targets:
        raise ErasureError(f"no built table of {lake.root} declares an erasure_key in catalog.yaml: nothing to erase from")
    keys = {e.erasure_key for e in targets}
    report = ErasureReport(subject=subject, key=", ".join(sorted(k for k in keys if k)), dry_run=dry_run)
    values = subject_values(targets, subject, config)
    for entry in targets:
        table_report = _erase_table(entry, subject, values, dry_run=dry_run)
        if table_report.rows_deleted:
            report.tables.append(table_report)
            # Streaming readers of a rewritten table refuse to continue incrementally.
            report.full_refresh_needed += [
                name for name in entry.downstream if name in by_name and by_name[name].kind == "streaming_table"
            ]
    report.landing_files = _erase_from_landing(lake, values - {subject}, dry_run=dry_run)
    report.full_refresh_needed = sorted(set(report.full_refresh_needed))
    report.residual_system_files = residual_files(Path(lake.root, "_system"), values)
    if not dry_run:
        audit.record_event(
            lake,
            actor=actor,
            action="gdpr.erase",
            target=f"subject:{subject_label or subject}",
            details={
                "tables": {t.table: t.rows_deleted for t in report.tables},
                "landing_files": len(report.landing_files),
                "landing_lines": sum(report.landing_files.values()),
                "history_truncated": [t.table for t in report.tables if t.history_truncated],
            },
        )
    return report


def subject_values(targets: Iterable[CatalogEntry], subject: str, config: CatalogConfig) -> set[str]:
    """The subject id and its personal values (columns tagged personal/pseudonymised)
    found in the erasable tables: what must not be left anywhere after erasure."""
    values = {subject}
    for entry in targets:
        sensitive = [c.name for c in entry.columns if c.pii in SENSITIVE]
        table = _subject_rows(entry, subject, columns=sensitive)
        for name in sensitive:
            values.update(str(v) for v in table.column(name).to_pylist() if v not in (None, ""))
    return values


def _subject_rows(entry: CatalogEntry, subject: str, *, columns: list[str] | None = None) -> pa.Table:
    dataset = maintenance.open_table(entry.path).to_pyarrow_dataset()
    return dataset.to_table(columns=columns, filter=pc.field(entry.erasure_key) == subject)


def _erase_table(entry: CatalogEntry, subject: str, values: set[str], *, dry_run: bool) -> TableErasure:
    found = _subject_rows(entry, subject, columns=[entry.erasure_key]).num_rows
    result = TableErasure(entry.name, entry.path, found, 0, False)
    if dry_run or not found:
        return result
    table = maintenance.open_table(entry.path)
    metrics = table.delete(f"{entry.erasure_key} = '{subject}'")
    result.rows_deleted = int(metrics.get("num_deleted_rows", found))
    result.files_vacuumed = len(maintenance.vacuum(entry.path, retention_hours=0, dry_run=False))
    if _log_mentions(entry.path, values):
        _drop_history(entry.path)
        result.history_truncated = True
    return result


def _log_mentions(path: str, values: set[str]) -> bool:
    """True if any file of the table's _delta_log holds one of ``values`` (statistics)."""
    return any(contains_any(file, values) for file in Path(path, "_delta_log").rglob("*") if file.is_file())


def _drop_history(path: str) -> None:
    """Checkpoint the current version and delete the log before it (the old commits'
    statistics hold the subject's values). Time travel before this point ends here."""
    table = maintenance.open_table(path)
    table.alter.set_table_properties({"delta.logRetentionDuration": "interval 0 days"})
    table.create_checkpoint()
    table.cleanup_metadata()


def _erase_from_landing(lake: Lake, values: set[str], *, dry_run: bool) -> dict[str, int]:
    """Remove the lines of landing text files holding one of ``values``; keep mtimes
    (the landing zone is append-only; the ingestion knows files by path)."""
    landing = Path(lake.root, "landing")
    removed: dict[str, int] = {}
    if not values or not landing.is_dir():
        return removed
    needles = [v.encode("utf-8") for v in values]
    for file in landing.rglob("*"):
        if not file.is_file() or file.suffix.lower() not in _TEXT_SUFFIXES:
            continue
        lines = file.read_bytes().splitlines(keepends=True)
        kept = [line for line in lines if not any(n in line for n in needles)]
        if len(kept) == len(lines):
            continue
        removed[str(file)] = len(lines) - len(kept)
        if not dry_run:
            stat = file.stat()
            file.write_bytes(b"".join(kept))
            os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return removed


# --- checking that nothing is left ------------------------------------------------------------


def contains_any(file: Path, values: set[str]) -> bool:
    """True if ``file`` holds one of ``values``: in its raw bytes, or for Parquet in its
    decoded string columns (compressed pages hide raw bytes)."""
    raw = file.read_bytes()
    if any(v.encode("utf-8") in raw for v in values):
        return True
    if file.suffix == ".parquet":
        table = pq.read_table(file)
        wanted = pa.array(sorted(values), pa.string())
        for column in table.columns:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                if pc.any(pc.is_in(column, value_set=wanted)).as_py():
                    return True
    return False


def residual_files(root: str | Path, values: set[str]) -> list[str]:
    """Every file under ``root`` (data, logs, checkpoints) still holding one of ``values``."""
    if not Path(root).is_dir():
        return []
    return sorted(str(f) for f in Path(root).rglob("*") if f.is_file() and contains_any(f, values))
