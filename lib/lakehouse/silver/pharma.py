"""Silver tables of the pharma domain.

- ``order_lines``: one row per order line, key ``(order_id, line_number)``; the latest
  ingested version of a line wins; lines failing a rule, and older versions, go to
  ``order_lines_quarantine`` with the rule names.
- ``products``: one row per product, key ``product_id`` (latest referential snapshot).
- ``product_prices``: one row per product and validity period, key
  ``(product_id, valid_from)``; ``valid_to`` is exclusive, NULL while current.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

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


def flag_known_products(order_lines: DataFrame, products: DataFrame) -> DataFrame:
    """Add ``_check_is_known_product``: the product id exists in the referential."""
    known = products.select(F.col("product_id").alias("_known_id")).distinct()
    return (
        order_lines.join(known, order_lines["product_id"] == known["_known_id"], "left")
        .withColumn("_check_is_known_product", F.col("_known_id").isNotNull())
        .drop("_known_id")
    )


def flag_latest_version(order_lines: DataFrame) -> DataFrame:
    """Add ``_check_is_latest_version`` among the lines passing every other rule (the
    latest ingested wins); NULL for lines failing a rule, which carry that reason."""
    passes = " AND ".join(f"coalesce({predicate}, true)" for predicate in ORDER_LINE_RULES.values())
    valid = F.expr(passes)
    latest_first = [F.col(c).desc_nulls_last() for c in ("_ingested_at", "_source_file", "_line_number")]
    rank = F.row_number().over(Window.partitionBy(valid, *ORDER_LINE_KEYS).orderBy(*latest_first))
    return order_lines.withColumn("_check_is_latest_version", F.when(valid, rank == 1))


def prepare_order_lines(bronze: DataFrame, products: DataFrame) -> DataFrame:
    """Silver order lines before expectations: typed, flagged, with lineage."""
    flagged = type_order_lines(bronze).transform(flag_known_products, products).transform(flag_latest_version)
    checks = sorted(c for c in flagged.columns if c.startswith("_check_"))
    return flagged.select(*SILVER_ORDER_LINE_COLUMNS, *checks)


def clean_order_lines(bronze: DataFrame, products: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``(silver order_lines, quarantine)`` outside a pipeline run (same rules)."""
    from lakehouse.pipelines import expectations as ex
    from lakehouse.pipelines.graph import Action, Expectation

    rules = [Expectation(n, p, Action.DROP) for n, p in {**ORDER_LINE_RULES, **LATEST_VERSION_RULE}.items()]
    kept, dropped = ex.split(ex.flag(prepare_order_lines(bronze, products), rules), rules)
    return kept.select(*SILVER_ORDER_LINE_COLUMNS), dropped


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
