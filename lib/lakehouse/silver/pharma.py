"""Silver tables of the pharma domain.

- ``order_lines``: one row per order line, key ``(order_id, line_number)``; the latest
  ingested version of a line wins; lines failing a rule, and older versions, go to
  ``order_lines_quarantine`` with the rule names.
- ``products``: one row per product, key ``product_id`` (latest referential snapshot).
- ``product_prices``: one row per product and validity period, key
  ``(product_id, valid_from)``; ``valid_to`` is exclusive, NULL while current.
- ``stock_snapshots``: one row per day x site x product, key
  ``(snapshot_date, site_id, product_id)``; the latest ingested version wins; rows
  failing a rule (negative quantity, unknown product or site...) go to
  ``stock_snapshots_quarantine``.
- ``deliveries``: one row per delivery, key ``delivery_id``; the latest ingested
  version wins (an in-transit export is replaced by the delivered one);
  ``is_on_time`` / ``is_complete`` are NULL while not delivered.
- ``sites``: one row per site, key ``site_id`` (latest referential snapshot).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.silver.cleaning import apply_drop_rules
from lakehouse.silver.parsing import parse_date_fr, parse_decimal_fr, parse_int

ORDER_LINE_KEYS = ("order_id", "line_number")
LINEAGE_COLUMNS = ("_source_file", "_line_number", "_ingested_at")
SILVER_ORDER_LINE_COLUMNS = (
    "order_id",
    "line_number",
    "order_date",
    "customer_id",
    "product_id",
    "site_id",
    "quantity",
    "unit_price",
    "discount_pct",
    "sales_channel",
    *LINEAGE_COLUMNS,
)
_RAW = ("line_number", "order_date", "quantity", "unit_price", "discount_pct")

# Name -> SQL predicate over the typed columns; NULL counts as passing. Columns named
# _check_* exist for these rules only: quarantined rows keep them, silver drops them.
ORDER_LINE_RULES = {
    "well_formed_row": "_check_corrupt_record IS NULL",
    "order_id_present": "order_id IS NOT NULL AND order_id <> ''",
    "line_number_is_integer": "line_number IS NOT NULL",
    "valid_order_date": "order_date IS NOT NULL",
    "positive_quantity": "quantity IS NOT NULL AND quantity > 0",
    "valid_unit_price": "unit_price IS NOT NULL AND unit_price >= 0",
    "discount_between_0_and_100": "discount_pct IS NOT NULL AND discount_pct BETWEEN 0 AND 100",
    "known_product": "_check_is_known_product",
}
# Older versions of a line (re-sent exports) are dropped too, with this rule's name.
LATEST_VERSION_RULE = {"latest_version_of_line": "_check_is_latest_version"}


def type_order_lines(bronze: DataFrame) -> DataFrame:
    """Typed columns from bronze strings; the raw text of parsed columns is kept as
    ``_check_raw_<name>`` so a quarantined row still shows what arrived."""
    return bronze.withColumns({f"_check_raw_{name}": F.col(name) for name in _RAW}).withColumns(
        {
            "line_number": parse_int("_check_raw_line_number"),
            "order_date": parse_date_fr("_check_raw_order_date"),
            "quantity": parse_int("_check_raw_quantity"),
            "unit_price": parse_decimal_fr("_check_raw_unit_price", precision=12, scale=4),
            "discount_pct": parse_decimal_fr("_check_raw_discount_pct", precision=5, scale=2),
            "order_id": F.trim("order_id"),
            "product_id": F.trim("product_id"),
            "_check_corrupt_record": F.col("_corrupt_record"),
        }
    )


def flag_known(df: DataFrame, referential: DataFrame, column: str, flag: str) -> DataFrame:
    """Add ``flag``: ``column``'s value exists in ``referential``'s ``column``."""
    known = referential.select(F.col(column).alias("_known_id")).distinct()
    return (
        df.join(known, df[column] == known["_known_id"], "left")
        .withColumn(flag, F.col("_known_id").isNotNull())
        .drop("_known_id")
    )


def flag_known_products(order_lines: DataFrame, products: DataFrame) -> DataFrame:
    """Add ``_check_is_known_product``: the product id exists in the referential."""
    return flag_known(order_lines, products, "product_id", "_check_is_known_product")


def flag_latest(df: DataFrame, keys: tuple[str, ...], rules: dict[str, str], flag: str) -> DataFrame:
    """Add ``flag``: the row is the latest ingested of its key among the rows passing
    every rule of ``rules``; NULL for rows failing a rule (they carry that reason)."""
    passes = " AND ".join(f"coalesce({predicate}, true)" for predicate in rules.values())
    valid = F.expr(passes)
    latest_first = [F.col(c).desc_nulls_last() for c in ("_ingested_at", "_source_file", "_line_number")]
    rank = F.row_number().over(Window.partitionBy(valid, *keys).orderBy(*latest_first))
    return df.withColumn(flag, F.when(valid, rank == 1))


def flag_latest_version(order_lines: DataFrame) -> DataFrame:
    """Add ``_check_is_latest_version`` among the lines passing every other rule (the
    latest ingested wins); NULL for lines failing a rule, which carry that reason."""
    return flag_latest(order_lines, ORDER_LINE_KEYS, ORDER_LINE_RULES, "_check_is_latest_version")


def prepare_order_lines(bronze: DataFrame, products: DataFrame) -> DataFrame:
    """Silver order lines before expectations: typed, flagged, with lineage."""
    flagged = type_order_lines(bronze).transform(flag_known_products, products).transform(flag_latest_version)
    checks = sorted(c for c in flagged.columns if c.startswith("_check_"))
    return flagged.select(*SILVER_ORDER_LINE_COLUMNS, *checks)


def clean_order_lines(bronze: DataFrame, products: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``(silver order_lines, quarantine)`` outside a pipeline run (same rules)."""
    prepared = prepare_order_lines(bronze, products)
    return apply_drop_rules(prepared, {**ORDER_LINE_RULES, **LATEST_VERSION_RULE}, SILVER_ORDER_LINE_COLUMNS)


