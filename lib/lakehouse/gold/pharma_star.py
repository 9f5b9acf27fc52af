"""The pharma star schema's fact (its dimensions are in ``lakehouse.gold.dimensions``).

- ``fact_ventes``: one row per order line, key ``(order_id, line_number)``; measures
  at the cost and price valid at the order date.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.gold.dimensions import date_key
from lakehouse.gold.keys import UNKNOWN_SK, resolved
from lakehouse.gold.pharma_measures import (
    cost_amount,
    discount_amount,
    gross_amount,
    margin_amount,
    net_amount,
)


def build_fact_ventes(order_lines: DataFrame, dim_produit: DataFrame) -> DataFrame:
    """Silver order lines joined to the product version valid at the order date.

    A line of an unknown product, or whose date falls outside every price period,
    is kept with ``product_sk`` -1 (the unknown member) and NULL cost and margin.
    """
    versions = dim_produit.where(F.col("product_sk") != UNKNOWN_SK).select(
        F.col("product_id").alias("_pid"),
        "product_sk",
        "unit_cost",
        F.col("valid_from").alias("_from"),
        F.col("valid_to").alias("_to"),
    )
    joined = order_lines.join(
        versions,
        (order_lines["product_id"] == versions["_pid"])
        & (order_lines["order_date"] >= versions["_from"])
        & (order_lines["order_date"] < versions["_to"]),
        "left",
    )
    quantity, price, discount = F.col("quantity"), F.col("unit_price"), F.col("discount_pct")
    return joined.select(
        "order_id",
        "line_number",
        date_key("order_date").alias("date_key"),
        "order_date",
        resolved("product_sk").alias("product_sk"),
        "product_id",
        "site_id",
        "customer_id",
        "sales_channel",
        "quantity",
        "unit_price",
        "discount_pct",
        F.col("unit_cost").alias("unit_cost"),
        gross_amount(quantity, price).alias("gross_amount"),
        discount_amount(quantity, price, discount).alias("discount_amount"),
        net_amount(quantity, price, discount).alias("net_amount"),
        cost_amount(quantity, F.col("unit_cost")).alias("cost_amount"),
    ).withColumn("margin_amount", margin_amount(F.col("net_amount"), F.col("cost_amount")))


def with_site_sk(fact: DataFrame, dim_site: DataFrame) -> DataFrame:
    """Add ``site_sk`` (from ``dim_site``, -1 for an unknown site) right after
    ``product_sk``; the fact keeps its rows and its other columns in order."""
    keys = dim_site.where(F.col("site_sk") != UNKNOWN_SK).select(F.col("site_id").alias("_sid"), "site_sk")
    joined = fact.join(keys, fact["site_id"] == keys["_sid"], "left").withColumn(
        "site_sk", resolved("site_sk")
    )
    columns = []
    for name in fact.columns:
        columns.append(name)
        if name == "product_sk":
            columns.append("site_sk")
    if "site_sk" not in columns:
        columns.append("site_sk")
    return joined.select(*columns)
