"""Silver regulatory recalls.

- ``recalls``: one row per recall notice, key ``notice_id``; the latest ingested copy
  wins; typed (``published_date`` DATE); matched to our products by CIP13 (the
  agency's documents carry it) or, for API records without a CIP13, by our product
  name appearing in the record's product description (``_rescued_data``).
  ``product_id`` is NULL for another laboratory's product (``is_our_product`` false).
  Corrupt records and notices without an id go to ``recalls_quarantine``.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

RECALL_COLUMNS = (
    "notice_id",
    "published_date",
    "cip13",
    "lot_number",
    "severity",
    "reason",
    "source",
    "retrieved_at",
    "product_id",
    "product_name",
    "match_method",
    "is_our_product",
    "_source_file",
    "_ingested_at",
)
RECALL_RULES = {
    "well_formed_record": "_check_corrupt_record IS NULL",
    "notice_id_present": "notice_id IS NOT NULL AND notice_id <> ''",
    "valid_published_date": "published_date IS NOT NULL",
}
LATEST_NOTICE_RULE = {"latest_version_of_notice": "_check_is_latest_version"}


def _product_description(bronze: DataFrame) -> F.Column:
    if "_rescued_data" not in bronze.columns:
        return F.lit(None).cast("string")
    return F.get_json_object(F.col("_rescued_data"), "$.product_description")


def match_products(notices: DataFrame, products: DataFrame) -> DataFrame:
    """Add ``product_id``, ``product_name``, ``match_method`` ('cip13', 'name' or NULL).
    A CIP13 match wins; a name match needs the whole product name in the description
    (case-insensitive) and is taken only when exactly one product matches."""
    by_cip = products.select(
        F.col("cip13").alias("_cip"), F.col("product_id").alias("_pid_cip"), F.col("name").alias("_name_cip")
    )
    names = products.select(F.col("product_id").alias("_pid_name"), F.col("name").alias("_name_name"))
    descriptions = (
        notices.select(F.col("_description").alias("_desc")).where(F.col("_desc").isNotNull()).distinct()
    )
    by_name = (
        descriptions.join(names, F.lower(F.col("_desc")).contains(F.lower(F.col("_name_name"))))
        .groupBy("_desc")
        .agg(
            F.count(F.lit(1)).alias("_matches"),
            F.min("_pid_name").alias("_pid_name"),
            F.min("_name_name").alias("_name_name"),
        )
        .where(F.col("_matches") == 1)  # several names match: none is taken
    )
    matched = notices.join(by_cip, notices["cip13"] == by_cip["_cip"], "left").join(
        by_name, F.col("_description") == F.col("_desc"), "left"
    )
    return matched.withColumns(
        {
            "product_id": F.coalesce("_pid_cip", "_pid_name"),
            "product_name": F.coalesce("_name_cip", "_name_name"),
            "match_method": F.when(F.col("_pid_cip").isNotNull(), "cip13").when(
                F.col("_pid_name").isNotNull(), "name"
            ),
        }
    ).drop("_cip", "_pid_cip", "_name_cip", "_desc", "_matches", "_pid_name", "_name_name")


def prepare_recalls(bronze: DataFrame, products: DataFrame) -> DataFrame:
    """Silver recalls before expectations: typed, matched, flagged."""
    from lakehouse.silver.pharma import flag_latest

    typed = bronze.select(
        F.trim("notice_id").alias("notice_id"),
        # try_: an impossible date gives NULL (caught by valid_published_date), not an error
        F.try_to_timestamp(F.trim("published_date"), F.lit("yyyy-MM-dd"))
        .cast("date")
        .alias("published_date"),
        F.trim("cip13").alias("cip13"),
        "lot_number",
        "severity",
        "reason",
        "source",
        F.col("retrieved_at").cast("timestamp").alias("retrieved_at"),
        _product_description(bronze).alias("_description"),
        F.col("_corrupt_record").alias("_check_corrupt_record"),
        "_source_file",
        F.lit(None).cast("int").alias("_line_number"),
        "_ingested_at",
    )
    matched = match_products(typed, products).withColumn("is_our_product", F.col("product_id").isNotNull())
    flagged = flag_latest(matched, ("notice_id",), RECALL_RULES, "_check_is_latest_version")
    return flagged.select(*RECALL_COLUMNS, "_check_corrupt_record", "_check_is_latest_version")


def clean_recalls(bronze: DataFrame, products: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``(silver recalls, quarantine)`` outside a pipeline run (same rules)."""
    from lakehouse.silver.cleaning import apply_drop_rules

    return apply_drop_rules(
        prepare_recalls(bronze, products), {**RECALL_RULES, **LATEST_NOTICE_RULE}, RECALL_COLUMNS
    )
