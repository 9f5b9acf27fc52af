"""Bronze ingestion: landing files and referential snapshots into Delta.

Landing files are ingested once: a run reads only files whose lake-relative path is
not yet in the bronze table's ``_source_file`` column, and appends them in one Delta
commit, so re-running a day changes nothing and a crashed run leaves no partial batch.
Referential tables are snapshotted per run date (``replaceWhere`` on that date).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakehouse.bronze.delimited import DelimitedFormat, make_parser
from lakehouse.lake import Lake, delta_exists, list_landing_files, read_delta, write_delta

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lakehouse.postgres import PostgresEndpoint

PARTITION_COLUMNS = ("year", "month", "day")

# ERP exports: French conventions (";" separator, latin-1, comma decimals, dd/mm/yyyy).
ORDER_LINES = DelimitedFormat(
    columns=(
        "order_id",
        "line_number",
        "order_date",
        "customer_id",
        "product_id",
        "product_label",
        "site_id",
        "quantity",
        "unit_price",
        "discount_pct",
        "sales_channel",  # appears in exports from a later day on; NULL before
    )
)
STOCK_SNAPSHOTS = DelimitedFormat(
    columns=("snapshot_date", "site_id", "product_id", "quantity_on_hand", "safety_stock")
)
ERP_CSV_ENTITIES: dict[str, DelimitedFormat] = {
    "order_lines": ORDER_LINES,
    "stock_snapshots": STOCK_SNAPSHOTS,
}
REFERENTIAL_TABLES = ("products", "product_prices", "sites", "machines", "customers")


@dataclass(frozen=True)
class IngestionResult:
    """What one ingestion run did to one bronze table."""

    table: str
    path: str
    new_files: list[str] = field(default_factory=list)
    skipped_files: int = 0  # already ingested by an earlier run
    rows: int = 0
    corrupt_rows: int = 0
    rescued_rows: int = 0

    def __str__(self) -> str:
        return (
            f"{self.table}: {len(self.new_files)} new file(s), {self.skipped_files} already "
            f"ingested, {self.rows} rows ({self.corrupt_rows} corrupt, "
            f"{self.rescued_rows} with rescued data) -> {self.path}"
        )


def with_partition_from_drop_date(df: DataFrame, path_column: str = "_source_file") -> DataFrame:
    """Add ``year``/``month``/``day`` (zero-padded strings) from the file's drop folder."""
    pattern = r"/(\d{4})-(\d{2})-(\d{2})/"
    return df.withColumns(
        {
            name: F.regexp_extract(F.col(path_column), pattern, index)
            for index, name in enumerate(PARTITION_COLUMNS, start=1)
        }
    )


def with_ingestion_metadata(df: DataFrame, *, batch_id: str, ingested_at: dt.datetime) -> DataFrame:
    return df.withColumns(
        {
            "_ingested_at": F.lit(ingested_at).cast("timestamp"),
            "_batch_id": F.lit(batch_id),
        }
    )


def date_partition_filter(day: dt.date) -> str:
    """SQL predicate selecting one day's partition."""
    return f"year = '{day:%Y}' AND month = '{day:%m}' AND day = '{day:%d}'"


def partition_date(prefix: str = "") -> Column:
    """The partition's date as a DATE column."""
    return F.to_date(F.concat_ws("-", F.col(f"{prefix}year"), F.col(f"{prefix}month"), F.col(f"{prefix}day")))


def ingested_files(spark: SparkSession, path: str) -> set[str]:
    if not delta_exists(path):
        return set()
    rows = read_delta(spark, path).select("_source_file").distinct().collect()
    return {row["_source_file"] for row in rows}


def read_files_once(spark: SparkSession, paths: list[str]) -> DataFrame:
    """``binaryFile`` rows (path, content), one per file.

    Sail 0.7 returns a file twice when its byte range straddles a split boundary
    (seen with ten uneven ~0.1 MB files), so rows are deduplicated by path.
    """
    return spark.read.format("binaryFile").load(paths).dropDuplicates(["path"])


