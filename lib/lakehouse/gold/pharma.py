"""Facts and KPIs of the pharma domain.

- ``fact_ventes``: one row per order line, key ``(order_id, line_number)``; measures
  at the cost and price valid at the order date.
- ``kpi_marge_journaliere``: one row per day x site, key ``(date_key, site_id)``.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.gold.dimensions import date_key
from lakehouse.gold.rules import (
    cost_amount,
    discount_amount,
    gross_amount,
    margin_amount,
    margin_rate,
    net_amount,
)


def build_fact_ventes(order_lines: DataFrame, dim_produit: DataFrame) -> DataFrame:
    """Silver order lines joined to the product version valid at the order date.

    A line whose date falls outside every price period keeps a NULL ``product_sk``
    and NULL cost and margin rather than being dropped.
    """
    versions = dim_produit.select(
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
        "product_sk",
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


def build_kpi_marge_journaliere(fact_ventes: DataFrame) -> DataFrame:
    """Daily revenue, cost and margin per site."""
    daily = fact_ventes.groupBy("date_key", "order_date", "site_id").agg(
        F.countDistinct("order_id").alias("orders"),
        F.count(F.lit(1)).alias("order_lines"),
        F.sum("quantity").cast("long").alias("units_sold"),
        F.sum("net_amount").cast("decimal(18,2)").alias("net_revenue"),
        F.sum("cost_amount").cast("decimal(18,2)").alias("cost"),
        F.sum("margin_amount").cast("decimal(18,2)").alias("margin"),
    )
    return daily.withColumn(
        "margin_rate", margin_rate(F.col("margin"), F.col("net_revenue"))
    ).withColumnRenamed("order_date", "date")
