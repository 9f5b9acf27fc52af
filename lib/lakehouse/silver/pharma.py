"""Silver tables of the pharma domain.

- ``order_lines``: one row per order line, key ``(order_id, line_number)``; the latest
  ingested version of a line wins; rejected lines go to ``order_lines_quarantine``.
- ``products``: one row per product, key ``product_id`` (latest referential snapshot).
- ``product_prices``: one row per product and validity period, key
  ``(product_id, valid_from)``; ``valid_to`` is exclusive, NULL while current.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.silver.parsing import parse_date_fr, parse_decimal_fr, parse_int
from lakehouse.silver.quality import REASONS, split_by_rules, split_duplicates

ORDER_LINE_KEYS = ("order_id", "line_number")
LINEAGE_COLUMNS = ("_source_file", "_line_number", "_ingested_at")

# Name -> SQL predicate over the typed columns; NULL counts as passing (see quality.py).
ORDER_LINE_RULES = {
    "well_formed_row": "_corrupt_record IS NULL",
    "order_id_present": "order_id IS NOT NULL AND order_id <> ''",
    "line_number_is_integer": "line_number IS NOT NULL",
    "valid_order_date": "order_date IS NOT NULL",
    "positive_quantity": "quantity IS NOT NULL AND quantity > 0",
    "valid_unit_price": "unit_price IS NOT NULL AND unit_price >= 0",
    "discount_between_0_and_100": "discount_pct IS NOT NULL AND discount_pct BETWEEN 0 AND 100",
    "known_product": "_is_known_product",
}


def type_order_lines(bronze: DataFrame) -> DataFrame:
    """Typed columns from bronze strings; raw strings are kept as ``raw_<name>``
    so a quarantined row still shows what arrived."""
    raw = ("line_number", "order_date", "quantity", "unit_price", "discount_pct")
    return bronze.withColumns({f"raw_{name}": F.col(name) for name in raw}).withColumns(
        {
            "line_number": parse_int("raw_line_number"),
            "order_date": parse_date_fr("raw_order_date"),
            "quantity": parse_int("raw_quantity"),
            "unit_price": parse_decimal_fr("raw_unit_price", precision=12, scale=4),
            "discount_pct": parse_decimal_fr("raw_discount_pct", precision=5, scale=2),
            "order_id": F.trim("order_id"),
            "product_id": F.trim("product_id"),
        }
    )


def flag_known_products(order_lines: DataFrame, products: DataFrame) -> DataFrame:
    """Add ``_is_known_product``: the product id exists in the referential."""
    known = products.select(F.col("product_id").alias("_known_id")).distinct()
    return (
        order_lines.join(known, order_lines["product_id"] == known["_known_id"], "left")
        .withColumn("_is_known_product", F.col("_known_id").isNotNull())
        .drop("_known_id")
    )


def clean_order_lines(bronze: DataFrame, products: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Bronze order lines -> ``(silver order_lines, quarantine)``.

    Every bronze row ends in exactly one of the two: rows failing a rule and older
    duplicates of a kept line go to quarantine with their reasons.
    """
    typed = type_order_lines(bronze).transform(flag_known_products, products)
    valid, rejected = split_by_rules(typed, ORDER_LINE_RULES)
    latest, duplicates = split_duplicates(
        valid, keys=ORDER_LINE_KEYS, latest_first=("_ingested_at", "_source_file", "_line_number")
    )
    silver = latest.select(
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
    quarantine_columns = [*bronze.columns, REASONS]
    quarantine = rejected.select(*quarantine_columns).unionByName(duplicates.select(*quarantine_columns))
    return silver, quarantine


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