def ingest_delimited_files(
    spark: SparkSession,
    lake: Lake,
    *,
    source: str,
    entity: str,
    fmt: DelimitedFormat,
    run_date: dt.date,
    batch_id: str,
    ingested_at: dt.datetime,
    suffix: str = ".csv",
) -> IngestionResult:
    """Append landing files of ``source/entity`` dropped up to ``run_date`` and not yet
    ingested to ``bronze/source=<source>/table=<entity>``."""
    target = lake.bronze(source, entity)
    files = list_landing_files(lake.landing(source, entity), until=run_date, suffix=suffix)
    seen = ingested_files(spark, target)
    new = [f for f in files if lake.relative(f.path) not in seen]
    result = IngestionResult(table=f"bronze.{source}.{entity}", path=target)
    if not new:
        return IngestionResult(**{**result.__dict__, "skipped_files": len(files)})
    relative_paths = [lake.relative(f.path) for f in new]
    rows = (
        read_files_once(spark, [f.path for f in new])
        .mapInPandas(make_parser(fmt, relative_paths), fmt.spark_schema())
        .transform(with_partition_from_drop_date)
        .transform(with_ingestion_metadata, batch_id=batch_id, ingested_at=ingested_at)
    )
    write_delta(rows, target, mode="append", partition_by=PARTITION_COLUMNS)
    counts = (
        read_delta(spark, target)
        .where(F.col("_batch_id") == batch_id)
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count("_corrupt_record").alias("corrupt"),
            F.count("_rescued_data").alias("rescued"),
        )
        .first()
    )
    return IngestionResult(
        table=result.table,
        path=target,
        new_files=relative_paths,
        skipped_files=len(files) - len(new),
        rows=counts["rows"],
        corrupt_rows=counts["corrupt"],
        rescued_rows=counts["rescued"],
    )


def read_referential_table(spark: SparkSession, endpoint: PostgresEndpoint, table: str) -> DataFrame:
    """One referential table over JDBC (Sail: connectorx; JVM Spark: the JDBC driver)."""
    reader = (
        spark.read.format("jdbc")
        .option("url", endpoint.jdbc_url)
        .option("dbtable", f"{endpoint.schema}.{table}")
        .option("user", endpoint.user)
    )
    if endpoint.password:
        reader = reader.option("password", endpoint.password)
    return reader.load()


def snapshot_referential(
    spark: SparkSession,
    lake: Lake,
    endpoint: PostgresEndpoint,
    *,
    table: str,
    run_date: dt.date,
    batch_id: str,
    ingested_at: dt.datetime,
) -> IngestionResult:
    """Write today's full snapshot of one referential table to
    ``bronze/source=referential/table=<table>``, replacing an earlier snapshot of the
    same run date (idempotent)."""
    target = lake.bronze("referential", table)
    rows = (
        read_referential_table(spark, endpoint, table)
        .withColumns(
            {
                "_source_file": F.lit(f"postgres:{endpoint.schema}.{table}"),
                "year": F.lit(f"{run_date:%Y}"),
                "month": F.lit(f"{run_date:%m}"),
                "day": F.lit(f"{run_date:%d}"),
            }
        )
        .transform(with_ingestion_metadata, batch_id=batch_id, ingested_at=ingested_at)
    )
    replace = date_partition_filter(run_date) if delta_exists(target) else None
    write_delta(rows, target, mode="overwrite", partition_by=PARTITION_COLUMNS, replace_where=replace)
    count = read_delta(spark, target).where(date_partition_filter(run_date)).count()
    return IngestionResult(table=f"bronze.referential.{table}", path=target, new_files=[], rows=count)


def latest_snapshot(df: DataFrame, *, until: dt.date) -> DataFrame:
    """Rows of the most recent referential snapshot taken on or before ``until``."""
    dated = df.withColumn("_snapshot_date", partition_date()).where(F.col("_snapshot_date") <= F.lit(until))
    last = dated.agg(F.max("_snapshot_date").alias("_last"))
    return dated.join(last, dated["_snapshot_date"] == last["_last"]).drop("_last", "_snapshot_date")
