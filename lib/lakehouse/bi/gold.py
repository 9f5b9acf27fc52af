"""The gold tables the BI exports read: which exist, their keys, and their subject areas.

Exports are driven by the tables found in the lake (``gold/domain=*/model=*/table=*``),
not by a fixed list, so a new KPI or prediction table is exported without code changes.
Keys are declared here for the tables we know; the foreign keys of any table follow
from its column names (``date_key`` -> ``dim_temps`` ...) when that dimension is in the
same extract.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from lakehouse.lake import Lake, filesystem, scheme
from lakehouse.maintenance import open_table

# Grain of each known table, as its primary key. dim_site is keyed by site_id (one row
# per site; site_sk = xxhash64(site_id)) because every fact and KPI table carries site_id.
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "dim_temps": ("date_key",),
    "dim_produit": ("product_sk",),
    "dim_site": ("site_id",),
    "dim_machine": ("machine_sk",),
    "dim_temps_horaire": ("hour_key",),
    "fact_ventes": ("order_id", "line_number"),
    "fact_consommation_energie": ("machine_id", "hour_key"),
    "fact_production": ("batch_id",),
    "kpi_marge_journaliere": ("date_key", "site_id"),
    "kpi_rupture_stock": ("date_key", "site_id"),
    "kpi_performance_livraison": ("date_key", "site_id"),
    "kpi_marge_produit_site_mois": ("month", "product_id", "site_id"),
    "kpi_duree_rupture": ("site_id", "product_id", "start_date"),
    "kpi_rappels_en_stock": ("notice_id", "site_id"),
    "kpi_energie_machine": ("machine_id", "hour_ts"),
    "kpi_energie_site": ("site_id", "hour_ts"),
    "kpi_anomalies_machine": ("machine_id", "start_ts"),
}

# A column of these names refers to that dimension (whose primary key is the column).
DIMENSION_OF_COLUMN: dict[str, str] = {
    "date_key": "dim_temps",
    "hour_key": "dim_temps_horaire",
    "site_id": "dim_site",
    "product_sk": "dim_produit",
    "machine_sk": "dim_machine",
}

# Dimensions shared across domains: the energy extract also carries the sites.
SHARED_DIMENSIONS: dict[str, tuple[str, ...]] = {"energy": ("dim_site",)}

# Column names that would mean personal data reached gold; exports refuse them.
_PERSONAL_DATA = re.compile(
    r"(e_?mail|phone|mobile|address|street|first_?name|last_?name|surname|birth|customer_name|iban|ssn)",
    re.IGNORECASE,
)


class BiExportError(RuntimeError):
    """A gold table cannot be exported as asked (the message names the table)."""


@dataclass(frozen=True)
class GoldTable:
    """One gold Delta table: ``gold/domain=<domain>/model=<model>/table=<name>``."""

    name: str
    domain: str
    model: str
    path: str

    @property
    def primary_key(self) -> tuple[str, ...]:
        return PRIMARY_KEYS.get(self.name, ())

    @property
    def is_fact(self) -> bool:
        return self.name.startswith("fact_")

    def read(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The current version as Arrow (delta-rs: no Spark session needed)."""
        table = open_table(self.path).to_pyarrow_table(columns=list(columns) if columns else None)
        check_no_personal_data(self.name, table.schema.names)
        return table


@dataclass(frozen=True)
class SubjectArea:
    """The tables one extract holds: a domain's star schema, KPI and prediction tables."""

    name: str
    tables: tuple[GoldTable, ...] = field(default_factory=tuple)

    @property
    def facts(self) -> tuple[GoldTable, ...]:
        return tuple(t for t in self.tables if t.is_fact)

    def table(self, name: str) -> GoldTable | None:
        return next((t for t in self.tables if t.name == name), None)


def discover_gold_tables(lake: Lake) -> list[GoldTable]:
    """Every Delta table under ``gold/``, sorted by domain, model and name."""
    fs, base = filesystem(f"{lake.root}/gold")
    prefix = scheme(lake.root)
    selector = pafs.FileSelector(base, allow_not_found=True, recursive=False)
    found = []
    for domain_dir in _subdirs(fs, selector):
        for model_dir in _subdirs(fs, pafs.FileSelector(domain_dir.path)):
            for table_dir in _subdirs(fs, pafs.FileSelector(model_dir.path)):
                if fs.get_file_info(f"{table_dir.path}/_delta_log").type != pafs.FileType.Directory:
                    continue
                found.append(
                    GoldTable(
                        name=_value(table_dir.base_name, "table"),
                        domain=_value(domain_dir.base_name, "domain"),
                        model=_value(model_dir.base_name, "model"),
                        path=prefix + table_dir.path,
                    )
                )
    return sorted(found, key=lambda t: (t.domain, t.model, t.name))


def _subdirs(fs: pafs.FileSystem, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
    return [i for i in fs.get_file_info(selector) if i.type == pafs.FileType.Directory and "=" in i.base_name]


def _value(folder: str, key: str) -> str:
    name, _, value = folder.partition("=")
    if name != key:
        raise BiExportError(f"unexpected folder {folder!r} in the gold layer (expected {key}=...)")
    return value


def subject_areas(tables: Sequence[GoldTable]) -> list[SubjectArea]:
    """One area per domain (``pharma``, ``energy``): all its gold tables, plus the
    shared dimensions it references (the sites)."""
    by_name = {t.name: t for t in tables}
    areas = []
    for domain in sorted({t.domain for t in tables}):
        own = [t for t in tables if t.domain == domain]
        shared = [
            by_name[n] for n in SHARED_DIMENSIONS.get(domain, ()) if n in by_name and by_name[n] not in own
        ]
        areas.append(SubjectArea(domain, tuple(own + shared)))
    return areas


def foreign_keys(table: GoldTable, columns: Sequence[str], available: Sequence[str]) -> list[tuple[str, str]]:
    """``(column, dimension)`` pairs of ``table`` whose dimension is in ``available``."""
    return [
        (column, DIMENSION_OF_COLUMN[column])
        for column in columns
        if column in DIMENSION_OF_COLUMN
        and DIMENSION_OF_COLUMN[column] in available
        and DIMENSION_OF_COLUMN[column] != table.name
    ]


def check_no_personal_data(table: str, columns: Sequence[str]) -> None:
    flagged = [c for c in columns if _PERSONAL_DATA.search(c)]
    if flagged:
        raise BiExportError(
            f"gold table {table!r} has columns that look like personal data ({', '.join(flagged)}); "
            "BI exports carry none: drop them in gold or rename them if they are not personal"
        )


def check_primary_key(table: str, data: pa.Table, key: Sequence[str]) -> None:
    """The key columns exist, hold no NULL and identify one row each."""
    missing = [c for c in key if c not in data.schema.names]
    if missing:
        raise BiExportError(f"gold table {table!r} lacks key column(s) {missing}; it has {data.schema.names}")
    for column in key:
        nulls = data.column(column).null_count
        if nulls:
            raise BiExportError(f"gold table {table!r}: key column {column!r} has {nulls} NULL value(s)")
    if data.num_rows and data.group_by(list(key)).aggregate([]).num_rows != data.num_rows:
        counts = data.group_by(list(key)).aggregate([([], "count_all")])
        duplicate = counts.filter(pc.greater(counts.column("count_all"), 1)).slice(0, 1).to_pylist()
        raise BiExportError(f"gold table {table!r}: key {tuple(key)} is not unique, e.g. {duplicate[0]}")
