"""Silver datasets of the pharma pipeline (declarative definitions)."""

from __future__ import annotations

from pyspark.sql import functions as F

from lakehouse import pipelines as dp
from lakehouse.bronze.sources import partition_date
from lakehouse.silver.pharma import (
    LATEST_VERSION_RULE,
    ORDER_LINE_RULES,
    clean_product_prices,
    clean_products,
    prepare_order_lines,
)


@dp.materialized_view(path="silver/domain=pharma/table=products")
def silver_products(bronze_products):
    """One row per product (key product_id), typed."""
    return clean_products(bronze_products)


@dp.materialized_view(path="silver/domain=pharma/table=product_prices")
def silver_product_prices(bronze_product_prices):
    """One row per product and price period (key product_id, valid_from); valid_to exclusive."""
    return clean_product_prices(bronze_product_prices)


@dp.materialized_view(path="silver/domain=pharma/table=order_lines", quarantine=True)
@dp.expect_all_or_drop({**ORDER_LINE_RULES, **LATEST_VERSION_RULE})
def silver_order_lines(bronze_order_lines, silver_products):
    """One row per order line (key order_id, line_number), typed and validated; the
    latest ingested version wins. Rejected lines: order_lines_quarantine."""
    run_date = dp.current().parameters["run_date"]
    return prepare_order_lines(bronze_order_lines.where(partition_date() <= F.lit(run_date)), silver_products)
