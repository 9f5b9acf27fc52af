"""Tableau extracts: one ``.hyper`` file per subject area, written atomically.

Each extract holds a domain's gold tables in the ``Extract`` schema with their
types (DATE, TIMESTAMP, NUMERIC for money), NOT NULL keys and *assumed* primary and
foreign keys, from which Tableau builds the relationships of the data model. Hyper
accepts a foreign key only to a table's assumed primary key, so each table is keyed on
its contract's reference key: ``dim_site`` on its natural key ``site_id``, which every
fact and KPI carries, rather than on the star's ``site_sk``, which only ``fact_ventes``
has. With ``single_table=True`` each fact is instead joined to its dimensions into one
``"Extract"."Extract"`` table (one file per fact), the shape older Tableau servers read.

A file is written under a temporary name in the same folder and moved over the old one
with ``os.replace``: a reader sees the previous extract or the new one, never half of one.
Data goes through Parquet files that Hyper reads itself (``external()``), which is much
faster than inserting rows from Python.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.bi.gold import (
    BiExportError,
    GoldTable,
    SubjectArea,
    check_primary_key,
    foreign_keys,
    subject_areas,
)

SCHEMA = "Extract"
SINGLE_TABLE = "Extract"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExtractReport:
    """One written extract: its file, the rows of each table, size and time."""

    name: str
    path: Path
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def export_tableau(
    areas: Sequence[SubjectArea] | Sequence[GoldTable],
    out_dir: str | Path,
    *,
    single_table: bool = False,
    progress: Progress | None = None,
) -> list[ExtractReport]:
    """Write the extracts of ``areas`` (or of the subject areas of these gold tables)
    into ``out_dir`` and return what was written."""
    if areas and isinstance(areas[0], GoldTable):
        areas = subject_areas(areas)  # type: ignore[arg-type]
    if not areas:
        raise BiExportError("no gold table to export: run the gold layer first")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    with hyper_process() as hyper:
        for area in areas:
            for name, build in _extract_plan(area, single_table):
                started = time.monotonic()
                rows = write_atomically(out / f"{name}.hyper", build, hyper)
                report = ExtractReport(name, out / f"{name}.hyper", rows, time.monotonic() - started)
                if progress:
                    progress(f"{report.path.name}: {sum(rows.values()):,} rows in {len(rows)} table(s)")
                reports.append(report)
    return reports


@contextmanager
def hyper_process():
    """A Hyper server for this process, logging to a temporary folder (not the cwd)."""
    from tableauhyperapi import HyperProcess, Telemetry

    log_dir = tempfile.mkdtemp(prefix="hyper-logs-")
    try:
        with HyperProcess(
            Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_dir": log_dir}
        ) as hyper:
            yield hyper
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


def write_atomically(target: Path, fill: Callable[[Any], dict[str, int]], hyper: Any) -> dict[str, int]:
    """Create a new database at a temporary path beside ``target``, ``fill`` it, then
    move it over ``target``. On any error the temporary file is removed and ``target``
    is left as it was."""
    from tableauhyperapi import Connection, CreateMode

    temporary = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.tmp.hyper")
    try:
        with Connection(hyper.endpoint, str(temporary), CreateMode.CREATE_AND_REPLACE) as conn:
            rows = fill(conn)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return rows


def _extract_plan(area: SubjectArea, single_table: bool) -> list[tuple[str, Callable[[Any], dict[str, int]]]]:
    """(file stem, function filling the database) for each extract of ``area``."""
    if not single_table:
        return [(area.name, lambda conn: write_star(conn, area))]
    if not area.facts:
        raise BiExportError(f"subject area {area.name!r} has no fact table to denormalise")
    return [(fact.name, lambda conn, fact=fact: write_denormalised(conn, area, fact)) for fact in area.facts]


def write_star(conn: Any, area: SubjectArea) -> dict[str, int]:
    """Every table of the area, then the assumed keys relating them."""
    conn.catalog.create_schema(SCHEMA)
    names = [t.name for t in area.tables]
    rows, columns = {}, {}
    with tempfile.TemporaryDirectory(prefix="hyper-stage-") as stage:
        for table in area.tables:
            data = normalise(table.read())
            if table.reference_key:
                check_primary_key(table.name, data, table.reference_key)
            rows[table.name] = insert_table(conn, table.name, data, Path(stage), not_null=table.reference_key)
            columns[table.name] = data.schema.names
    for table in area.tables:
        if table.reference_key:
            conn.execute_command(
                f"ALTER TABLE {_table(table.name)} ADD ASSUMED PRIMARY KEY ({_columns(table.reference_key)})"
            )
    for table in area.tables:
        for column, dimension in foreign_keys(table, columns[table.name], names):
            conn.execute_command(
                f"ALTER TABLE {_table(table.name)} ADD ASSUMED FOREIGN KEY ({_columns([column])}) "
                f"REFERENCES {_table(dimension)} ({_columns([column])})"
            )
    return rows


def write_denormalised(conn: Any, area: SubjectArea, fact: GoldTable) -> dict[str, int]:
    """``fact`` left-joined to each dimension of the area it references, as one table."""
    conn.catalog.create_schema(SCHEMA)
    data = denormalise(fact, area)
    with tempfile.TemporaryDirectory(prefix="hyper-stage-") as stage:
        return {
            SINGLE_TABLE: insert_table(conn, SINGLE_TABLE, data, Path(stage), not_null=fact.reference_key)
        }


def denormalise(fact: GoldTable, area: SubjectArea) -> pa.Table:
    """The fact's rows (same count) with the columns of its dimensions; a dimension
    column whose name the result already has is prefixed with the dimension's name."""
    data = normalise(fact.read())
    if fact.reference_key:
        check_primary_key(fact.name, data, fact.reference_key)
    for column, dimension_name in foreign_keys(fact, data.schema.names, [t.name for t in area.tables]):
        dimension = area.table(dimension_name)
        assert dimension is not None  # foreign_keys only returns dimensions of the area
        dim = normalise(dimension.read())
        check_primary_key(dimension.name, dim, (column,))
        dim = dim.rename_columns(
            [
                c if c == column or c not in data.schema.names else f"{dimension_name}_{c}"
                for c in dim.schema.names
            ]
        )
        data = data.join(dim, keys=column, join_type="left outer")
    return data


