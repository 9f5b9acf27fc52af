"""What the bronze datasets read: ERP export columns, drop-date partitions, JDBC."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakehouse.engine import jdbc_options

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lakehouse.postgres import PostgresEndpoint

PARTITION_COLUMNS = ("year", "month", "day")

# ERP exports, kept as text in bronze (typing happens in silver).
ORDER_LINE_COLUMNS = (
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
STOCK_SNAPSHOT_COLUMNS = ("snapshot_date", "site_id", "product_id", "quantity_on_hand", "safety_stock")
# French exports: ";" separator, latin-1, comma decimals, dd/mm/yyyy dates.
FRENCH_CSV = {"sep": ";", "encoding": "latin-1", "header": "true"}

# JSON sources, typed in bronze (JSON carries its own types; ISO 8601 UTC timestamps
# with a trailing "Z" cast to TIMESTAMP): a value that does not fit its type is NULL
# in the column and kept as text in _rescued_data; a line that is not a JSON object
# goes to _corrupt_record.
DELIVERY_SCHEMA = (
    "delivery_id string, order_id string, site_id string, customer_id string, "
    "promised_date date, actual_date date, quantity_ordered bigint, quantity_delivered bigint, carrier string"
)
PRODUCTION_BATCH_SCHEMA = (
    "batch_id string, machine_id string, site_id string, product_id string, "
    "start_ts timestamp, end_ts timestamp, units_produced bigint, units_rejected bigint"
)
IOT_READING_SCHEMA = (
    "machine_id string, ts timestamp, kwh double, kw double, temperature_c double, vibration_mm_s double"
)
# One document per file: the page of the recall API, its notices as an array.
RECALL_NOTICE_COLUMNS = ("notice_id", "published_date", "cip13", "lot_number", "severity", "reason")
RECALL_DOCUMENT_SCHEMA = (
    "source string, retrieved_at timestamp, notices array<struct<"
    + ", ".join(f"{c}: string" for c in RECALL_NOTICE_COLUMNS)
    + ">>"
)

# One record per line of the recall API's landing files (openFDA drug-enforcement shape):
# the fields mapped onto the notice columns; every other field goes to _rescued_data.
API_RECALL_SCHEMA = "recall_number string, report_date string, classification string, code_info string, reason_for_recall string"
API_RECALL_SOURCE = "openFDA drug enforcement API"


def string_schema(columns: tuple[str, ...]) -> str:
    """DDL declaring every column as a string."""
    return ", ".join(f"`{c}` string" for c in columns)


def with_partition_from_drop_date(df: DataFrame, path_column: str = "_source_file") -> DataFrame:
    """Add ``year``/``month``/``day`` (zero-padded strings) from the file's drop folder
    ``.../<YYYY-MM-DD>/<file>``."""
    pattern = r"/(\d{4})-(\d{2})-(\d{2})/"
    return df.withColumns(
        {
            name: F.regexp_extract(F.col(path_column), pattern, index)
            for index, name in enumerate(PARTITION_COLUMNS, start=1)
        }
    )


def explode_notices(df: DataFrame) -> DataFrame:
    """One row per notice of each recall document, with the document's ``source`` and
    ``retrieved_at``. A document with no notice gives no row; a document that did not
    parse (``notices`` NULL) keeps one row, with its ``_corrupt_record``."""
    notice_fields = [F.col(f"_notice.{c}").alias(c) for c in RECALL_NOTICE_COLUMNS]
    others = [c for c in df.columns if c != "notices"]
    return (
        df.where(F.col("notices").isNull() | (F.size("notices") > 0))
        .select(F.explode_outer("notices").alias("_notice"), *others)
        .select(*notice_fields, *others)
    )


# SQL: the drop-date partition as a DATE, the day a bronze row arrived (what silver's
# ``dp.by_day(arrival_day=...)`` takes).
DROP_DAY = "to_date(concat_ws('-', `year`, `month`, `day`))"


def dropped_on(days: Sequence[str]) -> str:
    """SQL selecting the rows dropped on ``days`` ('YYYY-MM-DD') by their partition
    columns compared to literals: the engine then reads those days' files only (it
    reads every file for a condition on ``DROP_DAY``, an expression of them)."""
    by_month: dict[tuple[str, str], list[str]] = {}
    for day in sorted(set(days)):
        year, month, dd = day.split("-")
        by_month.setdefault((year, month), []).append(f"'{dd}'")
    return " OR ".join(
        f"(`year` = '{year}' AND `month` = '{month}' AND `day` IN ({', '.join(dds)}))"
        for (year, month), dds in by_month.items()
    )


def partition_date() -> Column:
    """The drop-date partition as a DATE column."""
    return F.expr(DROP_DAY)


def read_referential_table(spark: SparkSession, endpoint: PostgresEndpoint, table: str) -> DataFrame:
    """One referential table over JDBC (Sail: connectorx; JVM Spark: the JDBC driver)."""
    reader = (
        spark.read.format("jdbc")
        .options(**jdbc_options(spark, endpoint))
        .option("dbtable", f"{endpoint.schema}.{table}")
        .option("user", endpoint.user)
    )
    if endpoint.password:
        reader = reader.option("password", endpoint.password)
    return reader.load()


def notices_from_api_records(df: DataFrame) -> DataFrame:
    """Recall API records as notice rows, in the column order of :func:`explode_notices`:
    ``notice_id`` = ``recall_number``, ``published_date`` = ``report_date`` as YYYY-MM-DD,
    ``lot_number`` = ``code_info``, ``severity`` = I/II/III of ``classification``,
    ``reason`` = ``reason_for_recall``; ``cip13`` is NULL (not in that API) and
    ``retrieved_at`` is the ingestion time (the API does not date its answers)."""
    severity = F.regexp_extract(F.col("classification"), r"^Class (I{1,3})$", 1)
    notices = {
        "notice_id": F.col("recall_number"),
        "published_date": F.regexp_replace(F.col("report_date"), r"^(\d{4})(\d{2})(\d{2})$", "$1-$2-$3"),
        "cip13": F.lit(None).cast("string"),
        "lot_number": F.col("code_info"),
        "severity": F.when(severity != "", severity),
        "reason": F.col("reason_for_recall"),
        # when() without otherwise(): a nullable column (a NOT NULL literal would make
        # later mergeSchema appends drop new columns on this engine)
        "source": F.when(F.col("_corrupt_record").isNull(), F.lit(API_RECALL_SOURCE)),
        "retrieved_at": F.col("_ingested_at").cast("timestamp"),
    }
    metadata = [c for c in df.columns if c.startswith("_")]
    return df.select(*[column.alias(name) for name, column in notices.items()], *metadata)
