"""Gold datasets of the energy domain: the star schema of machine consumption."""

from __future__ import annotations

import datetime as dt

from lakehouse import pipelines as dp
from lakehouse.gold.energy import (
    ANOMALY_CLASSES,
    build_dim_machine,
    build_dim_temps_horaire,
    build_fact_consommation_energie,
    build_fact_production,
)

CALENDAR_YEARS_AROUND = 1  # dim_temps_horaire: the run date's year and one year on each side
_CLASSES = ", ".join(f"'{c}'" for c in ANOMALY_CLASSES)


@dp.materialized_view(path="gold/domain=energy/model=star/table=dim_machine")
@dp.expect_or_fail("machine_sk_present", "machine_sk IS NOT NULL")
def dim_machine(silver_machines):
    """Machines (key machine_sk = xxhash64(machine_id, valid_from)); SCD type 2 with a
    single current version per machine for now."""
    return build_dim_machine(silver_machines)


@dp.materialized_view(path="gold/domain=energy/model=star/table=dim_temps_horaire")
@dp.expect_or_fail("hour_key_matches_date_key", "hour_key DIV 100 = date_key")
def dim_temps_horaire():
    """Calendar, one row per hour (key hour_key yyyymmddHH, UTC), working hours
    (06-22 on weekdays) and the day attributes of dim_temps."""
    context = dp.current()
    year = context.parameters["run_date"].year
    start = dt.date(year - CALENDAR_YEARS_AROUND, 1, 1)
    end = dt.date(year + CALENDAR_YEARS_AROUND, 12, 31)
    return build_dim_temps_horaire(context.spark, start, end)


@dp.materialized_view(path="gold/domain=energy/model=star/table=fact_consommation_energie")
@dp.expect("machine_known", "machine_sk IS NOT NULL")
@dp.expect_or_fail("known_anomaly_class", f"anomaly_class IN ({_CLASSES})")
def fact_consommation_energie(silver_iot_readings_hourly, dim_machine):
    """One row per machine x hour (key machine_sk, hour_key): kWh, mean and peak kW,
    load factor, temperature, vibration, production minutes, anomaly class."""
    return build_fact_consommation_energie(silver_iot_readings_hourly, dim_machine)


@dp.materialized_view(path="gold/domain=energy/model=star/table=fact_production")
@dp.expect("energy_attributed", "attributed_kwh IS NOT NULL")
def fact_production(silver_production_runs, silver_iot_readings_hourly, dim_machine):
    """One row per production batch (key batch_id): units and the machine's kWh
    attributed pro rata of the minutes the batch overlaps each hour."""
    return build_fact_production(silver_production_runs, silver_iot_readings_hourly, dim_machine)
