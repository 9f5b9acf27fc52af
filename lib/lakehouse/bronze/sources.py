"""What the bronze datasets read: ERP export columns, drop-date partitions, JDBC."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import Column
from pyspark.sql import functions as F

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


def partition_date(prefix: str = "") -> Column:
    """The drop-date partition as a DATE column."""
    return F.to_date(F.concat_ws("-", F.col(f"{prefix}year"), F.col(f"{prefix}month"), F.col(f"{prefix}day")))


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
