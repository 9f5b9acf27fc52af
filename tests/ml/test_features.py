"""Features per machine x hour: lags on exact hours, rolling windows, calendar."""

from __future__ import annotations

import datetime as dt

import pytest

from lakehouse.ml.features import ANOMALY_FEATURES, FORECAST_FEATURES, build_hourly_features

HOURLY = "machine_id string, hour_ts timestamp, kwh double, mean_kw double, peak_kw double, mean_temperature_c double, max_vibration_mm_s double, production_minutes double"


def _hour(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour)


@pytest.fixture
def features(spark):
    # M1 on Wednesday 11 November 2026 (Armistice, a French public holiday) at 00:00,
    # 01:00 and 03:00 (02:00 missing), and a week later at 01:00; M2 (no machine row)
    # is left out by the inner join; M1's 03:00 meter is stuck (peak = mean).
    hourly = spark.createDataFrame(
        [
            ("M1", _hour(11, 0), 10.0, 10.0, 12.0, 30.0, 2.0, 0.0),
            ("M1", _hour(11, 1), 20.0, 20.0, 25.0, 31.0, 2.5, 60.0),
            ("M1", _hour(11, 3), 30.0, 30.0, 30.0, 32.0, 3.0, 30.0),
            ("M1", _hour(18, 1), 26.0, 26.0, 27.0, 33.0, 2.0, None),
            ("M2", _hour(11, 0), 5.0, 5.0, 6.0, 20.0, 1.0, 0.0),
        ],
        HOURLY,
    )
    machines = spark.createDataFrame(
        [("M1", "mixer", 100.0)], "machine_id string, machine_type string, rated_power_kw double"
    )
    calendar = spark.createDataFrame(
        [(20261111, True), (20261118, False)], "date_key int, is_holiday boolean"
    )
    rows = build_hourly_features(hourly, machines, calendar).orderBy("hour_ts").collect()
    return {r["hour_ts"]: r for r in rows}


def test_lags_join_exact_hours_and_missing_hours_stay_null(features):
    assert len(features) == 4, "M2 has no machine row"
    assert features[_hour(11, 1)]["kwh_lag_1"] == 10.0
    assert features[_hour(11, 3)]["kwh_lag_1"] is None, "02:00 is missing: no neighbour's value"
    assert features[_hour(18, 1)]["kwh_lag_168"] == 20.0
    assert features[_hour(18, 1)]["production_minutes_lag_168"] == 60.0
    assert features[_hour(11, 1)]["kwh_lag_168"] is None
    # (26 - 20) / 100 kW rated
    assert features[_hour(18, 1)]["rel_change_lag_168"] == pytest.approx(0.06)


def test_rolling_windows_use_time_not_rows(features):
    at_3 = features[_hour(11, 3)]
    assert at_3["kwh_roll24_mean"] == pytest.approx(15.0)  # (10 + 20) / 2, hours t-24..t-1
    assert at_3["kwh_roll24_std"] == pytest.approx(7.0710678)  # sample std of 10, 20
    assert at_3["rel_change_roll24"] == pytest.approx(0.15)  # (30 - 15) / 100
    assert features[_hour(11, 0)]["kwh_roll24_mean"] is None  # nothing before
    # A week later, the 24 hours known a day before (t-47..t-24) are empty.
    assert features[_hour(18, 1)]["kwh_roll24_mean_day_ago"] is None


def test_calendar_flags_and_flat_hours(features):
    holiday = features[_hour(11, 1)]
    assert (holiday["hour_of_day"], holiday["day_of_week"], holiday["is_weekend"], holiday["is_holiday"]) == (
        1,
        2,
        0,
        1,
    )
    later = features[_hour(18, 1)]
    assert (later["day_of_week"], later["is_holiday"]) == (2, 0)
    assert features[_hour(11, 3)]["is_flat_hour"] == 1  # peak 30 = mean 30
    assert features[_hour(11, 1)]["is_flat_hour"] == 0
    assert features[_hour(11, 1)]["peak_to_mean"] == pytest.approx(1.25)
    # 20 kWh / 100 kW = 0.2 load, all 60 minutes planned: nothing unplanned, 0.8 idle.
    assert features[_hour(11, 1)]["unplanned_load"] == pytest.approx(0.0)
    assert features[_hour(11, 1)]["idle_share_of_plan"] == pytest.approx(0.8)


def test_every_model_feature_is_a_column(features):
    row = next(iter(features.values()))
    assert set(ANOMALY_FEATURES) | set(FORECAST_FEATURES) <= set(row.asDict())
