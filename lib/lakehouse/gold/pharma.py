"""Facts and KPIs of the pharma domain.

- ``fact_ventes``: one row per order line, key ``(order_id, line_number)``; measures
  at the cost and price valid at the order date.
- ``kpi_marge_journaliere``: one row per day x site, key ``(date_key, site_id)``.
- ``kpi_rupture_stock``: one row per snapshot day x site, key ``(date_key, site_id)``.
- ``kpi_performance_livraison``: one row per promised day x site, key
  ``(date_key, site_id)``.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.gold.dimensions import date_key
from lakehouse.gold.keys import UNKNOWN_SK, resolved
from lakehouse.gold.rules import (
    cost_amount,
    discount_amount,
    gross_amount,
    is_below_safety_stock,
    is_otif,
    is_out_of_stock,
    margin_amount,
    margin_rate,
    net_amount,
    share,
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


def build_kpi_rupture_stock(stock_snapshots: DataFrame) -> DataFrame:
    """Stock-out rate per snapshot day and site: the share of the site's products with
    nothing on hand, and the share strictly below their safety stock (a stock-out
    counts there too when its safety stock is positive; exactly at it does not)."""
    quantity, safety = F.col("quantity_on_hand"), F.col("safety_stock")
    daily = stock_snapshots.groupBy("snapshot_date", "site_id").agg(
        F.count(F.lit(1)).alias("products"),
        F.count(F.when(is_out_of_stock(quantity), True)).alias("products_out_of_stock"),
        F.count(F.when(is_below_safety_stock(quantity, safety), True)).alias("products_below_safety_stock"),
    )
    return daily.select(
        date_key("snapshot_date").alias("date_key"),
        F.col("snapshot_date").alias("date"),
        "site_id",
        "products",
        "products_out_of_stock",
        "products_below_safety_stock",
        share(F.col("products_out_of_stock"), F.col("products")).alias("stockout_rate"),
        share(F.col("products_below_safety_stock"), F.col("products")).alias("below_safety_stock_rate"),
    )


def build_kpi_performance_livraison(deliveries: DataFrame) -> DataFrame:
    """Delivery performance per promised day and site.

    ``deliveries_due``: every delivery promised that day; ``deliveries_otif``: delivered
    on or before the promised date and in full; ``deliveries_late``: delivered after
    the promised date (in full or not); ``deliveries_pending``: not delivered yet.
    ``otif_rate`` = otif / delivered (pending ones have no outcome yet), NULL when none
    is delivered.
    """
    on_time, complete = F.col("is_on_time"), F.col("is_complete")
    daily = deliveries.groupBy("promised_date", "site_id").agg(
        F.count(F.lit(1)).alias("deliveries_due"),
        F.count(F.when(F.col("actual_date").isNotNull(), True)).alias("deliveries_delivered"),
        F.count(F.when(is_otif(on_time, complete), True)).alias("deliveries_otif"),
        F.count(F.when(~on_time, True)).alias("deliveries_late"),
        F.count(F.when(F.col("actual_date").isNull(), True)).alias("deliveries_pending"),
    )
    return daily.select(
        date_key("promised_date").alias("date_key"),
        F.col("promised_date").alias("date"),
        "site_id",
        "deliveries_due",
        "deliveries_delivered",
        "deliveries_otif",
        "deliveries_late",
        "deliveries_pending",
        share(F.col("deliveries_otif"), F.col("deliveries_delivered")).alias("otif_rate"),
    )
