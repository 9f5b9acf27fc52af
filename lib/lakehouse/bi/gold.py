"""The gold tables the BI exports read: which exist, their keys, and their subject areas.

Exports are driven by the tables found in the lake (``gold/domain=*/model=*/table=*``),
not by a fixed list, so a new KPI or prediction table is exported without code changes.
Keys come from the contracts of the gold definitions (``lakehouse.gold.pharma_tables``,
``lakehouse.gold.energy_tables``); a table without one is exported without a key. The
foreign keys of any table follow from its column names: a column named like the
reference key of a dimension (``date_key`` -> ``dim_temps``, ``site_id`` -> ``dim_site``)
refers to it when that dimension is in the same extract.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from lakehouse.lake import Lake, filesystem, scheme
from lakehouse.maintenance import open_table
from lakehouse.pipelines.contracts import Contract


@functools.cache
def gold_contracts() -> dict[str, Contract]:
    """The contract of each gold dataset of the pipeline, by table name."""
    from lakehouse.medallion import medallion_graph

    datasets = medallion_graph().datasets.values()
    return {d.name: d.contract for d in datasets if d.contract and (d.path or "").startswith("gold/")}


@functools.cache
def tagged_personal_columns() -> frozenset[str]:
    """Columns any dataset's contract tags personal or pseudonymised (silver_customers'
    pseudonyms): a gold column of that name would be personal data."""
    from lakehouse.medallion import medallion_graph

    return frozenset(
        column for d in medallion_graph().datasets.values() if d.contract for column in d.contract.pii
    )


def dimension_of_column() -> dict[str, str]:
    """Column name -> the dimension it refers to: the one-column reference key of each
    dataset some contract's foreign key points to (``site_id`` for ``dim_site``, whose
    natural key every fact and KPI carries; ``product_sk`` for ``dim_produit``)."""
    contracts = gold_contracts()
    targets = {target for contract in contracts.values() for target in contract.foreign_keys.values()}
    return {
        contracts[name].reference_key[0]: name
        for name in sorted(targets)
        if name in contracts and len(contracts[name].reference_key) == 1
    }


# Dimensions shared across domains: the energy extract also carries the sites.
SHARED_DIMENSIONS: dict[str, tuple[str, ...]] = {"energy": ("dim_site",)}

# Column names that would mean personal data reached gold; exports refuse them, and the
# columns a contract tags as personal data (tagged_personal_columns).
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
    def contract(self) -> Contract | None:
        return gold_contracts().get(self.name)

    @property
    def primary_key(self) -> tuple[str, ...]:
        """The contract's key (``dim_site``: ``site_sk``); () without a contract."""
        return self.contract.keys if self.contract else ()

    @property
    def natural_key(self) -> tuple[str, ...]:
        """Another unique key other tables carry (``dim_site``: ``site_id``), or ()."""
        return self.contract.natural_key if self.contract else ()

    @property
    def reference_key(self) -> tuple[str, ...]:
        """The key other tables refer to this one by: the natural key, else the key."""
        return self.contract.reference_key if self.contract else ()

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
    dimensions = dimension_of_column()
    return [
        (column, dimensions[column])
        for column in columns
        if column in dimensions and dimensions[column] in available and dimensions[column] != table.name
    ]


def check_no_personal_data(table: str, columns: Sequence[str]) -> None:
    flagged = [c for c in columns if _PERSONAL_DATA.search(c) or c in tagged_personal_columns()]
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