def clean_products(snapshot: DataFrame) -> DataFrame:
    """Referential products, typed; one row per ``product_id``."""
    return snapshot.select(
        "product_id",
        "cip13",
        "name",
        "atc_code",
        "atc_class",
        "dosage_form",
        F.col("unit_cost").cast("decimal(12,4)").alias("unit_cost"),
        F.col("list_price").cast("decimal(12,4)").alias("list_price"),
        F.col("is_active").cast("boolean").alias("is_active"),
        F.col("updated_at").cast("timestamp").alias("updated_at"),
    ).dropDuplicates(["product_id"])


def clean_product_prices(snapshot: DataFrame) -> DataFrame:
    """Price and cost history; ``valid_to`` exclusive, NULL for the current period."""
    return snapshot.select(
        "product_id",
        F.col("valid_from").cast("date").alias("valid_from"),
        F.col("valid_to").cast("date").alias("valid_to"),
        F.col("unit_cost").cast("decimal(12,4)").alias("unit_cost"),
        F.col("list_price").cast("decimal(12,4)").alias("list_price"),
    ).dropDuplicates(["product_id", "valid_from"])


def clean_sites(snapshot: DataFrame) -> DataFrame:
    """Referential sites, typed; one row per ``site_id``."""
    return snapshot.select(
        F.trim("site_id").alias("site_id"),
        "name",
        "city",
        "region",
        "country",
        "site_type",
        F.col("updated_at").cast("timestamp").alias("updated_at"),
    ).dropDuplicates(["site_id"])


# --- stock snapshots -------------------------------------------------------------

STOCK_SNAPSHOT_KEYS = ("snapshot_date", "site_id", "product_id")
SILVER_STOCK_SNAPSHOT_COLUMNS = (*STOCK_SNAPSHOT_KEYS, "quantity_on_hand", "safety_stock", *LINEAGE_COLUMNS)
_STOCK_RAW = ("snapshot_date", "quantity_on_hand", "safety_stock")
STOCK_SNAPSHOT_RULES = {
    "well_formed_row": "_check_corrupt_record IS NULL",
    "valid_snapshot_date": "snapshot_date IS NOT NULL",
    "non_negative_quantity": "quantity_on_hand IS NOT NULL AND quantity_on_hand >= 0",
    "valid_safety_stock": "safety_stock IS NOT NULL AND safety_stock >= 0",
    "known_product": "_check_is_known_product",
    "known_site": "_check_is_known_site",
}
STOCK_LATEST_VERSION_RULE = {"latest_version_of_snapshot": "_check_is_latest_version"}


def type_stock_snapshots(bronze: DataFrame) -> DataFrame:
    """Typed columns from bronze strings; raw text kept as ``_check_raw_<name>``."""
    return bronze.withColumns({f"_check_raw_{name}": F.col(name) for name in _STOCK_RAW}).withColumns(
        {
            "snapshot_date": parse_date_fr("_check_raw_snapshot_date"),
            "quantity_on_hand": parse_int("_check_raw_quantity_on_hand"),
            "safety_stock": parse_int("_check_raw_safety_stock"),
            "site_id": F.trim("site_id"),
            "product_id": F.trim("product_id"),
            "_check_corrupt_record": F.col("_corrupt_record"),
        }
    )


