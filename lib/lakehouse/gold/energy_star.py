"""Dimensions, facts and business rules of the energy star schema.

- ``dim_machine``: SCD type 2, one row per machine version (a relocation to another
  site or a re-rating of its power starts one), surrogate key ``machine_sk`` =
  xxhash64(machine_id, valid_from); ``valid_to`` exclusive ('9999-12-31' while
  current); ``machine_sk`` -1 is the unknown machine.
- ``dim_temps_horaire``: one row per hour, key ``hour_key`` (yyyymmddHH, UTC), with
  the day attributes of ``dim_temps`` (built by the same code).
- ``fact_consommation_energie``: one row per machine x hour, key
  ``(machine_id, hour_key)``; ``machine_sk`` is the version valid at that hour, and
  ``site_id`` that version's site. ``rule_anomaly_class`` is the rules' class,
  ``model_anomaly_score`` the anomaly model's score of the hour (NULL when not
  scored) and ``anomaly_class`` the final class: the rules' class, raised to
  ``'warning'`` when the model flags a ``'normal'`` or unknown hour.
- ``fact_production``: one row per production batch, key ``batch_id``; ``machine_sk``
  the version valid when the batch started.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from lakehouse.gold.dimensions import OPEN_END, build_dim_temps, date_key, resolve_key
from lakehouse.gold.keys import UNKNOWN_ID, UNKNOWN_LABEL, UNKNOWN_SK, resolved, with_unknown_member
from lakehouse.silver.energy import batch_hours

# ISO 10816-3 style vibration severity zones, class II machines (medium size, rigid
# foundation), RMS velocity in mm/s: zones A/B (new / unrestricted operation) up to
# 2.8, zone C (restricted operation) up to 7.1, zone D (damage) above.
VIBRATION_ZONE_B_MAX_MM_S = 2.8  # <= : 'normal'
VIBRATION_ZONE_C_MAX_MM_S = 7.1  # <= : 'warning'; above: 'critical'
OVERLOAD_LOAD_FACTOR = 1.2  # mean power above 120 % of rated power: at least 'warning'
WORKING_HOURS = (6, 22)  # [06:00, 22:00) on weekdays
ANOMALY_CLASSES = ("normal", "warning", "critical")
# Written by the anomaly model's scoring (lakehouse.ml.scoring), read by the fact.
ANOMALY_SCORES_PATH = "gold/domain=energy/model=prediction/table=anomaly_scores"


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


def raised_by_model(rule_class: Column, flagged: Column) -> Column:
    """The final class of an hour: the rules' class, raised to 'warning' when the model
    flags an hour the rules call 'normal' or cannot classify (NULL); 'warning' and
    'critical' stay (the model never lowers a rule's verdict)."""
    return F.when(flagged & (rule_class.isNull() | (rule_class == "normal")), F.lit("warning")).otherwise(
        rule_class
    )


def model_verdicts(scores: DataFrame) -> DataFrame:
    """``_score_machine, _score_hour, model_anomaly_score, _model_flag``: one row per
    machine x hour of ``anomaly_scores`` (the latest ``scored_at`` when an hour was
    scored twice), so joining them keeps the fact's grain."""
    if "scored_at" in scores.columns:
        latest_first = Window.partitionBy("machine_id", "hour_ts").orderBy(F.col("scored_at").desc())
        scores = scores.withColumn("_rank", F.row_number().over(latest_first)).where(F.col("_rank") == 1)
    return scores.select(
        F.col("machine_id").alias("_score_machine"),
        F.col("hour_ts").alias("_score_hour"),
        F.col("anomaly_score").cast("double").alias("model_anomaly_score"),
        F.col("is_anomaly").alias("_model_flag"),
    )


def with_model_verdict(fact: DataFrame, scores: DataFrame | None) -> DataFrame:
    """``fact`` (with ``rule_anomaly_class``) plus ``model_anomaly_score`` and the final
    ``anomaly_class``, joined on (machine_id, hour_ts). Without ``scores`` (no model
    scored yet) the score is NULL and the class the rules'. Same columns either way."""
    if scores is None:
        return fact.select(
            "*",
            F.lit(None).cast("double").alias("model_anomaly_score"),
            F.col("rule_anomaly_class").alias("anomaly_class"),
        )
    on = (F.col("machine_id") == F.col("_score_machine")) & (F.col("hour_ts") == F.col("_score_hour"))
    joined = fact.join(model_verdicts(scores), on, "left")
    return joined.select(
        *fact.columns,
        "model_anomaly_score",
        raised_by_model(F.col("rule_anomaly_class"), F.col("_model_flag")).alias("anomaly_class"),
    )


def hour_key(col: str) -> Column:
    """TIMESTAMP column -> yyyymmddHH INT key of ``dim_temps_horaire`` (session time
    zone, UTC in this project)."""
    return F.date_format(F.col(col), "yyyyMMddHH").cast("int")


def build_dim_machine(machine_history: DataFrame) -> DataFrame:
    """One row per machine version; ``machine_sk`` stable across rebuilds. Without
    ``valid_from`` (a referential with no versions) a machine has one version from its
    commissioning date."""
    columns = machine_history.columns
    valid_from = F.col("valid_from") if "valid_from" in columns else F.col("commissioned_on")
    valid_to = F.col("valid_to") if "valid_to" in columns else F.lit(None).cast("date")
    versions = machine_history.select(
        "machine_id",
        "site_id",
        "machine_type",
        "rated_power_kw",
        "commissioned_on",
        valid_from.alias("valid_from"),
        F.coalesce(valid_to, F.lit(OPEN_END)).alias("valid_to"),
    )
    return versions.select(
        F.xxhash64("machine_id", "valid_from").alias("machine_sk"),
        "*",
        (F.col("valid_to") == F.lit(OPEN_END)).alias("is_current"),
    )


def with_unknown_machine(dim_machine: DataFrame) -> DataFrame:
    """``dim_machine`` plus ``machine_sk`` -1 (readings or batches of a machine with no
    version at that time)."""
    return with_unknown_member(
        dim_machine,
        {
            "machine_sk": UNKNOWN_SK,
            "machine_id": UNKNOWN_ID,
            "machine_type": UNKNOWN_LABEL,
            "valid_from": dt.date(1900, 1, 1),
            "valid_to": OPEN_END,
            "is_current": True,
        },
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


def with_unknown_hour(dim_temps_horaire: DataFrame) -> DataFrame:
    """``dim_temps_horaire`` plus ``hour_key`` -1 (and ``date_key`` -1)."""
    return with_unknown_member(
        dim_temps_horaire, {"hour_key": UNKNOWN_SK, "date_key": UNKNOWN_SK, "day_name": UNKNOWN_LABEL}
    )


def _machine_versions(dim_machine: DataFrame) -> DataFrame:
    return dim_machine.where(F.col("machine_sk") != UNKNOWN_SK).select(
        F.col("machine_id").alias("_mid"),
        "machine_sk",
        F.col("site_id").alias("_site_id"),
        "rated_power_kw",
        F.col("valid_from").alias("_from"),
        F.col("valid_to").alias("_to"),
    )


def join_version_at(df: DataFrame, dim_machine: DataFrame, ts: str) -> DataFrame:
    """``df`` with the machine version valid at ``ts`` (``valid_from`` <= day of ``ts``
    < ``valid_to``, in UTC): ``machine_sk`` (-1 when none), ``_site_id``,
    ``rated_power_kw``."""
    versions = _machine_versions(dim_machine)
    day = F.to_date(F.col(ts))
    condition = (F.col("machine_id") == F.col("_mid")) & (day >= F.col("_from")) & (day < F.col("_to"))
    return df.join(versions, condition, "left").withColumn("machine_sk", resolved("machine_sk"))


def build_fact_consommation_energie(
    hourly: DataFrame,
    dim_machine: DataFrame,
    dim_temps_horaire: DataFrame | None = None,
    scores: DataFrame | None = None,
) -> DataFrame:
    """Silver hourly readings keyed to the star schema (the machine version valid at the
    hour), with the load factor and the anomaly classes (rules, model score, final; see
    ``with_model_verdict``; ``scores`` = gold ``anomaly_scores``, None when no model
    scored yet). ``load_factor`` is NULL when the rated power is unknown or 0. With
    ``dim_temps_horaire``, an hour outside the calendar gets ``hour_key`` and
    ``date_key`` -1."""
    joined = join_version_at(hourly, dim_machine, "hour_ts")
    rated = F.col("rated_power_kw")
    load_factor = F.when(rated > 0, F.col("mean_kw") / rated)
    fact = joined.select(
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
    ).withColumn("rule_anomaly_class", classify_anomaly(F.col("vibration_mm_s"), F.col("load_factor")))
    fact = with_model_verdict(fact, scores)
    if dim_temps_horaire is None:
        return fact
    fact = resolve_key(fact, dim_temps_horaire, "hour_key")
    return fact.withColumn(
        "date_key", F.when(F.col("hour_key") == UNKNOWN_SK, UNKNOWN_SK).otherwise(F.col("date_key"))
    )


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
    """One row per batch with the energy attributed to it and the machine version valid
    when it started; ``kwh_per_unit`` NULL when the batch produced no unit."""
    with_energy = runs.join(attributed_kwh(runs, hourly), "batch_id", "left")
    joined = join_version_at(with_energy, dim_machine, "start_ts")
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
