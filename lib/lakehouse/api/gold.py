"""Reading gold for the API: table discovery, snapshots cached by Delta version, and
filtered, sorted, paginated queries over delta-rs (no Spark per request).

- Discovery: every Delta table under ``gold/domain=<d>/model=<m>/table=<name>``, listed
  again at most every ``list_seconds``; new KPI tables appear without a restart.
- Snapshots: one ``DeltaTable`` per table, brought up to date at most every
  ``check_seconds``; its pyarrow dataset is rebuilt only when the version changed.
- Results: the filtered and sorted rows of a query are cached per (table version,
  role, filters, columns), so pages of the same query and repeated KPI queries cost
  one slice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from cachetools import LRUCache
from deltalake import DeltaTable

from lakehouse import maintenance
from lakehouse.access import AccessPolicy, GoldTable, row_filter_expression, visible_columns
from lakehouse.lake import filesystem, scheme

# Sort keys first (when present) so pages follow the tables' grain; other columns break ties.
_SORT_FIRST = ("date_key", "hour_key", "site_id", "machine_id", "product_id", "order_id", "line_number", "batch_id")


class InvalidQuery(ValueError):
    """A filter or column the table cannot answer (HTTP 422)."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


@dataclass(frozen=True)
class Query:
    """What a caller asks of one table. ``filters`` maps a column to accepted values."""

    columns: tuple[str, ...] | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Page:
    version: int
    total: int
    columns: list[str]
    rows: list[dict[str, Any]]


@dataclass
class _Snapshot:
    table: DeltaTable
    version: int
    dataset: ds.Dataset
    checked_at: float
    lock: threading.Lock = field(default_factory=threading.Lock)


def discover_gold_tables(lake_root: str) -> dict[str, GoldTable]:
    """Gold tables of the lake by name (``fact_ventes``...), from the folder layout."""
    fs, base = filesystem(lake_root)
    found: dict[str, GoldTable] = {}
    for domain_dir in _subfolders(fs, f"{base}/gold", "domain="):
        for model_dir in _subfolders(fs, domain_dir, "model="):
            for table_dir in _subfolders(fs, model_dir, "table="):
                if fs.get_file_info(f"{table_dir}/_delta_log").type != pafs.FileType.Directory:
                    continue
                table = GoldTable(
                    domain=domain_dir.rsplit("domain=", 1)[1],
                    model=model_dir.rsplit("model=", 1)[1],
                    name=table_dir.rsplit("table=", 1)[1],
                    path=scheme(lake_root) + table_dir,
                )
                found.setdefault(table.name, table)
    return found


def _subfolders(fs: pafs.FileSystem, folder: str, prefix: str) -> list[str]:
    if fs.get_file_info(folder).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(folder))
    return sorted(i.path for i in infos if i.type == pafs.FileType.Directory and i.base_name.startswith(prefix))


