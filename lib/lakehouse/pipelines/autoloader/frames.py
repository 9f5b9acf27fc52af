"""A batch's files as one lazy DataFrame: parsed on the workers (or read as Parquet),
cast to the schema with the values that do not fit rescued, and stamped with the
batch's metadata columns."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

import pyarrow as pa
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from lakehouse.engine.compat import nullable_literal, parquet_files_one_by_one, parse_binary_files
from lakehouse.pipelines.autoloader.listing import SourceFile, match_listed
from lakehouse.pipelines.autoloader.options import (
    BATCH_ID,
    CORRUPT,
    INGESTED_AT,
    LINE_NUMBER,
    PARSED_METADATA,
    RESCUED,
    SOURCE_FILE,
    FileSource,
    Schema,
    TextFormat,
)
from lakehouse.pipelines.autoloader.parsing import parse_file, parsed_schema

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

_COMPLEX_TYPE = re.compile(r"^(array|map|struct)\s*<", re.IGNORECASE)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _col(name: str) -> Column:
    return F.col(_q(name))


def ddl(schema: Schema) -> str:
    return ", ".join(f"{_q(name)} {kind}" for name, kind in schema)


def with_metadata(df: DataFrame, source: FileSource, batch_id: int, ingested_at: dt.datetime) -> DataFrame:
    anchor = F.col(SOURCE_FILE)
    return df.withColumns(
        {
            INGESTED_AT: nullable_literal(F.lit(ingested_at).cast("timestamp"), anchor),
            BATCH_ID: nullable_literal(F.lit(batch_id).cast("bigint"), anchor),
        }
    ).withColumnsRenamed({RESCUED: source.rescued_data_column, CORRUPT: source.corrupt_record_column})


def empty_frame(spark: SparkSession, source: FileSource, schema: Schema) -> DataFrame:
    metadata: Schema = [
        (RESCUED, "string"),
        (CORRUPT, "string"),
        (SOURCE_FILE, "string"),
        (LINE_NUMBER, "int"),
        (INGESTED_AT, "timestamp"),
        (BATCH_ID, "bigint"),
    ]
    df = spark.createDataFrame([], ddl([*schema, *metadata]))
    return df.withColumnsRenamed({RESCUED: source.rescued_data_column, CORRUPT: source.corrupt_record_column})


def batch_frame(
    spark: SparkSession,
    source: FileSource,
    fmt: TextFormat,
    files: list[SourceFile],
    schema: Schema,
    batch_id: int,
    ingested_at: dt.datetime,
) -> DataFrame:
    if source.format == "parquet":
        typed = _parquet_frame(spark, files, schema)
    else:
        typed = _typed(_parsed_frame(spark, fmt, files, schema), schema)
    return with_metadata(typed, source, batch_id, ingested_at)


def _parsed_frame(spark: SparkSession, fmt: TextFormat, files: list[SourceFile], schema: Schema) -> DataFrame:
    """Raw string columns of ``schema`` plus parse metadata, parsed on the workers."""
    paths = [f.path for f in files]
    columns = [name for name, _ in schema]
    types = dict(schema)

    def parse(path: str, content: bytes) -> pa.Table:
        return parse_file(content, match_listed(paths, path), fmt, columns, types=types)

    # a StructType, not DDL: the client would ask the engine to parse a DDL string
    return parse_binary_files(spark, paths, parse, from_arrow_schema(parsed_schema(columns)))


def _cast(column: Column, kind: str) -> Column:
    """``column`` as ``kind``, NULL where the value does not fit."""
    if _COMPLEX_TYPE.match(kind):
        return F.from_json(column, kind)
    return column.try_cast(kind)


def _rescue(base: Column, failures: dict[str, Column]) -> Column:
    """Merge ``{"col": raw}`` for each failed value into the JSON object ``base``."""
    if not failures:
        return base
    extra = F.to_json(F.struct(*[value.alias(name) for name, value in failures.items()]))
    merged = F.concat(
        base.substr(F.lit(1), F.length(base) - 1), F.lit(","), extra.substr(F.lit(2), F.length(extra))
    )
    return F.when(extra == "{}", base).when(base.isNull(), extra).otherwise(merged)


def _typed(raw: DataFrame, schema: Schema) -> DataFrame:
    """Cast raw string columns to ``schema``; values that do not fit go to ``_rescued_data``."""
    columns, failures = [], {}
    for name, kind in schema:
        value = _col(name)
        if kind == "string":
            columns.append(value.alias(name))
            continue
        typed = _cast(value, kind)
        columns.append(typed.alias(name))
        failures[name] = F.when(value.isNotNull() & typed.isNull(), value)
    rescued = _rescue(F.col(RESCUED), failures).alias(RESCUED)
    return raw.select(*columns, rescued, *[F.col(c) for c in PARSED_METADATA[1:]])


def _parquet_frame(spark: SparkSession, files: list[SourceFile], schema: Schema) -> DataFrame:
    """Each file read natively and conformed to ``schema``: type mismatches and columns
    the schema lacks go to ``_rescued_data``."""
    frames = []
    for path, df in parquet_files_one_by_one(spark, [f.path for f in files]):
        present = {field.name: field.dataType.simpleString() for field in df.schema.fields}
        columns, failures = [], {}
        for name, kind in schema:
            if name not in present:
                columns.append(F.lit(None).cast(kind).alias(name))
            elif present[name] == kind:
                columns.append(_col(name).alias(name))
            else:
                typed = _col(name).try_cast(kind)
                columns.append(typed.alias(name))
                failures[name] = F.when(_col(name).isNotNull() & typed.isNull(), _col(name).cast("string"))
        known = {name for name, _ in schema}
        extra = [n for n in present if n not in known]
        base = F.to_json(F.struct(*[_col(n) for n in extra])) if extra else F.lit(None).cast("string")
        base = F.when(base != "{}", base)
        frames.append(
            df.select(
                *columns,
                _rescue(base, failures).alias(RESCUED),
                F.lit(None).cast("string").alias(CORRUPT),
                nullable_literal(F.lit(path), _col(df.columns[0])).alias(SOURCE_FILE),
                F.lit(None).cast("int").alias(LINE_NUMBER),
            )
        )
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result