def prepare_stock_snapshots(bronze: DataFrame, products: DataFrame, sites: DataFrame) -> DataFrame:
    """Silver stock snapshots before expectations: typed, flagged, with lineage."""
    flagged = (
        type_stock_snapshots(bronze)
        .transform(flag_known, products, "product_id", "_check_is_known_product")
        .transform(flag_known, sites, "site_id", "_check_is_known_site")
        .transform(flag_latest, STOCK_SNAPSHOT_KEYS, STOCK_SNAPSHOT_RULES, "_check_is_latest_version")
    )
    checks = sorted(c for c in flagged.columns if c.startswith("_check_"))
    return flagged.select(*SILVER_STOCK_SNAPSHOT_COLUMNS, *checks)


def clean_stock_snapshots(
    bronze: DataFrame, products: DataFrame, sites: DataFrame
) -> tuple[DataFrame, DataFrame]:
    """``(silver stock_snapshots, quarantine)`` outside a pipeline run (same rules)."""
    prepared = prepare_stock_snapshots(bronze, products, sites)
    return apply_drop_rules(
        prepared, {**STOCK_SNAPSHOT_RULES, **STOCK_LATEST_VERSION_RULE}, SILVER_STOCK_SNAPSHOT_COLUMNS
    )


# --- deliveries ------------------------------------------------------------------

DELIVERY_KEYS = ("delivery_id",)
SILVER_DELIVERY_COLUMNS = (
    "delivery_id",
    "order_id",
    "site_id",
    "customer_id",
    "promised_date",
    "actual_date",
    "quantity_ordered",
    "quantity_delivered",
    "carrier",
    "is_delivered",
    "is_on_time",
    "is_complete",
    *LINEAGE_COLUMNS,
)
DELIVERY_RULES = {
    "well_formed_line": "_check_corrupt_record IS NULL",
    "delivery_id_present": "delivery_id IS NOT NULL AND delivery_id <> ''",
    "valid_promised_date": "promised_date IS NOT NULL",
    "positive_quantity_ordered": "quantity_ordered IS NOT NULL AND quantity_ordered > 0",
    "non_negative_quantity_delivered": "quantity_delivered IS NULL OR quantity_delivered >= 0",
    "delivered_date_and_quantity_together": "(actual_date IS NULL) = (quantity_delivered IS NULL)",
    "known_site": "_check_is_known_site",
}
DELIVERY_LATEST_VERSION_RULE = {"latest_version_of_delivery": "_check_is_latest_version"}


def with_delivery_outcome(deliveries: DataFrame) -> DataFrame:
    """``is_delivered``; ``is_on_time`` (delivered on or before the promised date) and
    ``is_complete`` (delivered quantity >= ordered), both NULL while not delivered."""
    delivered = F.col("actual_date").isNotNull()
    return deliveries.withColumns(
        {
            "is_delivered": delivered,
            "is_on_time": F.when(delivered, F.col("actual_date") <= F.col("promised_date")),
            "is_complete": F.when(delivered, F.col("quantity_delivered") >= F.col("quantity_ordered")),
        }
    )


def prepare_deliveries(bronze: DataFrame, sites: DataFrame) -> DataFrame:
    """Silver deliveries before expectations: typed (bronze JSON is), flagged, with the
    delivery outcome and lineage."""
    flagged = (
        bronze.withColumns(
            {
                "delivery_id": F.trim("delivery_id"),
                "site_id": F.trim("site_id"),
                "_check_corrupt_record": F.col("_corrupt_record"),
                "_check_rescued_data": F.col("_rescued_data"),
            }
        )
        .transform(with_delivery_outcome)
        .transform(flag_known, sites, "site_id", "_check_is_known_site")
        .transform(flag_latest, DELIVERY_KEYS, DELIVERY_RULES, "_check_is_latest_version")
    )
    checks = sorted(c for c in flagged.columns if c.startswith("_check_"))
    return flagged.select(*SILVER_DELIVERY_COLUMNS, *checks)


def clean_deliveries(bronze: DataFrame, sites: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``(silver deliveries, quarantine)`` outside a pipeline run (same rules)."""
    prepared = prepare_deliveries(bronze, sites)
    return apply_drop_rules(
        prepared, {**DELIVERY_RULES, **DELIVERY_LATEST_VERSION_RULE}, SILVER_DELIVERY_COLUMNS
    )