class GoldReader:
    """Thread-safe reader of the lake's gold tables, shared by all API requests."""

    def __init__(
        self,
        lake_root: str,
        policy: AccessPolicy,
        *,
        check_seconds: float = 1.0,
        list_seconds: float = 5.0,
        cache_bytes: int = 256 * 2**20,
    ) -> None:
        self.lake_root = lake_root
        self.policy = policy
        self.check_seconds = check_seconds
        self.list_seconds = list_seconds
        self._tables: dict[str, GoldTable] = {}
        self._listed_at = -math.inf
        self._snapshots: dict[str, _Snapshot] = {}
        # Bounded by the Arrow bytes held, not the entry count: one entry may be a whole fact table.
        self._results: LRUCache = LRUCache(maxsize=cache_bytes, getsizeof=lambda rows: max(rows.nbytes, 1))
        self._lock = threading.Lock()

    # --- tables and snapshots -------------------------------------------------------------

    def tables(self, *, refresh: bool = False) -> dict[str, GoldTable]:
        with self._lock:
            if refresh or time.monotonic() - self._listed_at >= self.list_seconds:
                self._tables = discover_gold_tables(self.lake_root)
                self._listed_at = time.monotonic()
            return dict(self._tables)

    def table(self, name: str) -> GoldTable | None:
        """The named gold table, listing the lake again if it is not known yet."""
        return self.tables().get(name) or self.tables(refresh=True).get(name)

    def snapshot(self, table: GoldTable) -> _Snapshot:
        with self._lock:
            snap = self._snapshots.get(table.path)
            if snap is None:
                delta = maintenance.open_table(table.path)
                snap = _Snapshot(delta, delta.version(), delta.to_pyarrow_dataset(), time.monotonic())
                self._snapshots[table.path] = snap
        with snap.lock:
            if time.monotonic() - snap.checked_at >= self.check_seconds:
                snap.table.update_incremental()
                snap.checked_at = time.monotonic()
                if snap.table.version() != snap.version:
                    snap.version = snap.table.version()
                    snap.dataset = snap.table.to_pyarrow_dataset()
            return snap

    def schema(self, table: GoldTable) -> pa.Schema:
        return self.snapshot(table).dataset.schema

    # --- queries --------------------------------------------------------------------------

    def query(self, table: GoldTable, role: str, query: Query, *, limit: int, offset: int) -> Page:
        """One page of the rows ``role`` may see; access to the table is checked by the caller."""
        snap = self.snapshot(table)
        version, dataset = snap.version, snap.dataset
        key = (table.path, version, role, query)
        with self._lock:
            rows = self._results.get(key)
        if rows is None:
            rows = self._select(table, dataset, role, query)
            with self._lock, contextlib.suppress(ValueError):  # ValueError: larger than the whole cache
                self._results[key] = rows
        page = rows.slice(offset, limit)
        return Page(version=version, total=rows.num_rows, columns=rows.column_names, rows=page.to_pylist())

    def _select(self, table: GoldTable, dataset: ds.Dataset, role: str, query: Query) -> pa.Table:
        schema = dataset.schema
        visible = visible_columns(self.policy, role, table, schema.names)
        unknown = [c for c in query.columns or () if c not in schema.names]
        if unknown:
            raise InvalidQuery(
                f"table {table.name!r} has no column(s) {', '.join(unknown)}",
                {"table": table.name, "columns": unknown, "available": visible},
            )
        columns = list(query.columns) if query.columns else visible
        expression = _combine(
            row_filter_expression(self.policy, role, schema),
            self._date_expression(table, schema, query),
            *(_in_expression(table, schema, column, values) for column, values in query.filters),
        )
        selected = dataset.to_table(columns=columns, filter=expression)
        return _without_nan(selected.sort_by(_sort_keys(selected.schema)))

    def _date_expression(self, table: GoldTable, schema: pa.Schema, query: Query) -> ds.Expression | None:
        if query.date_from is None and query.date_to is None:
            return None
        column = self.policy.tables.date_column
        if column not in schema.names:
            raise InvalidQuery(
                f"table {table.name!r} has no {column} column: date_from/date_to do not apply to it",
                {"table": table.name, "parameter": "date_from/date_to"},
            )
        if query.date_from and query.date_to and query.date_from > query.date_to:
            raise InvalidQuery(
                f"date_from {query.date_from} is after date_to {query.date_to}",
                {"date_from": str(query.date_from), "date_to": str(query.date_to)},
            )
        terms = []
        if query.date_from:
            terms.append(pc.field(column) >= _date_key(query.date_from))
        if query.date_to:
            terms.append(pc.field(column) <= _date_key(query.date_to))
        return _combine(*terms)


def _in_expression(table: GoldTable, schema: pa.Schema, column: str, values: tuple[str, ...]) -> ds.Expression:
    if column not in schema.names:
        raise InvalidQuery(
            f"table {table.name!r} has no {column} column to filter on", {"table": table.name, "column": column}
        )
    try:
        typed = pa.array(values).cast(schema.field(column).type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidQuery(
            f"filter on {table.name}.{column}: {list(values)} are not {schema.field(column).type} values",
            {"table": table.name, "column": column, "values": list(values)},
        ) from exc
    return pc.field(column).isin(typed)


def _combine(*terms: ds.Expression | None) -> ds.Expression | None:
    result = None
    for term in terms:
        if term is not None:
            result = term if result is None else result & term
    return result


def _date_key(day: dt.date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def _sort_keys(schema: pa.Schema) -> list[tuple[str, str]]:
    sortable = [f.name for f in schema if not pa.types.is_nested(f.type)]
    first = [c for c in _SORT_FIRST if c in sortable]
    return [(c, "ascending") for c in first + [c for c in sortable if c not in first]]


def _without_nan(table: pa.Table) -> pa.Table:
    """NaN is not JSON: serve it as null."""
    for index, column in enumerate(table.schema):
        if pa.types.is_floating(column.type):
            values = table.column(index)
            table = table.set_column(index, column, pc.if_else(pc.is_nan(values), None, values))
    return table
