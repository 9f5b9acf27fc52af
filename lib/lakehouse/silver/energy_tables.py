"""Silver datasets of the energy domain (declarative definitions)."""

from __future__ import annotations

from lakehouse import pipelines as dp
from lakehouse.bronze.sources import DROP_DAY, dropped_on
from lakehouse.silver.cleaning import dropped_by_run_date
from lakehouse.silver.energy import (
    HOURLY_READING_RULES,
    LATEST_BATCH_RULE,
    PRODUCTION_RUN_RULES,
    clean_machine_history,
    clean_machines,
    finish_hourly_readings,
    prepare_production_runs,
    resample_hourly,
)

BRONZE_READINGS_PATH = "bronze/source=iot/table=readings"
HOURLY_READINGS_PATH = "silver/domain=energy/table=iot_readings_hourly"


@dp.materialized_view(
    path="silver/domain=energy/table=machines",
    contract=dp.Contract(keys=("machine_id",), grain="one row per machine", owner="energy-operations"),
)
@dp.expect_or_fail("machine_id_present", "machine_id IS NOT NULL")
def silver_machines(bronze_machines):
    """One row per machine (key machine_id), typed: site, type, rated power (kW)."""
    return clean_machines(bronze_machines)


@dp.materialized_view(
    path="silver/domain=energy/table=machine_history",
    contract=dp.Contract(
        keys=("machine_id", "valid_from"), grain="one row per machine version", owner="energy-operations"
    ),
)
@dp.expect_or_fail("machine_id_present", "machine_id IS NOT NULL")
@dp.expect_or_fail("valid_period", "valid_to IS NULL OR valid_to > valid_from")
def silver_machine_history(bronze_machines_changes):
    """One row per machine version (key machine_id, valid_from; valid_to exclusive, NULL
    while current): site and rated power over time, from every row version read from
    the referential (bronze_machines keeps only the current row per machine)."""
    return clean_machine_history(bronze_machines_changes)


@dp.materialized_view(
    path="silver/domain=energy/table=production_runs",
    quarantine=True,
    contract=dp.Contract(keys=("batch_id",), grain="one row per production batch", owner="energy-operations"),
)
@dp.expect_all_or_drop({**PRODUCTION_RUN_RULES, **LATEST_BATCH_RULE})
def silver_production_runs(bronze_production_batches):
    """One row per production batch (key batch_id): machine, product, [start_ts, end_ts)
    in UTC, units; the latest ingested copy wins. Corrupt lines and invalid windows go
    to production_runs_quarantine with the rule names."""
    return prepare_production_runs(dropped_by_run_date(bronze_production_batches))


@dp.materialized_view(
    private=True,
    incremental=dp.by_day(
        source="bronze_iot_readings",
        source_day="ts",
        target_day="hour_ts",
        arrival_day=DROP_DAY,
        arrival_where=dropped_on,
        source_where="_corrupt_record IS NULL AND ts IS NOT NULL",
    ),
)
def silver_iot_readings_resampled(bronze_iot_readings):
    """Minute readings resampled to machine x UTC hour, the latest copy of a minute
    counting once: the expensive step, so only the UTC days whose readings changed are
    resampled again (every copy of a minute falls on the minute's day). Internal to the
    pipeline: silver_iot_readings_hourly adds what is cheap to every hour. Made of the
    well-formed readings (with a time) dropped up to the run date (``source_where``:
    a plain time column lets the engine skip the files of other days)."""
    return resample_hourly(bronze_iot_readings)


@dp.materialized_view(
    path=HOURLY_READINGS_PATH,
    quarantine=True,
    contract=dp.Contract(
        keys=("machine_id", "hour_ts"), grain="one row per machine and UTC hour", owner="energy-operations"
    ),
)
@dp.expect_all_or_drop(HOURLY_READING_RULES)
def silver_iot_readings_hourly(silver_iot_readings_resampled, silver_machines, silver_production_runs):
    """One row per machine x UTC hour (key machine_id, hour_ts): kWh, mean and peak kW,
    mean temperature, max vibration, minutes observed, minutes a batch ran. Minute
    readings are deduplicated on (machine_id, ts), corrupt lines excluded; hours of
    unknown machines: iot_readings_hourly_quarantine. The resampled hours come from
    silver_iot_readings_resampled (refreshed by day); the machine check and production
    minutes are redone on every hour, so a new machine or batch reaches old hours too."""
    return finish_hourly_readings(silver_iot_readings_resampled, silver_machines, silver_production_runs)
