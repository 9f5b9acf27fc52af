"""The PostgreSQL BI schema: gold tables, dashboard views and a read-only role.

``replace`` (default) builds the whole schema under a staging name and swaps it in,
in one transaction: BI users see the previous schema or the new one, never a mix.
``merge`` upserts each table by its primary key (rows missing from gold are kept),
also in one transaction. Rows go in with ``COPY`` (CSV written by Arrow), the fastest
bulk path of PostgreSQL.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from lakehouse.bi.gold import BiExportError, GoldTable, check_primary_key, gold_contracts
from lakehouse.postgres import PostgresEndpoint, connect

LoadMode = Literal["replace", "merge"]
Progress = Callable[[str], None]
COPY_BATCH_ROWS = 100_000
# Columns the dashboards filter on: each fact and KPI table gets an index on those it has.
FILTER_COLUMNS = ("date_key", "hour_ts", "site_id", "product_sk", "machine_sk", "machine_id")


@dataclass(frozen=True)
class DashboardView:
    """A view named for a dashboard: every column of its base table ``f`` plus the
    labels of its dimensions, so new gold columns show up without code changes. Each
    dimension is joined on its reference key (its contract's natural key, else its key),
    a column of the same name in the base table."""

    name: str
    base: str
    joins: tuple[tuple[str, str], ...]  # (dimension, alias)
    extras: tuple[tuple[str, str], ...]  # (expression, column name), skipped if the base has it
    where: str = ""

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.base, *(dimension for dimension, _ in self.joins))

    def select(self, schema: str, base_columns: Sequence[str]) -> sql.Composed:
        extras = [sql.SQL("{} AS {}").format(sql.SQL(expr), sql.Identifier(name))
                  for expr, name in self.extras if name not in base_columns]  # fmt: skip
        statement = sql.SQL("SELECT {} FROM {} f").format(
            sql.SQL(", ").join([sql.SQL("f.*"), *extras]), sql.Identifier(schema, self.base)
        )
        for dimension, alias in self.joins:
            (key,) = gold_contracts()[dimension].reference_key
            statement += sql.SQL(" LEFT JOIN {} {} ON {} = {}").format(
                sql.Identifier(schema, dimension),
                sql.SQL(alias),
                sql.Identifier(alias, key),
                sql.Identifier("f", key),
            )
        return statement + sql.SQL(f" WHERE {self.where}" if self.where else "")


_SITE = ("dim_site", "s")
_SITE_LABELS = (("s.site_name", "site_name"), ("s.region", "region"))
_MACHINE = ("dim_machine", "m")
_ENERGY_LABELS = (
    ("to_date(f.date_key::text, 'YYYYMMDD')", "date"),
    ("m.machine_type", "machine_type"),
    ("s.site_name", "site_name"),
)
DASHBOARD_VIEWS = (
    DashboardView("v_pharma_stockout_rate", "kpi_rupture_stock", (_SITE,), _SITE_LABELS),
    DashboardView("v_pharma_delivery_performance", "kpi_performance_livraison", (_SITE,), _SITE_LABELS),
    DashboardView(
        "v_energy_realtime_consumption", "fact_consommation_energie", (_MACHINE, _SITE), _ENERGY_LABELS
    ),
    DashboardView(
        "v_energy_machine_anomalies",
        "fact_consommation_energie",
        (_MACHINE, _SITE),
        _ENERGY_LABELS,
        where="f.anomaly_class <> 'normal'",
    ),
)


@dataclass(frozen=True)
class BiLoadReport:
    schema: str
    mode: LoadMode
    rows: dict[str, int] = field(default_factory=dict)
    views: tuple[str, ...] = ()
    seconds: float = 0.0


def load_postgres_bi(
    endpoint: PostgresEndpoint,
    tables: Sequence[GoldTable],
    *,
    schema: str = "bi",
    mode: LoadMode = "replace",
    reader_role: str = "bi_reader",
    progress: Progress | None = None,
) -> BiLoadReport:
    """Load ``tables`` into ``schema`` in one transaction, (re)create the dashboard
    views and their indexes, and grant ``reader_role`` read access only."""
    if not tables:
        raise BiExportError("no gold table to load: run the gold layer first")
    if mode not in ("replace", "merge"):
        raise BiExportError(f"unknown load mode {mode!r}; use 'replace' or 'merge'")
    started = time.monotonic()
    say = progress or (lambda _message: None)
    with connect(endpoint) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"lakehouse.bi.{schema}"])
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
        if mode == "merge" and exists:
            rows = _merge(conn, schema, tables, say)
        else:
            rows = _replace(conn, schema, tables, say)
        views = _create_views(conn, schema, rows)
        _grant_reader(conn, schema, reader_role)
    return BiLoadReport(schema, mode, rows, views, time.monotonic() - started)


def _replace(conn: Any, schema: str, tables: Sequence[GoldTable], say: Progress) -> dict[str, int]:
    staging = f"{schema}__staging"
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(staging)))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(staging)))
    rows = {}
    for table in tables:
        data = _read_checked(table)
        _create_table(conn, staging, table, data.schema)
        rows[table.name] = _copy(conn, sql.Identifier(staging, table.name), data)
        _create_indexes(conn, staging, table, data.schema.names)
        say(f"{schema}.{table.name}: {rows[table.name]:,} rows")
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    conn.execute(
        sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(sql.Identifier(staging), sql.Identifier(schema))
    )
    return rows


def _merge(conn: Any, schema: str, tables: Sequence[GoldTable], say: Progress) -> dict[str, int]:
    rows = {}
    for table in tables:
        data = _read_checked(table)
        existing = _columns_of(conn, schema, table.name)
        if not existing:
            _create_table(conn, schema, table, data.schema)
            _create_indexes(conn, schema, table, data.schema.names)
        elif existing != data.schema.names:
            raise BiExportError(
                f"{schema}.{table.name} has columns {existing} but gold has {data.schema.names}: "
                "load with mode 'replace' once to take the new schema"
            )
        stage = f"stage_{table.name}"
        conn.execute(
            sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
                sql.Identifier(stage), sql.Identifier(schema, table.name)
            )
        )
        _copy(conn, sql.Identifier(stage), data)
        rows[table.name] = _upsert(conn, schema, table, data.schema.names, stage)
        say(f"{schema}.{table.name}: {rows[table.name]:,} rows merged")
    return rows


def _upsert(conn: Any, schema: str, table: GoldTable, columns: list[str], stage: str) -> int:
    target = sql.Identifier(schema, table.name)
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    if not table.primary_key:  # no key to merge on: the table is replaced
        conn.execute(sql.SQL("DELETE FROM {}").format(target))
        conflict = sql.SQL("")
    else:
        updates = [c for c in columns if c not in table.primary_key]
        conflict = sql.SQL(" ON CONFLICT ({}) DO ").format(
            sql.SQL(", ").join(map(sql.Identifier, table.primary_key))
        ) + (
            sql.SQL("UPDATE SET ")
            + sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in updates)
            if updates
            else sql.SQL("NOTHING")
        )
    statement = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        target, names, names, sql.Identifier(stage)
    )
    return conn.execute(statement + conflict).rowcount


def _read_checked(table: GoldTable) -> pa.Table:
    data = table.read()
    for key in (table.primary_key, table.natural_key):
        if key:
            check_primary_key(table.name, data, key)
    return data


def _columns_of(conn: Any, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    return [r[0] for r in rows]


def postgres_type(table: str, column: pa.Field) -> str:
    """The PostgreSQL type of an Arrow column (DECIMAL stays exact NUMERIC)."""
    kind = column.type
    simple = [
        (pa.types.is_boolean, "boolean"),
        (lambda k: pa.types.is_int8(k) or pa.types.is_int16(k), "smallint"),
        (pa.types.is_int32, "integer"),
        (pa.types.is_int64, "bigint"),
        (pa.types.is_floating, "double precision"),
        (
            lambda k: pa.types.is_string(k) or pa.types.is_large_string(k) or pa.types.is_string_view(k),
            "text",
        ),
        (pa.types.is_date, "date"),
        (lambda k: pa.types.is_binary(k) or pa.types.is_large_binary(k), "bytea"),
    ]
    for test, name in simple:
        if test(kind):
            return name
    if pa.types.is_decimal(kind):
        return f"numeric({kind.precision}, {kind.scale})"
    if pa.types.is_timestamp(kind):
        return "timestamptz" if kind.tz else "timestamp"
    raise BiExportError(
        f"gold table {table!r}, column {column.name!r}: type {kind} has no PostgreSQL mapping"
    )


def _create_table(conn: Any, schema: str, table: GoldTable, arrow_schema: pa.Schema) -> None:
    columns = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(f.name),
            sql.SQL(postgres_type(table.name, f)),
            sql.SQL(" NOT NULL" if f.name in (*table.primary_key, *table.natural_key) else ""),
        )
        for f in arrow_schema
    ]
    if table.primary_key:
        columns.append(
            sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, table.primary_key)))
        )
    if table.natural_key:
        columns.append(
            sql.SQL("UNIQUE ({})").format(sql.SQL(", ").join(map(sql.Identifier, table.natural_key)))
        )
    conn.execute(
        sql.SQL("CREATE TABLE {} ({})").format(
            sql.Identifier(schema, table.name), sql.SQL(", ").join(columns)
        )
    )


def _create_indexes(conn: Any, schema: str, table: GoldTable, columns: Sequence[str]) -> None:
    if table.name.startswith("dim_"):
        return  # dimensions are small and looked up by their primary key
    leading_key = table.primary_key[:1]
    for column in FILTER_COLUMNS:
        if column in columns and (column,) != leading_key:
            conn.execute(
                sql.SQL("CREATE INDEX {} ON {} ({})").format(
                    sql.Identifier(f"{table.name}_{column}_idx"),
                    sql.Identifier(schema, table.name),
                    sql.Identifier(column),
                )
            )


def _copy(conn: Any, target: sql.Identifier, data: pa.Table) -> int:
    """Bulk load with COPY ... FROM STDIN (CSV): NULL is an unquoted empty field and
    Arrow quotes every string, so empty strings stay empty strings."""
    names = sql.SQL(", ").join(map(sql.Identifier, data.schema.names))
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(target, names)
    options = pacsv.WriteOptions(include_header=False)
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for batch in data.to_batches(max_chunksize=COPY_BATCH_ROWS):
            buffer = io.BytesIO()
            pacsv.write_csv(pa.Table.from_batches([batch], schema=data.schema), buffer, write_options=options)
            copy.write(buffer.getvalue())
    return data.num_rows


def _create_views(conn: Any, schema: str, loaded: dict[str, int]) -> tuple[str, ...]:
    created = []
    for view in DASHBOARD_VIEWS:
        columns = {table: _columns_of(conn, schema, table) for table in view.needs}
        if not all(columns.values()):
            continue  # a table it reads is not in gold yet
        conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(schema, view.name)))
        conn.execute(
            sql.SQL("CREATE VIEW {} AS ").format(sql.Identifier(schema, view.name))
            + view.select(schema, columns[view.base])
        )
        created.append(view.name)
    return tuple(created)


def _grant_reader(conn: Any, schema: str, role: str) -> None:
    """``role`` may log in and SELECT from the schema's tables and views, nothing else."""
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    identifier = sql.Identifier(role)
    conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(identifier))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), identifier))
    conn.execute(
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(sql.Identifier(schema), identifier)
    )
