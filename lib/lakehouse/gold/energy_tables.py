"""Gold datasets of the energy domain: the star schema of machine consumption."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame

from lakehouse import pipelines as dp
from lakehouse.gold.energy_kpis import (
    ANOMALOUS_CLASSES,
    build_kpi_anomalies_machine,
    build_kpi_energie_machine,
    build_kpi_energie_site,
)
from lakehouse.gold.energy_star import (
    ANOMALY_CLASSES,
    ANOMALY_SCORES_PATH,
    build_dim_machine,
    build_dim_temps_horaire,
    build_fact_consommation_energie,
    build_fact_production,
    with_unknown_hour,
    with_unknown_machine,
)
from lakehouse.lake import delta_exists, read_delta

CALENDAR_YEARS_AROUND = 1  # dim_temps_horaire: the run date's year and one year on each side
_CLASSES = ", ".join(f"'{c}'" for c in ANOMALY_CLASSES)


@dp.materialized_view(
    path="gold/domain=energy/model=star/table=dim_machine",
    contract=dp.Contract(
        keys=("machine_sk",), grain="one row per machine version", owner="energy-operations"
    ),
)
@dp.expect_or_fail("machine_sk_present", "machine_sk IS NOT NULL")
@dp.expect_or_fail("valid_period", "valid_to > valid_from")
def dim_machine(silver_machine_history):
    """Machines, SCD type 2: one row per version (relocation or re-rating), key
    machine_sk = xxhash64(machine_id, valid_from), valid_to exclusive; -1 unknown."""
    return build_dim_machine(silver_machine_history).transform(with_unknown_machine)


@dp.materialized_view(
    path="gold/domain=energy/model=star/table=dim_temps_horaire",
    contract=dp.Contract(keys=("hour_key",), grain="one row per UTC hour", owner="energy-operations"),
)
@dp.expect_or_fail("hour_key_matches_date_key", "hour_key = -1 OR hour_key DIV 100 = date_key")
def dim_temps_horaire():
    """Calendar, one row per hour (key hour_key yyyymmddHH, UTC), working hours
    (06-22 on weekdays) and the day attributes of dim_temps; hour_key -1 unknown."""
    context = dp.current()
    year = context.parameters["run_date"].year
    start = dt.date(year - CALENDAR_YEARS_AROUND, 1, 1)
    end = dt.date(year + CALENDAR_YEARS_AROUND, 12, 31)
    return build_dim_temps_horaire(context.spark, start, end).transform(with_unknown_hour)


def stored_anomaly_scores() -> DataFrame | None:
    """The anomaly model's scores as stored (written by the ML scoring, outside this
    pipeline), None while no model has scored; fact_consommation_energie's refresh by
    day fingerprints their days too (extra_day_inputs)."""
    context = dp.current()
    path = f"{context.lake.root}/{ANOMALY_SCORES_PATH}"
    return read_delta(context.spark, path) if delta_exists(path) else None


@dp.materialized_view(
    path="gold/domain=energy/model=star/table=fact_consommation_energie",
    incremental=dp.by_day(
        source="silver_iot_readings_hourly",
        source_day="hour_ts",
        target_day="hour_ts",
        extra_day_inputs={ANOMALY_SCORES_PATH: "hour_ts"},  # a day scored since is rebuilt too
    ),
    contract=dp.Contract(
        keys=("machine_id", "hour_key"),
        grain="one row per machine and hour",
        owner="energy-operations",
        foreign_keys={"machine_sk": "dim_machine", "hour_key": "dim_temps_horaire"},
    ),
)
@dp.expect("machine_resolved", "machine_sk <> -1")
@dp.expect("hour_resolved", "hour_key <> -1")
@dp.expect_or_fail("keys_present", "machine_sk IS NOT NULL AND hour_key IS NOT NULL")
@dp.expect_or_fail("known_anomaly_class", f"anomaly_class IN ({_CLASSES})")
@dp.expect_or_fail("known_rule_anomaly_class", f"rule_anomaly_class IN ({_CLASSES})")
def fact_consommation_energie(silver_iot_readings_hourly, dim_machine, dim_temps_horaire):
    """One row per machine x hour (key machine_id, hour_key; machine_sk the version
    valid at that hour, -1 when none): kWh, mean and peak kW, load factor,
    temperature, vibration, production minutes, the rules' anomaly class, the anomaly
    model's score (NULL where not scored) and the final anomaly class (the rules'
    class, 'normal' or unknown raised to 'warning' where the model flags the hour)."""
    return build_fact_consommation_energie(
        silver_iot_readings_hourly, dim_machine, dim_temps_horaire, stored_anomaly_scores()
    )


@dp.materialized_view(
    path="gold/domain=energy/model=star/table=fact_production",
    contract=dp.Contract(
        keys=("batch_id",),
        grain="one row per production batch",
        owner="energy-operations",
        foreign_keys={"machine_sk": "dim_machine"},
    ),
)
@dp.expect("energy_attributed", "attributed_kwh IS NOT NULL")
@dp.expect("machine_resolved", "machine_sk <> -1")
def fact_production(silver_production_runs, silver_iot_readings_hourly, dim_machine):
    """One row per production batch (key batch_id): units and the machine's kWh
    attributed pro rata of the minutes the batch overlaps each hour."""
    return build_fact_production(silver_production_runs, silver_iot_readings_hourly, dim_machine)


@dp.materialized_view(
    path="gold/domain=energy/model=kpi/table=kpi_energie_machine",
    incremental=dp.by_day(
        source="fact_consommation_energie",
        source_day="hour_ts",
        target_day="hour_ts",
        lookback_days=1,  # the rolling 24 h reaches into the day before
        latest_per=["machine_id"],  # is_latest
    ),
    contract=dp.Contract(
        keys=("machine_id", "hour_ts"), grain="one row per machine and hour", owner="energy-operations"
    ),
)
@dp.expect_or_fail("rolling_covers_the_hour", "rolling_24h_kwh >= kwh - 0.001 OR kwh < 0")  # sums to 1e-6 kWh
def kpi_energie_machine(fact_consommation_energie):
    """kWh per machine and hour with the rolling 24 h total (key machine_id, hour_ts);
    is_latest marks the current hour. Refreshed by day: a changed day recomputes the
    day after it (whose windows reach into it) and the days of each machine's latest
    hour, before and now."""
    return build_kpi_energie_machine(fact_consommation_energie)


@dp.materialized_view(
    path="gold/domain=energy/model=kpi/table=kpi_energie_site",
    incremental=dp.by_day(
        source="fact_consommation_energie",
        source_day="hour_ts",
        target_day="hour_ts",
        lookback_days=1,  # the rolling 24 h reaches into the day before
        latest_per=["site_id"],  # is_latest
    ),
    contract=dp.Contract(
        keys=("site_id", "hour_ts"), grain="one row per site and hour", owner="energy-operations"
    ),
)
def kpi_energie_site(fact_consommation_energie):
    """kWh per site and hour with the rolling 24 h total (key site_id, hour_ts);
    is_latest marks the site's current hour. Refreshed by day like kpi_energie_machine."""
    return build_kpi_energie_site(fact_consommation_energie)


@dp.materialized_view(
    path="gold/domain=energy/model=kpi/table=kpi_anomalies_machine",
    contract=dp.Contract(
        keys=("machine_id", "start_ts"),
        grain="one row per anomaly episode (machine and first hour)",
        owner="energy-operations",
    ),
)
@dp.expect_or_fail(
    "known_episode_class", f"anomaly_class IN ({', '.join(repr(c) for c in ANOMALOUS_CLASSES)})"
)
def kpi_anomalies_machine(fact_consommation_energie):
    """Anomaly episodes per machine (key machine_id, start_ts): consecutive warning or
    critical hours, with duration, worst class and peaks.

    Recomputed whole: an episode spans an open-ended run of hours (a changed or
    newly scored hour can join or split episodes that began any number of days before
    it), so no bounded set of days gives its rows; it reads only the anomalous hours."""
    return build_kpi_anomalies_machine(fact_consommation_energie)
