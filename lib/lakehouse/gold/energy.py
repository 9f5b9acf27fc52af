"""Dimensions, facts and business rules of the energy star schema.

- ``dim_machine``: one row per machine version, surrogate key ``machine_sk`` =
  xxhash64(machine_id, valid_from). For now a single, current version per machine
  (``valid_from`` = commissioning date, ``valid_to`` '9999-12-31'): the referential
  keeps no history of machine attributes yet, so SCD2 has one row per machine.
- ``dim_temps_horaire``: one row per hour, key ``hour_key`` (yyyymmddHH, UTC), with
  the day attributes of ``dim_temps`` (built by the same code).
- ``fact_consommation_energie``: one row per machine x hour, key
  ``(machine_sk, hour_key)``.
- ``fact_production``: one row per production batch, key ``batch_id``.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.gold.dimensions import OPEN_END, build_dim_temps, date_key
from lakehouse.silver.energy import batch_hours

# ISO 10816-3 style vibration severity zones, class II machines (medium size, rigid
# foundation), RMS velocity in mm/s: zones A/B (new / unrestricted operation) up to
# 2.8, zone C (restricted operation) up to 7.1, zone D (damage) above.
VIBRATION_ZONE_B_MAX_MM_S = 2.8  # <= : 'normal'
VIBRATION_ZONE_C_MAX_MM_S = 7.1  # <= : 'warning'; above: 'critical'
OVERLOAD_LOAD_FACTOR = 1.2  # mean power above 120 % of rated power: at least 'warning'
WORKING_HOURS = (6, 22)  # [06:00, 22:00) on weekdays
ANOMALY_CLASSES = ("normal", "warning", "critical")


def classify_anomaly(vibration_mm_s: Column, load_factor: Column) -> Column:
    """'normal', 'warning' or 'critical' for one machine-hour.

    Vibration (the hour's maximum) by zone: <= 2.8 'normal', <= 7.1 'warning', above
    'critical'; a load factor above 1.2 makes the hour at least 'warning'. Unknown
    (NULL) inputs: the known one decides; both NULL, or NULL vibration with a load
    factor not above 1.2, give NULL (not enough to say the hour was normal).
    """
    overloaded = load_factor > F.lit(OVERLOAD_LOAD_FACTOR)
    return (
        F.when(vibration_mm_s > F.lit(VIBRATION_ZONE_C_MAX_MM_S), F.lit("critical"))
        .when(vibration_mm_s > F.lit(VIBRATION_ZONE_B_MAX_MM_S), F.lit("warning"))
        .when(overloaded, F.lit("warning"))
        .when(vibration_mm_s.isNotNull(), F.lit("normal"))
        .otherwise(F.lit(None).cast("string"))
    )


def hour_key(col: str) -> Column:
    """TIMESTAMP column -> yyyymmddHH INT key of ``dim_temps_horaire`` (session time
    zone, UTC in this project)."""
    return F.date_format(F.col(col), "yyyyMMddHH").cast("int")


def build_dim_machine(machines: DataFrame) -> DataFrame:
    """One current version per machine; ``machine_sk`` stable across rebuilds."""
    return machines.select(
        F.xxhash64("machine_id", "commissioned_on").alias("machine_sk"),
        "machine_id",
        "site_id",
        "machine_type",
        "rated_power_kw",
        "commissioned_on",
        F.col("commissioned_on").alias("valid_from"),
        F.lit(OPEN_END).alias("valid_to"),
        F.lit(True).alias("is_current"),
    )


def build_dim_temps_horaire(spark: SparkSession, start: dt.date, end: dt.date) -> DataFrame:
    """``dim_temps`` x 24 hours: hour_key, date_key, hour, is_working_hours, then the
    day attributes."""
    days = build_dim_temps(spark, start, end)
    hours = spark.range(24).select(F.col("id").cast("int").alias("hour"))
    low, high = WORKING_HOURS
    day_columns = [c for c in days.columns if c != "date_key"]
    return days.crossJoin(hours).select(
        (F.col("date_key").cast("long") * 100 + F.col("hour")).cast("int").alias("hour_key"),
        "date_key",
        "hour",
        ((F.col("hour") >= low) & (F.col("hour") < high) & ~F.col("is_weekend")).alias("is_working_hours"),
        *day_columns,
    )


def _current_machines(dim_machine: DataFrame) -> DataFrame:
    return dim_machine.where("is_current").select(
        F.col("machine_id").alias("_mid"), "machine_sk", F.col("site_id").alias("_site_id"), "rated_power_kw"
    )


def build_fact_consommation_energie(hourly: DataFrame, dim_machine: DataFrame) -> DataFrame:
    """Silver hourly readings keyed to the star schema, with the load factor and the
    anomaly class. ``load_factor`` is NULL when the rated power is unknown or 0."""
    machines = _current_machines(dim_machine)
    joined = hourly.join(machines, F.col("machine_id") == F.col("_mid"), "left")
    rated = F.col("rated_power_kw")
    load_factor = F.when(rated > 0, F.col("mean_kw") / rated)
    return joined.select(
        "machine_sk",
        "machine_id",
        hour_key("hour_ts").alias("hour_key"),
        date_key("hour_ts").alias("date_key"),
        "hour_ts",
        F.col("_site_id").alias("site_id"),
        "kwh",
        "mean_kw",
        "peak_kw",
        load_factor.alias("load_factor"),
        F.col("mean_temperature_c").alias("temperature_c"),
        F.col("max_vibration_mm_s").alias("vibration_mm_s"),
        "minutes_observed",
        "production_minutes",
    ).withColumn("anomaly_class", classify_anomaly(F.col("vibration_mm_s"), F.col("load_factor")))


def attributed_kwh(runs: DataFrame, hourly: DataFrame) -> DataFrame:
    """``batch_id, attributed_kwh``: for each hour a batch overlaps, the machine's kWh of
    that hour x overlap minutes / 60, summed; NULL when no reading covers the batch."""
    overlaps = batch_hours(runs)
    energy = hourly.select("machine_id", "hour_ts", "kwh")
    return (
        overlaps.join(energy, ["machine_id", "hour_ts"], "left")
        .groupBy("batch_id")
        .agg(F.sum(F.col("kwh") * F.col("overlap_minutes") / 60.0).alias("attributed_kwh"))
    )


def build_fact_production(runs: DataFrame, hourly: DataFrame, dim_machine: DataFrame) -> DataFrame:
    """One row per batch with the energy attributed to it; ``kwh_per_unit`` NULL when
    the batch produced no unit."""
    machines = _current_machines(dim_machine)
    joined = runs.join(attributed_kwh(runs, hourly), "batch_id", "left").join(
        machines, F.col("machine_id") == F.col("_mid"), "left"
    )
    units = F.col("units_produced")
    return joined.select(
        "batch_id",
        "machine_sk",
        "machine_id",
        date_key("start_ts").alias("date_key"),
        "site_id",
        "product_id",
        "start_ts",
        "end_ts",
        "units_produced",
        "units_rejected",
        "attributed_kwh",
        F.when(units > 0, F.col("attributed_kwh") / units).alias("kwh_per_unit"),
    )
