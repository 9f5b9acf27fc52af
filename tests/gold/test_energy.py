import datetime as dt

from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.gold.energy_star import (
    build_dim_machine,
    build_dim_temps_horaire,
    build_fact_consommation_energie,
    build_fact_production,
    classify_anomaly,
    with_unknown_hour,
    with_unknown_machine,
)

HOURLY_SCHEMA = (
    "machine_id string, hour_ts timestamp, kwh double, mean_kw double, peak_kw double, "
    "mean_temperature_c double, max_vibration_mm_s double, minutes_observed long, production_minutes double"
)
RUNS_SCHEMA = (
    "batch_id string, machine_id string, site_id string, product_id string, start_ts timestamp, "
    "end_ts timestamp, units_produced bigint, units_rejected bigint"
)
MACHINES_SCHEMA = (
    "machine_id string, site_id string, machine_type string, rated_power_kw double, "
    "commissioned_on date, updated_at timestamp"
)


def _at(hour, minute=0):
    return dt.datetime(2026, 11, 1, hour, minute)


def _dim_machine(spark):
    machines = spark.createDataFrame(
        [
            ("M001", "S01", "tablet_press", 40.0, dt.date(2011, 10, 11), _at(9)),
            ("M002", "S02", "hvac", 0.0, dt.date(2015, 1, 1), _at(9)),
        ],
        MACHINES_SCHEMA,
    )
    return build_dim_machine(machines)


