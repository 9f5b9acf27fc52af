"""Silver datasets of the pharma domain in the medallion pipeline (declarative definitions)."""

from __future__ import annotations

from pyspark.sql import functions as F

from lakehouse import pipelines as dp
from lakehouse.bronze.sources import partition_date
from lakehouse.silver.pharma import (
    DELIVERY_LATEST_VERSION_RULE,
    DELIVERY_RULES,
    LATEST_VERSION_RULE,
    ORDER_LINE_RULES,
    STOCK_LATEST_VERSION_RULE,
    STOCK_SNAPSHOT_RULES,
    clean_product_prices,
    clean_products,
    clean_sites,
    prepare_deliveries,
    prepare_order_lines,
    prepare_stock_snapshots,
)
from lakehouse.silver.recalls import LATEST_NOTICE_RULE, RECALL_RULES, prepare_recalls


@dp.materialized_view(
    path="silver/domain=pharma/table=products",
    contract=dp.Contract(keys=("product_id",), grain="one row per product", owner="data-platform"),
)
def silver_products(bronze_products):
    """One row per product (key product_id), typed."""
    return clean_products(bronze_products)


@dp.materialized_view(
    path="silver/domain=pharma/table=product_prices",
    contract=dp.Contract(
        keys=("product_id", "valid_from"), grain="one row per product and price period", owner="data-platform"
    ),
)
def silver_product_prices(bronze_product_prices):
    """One row per product and price period (key product_id, valid_from); valid_to exclusive."""
    return clean_product_prices(bronze_product_prices)


@dp.materialized_view(
    path="silver/domain=pharma/table=order_lines",
    quarantine=True,
    contract=dp.Contract(
        keys=("order_id", "line_number"), grain="one row per order line", owner="sales-analytics"
    ),
)
@dp.expect_all_or_drop({**ORDER_LINE_RULES, **LATEST_VERSION_RULE})
def silver_order_lines(bronze_order_lines, silver_products):
    """One row per order line (key order_id, line_number), typed and validated; the
    latest ingested version wins. Rejected lines: order_lines_quarantine."""
    run_date = dp.current().parameters["run_date"]
    return prepare_order_lines(bronze_order_lines.where(partition_date() <= F.lit(run_date)), silver_products)


@dp.materialized_view(
    path="silver/domain=pharma/table=sites",
    contract=dp.Contract(keys=("site_id",), grain="one row per site", owner="supply-chain"),
)
def silver_sites(bronze_sites):
    """One row per site (key site_id), typed."""
    return clean_sites(bronze_sites)


@dp.materialized_view(
    path="silver/domain=pharma/table=stock_snapshots",
    quarantine=True,
    contract=dp.Contract(
        keys=("snapshot_date", "site_id", "product_id"),
        grain="one row per day, site and product",
        owner="supply-chain",
    ),
)
@dp.expect_all_or_drop({**STOCK_SNAPSHOT_RULES, **STOCK_LATEST_VERSION_RULE})
def silver_stock_snapshots(bronze_stock_snapshots, silver_products, silver_sites):
    """One row per day x site x product (key snapshot_date, site_id, product_id), typed
    and validated; the latest ingested version wins. Rejected rows:
    stock_snapshots_quarantine."""
    run_date = dp.current().parameters["run_date"]
    bronze = bronze_stock_snapshots.where(partition_date() <= F.lit(run_date))
    return prepare_stock_snapshots(bronze, silver_products, silver_sites)


@dp.materialized_view(
    path="silver/domain=pharma/table=deliveries",
    quarantine=True,
    contract=dp.Contract(keys=("delivery_id",), grain="one row per delivery", owner="supply-chain"),
)
@dp.expect_all_or_drop({**DELIVERY_RULES, **DELIVERY_LATEST_VERSION_RULE})
def silver_deliveries(bronze_deliveries, silver_sites):
    """One row per delivery (key delivery_id), validated, with is_on_time / is_complete
    (NULL while not delivered); the latest ingested version wins. Rejected lines:
    deliveries_quarantine."""
    run_date = dp.current().parameters["run_date"]
    return prepare_deliveries(bronze_deliveries.where(partition_date() <= F.lit(run_date)), silver_sites)


@dp.materialized_view(
    path="silver/domain=pharma/table=recalls",
    quarantine=True,
    contract=dp.Contract(keys=("notice_id",), grain="one row per recall notice", owner="quality-assurance"),
)
@dp.expect_all_or_drop({**RECALL_RULES, **LATEST_NOTICE_RULE})
@dp.expect("matched_to_a_product", "is_our_product")
def silver_recalls(bronze_recalls, silver_products):
    """One row per recall notice (key notice_id), the latest ingested copy; matched to
    our products by CIP13 or product name (product_id NULL for another laboratory's).
    Rejected notices: recalls_quarantine."""
    run_date = dp.current().parameters["run_date"]
    return prepare_recalls(bronze_recalls.where(partition_date() <= F.lit(run_date)), silver_products)
