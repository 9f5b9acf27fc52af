"""Silver datasets of the pharma domain in the medallion pipeline (declarative definitions)."""

from __future__ import annotations

from lakehouse import pipelines as dp
from lakehouse.bronze.sources import DROP_DAY, dropped_on
from lakehouse.silver.cleaning import dropped_by_run_date, or_no_day
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

# Order lines, stock and deliveries keep the latest version of each key, so they are
# refreshed by a day that every version of a key shares: a day computed from the key
# only (never the drop date, nor a column a re-sent version may correct); NO_DAY for
# rows whose key gives none.


def day_in_id(column: str) -> str:
    """SQL: the yyyyMMdd date an ERP id starts with after its letters (O20261101...,
    DL20261101...: the order's date), NO_DAY otherwise; ``trim`` as silver does."""
    digits = f"regexp_extract(trim({column}), '^[A-Za-z]*([0-9]{{8}})', 1)"
    return or_no_day(f"CAST(try_to_timestamp({digits}, 'yyyyMMdd') AS DATE)")


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
    incremental=dp.by_day(
        source="bronze_order_lines",
        source_day=day_in_id("order_id"),
        arrival_day=DROP_DAY,
        arrival_where=dropped_on,
    ),
    contract=dp.Contract(
        keys=("order_id", "line_number"), grain="one row per order line", owner="sales-analytics"
    ),
)
@dp.expect_all_or_drop({**ORDER_LINE_RULES, **LATEST_VERSION_RULE})
def silver_order_lines(bronze_order_lines, silver_products):
    """One row per order line (key order_id, line_number), typed and validated; the
    latest ingested version wins. Rejected lines: order_lines_quarantine. Refreshed
    by the day in the order id: a new export recomputes the orders it touches, a
    re-sent line of an older order with every version of that line."""
    return prepare_order_lines(bronze_order_lines, silver_products)


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
    incremental=dp.by_day(
        source="bronze_stock_snapshots",
        source_day=or_no_day("CAST(try_to_timestamp(trim(snapshot_date), 'dd/MM/yyyy') AS DATE)"),
        target_day=or_no_day("snapshot_date"),
        arrival_day=DROP_DAY,
        arrival_where=dropped_on,
    ),
)
@dp.expect_all_or_drop({**STOCK_SNAPSHOT_RULES, **STOCK_LATEST_VERSION_RULE})
def silver_stock_snapshots(bronze_stock_snapshots, silver_products, silver_sites):
    """One row per day x site x product (key snapshot_date, site_id, product_id), typed
    and validated; the latest ingested version wins. Rejected rows:
    stock_snapshots_quarantine. Refreshed by snapshot_date, part of the key (parsed
    as silver parses it)."""
    return prepare_stock_snapshots(bronze_stock_snapshots, silver_products, silver_sites)


@dp.materialized_view(
    path="silver/domain=pharma/table=deliveries",
    quarantine=True,
    contract=dp.Contract(keys=("delivery_id",), grain="one row per delivery", owner="supply-chain"),
    incremental=dp.by_day(
        source="bronze_deliveries",
        source_day=day_in_id("delivery_id"),
        arrival_day=DROP_DAY,
        arrival_where=dropped_on,
    ),
)
@dp.expect_all_or_drop({**DELIVERY_RULES, **DELIVERY_LATEST_VERSION_RULE})
def silver_deliveries(bronze_deliveries, silver_sites):
    """One row per delivery (key delivery_id), validated, with is_on_time / is_complete
    (NULL while not delivered); the latest ingested version wins. Rejected lines:
    deliveries_quarantine. Refreshed by the day in the delivery id (the order's): the
    delivered export of an older delivery recomputes that day with its first export."""
    return prepare_deliveries(bronze_deliveries, silver_sites)


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
    return prepare_recalls(dropped_by_run_date(bronze_recalls), silver_products)
