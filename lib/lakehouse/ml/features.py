"""Features of the energy models, built in Spark: one row per machine x UTC hour.

Grain and key: ``(machine_id, hour_ts)``, one row per row of silver
``iot_readings_hourly`` of a known machine. Lags are joined on the exact hour
(a missing hour gives NULL, never the neighbour's value); rolling statistics use
time ranges, not row counts, for the same reason.

Two views of the same hour:

- the anomaly model sees the hour itself (peak vs mean power, temperature,
  vibration) against its recent past (1 h, 24 h, 168 h lags, the previous 24 hours);
- the forecast model sees only what is known 24 hours before (lags of 24 h and more,
  the 24 hours ending 24 hours before, the production plan, the calendar), so one
  model forecasts each of the next 24 hours.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

HOUR_S = 3600
DAY_S = 24 * HOUR_S
LAG_HOURS = (1, 24, 48, 168)
KEYS = ("machine_id", "hour_ts")

CALENDAR_FEATURES = ("hour_of_day", "day_of_week", "is_weekend", "is_holiday")
MACHINE_FEATURES = ("machine_type", "rated_power_kw")
FORECAST_FEATURES = (
    *CALENDAR_FEATURES,
    *MACHINE_FEATURES,
    "production_minutes",  # the production plan: known a day ahead
    "kwh_lag_24",
    "kwh_lag_48",
    "kwh_lag_168",
    "production_minutes_lag_168",
    "kwh_roll24_mean_day_ago",
    "kwh_roll24_max_day_ago",
    "temperature_c_lag_24",
)
ANOMALY_FEATURES = (
    *CALENDAR_FEATURES,
    *MACHINE_FEATURES,
    "production_minutes",
    "kwh",
    "load_factor",
    "peak_to_mean",
    "temperature_c",
    "vibration_mm_s",
    "kwh_lag_1",
    "kwh_lag_24",
    "kwh_lag_168",
    "kwh_roll24_mean",
    "kwh_roll24_std",
    "rel_change_lag_1",
    "rel_change_lag_24",
    "rel_change_lag_168",
    "rel_change_roll24",
    "temperature_change_lag_168",
    "is_flat_hour",
    "unplanned_load",
    "idle_share_of_plan",
)
TARGET = "kwh"


def _ratio(numerator: Column, denominator: Column) -> Column:
    return F.when(denominator > 0, numerator / denominator)


def with_calendar(hours: DataFrame, calendar: DataFrame) -> DataFrame:
    """Hour of day, day of week (Monday = 0), weekend and French public holiday flags.
    ``calendar`` is ``dim_temps`` (``date_key``, ``is_holiday``); a date it lacks is
    not a holiday. Computed on epoch seconds: independent of the session time zone."""
    days = F.floor(F.col("_hour_s") / DAY_S)
    day_of_week = ((days + 3) % 7).cast("int")  # 1970-01-01 was a Thursday
    holidays = calendar.where("is_holiday").select(F.col("date_key").alias("_holiday_key"))
    date_key = F.date_format(F.timestamp_seconds(days * DAY_S), "yyyyMMdd").cast("int")
    return (
        hours.withColumn("hour_of_day", ((F.col("_hour_s") % DAY_S) / HOUR_S).cast("int"))
        .withColumn("day_of_week", day_of_week)
        .withColumn("is_weekend", (day_of_week >= 5).cast("int"))
        .withColumn("_date_key", date_key)
        .join(holidays, F.col("_date_key") == F.col("_holiday_key"), "left")
        .withColumn("is_holiday", F.col("_holiday_key").isNotNull().cast("int"))
        .drop("_date_key", "_holiday_key")
    )


def with_lags(hours: DataFrame, columns: tuple[str, ...], lag_hours: tuple[int, ...]) -> DataFrame:
    """``<column>_lag_<k>``: the value of the same machine k hours before (NULL when
    that hour is missing)."""
    result = hours
    for k in lag_hours:
        shifted = hours.select(
            F.col("machine_id").alias("_lag_machine"),
            (F.col("_hour_s") + k * HOUR_S).alias("_lag_hour_s"),
            *[F.col(c).alias(f"{c}_lag_{k}") for c in columns],
        )
        on = (F.col("machine_id") == F.col("_lag_machine")) & (F.col("_hour_s") == F.col("_lag_hour_s"))
        result = result.join(shifted, on, "left").drop("_lag_machine", "_lag_hour_s")
    return result


def with_rolling(hours: DataFrame) -> DataFrame:
    """kWh statistics over the previous 24 hours (``roll24``: hours t-24..t-1) and
    over the 24 hours known a day before (``roll24_*_day_ago``: t-47..t-24)."""
    by_machine = Window.partitionBy("machine_id").orderBy("_hour_s")
    previous = by_machine.rangeBetween(-DAY_S, -HOUR_S)
    day_ago = by_machine.rangeBetween(-2 * DAY_S + HOUR_S, -DAY_S)
    return (
        hours.withColumn("kwh_roll24_mean", F.avg("kwh").over(previous))
        .withColumn("kwh_roll24_std", F.stddev_samp("kwh").over(previous))
        .withColumn("kwh_roll24_mean_day_ago", F.avg("kwh").over(day_ago))
        .withColumn("kwh_roll24_max_day_ago", F.max("kwh").over(day_ago))
    )


def with_relative_changes(hours: DataFrame) -> DataFrame:
    """Changes relative to the rated power (comparable across machines): what a drift,
    a spike or a shifted profile moves."""
    rated = F.col("rated_power_kw")
    return (
        hours.withColumn("load_factor", _ratio(F.col("kwh"), rated))
        .withColumn("peak_to_mean", _ratio(F.col("peak_kw"), F.col("mean_kw")))
        .withColumn("rel_change_lag_1", _ratio(F.col("kwh") - F.col("kwh_lag_1"), rated))
        .withColumn("rel_change_lag_24", _ratio(F.col("kwh") - F.col("kwh_lag_24"), rated))
        .withColumn("rel_change_lag_168", _ratio(F.col("kwh") - F.col("kwh_lag_168"), rated))
        .withColumn("rel_change_roll24", _ratio(F.col("kwh") - F.col("kwh_roll24_mean"), rated))
        .withColumn("temperature_change_lag_168", F.col("temperature_c") - F.col("temperature_c_lag_168"))
        # A stuck meter repeats one value: the hour's peak is its mean (up to the
        # rounding of an average of 60 equal doubles).
        .withColumn(
            "is_flat_hour", (F.col("peak_kw") - F.col("mean_kw") <= 1e-9 * F.abs("peak_kw")).cast("int")
        )
        # Power drawn outside planned production, and planned production without power
        # (a shifted profile does both).
        .withColumn("unplanned_load", F.col("load_factor") * (1 - F.col("production_minutes") / 60))
        .withColumn("idle_share_of_plan", (F.col("production_minutes") / 60) * (1 - F.col("load_factor")))
    )


def build_hourly_features(hourly: DataFrame, machines: DataFrame, calendar: DataFrame) -> DataFrame:
    """Silver ``iot_readings_hourly`` x silver ``machines`` (inner: a machine without
    type or rated power cannot be scored) x the calendar -> one row per machine x hour
    with the key, the target ``kwh`` and every feature of both models."""
    machine_info = machines.select("machine_id", "machine_type", F.col("rated_power_kw").cast("double"))
    hours = hourly.select(
        "machine_id",
        "hour_ts",
        F.unix_seconds("hour_ts").alias("_hour_s"),
        F.col("kwh").cast("double").alias("kwh"),
        F.col("mean_kw").cast("double").alias("mean_kw"),
        F.col("peak_kw").cast("double").alias("peak_kw"),
        F.col("mean_temperature_c").cast("double").alias("temperature_c"),
        F.col("max_vibration_mm_s").cast("double").alias("vibration_mm_s"),
        F.col("production_minutes").cast("double").alias("production_minutes"),
    ).join(machine_info, "machine_id", "inner")
    lagged = with_lags(hours, ("kwh",), LAG_HOURS)
    lagged = with_lags(lagged, ("temperature_c", "production_minutes"), (24, 168))
    features = (
        lagged.transform(with_rolling)
        .transform(with_relative_changes)
        .transform(lambda df: with_calendar(df, calendar))
    )
    columns = dict.fromkeys([*KEYS, TARGET, *ANOMALY_FEATURES, *FORECAST_FEATURES])
    return features.select(*columns)
