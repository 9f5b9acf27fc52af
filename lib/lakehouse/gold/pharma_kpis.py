"""KPI tables of the pharma domain (``gold/domain=pharma/model=kpi/``), computed from the
gold facts and the silver snapshots.

- ``kpi_marge_journaliere``: one row per day x site, key ``(date_key, site_id)``.
- ``kpi_marge_produit_site_mois``: one row per month x product x site, key
  ``(month, product_id, site_id)``: net revenue, cost, margin and its rate; lines
  whose cost is unknown count in the revenue but not in the cost, and are counted.
- ``kpi_rupture_stock``: one row per snapshot day x site, key ``(date_key, site_id)``.
- ``kpi_duree_rupture``: one row per stock-out episode, key
  ``(site_id, product_id, start_date)``: consecutive snapshot days with nothing on
  hand; ``is_ongoing`` when it lasts until the site's latest snapshot.
- ``kpi_performance_livraison``: one row per promised day x site, key
  ``(date_key, site_id)``.
- ``kpi_rappels_en_stock``: one row per recall notice x site still holding the
  recalled product at the site's latest snapshot, key ``(notice_id, site_id)``.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.gold.dimensions import date_key
from lakehouse.gold.episodes import episode_id
from lakehouse.gold.pharma_measures import (
    MONEY,
    is_below_safety_stock,
    is_otif,
    is_out_of_stock,
    margin_rate,
    share,
)


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


def build_kpi_marge_produit_site_mois(fact_ventes: DataFrame) -> DataFrame:
    """Margins per month (first day, and its yyyymm key), product and site."""
    month = F.trunc(F.col("order_date"), "month")
    monthly = fact_ventes.groupBy(month.alias("month"), "product_id", "site_id").agg(
        F.count(F.lit(1)).alias("order_lines"),
        F.sum("quantity").cast("long").alias("units_sold"),
        F.sum("net_amount").cast(MONEY).alias("net_revenue"),
        F.sum("cost_amount").cast(MONEY).alias("cost"),
        F.sum("margin_amount").cast(MONEY).alias("margin"),
        F.count(F.when(F.col("cost_amount").isNull(), True)).alias("lines_without_cost"),
    )
    return monthly.select(
        (F.year("month") * 100 + F.month("month")).alias("month_key"),
        "month",
        "product_id",
        "site_id",
        "order_lines",
        "units_sold",
        "net_revenue",
        "cost",
        "margin",
        margin_rate(F.col("margin"), F.col("net_revenue")).alias("margin_rate"),
        "lines_without_cost",
    )


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


def build_kpi_duree_rupture(stock_snapshots: DataFrame) -> DataFrame:
    """Stock-out episodes per site and product, from the daily snapshots."""
    day_index = F.datediff(F.col("snapshot_date"), F.lit("1970-01-01").cast("date"))
    latest = stock_snapshots.groupBy("site_id").agg(F.max("snapshot_date").alias("_latest"))
    out = stock_snapshots.where(F.col("quantity_on_hand") == 0).select(
        "site_id", "product_id", "snapshot_date", day_index.alias("_day")
    )
    episodes = out.withColumn("_episode", episode_id(F.col("_day"), ["site_id", "product_id"]))
    grouped = episodes.groupBy("site_id", "product_id", "_episode").agg(
        F.min("snapshot_date").alias("start_date"),
        F.max("snapshot_date").alias("end_date"),
        F.count(F.lit(1)).alias("days_out_of_stock"),
    )
    return grouped.join(latest, "site_id").select(
        date_key("start_date").alias("start_date_key"),
        "site_id",
        "product_id",
        "start_date",
        "end_date",
        "days_out_of_stock",
        (F.col("end_date") == F.col("_latest")).alias("is_ongoing"),
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


def build_kpi_rappels_en_stock(recalls: DataFrame, stock_snapshots: DataFrame) -> DataFrame:
    """Our recalled products still on hand at each site's latest snapshot (taken on or
    after the notice's publication: a snapshot before it says nothing of today)."""
    latest = stock_snapshots.groupBy("site_id").agg(F.max("snapshot_date").alias("snapshot_date"))
    current = stock_snapshots.join(latest, ["site_id", "snapshot_date"]).where(F.col("quantity_on_hand") > 0)
    ours = recalls.where(F.col("is_our_product")).select(
        "notice_id",
        "published_date",
        "product_id",
        "product_name",
        "cip13",
        "lot_number",
        "severity",
        "reason",
    )
    joined = ours.join(current, "product_id").where(F.col("snapshot_date") >= F.col("published_date"))
    return joined.select(
        "notice_id",
        "site_id",
        "product_id",
        "product_name",
        "cip13",
        "lot_number",
        "severity",
        "reason",
        "published_date",
        "snapshot_date",
        "quantity_on_hand",
        F.datediff("snapshot_date", "published_date").cast("int").alias("days_since_recall"),
    )
