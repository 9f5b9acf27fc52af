"""The schema a batch is read with: explicit DDL, or inferred from the files (on the
workers) and merged into the schema of earlier batches, hints applied."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa
from pyspark.sql import types as T

from lakehouse.engine.compat import parse_binary_files
from lakehouse.pipelines.autoloader.listing import SourceFile, match_listed
from lakehouse.pipelines.autoloader.options import TEXT_SCHEMA, FileSource, Schema, TextFormat
from lakehouse.pipelines.autoloader.parsing import discover_columns, merge_types

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def merge_schema(
    current: Schema, discovered: Sequence[tuple[str, str]], hints: Schema
) -> tuple[Schema, list[str]]:
    """``current`` plus the discovered columns it lacks (hint types win; only-NULL
    columns become strings), plus hinted columns still missing. Returns the schema and
    the names added."""
    hint_types = dict(hints)
    merged: dict[str, str] = {}
    for name, kind in discovered:
        merged[name] = merge_types(merged.get(name, "null"), kind)
    known = {name for name, _ in current}
    schema = list(current)
    added = []
    for name, kind in [*merged.items(), *((n, t) for n, t in hints if n not in merged)]:
        if name in known:
            continue
        kind = hint_types.get(name, kind)
        schema.append((name, "string" if kind == "null" else kind))
        known.add(name)
        added.append(name)
    return schema, added


_DISCOVERED = T.StructType(
    [
        T.StructField("file_index", T.IntegerType()),
        T.StructField("position", T.IntegerType()),
        T.StructField("name", T.StringType()),
        T.StructField("type", T.StringType()),
    ]
)
_PARSED_DDL: dict[str, Schema] = {}  # the engine parses DDL: once per string and process


def parse_ddl(spark: SparkSession, ddl: str, *, what: str) -> Schema:
    """``[(name, type)]`` of a DDL string such as ``"id bigint, amount decimal(10,2)"``."""
    if ddl in _PARSED_DDL:
        return list(_PARSED_DDL[ddl])
    try:
        fields = spark.createDataFrame([], ddl).schema.fields
    except Exception as exc:
        raise ValueError(
            f"{what} is not valid DDL ({ddl!r}): {str(exc).splitlines()[0]}; "
            "expected e.g. 'id bigint, amount decimal(10,2), day date'"
        ) from exc
    _PARSED_DDL[ddl] = [(f.name, f.dataType.simpleString()) for f in fields]
    return list(_PARSED_DDL[ddl])


def explicit_schema(spark: SparkSession, source: FileSource) -> Schema:
    if source.format == "text":
        return list(TEXT_SCHEMA)
    if source.schema:
        return parse_ddl(spark, source.schema, what=f"FileSource {source.path!r} schema")
    return []


def batch_schema(
    spark: SparkSession, source: FileSource, fmt: TextFormat, current: Schema, files: list[SourceFile]
) -> tuple[Schema, list[str]]:
    """The schema batch ``files`` are read with, and the columns it adds to ``current``."""
    explicit = explicit_schema(spark, source)
    if explicit:
        known = {name for name, _ in current}
        return explicit, ([n for n, _ in explicit if n not in known] if current else [])
    hints = (
        parse_ddl(spark, source.schema_hints, what=f"FileSource {source.path!r} schema_hints")
        if source.schema_hints
        else []
    )
    if source.format == "parquet":
        discovered = [
            (f.name, f.dataType.simpleString())
            for p in files
            for f in spark.read.parquet(p.path).schema.fields
        ]
    else:
        discovered = _discover(spark, fmt, files)
    schema, added = merge_schema(current, discovered, hints)
    return schema, (added if current else [])


def _discover(spark: SparkSession, fmt: TextFormat, files: list[SourceFile]) -> list[tuple[str, str]]:
    """Columns of ``files`` in order of appearance, inferred on the workers."""
    paths = [f.path for f in files]

    def discover(path: str, content: bytes) -> pa.Table:
        columns = discover_columns(content, fmt)
        return pa.table(
            {
                "file_index": pa.array([paths.index(match_listed(paths, path))] * len(columns), pa.int32()),
                "position": pa.array(range(len(columns)), pa.int32()),
                "name": pa.array([n for n, _ in columns], pa.string()),
                "type": pa.array([t for _, t in columns], pa.string()),
            }
        )

    rows = parse_binary_files(spark, paths, discover, _DISCOVERED).collect()
    return [(r["name"], r["type"]) for r in sorted(rows, key=lambda r: (r["file_index"], r["position"]))]
