"""KPI tables computed from the gold facts and silver snapshots.

Pharma (``gold/domain=pharma/model=kpi/``):

- ``kpi_marge_produit_site_mois``: one row per month x product x site, key
  ``(month, product_id, site_id)``: net revenue, cost, margin and its rate; lines
  whose cost is unknown count in the revenue but not in the cost, and are counted.
- ``kpi_duree_rupture``: one row per stock-out episode, key
  ``(site_id, product_id, start_date)``: consecutive snapshot days with nothing on
  hand; ``is_ongoing`` when it lasts until the site's latest snapshot.
- ``kpi_rappels_en_stock``: one row per recall notice x site still holding the
  recalled product at the site's latest snapshot, key ``(notice_id, site_id)``.

Energy (``gold/domain=energy/model=kpi/``):

- ``kpi_energie_machine``: one row per machine x hour, key ``(machine_id, hour_ts)``:
  the hour's kWh and the rolling 24 h kWh (that hour and the 23 before it);
  ``is_latest`` marks the machine's current hour.
- ``kpi_energie_site``: the same per site x hour, key ``(site_id, hour_ts)``.
- ``kpi_anomalies_machine``: one row per anomaly episode, key
  ``(machine_id, start_ts)``: consecutive hours classed 'warning' or 'critical' form
  one episode (a normal, unclassified or missing hour ends it); its class is the
  worst hour's.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.gold.dimensions import date_key
from lakehouse.gold.rules import MONEY, margin_rate

SECONDS_PER_HOUR = 3600
ROLLING_HOURS = 24
ANOMALOUS_CLASSES = ("warning", "critical")
KWH_DECIMAL = "decimal(20,6)"


def exact_kwh_sum(col: str, window: Window | None = None) -> Column:
    """Sum of kWh over DECIMAL (to the milliwatt-hour), then DOUBLE, optionally over a
    window: a sum of doubles depends on the order rows arrive in, so two runs could
    differ in the last digits."""
    total = F.sum(F.col(col).cast(KWH_DECIMAL))
    return (total if window is None else total.over(window)).cast("double")


def _episode_id(order_index: Column, partition: list[str]) -> Column:
    """Gaps and islands: ``order_index - row_number`` is constant along a run of
    consecutive indexes (days or hours) within ``partition``."""
    rank = F.row_number().over(Window.partitionBy(*partition).orderBy(order_index))
    return order_index - rank


# --- pharma -------------------------------------------------------------------


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


def build_kpi_duree_rupture(stock_snapshots: DataFrame) -> DataFrame:
    """Stock-out episodes per site and product, from the daily snapshots."""
    day_index = F.datediff(F.col("snapshot_date"), F.lit("1970-01-01").cast("date"))
    latest = stock_snapshots.groupBy("site_id").agg(F.max("snapshot_date").alias("_latest"))
    out = stock_snapshots.where(F.col("quantity_on_hand") == 0).select(
        "site_id", "product_id", "snapshot_date", day_index.alias("_day")
    )
    episodes = out.withColumn("_episode", _episode_id(F.col("_day"), ["site_id", "product_id"]))
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


# --- energy -------------------------------------------------------------------


def _rolling_24h(partition: str) -> Window:
    hour_seconds = F.unix_seconds(F.col("hour_ts"))
    return (
        Window.partitionBy(partition)
        .orderBy(hour_seconds)
        .rangeBetween(-(ROLLING_HOURS - 1) * SECONDS_PER_HOUR, 0)
    )


def build_kpi_energie_machine(fact: DataFrame) -> DataFrame:
    """kWh per machine and hour with the rolling 24 h total; hours are those the machine
    reported (a missing hour adds nothing to the windows around it)."""
    latest = Window.partitionBy("machine_id")
    return fact.select(
        "machine_id",
        "site_id",
        "hour_ts",
        "hour_key",
        "kwh",
        exact_kwh_sum("kwh", _rolling_24h("machine_id")).alias("rolling_24h_kwh"),
        F.count(F.lit(1)).over(_rolling_24h("machine_id")).alias("hours_in_window"),
        (F.col("hour_ts") == F.max("hour_ts").over(latest)).alias("is_latest"),
    )


def build_kpi_energie_site(fact: DataFrame) -> DataFrame:
    """kWh per site and hour (the site of the machine version valid at that hour) with
    the rolling 24 h total."""
    hourly = (
        fact.where(F.col("site_id").isNotNull())
        .groupBy("site_id", "hour_ts", "hour_key")
        .agg(exact_kwh_sum("kwh").alias("kwh"), F.countDistinct("machine_id").alias("machines"))
    )
    latest = Window.partitionBy("site_id")
    return hourly.select(
        "site_id",
        "hour_ts",
        "hour_key",
        "kwh",
        "machines",
        exact_kwh_sum("kwh", _rolling_24h("site_id")).alias("rolling_24h_kwh"),
        (F.col("hour_ts") == F.max("hour_ts").over(latest)).alias("is_latest"),
    )


def build_kpi_anomalies_machine(fact: DataFrame) -> DataFrame:
    """Anomaly episodes: start, end (exclusive: the hour after the last one), duration
    in hours, worst class, hours per class, peak vibration and load factor."""
    hour_index = F.floor(F.unix_seconds(F.col("hour_ts")) / SECONDS_PER_HOUR)
    anomalous = fact.where(F.col("anomaly_class").isin(*ANOMALOUS_CLASSES)).withColumn("_hour", hour_index)
    episodes = anomalous.withColumn("_episode", _episode_id(F.col("_hour"), ["machine_id"]))
    critical = F.col("anomaly_class") == "critical"
    grouped = episodes.groupBy("machine_id", "_episode").agg(
        F.min("hour_ts").alias("start_ts"),
        F.max("hour_ts").alias("_last"),
        F.count(F.lit(1)).alias("duration_hours"),
        F.count(F.when(critical, True)).alias("critical_hours"),
        F.max("vibration_mm_s").alias("peak_vibration_mm_s"),
        F.max("load_factor").alias("peak_load_factor"),
        exact_kwh_sum("kwh").alias("kwh"),
        F.min_by("site_id", "hour_ts").alias("site_id"),
        F.min_by("machine_sk", "hour_ts").alias("machine_sk"),
    )
    return grouped.select(
        "machine_id",
        "machine_sk",
        "site_id",
        "start_ts",
        (F.col("_last") + F.expr("INTERVAL 1 HOUR")).alias("end_ts"),
        date_key("start_ts").alias("date_key"),
        "duration_hours",
        F.when(F.col("critical_hours") > 0, "critical").otherwise("warning").alias("anomaly_class"),
        "critical_hours",
        "peak_vibration_mm_s",
        "peak_load_factor",
        "kwh",
    )
