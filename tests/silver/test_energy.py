import datetime as dt
from decimal import Decimal

from chispa import assert_df_equality

from lakehouse.silver.energy import batch_hours, clean_hourly_readings

READINGS_SCHEMA = (
    "machine_id string, ts timestamp, kwh double, kw double, temperature_c double, vibration_mm_s double, "
    "_corrupt_record string, _source_file string, _line_number int, _ingested_at timestamp"
)
RUNS_SCHEMA = (
    "batch_id string, machine_id string, site_id string, product_id string, start_ts timestamp, "
    "end_ts timestamp, units_produced bigint, units_rejected bigint"
)
HOURLY_SCHEMA = (
    "machine_id string, hour_ts timestamp, kwh double, mean_kw double, peak_kw double, "
    "mean_temperature_c double, max_vibration_mm_s double, minutes_observed long, production_minutes double"
)
T1 = dt.datetime(2026, 11, 2, 1, 0)
T2 = dt.datetime(2026, 11, 3, 1, 0)


def _at(hour, minute):
    return dt.datetime(2026, 11, 1, hour, minute)


def _reading(machine, ts, kwh, kw, temp, vib, *, file="f1", row=1, at=T1, corrupt=None):
    return (machine, ts, kwh, kw, temp, vib, corrupt, file, row, at)


def test_readings_are_deduplicated_resampled_hourly_and_unknown_machines_quarantined(spark):
    readings = spark.createDataFrame(
        [
            _reading("M001", _at(10, 0), 1.0, 60.0, 20.0, 1.0, row=1),
            _reading("M001", _at(10, 1), 9.0, 540.0, 99.0, 9.0, row=2),  # re-sent below: loses
            _reading("M001", _at(10, 1), 0.5, 30.0, 22.0, 3.0, file="f2", row=1, at=T2),
            _reading(None, None, None, None, None, None, row=3, corrupt='{"machine_id": "M001", "kwh": 10'),
            _reading("M001", _at(11, 59), 0.25, 15.0, None, None, row=4),  # partial hour, NULL sensors
            _reading("M001", _at(12, 0), 0.5, 30.0, 25.0, 1.5, row=5),
            _reading("M999", _at(10, 0), 2.0, 120.0, 30.0, 2.0, row=6),  # unknown machine
        ],
        READINGS_SCHEMA,
    )
    machines = spark.createDataFrame([("M001",), ("M002",)], "machine_id string")
    runs = spark.createDataFrame(
        [("B1", "M001", "S01", "P1", _at(10, 30), _at(11, 15), 10, 0)],
        RUNS_SCHEMA,
    )

    hourly, quarantine = clean_hourly_readings(readings, machines, runs)

    expected = spark.createDataFrame(
        [
            ("M001", _at(10, 0), 1.5, 45.0, 60.0, 21.0, 3.0, 2, 30.0),
            ("M001", _at(11, 0), 0.25, 15.0, 15.0, None, None, 1, 15.0),
            ("M001", _at(12, 0), 0.5, 30.0, 30.0, 25.0, 1.5, 1, 0.0),
        ],
        HOURLY_SCHEMA,
    )
    assert_df_equality(hourly, expected, ignore_row_order=True, ignore_nullable=True)
    rejected = [(r["machine_id"], r["kwh"], list(r["_rejection_reasons"])) for r in quarantine.collect()]
    assert rejected == [("M999", 2.0, ["known_machine"])]


def test_batch_hours_split_a_batch_by_minutes_of_overlap(spark):
    runs = spark.createDataFrame(
        [
            ("B1", "M001", "S01", "P1", _at(10, 30), _at(12, 15), 10, 0),
            ("B2", "M001", "S01", "P1", _at(13, 0), _at(14, 0), 10, 0),  # end exclusive: one hour
        ],
        RUNS_SCHEMA,
    )
    expected = spark.createDataFrame(
        [
            ("B1", "M001", _at(10, 0), 30.0),
            ("B1", "M001", _at(11, 0), 60.0),
            ("B1", "M001", _at(12, 0), 15.0),
            ("B2", "M001", _at(13, 0), 60.0),
        ],
        "batch_id string, machine_id string, hour_ts timestamp, overlap_minutes double",
    )
    assert_df_equality(batch_hours(runs), expected, ignore_row_order=True, ignore_nullable=True)


MACHINE_SNAPSHOT_SCHEMA = (
    "machine_id string, site_id string, machine_type string, rated_power_kw decimal(8,2), "
    "commissioned_on date, updated_at timestamp, valid_from date, valid_to date"
)


def test_machine_history_keeps_versions_and_machines_the_current_one(spark):
    from lakehouse.silver.energy import clean_machine_history, clean_machines

    commissioned, moved = dt.date(2020, 1, 1), dt.date(2026, 11, 2)
    snapshot = spark.createDataFrame(
        [
            (" M001", "S01 ", "tablet_press", Decimal(20), commissioned, T1, commissioned, moved),
            ("M001", "S02", "tablet_press", Decimal(40), commissioned, T2, moved, None),
            ("M001", "S02", "tablet_press", Decimal(40), commissioned, T2, moved, None),  # read twice
            ("M002", "S01", "hvac", Decimal(10), commissioned, T1, commissioned, None),
        ],
        MACHINE_SNAPSHOT_SCHEMA,
    )
    history = sorted(
        (r.machine_id, r.site_id, r.rated_power_kw, r.valid_from, r.valid_to)
        for r in clean_machine_history(snapshot).collect()
    )
    assert history == [
        ("M001", "S01", 20.0, commissioned, moved),
        ("M001", "S02", 40.0, moved, None),
        ("M002", "S01", 10.0, commissioned, None),
    ]
    current = sorted((r.machine_id, r.site_id, r.rated_power_kw) for r in clean_machines(snapshot).collect())
    assert current == [("M001", "S02", 40.0), ("M002", "S01", 10.0)]


def test_machines_without_versions_have_one_from_commissioning(spark):
    from lakehouse.silver.energy import clean_machine_history

    snapshot = spark.createDataFrame(
        [("M001", "S01", "hvac", Decimal(10), dt.date(2020, 1, 1), T1)],
        "machine_id string, site_id string, machine_type string, rated_power_kw decimal(8,2), "
        "commissioned_on date, updated_at timestamp",
    )
    row = clean_machine_history(snapshot).first()
    assert (row.valid_from, row.valid_to) == (dt.date(2020, 1, 1), None)