def test_classify_anomaly_zones_at_their_boundaries(spark):
    cases = spark.createDataFrame(
        [
            (1, 2.8, 1.0),  # zone B upper bound: normal
            (2, 2.81, 1.0),  # zone C
            (3, 7.1, 1.0),  # zone C upper bound: warning
            (4, 7.11, 1.0),  # zone D
            (5, 1.0, 1.2),  # load factor at the threshold: normal
            (6, 1.0, 1.21),  # overloaded: at least warning
            (7, 8.0, 1.5),  # zone D and overloaded: critical
            (8, None, 1.3),  # no vibration, overloaded: warning
            (9, None, 0.5),  # no vibration, not overloaded: unknown
            (10, 1.0, None),  # no load factor: vibration decides
            (11, None, None),
        ],
        "case int, vibration double, load_factor double",
    )
    actual = cases.select(
        "case", classify_anomaly(F.col("vibration"), F.col("load_factor")).alias("anomaly_class")
    )
    expected = spark.createDataFrame(
        [
            (1, "normal"),
            (2, "warning"),
            (3, "warning"),
            (4, "critical"),
            (5, "normal"),
            (6, "warning"),
            (7, "critical"),
            (8, "warning"),
            (9, None),
            (10, "normal"),
            (11, None),
        ],
        "case int, anomaly_class string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_fact_consommation_energie_keys_load_factor_and_class(spark):
    dim = _dim_machine(spark)
    hourly = spark.createDataFrame(
        [
            ("M001", _at(23), 50.0, 50.0, 60.0, 40.0, 3.0, 60, 15.0),
            ("M002", _at(0), 10.0, 10.0, 12.0, None, None, 60, 0.0),  # rated power 0: no load factor
        ],
        HOURLY_SCHEMA,
    )
    fact = build_fact_consommation_energie(hourly, dim)
    sk = {r["machine_id"]: r["machine_sk"] for r in dim.collect()}
    actual = fact.select(
        "machine_sk", "hour_key", "date_key", "site_id", "kwh", "load_factor", "anomaly_class"
    )
    expected = spark.createDataFrame(
        [
            (sk["M001"], 2026110123, 20261101, "S01", 50.0, 1.25, "warning"),
            (sk["M002"], 2026110100, 20261101, "S02", 10.0, None, None),
        ],
        "machine_sk long, hour_key int, date_key int, site_id string, kwh double, load_factor double, "
        "anomaly_class string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_fact_production_prorates_kwh_over_two_hours_and_kwh_per_unit(spark):
    dim = _dim_machine(spark)
    hourly = spark.createDataFrame(
        [
            ("M001", _at(10), 6.0, 36.0, 40.0, 30.0, 2.0, 60, 60.0),
            ("M001", _at(11), 4.0, 24.0, 30.0, 30.0, 2.0, 60, 15.0),
        ],
        HOURLY_SCHEMA,
    )
    runs = spark.createDataFrame(
        [
            ("B1", "M001", "S01", "P1", _at(10, 30), _at(11, 15), 8, 1),  # 6 x 30/60 + 4 x 15/60
            ("B2", "M001", "S01", "P2", _at(10, 0), _at(10, 30), 0, 3),  # no unit: no kWh per unit
            ("B3", "M002", "S02", "P1", _at(10, 0), _at(11, 0), 5, 0),  # no reading: nothing attributed
        ],
        RUNS_SCHEMA,
    )
    fact = build_fact_production(runs, hourly, dim)
    actual = fact.select("batch_id", "date_key", "units_produced", "attributed_kwh", "kwh_per_unit")
    expected = spark.createDataFrame(
        [
            ("B1", 20261101, 8, 4.0, 0.5),
            ("B2", 20261101, 0, 3.0, None),
            ("B3", 20261101, 5, None, None),
        ],
        "batch_id string, date_key int, units_produced bigint, attributed_kwh double, kwh_per_unit double",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    assert fact.where("machine_sk IS NULL").count() == 0


def test_dim_temps_horaire_has_24_hours_per_day_and_working_hours(spark):
    dim = build_dim_temps_horaire(spark, dt.date(2026, 11, 27), dt.date(2026, 11, 28))  # Friday, Saturday
    assert dim.count() == 48
    rows = {r["hour_key"]: r for r in dim.collect()}
    friday_6, friday_21, friday_22 = rows[2026112706], rows[2026112721], rows[2026112722]
    assert (friday_6["date_key"], friday_6["hour"], friday_6["day_name"]) == (20261127, 6, "vendredi")
    assert (
        friday_6["is_working_hours"] and friday_21["is_working_hours"] and not friday_22["is_working_hours"]
    )
    assert not rows[2026112705]["is_working_hours"] and not rows[2026112810]["is_working_hours"]


HISTORY_SCHEMA = (
    "machine_id string, site_id string, machine_type string, rated_power_kw double, commissioned_on date, "
    "valid_from date, valid_to date, updated_at timestamp"
)
MOVE_DAY = dt.date(2026, 11, 2)


def _dim_machine_history(spark):
    """M001 re-rated 20 -> 40 kW and relocated S01 -> S02 on 2 Nov, M002 unchanged."""
    history = spark.createDataFrame(
        [
            ("M001", "S01", "tablet_press", 20.0, dt.date(2020, 1, 1), dt.date(2020, 1, 1), MOVE_DAY, _at(9)),
            ("M001", "S02", "tablet_press", 40.0, dt.date(2020, 1, 1), MOVE_DAY, None, _at(9)),
            ("M002", "S01", "hvac", 10.0, dt.date(2026, 11, 1), dt.date(2026, 11, 1), None, _at(9)),
        ],
        HISTORY_SCHEMA,
    )
    return with_unknown_machine(build_dim_machine(history))


def test_dim_machine_is_scd2_with_an_unknown_member(spark):
    dim = _dim_machine_history(spark)
    rows = sorted((r.machine_id, r.valid_from, r.valid_to, r.is_current, r.site_id) for r in dim.collect())
    assert rows == [
        ("M001", dt.date(2020, 1, 1), MOVE_DAY, False, "S01"),
        ("M001", MOVE_DAY, dt.date(9999, 12, 31), True, "S02"),
        ("M002", dt.date(2026, 11, 1), dt.date(9999, 12, 31), True, "S01"),
        ("UNKNOWN", dt.date(1900, 1, 1), dt.date(9999, 12, 31), True, None),
    ]
    keys = {(r.machine_id, r.valid_from): r.machine_sk for r in dim.collect()}
    expected = spark.sql("SELECT xxhash64('M001', DATE'2026-11-02') AS k").first().k
    assert keys[("M001", MOVE_DAY)] == expected and keys[("UNKNOWN", dt.date(1900, 1, 1))] == -1


def test_fact_consommation_takes_the_machine_version_valid_at_the_hour(spark):
    dim = _dim_machine_history(spark)
    sk = {(r.machine_id, r.valid_from): r.machine_sk for r in dim.collect()}
    hourly = spark.createDataFrame(
        [
            ("M001", dt.datetime(2026, 11, 1, 23), 10.0, 10.0, 10.0, 20.0, 1.0, 60, 0.0),  # last hour before
            ("M001", dt.datetime(2026, 11, 2, 0), 10.0, 10.0, 10.0, 20.0, 1.0, 60, 0.0),  # first hour after
            (
                "M002",
                dt.datetime(2026, 10, 31, 12),
                5.0,
                5.0,
                5.0,
                20.0,
                1.0,
                60,
                0.0,
            ),  # before commissioning
            (
                "M003",
                dt.datetime(2026, 11, 1, 12),
                5.0,
                5.0,
                5.0,
                20.0,
                1.0,
                60,
                0.0,
            ),  # not in the referential
            ("M002", dt.datetime(2030, 1, 1, 0), 5.0, 5.0, 5.0, 20.0, 1.0, 60, 0.0),  # outside the calendar
        ],
        HOURLY_SCHEMA,
    )
    calendar = with_unknown_hour(build_dim_temps_horaire(spark, dt.date(2026, 10, 31), dt.date(2026, 11, 2)))
    fact = build_fact_consommation_energie(hourly, dim, calendar)
    actual = fact.select("machine_id", "machine_sk", "hour_key", "date_key", "site_id", "load_factor")
    expected = spark.createDataFrame(
        [
            ("M001", sk[("M001", dt.date(2020, 1, 1))], 2026110123, 20261101, "S01", 0.5),  # 10 kW / 20 kW
            ("M001", sk[("M001", MOVE_DAY)], 2026110200, 20261102, "S02", 0.25),  # 10 kW / 40 kW
            ("M002", -1, 2026103112, 20261031, None, None),
            ("M003", -1, 2026110112, 20261101, None, None),
            ("M002", sk[("M002", dt.date(2026, 11, 1))], -1, -1, "S01", 0.5),  # 5 kW / 10 kW
        ],
        "machine_id string, machine_sk long, hour_key int, date_key int, site_id string, load_factor double",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    assert calendar.where("hour_key = -1").count() == 1 and calendar.count() == 3 * 24 + 1


def test_fact_production_takes_the_version_valid_when_the_batch_started(spark):
    dim = _dim_machine_history(spark)
    sk = {(r.machine_id, r.valid_from): r.machine_sk for r in dim.collect()}
    hourly = spark.createDataFrame(
        [("M001", dt.datetime(2026, 11, 1, 23), 8.0, 8.0, 8.0, 20.0, 1.0, 60, 60.0)], HOURLY_SCHEMA
    )
    runs = spark.createDataFrame(
        [
            # starts the evening before the move, ends after midnight: the old version (S01)
            (
                "B1",
                "M001",
                "S01",
                "P1",
                dt.datetime(2026, 11, 1, 23, 30),
                dt.datetime(2026, 11, 2, 0, 30),
                4,
                0,
            ),
            ("B2", "M001", "S02", "P1", dt.datetime(2026, 11, 2, 1), dt.datetime(2026, 11, 2, 2), 2, 0),
            ("B3", "M009", "S01", "P1", dt.datetime(2026, 11, 2, 1), dt.datetime(2026, 11, 2, 2), 2, 0),
        ],
        RUNS_SCHEMA,
    )
    fact = build_fact_production(runs, hourly, dim)
    actual = fact.select("batch_id", "machine_sk", "attributed_kwh", "kwh_per_unit")
    expected = spark.createDataFrame(
        [
            ("B1", sk[("M001", dt.date(2020, 1, 1))], 4.0, 1.0),  # 8 kWh x 30/60; 4 kWh / 4 units
            ("B2", sk[("M001", MOVE_DAY)], None, None),  # no reading that hour
            ("B3", -1, None, None),  # unknown machine
        ],
        "batch_id string, machine_sk long, attributed_kwh double, kwh_per_unit double",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


SCORES_SCHEMA = (
    "machine_id string, hour_ts timestamp, anomaly_score double, is_anomaly boolean, scored_at timestamp"
)


def _three_hours(spark):
    """M001 (rated 40 kW) at 10 kW, so the load factor (0.25) never decides: vibration
    1.0 -> normal, 3.0 -> warning, 8.0 -> critical."""
    return spark.createDataFrame(
        [
            ("M001", _at(10), 10.0, 10.0, 12.0, 40.0, 1.0, 60, 0.0),
            ("M001", _at(11), 10.0, 10.0, 12.0, 40.0, 3.0, 60, 0.0),
            ("M001", _at(12), 10.0, 10.0, 12.0, 40.0, 8.0, 60, 0.0),
        ],
        HOURLY_SCHEMA,
    )


def _classes(fact):
    return fact.select("hour_key", "rule_anomaly_class", "model_anomaly_score", "anomaly_class")


CLASSES_SCHEMA = "hour_key int, rule_anomaly_class string, model_anomaly_score double, anomaly_class string"


def test_fact_folds_in_the_model_scores_and_keeps_the_rules_class(spark):
    first, second = dt.datetime(2026, 11, 2, 1), dt.datetime(2026, 11, 2, 2)
    scores = spark.createDataFrame(
        [
            ("M001", _at(10), 0.20, False, first),  # scored again later: the later verdict counts
            ("M001", _at(10), 0.91, True, second),
            ("M001", _at(11), 0.30, False, second),
            ("M001", _at(12), 0.95, True, second),
            ("M001", _at(13), 0.99, True, second),  # no reading that hour: adds no fact row
        ],
        SCORES_SCHEMA,
    )
    fact = build_fact_consommation_energie(_three_hours(spark), _dim_machine(spark), scores=scores)
    expected = spark.createDataFrame(
        [
            (2026110110, "normal", 0.91, "warning"),  # flagged normal hour -> warning
            (2026110111, "warning", 0.30, "warning"),  # not flagged: the rules' class
            (2026110112, "critical", 0.95, "critical"),  # flagged, but critical stays
        ],
        CLASSES_SCHEMA,
    )
    assert_df_equality(_classes(fact), expected, ignore_row_order=True, ignore_nullable=True)


def test_fact_without_scores_has_the_rules_class_and_the_same_columns(spark):
    dim = _dim_machine(spark)
    fact = build_fact_consommation_energie(_three_hours(spark), dim)
    expected = spark.createDataFrame(
        [
            (2026110110, "normal", None, "normal"),
            (2026110111, "warning", None, "warning"),
            (2026110112, "critical", None, "critical"),
        ],
        CLASSES_SCHEMA,
    )
    assert_df_equality(_classes(fact), expected, ignore_row_order=True, ignore_nullable=True)
    no_scores = spark.createDataFrame([], SCORES_SCHEMA)
    scored = build_fact_consommation_energie(_three_hours(spark), dim, scores=no_scores)
    # the incremental refresh compares schemas: scores or not, the fact's must not change
    assert [(f.name, f.dataType) for f in fact.schema] == [(f.name, f.dataType) for f in scored.schema]
    assert fact.columns[-3:] == ["rule_anomaly_class", "model_anomaly_score", "anomaly_class"]