def normalise(data: pa.Table) -> pa.Table:
    """Types Hyper reads from Parquet the same way on every platform: plain strings,
    and timestamps as UTC wall-clock time (TIMESTAMP, no time zone)."""
    fields = []
    for f in data.schema:
        kind = f.type
        if pa.types.is_timestamp(kind):
            kind = pa.timestamp("us")
        elif pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            kind = pa.string()
        elif pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
            kind = pa.binary()
        fields.append(pa.field(f.name, kind, f.nullable))
    return data.cast(pa.schema(fields)) if fields != list(data.schema) else data


def hyper_type(table: str, column: pa.Field) -> Any:
    """The Hyper SQL type of an Arrow column (DECIMAL stays exact NUMERIC)."""
    from tableauhyperapi import SqlType

    kind = column.type
    if pa.types.is_boolean(kind):
        return SqlType.bool()
    if pa.types.is_int8(kind) or pa.types.is_int16(kind):
        return SqlType.small_int()
    if pa.types.is_int32(kind):
        return SqlType.int()
    if pa.types.is_int64(kind):
        return SqlType.big_int()
    if pa.types.is_floating(kind):
        return SqlType.double()
    if pa.types.is_decimal(kind):
        return SqlType.numeric(kind.precision, kind.scale)
    if pa.types.is_string(kind):
        return SqlType.text()
    if pa.types.is_date(kind):
        return SqlType.date()
    if pa.types.is_timestamp(kind):
        return SqlType.timestamp_tz() if kind.tz else SqlType.timestamp()
    if pa.types.is_binary(kind):
        return SqlType.bytes()
    raise BiExportError(
        f"gold table {table!r}, column {column.name!r}: type {kind} has no Tableau extract type; "
        "cast it in gold or leave it out"
    )


def insert_table(conn: Any, name: str, data: pa.Table, stage: Path, *, not_null: Sequence[str] = ()) -> int:
    """Create ``"Extract".<name>`` with the Arrow schema's types and load ``data``."""
    from tableauhyperapi import NOT_NULLABLE, NULLABLE, TableDefinition, TableName, escape_string_literal

    definition = TableDefinition(
        TableName(SCHEMA, name),
        [
            TableDefinition.Column(
                f.name, hyper_type(name, f), NOT_NULLABLE if f.name in not_null else NULLABLE
            )
            for f in data.schema
        ],
    )
    conn.catalog.create_table(definition)
    if data.num_rows == 0:
        return 0
    parquet = stage / f"{name}.parquet"
    pq.write_table(data, parquet)
    return conn.execute_command(
        f"INSERT INTO {_table(name)} ({_columns(data.schema.names)}) "
        f"SELECT {_columns(data.schema.names)} FROM external({escape_string_literal(str(parquet))})"
    )


def _table(name: str) -> str:
    from tableauhyperapi import TableName

    return str(TableName(SCHEMA, name))


def _columns(names: Sequence[str]) -> str:
    from tableauhyperapi import Name

    return ", ".join(str(Name(n)) for n in names)
