"""Silver steps: read bronze, apply the pure transformations, write silver.

Silver is rebuilt from all bronze rows up to the run date, so late records and
re-runs give the same result (idempotent); incremental MERGE comes with the
declarative pipelines.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession

from lakehouse.bronze.ingest import latest_snapshot, partition_date
from lakehouse.lake import Lake, TableResult, overwrite_table, read_delta
from lakehouse.silver.pharma import clean_order_lines, clean_product_prices, clean_products


def run_silver_pharma(spark: SparkSession, lake: Lake, *, run_date: dt.date) -> list[TableResult]:
    """Build ``products``, ``product_prices``, ``order_lines`` and its quarantine."""
    products = clean_products(
        latest_snapshot(read_delta(spark, lake.bronze("referential", "products")), until=run_date)
    )
    prices = clean_product_prices(
        latest_snapshot(read_delta(spark, lake.bronze("referential", "product_prices")), until=run_date)
    )
    results = [
        overwrite_table(spark, products, "silver.pharma.products", lake.silver("pharma", "products")),
        overwrite_table(
            spark, prices, "silver.pharma.product_prices", lake.silver("pharma", "product_prices")
        ),
    ]
    bronze_lines = read_delta(spark, lake.bronze("erp", "order_lines")).where(partition_date() <= run_date)
    silver_products = read_delta(spark, lake.silver("pharma", "products"))
    lines, quarantine = clean_order_lines(bronze_lines, silver_products)
    results.append(
        overwrite_table(spark, lines, "silver.pharma.order_lines", lake.silver("pharma", "order_lines"))
    )
    results.append(
        overwrite_table(
            spark,
            quarantine,
            "silver.pharma.order_lines_quarantine",
            lake.silver("pharma", "order_lines_quarantine"),
        )
    )
    return results
