"""KPI tables of the energy domain (``gold/domain=energy/model=kpi/``), computed from
``fact_consommation_energie``.

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
from lakehouse.gold.episodes import episode_id

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
    episodes = anomalous.withColumn("_episode", episode_id(F.col("_hour"), ["machine_id"]))
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
