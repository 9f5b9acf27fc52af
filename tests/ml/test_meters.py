"""``lakehouse ml meter train``: an hourly meter CSV -> UTC series, features, a model
logged to MLflow and registered, on a synthetic meter of 35 days around the October
2026 fall-back (Europe/Paris), with missing hours and the 11 November holiday."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lakehouse.ml import tracking
from lakehouse.ml.meters import (
    FEATURES,
    MeterDataError,
    evaluate,
    meter_features,
    read_meter_csv,
    seasonal_naive,
    slug,
    train_meter_forecast,
)

PARIS = "Europe/Paris"
# 2026-10-09 00:00 to 2026-11-12 23:00 Paris: 35 local days, one of them (25 October) of 25 hours.
FIRST_UTC, LAST_UTC = pd.Timestamp("2026-10-08 22:00"), pd.Timestamp("2026-11-12 22:00")
MISSING_LOCAL = ("2026-10-20 10:00", "2026-10-20 11:00", "2026-10-20 12:00", "2026-11-03 15:00")


def synthetic_meter(seed: int = 7) -> pd.DataFrame:
    """UTC hour, aware local time and kWh of a workshop: 2 kWh of base load, +6 kWh from
    08:00 to 18:00 on working days, +3 kWh on Saturday mornings, nothing more on Sundays
    and public holidays; Gaussian noise (sd 0.3 kWh)."""
    utc = pd.date_range(FIRST_UTC, LAST_UTC, freq="h")
    local = utc.tz_localize("UTC").tz_convert(PARIS)
    hour, weekday = local.hour, local.dayofweek
    holiday = np.isin(local.strftime("%m-%d"), ["11-01", "11-11"])
    working = (weekday < 5) & ~holiday & (hour >= 8) & (hour < 18)
    saturday = (weekday == 5) & (hour >= 8) & (hour < 12)
    rng = np.random.default_rng(seed)
    kwh = 2.0 + 6.0 * working + 3.0 * saturday + rng.normal(0, 0.3, len(utc))
    frame = pd.DataFrame({"hour_ts": utc, "local": local, "kwh": np.round(np.clip(kwh, 0, None), 3)})
    missing = frame["local"].dt.strftime("%Y-%m-%d %H:%M").isin(MISSING_LOCAL)
    return frame[~missing].reset_index(drop=True)


def write_csv(path: Path, timestamps, kwh, header: str = "timestamp,kWh") -> Path:
    lines = [header, *(f"{t},{k}" for t, k in zip(timestamps, kwh, strict=True))]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def meter_csv(tmp_path_factory) -> Path:
    """The synthetic meter with naive local timestamps (02:00 twice on 25 October)."""
    meter = synthetic_meter()
    folder = tmp_path_factory.mktemp("meters")
    return write_csv(folder / "atelier_b.csv", meter["local"].dt.strftime("%Y-%m-%d %H:%M:%S"), meter["kwh"])


def settings_for(folder: Path):
    from lakehouse.config import load_settings

    return load_settings(
        var_dir=str(folder / "var"),
        ml={"tracking_uri": f"sqlite:///{folder / 'mlflow.db'}", "artifact_root": str(folder / "artifacts")},
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Settings with their own MLflow store (one SQLite file per module and worker)."""
    return settings_for(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(scope="module")
def trained(meter_csv, store):
    tracking.configure(store)
    return train_meter_forecast(read_meter_csv(meter_csv), store, name="Atelier B")


# -- reading: UTC hours, DST, missing hours ------------------------------------------------


def test_naive_local_csv_gives_a_complete_utc_series_without_duplicates_or_fake_gaps(meter_csv):
    series = read_meter_csv(meter_csv, timezone=PARIS)
    hourly = series.hourly
    assert series.hours == 35 * 24 + 1 == 841  # 25 October has 25 local hours
    assert series.rows == 837 and series.missing_hours == 4
    assert series.duplicate_rows == 0 and series.bad_rows == ()
    assert hourly["hour_ts"].iloc[0] == FIRST_UTC and hourly["hour_ts"].iloc[-1] == LAST_UTC
    assert hourly["hour_ts"].is_unique and (hourly["hour_ts"].diff().dropna() == pd.Timedelta("1h")).all()
    missing = hourly.loc[hourly["kwh"].isna(), "hour_ts"].dt.strftime("%m-%d %H:%M").tolist()
    assert missing == ["10-20 08:00", "10-20 09:00", "10-20 10:00", "11-03 14:00"]  # CEST then CET


def test_offset_timestamps_give_the_same_series(meter_csv, tmp_path):
    meter = synthetic_meter()
    offsets = write_csv(tmp_path / "offsets.csv", [t.isoformat() for t in meter["local"]], meter["kwh"])
    assert (
        "2026-10-25T02:00:00+02:00" in offsets.read_text()
        and "2026-10-25T02:00:00+01:00" in offsets.read_text()
    )
    pd.testing.assert_frame_equal(read_meter_csv(offsets).hourly, read_meter_csv(meter_csv).hourly)


def test_local_calendar_around_the_fall_back_and_the_holiday(meter_csv):
    features = meter_features(read_meter_csv(meter_csv).hourly, PARIS).set_index("hour_ts")
    # UTC 2026-10-24 23:00 .. 2026-10-25 02:00 = local 01:00 CEST, 02:00 CEST, 02:00 CET, 03:00 CET
    night = features.loc["2026-10-24 23:00":"2026-10-25 02:00"]
    assert night["hour_of_day"].tolist() == [1, 2, 2, 3]
    assert night["day_of_week"].tolist() == [6, 6, 6, 6] and night["is_weekend"].all()
    assert night["local_ts"].dt.strftime("%H:%M").tolist() == ["01:00", "02:00", "02:00", "03:00"]
    # 11 November (Wednesday) in local time: 2026-11-10 23:00 UTC to 2026-11-11 22:00 UTC
    holiday = features.index[features["is_holiday"] == 1]
    assert len(holiday) == 2 * 24  # 1 November (Sunday) and 11 November, both CET
    assert (holiday[0], holiday[23]) == (pd.Timestamp("2026-10-31 23:00"), pd.Timestamp("2026-11-01 22:00"))
    assert (holiday[24], holiday[-1]) == (pd.Timestamp("2026-11-10 23:00"), pd.Timestamp("2026-11-11 22:00"))
    assert (
        features.loc["2026-11-11 23:00", "is_holiday_day_ago"]
        and features.loc["2026-11-11 23:00", "hour_of_day"] == 0
    )
    assert not features.loc["2026-11-11 22:00", "is_holiday_day_ago"]
    assert features.loc["2026-11-11 12:00", "day_of_week"] == 2


def test_spring_forward_has_no_fake_gap_naive_or_with_offsets(tmp_path):
    naive = write_csv(
        tmp_path / "naive.csv",
        ["2026-03-29 00:00", "2026-03-29 01:00", "2026-03-29 03:00", "2026-03-29 04:00"],
        [1, 2, 3, 4],
    )
    offsets = write_csv(
        tmp_path / "offsets.csv",
        [
            "2026-03-29T00:00:00+01:00",
            "2026-03-29T01:00:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-29T02:00:00Z",
        ],
        [1, 2, 3, 4],
    )
    for path in (naive, offsets):
        series = read_meter_csv(path)
        assert series.hourly["hour_ts"].dt.strftime("%d %H:%M").tolist() == [
            "28 23:00",
            "29 00:00",
            "29 01:00",
            "29 02:00",
        ]
        assert series.hourly["kwh"].tolist() == [1, 2, 3, 4] and series.missing_hours == 0
        assert meter_features(series.hourly, PARIS)["hour_of_day"].tolist() == [0, 1, 3, 4]


def test_a_lone_fall_back_hour_is_taken_as_summer_time(tmp_path):
    path = write_csv(
        tmp_path / "fall.csv", ["2026-10-25 01:00", "2026-10-25 02:00", "2026-10-25 03:00"], [1, 2, 3]
    )
    hourly = read_meter_csv(path).hourly
    assert hourly["hour_ts"].dt.strftime("%d %H:%M").tolist() == [
        "24 23:00",
        "25 00:00",
        "25 01:00",
        "25 02:00",
    ]
    assert hourly["kwh"].tolist()[::3] == [1.0, 3.0] and hourly["kwh"].iloc[1] == 2.0
    assert math.isnan(hourly["kwh"].iloc[2])  # 02:00 winter time: missing


def test_lags_across_a_gap_are_nan_not_the_neighbours_value(meter_csv):
    features = meter_features(read_meter_csv(meter_csv).hourly, PARIS).set_index("hour_ts")
    kwh = features["kwh"]
    # 2026-10-21 10:00 CEST (08:00 UTC): the day before at 10:00 is missing
    assert math.isnan(features.loc["2026-10-21 08:00", "kwh_lag_24"])
    assert features.loc["2026-10-21 07:00", "kwh_lag_24"] == kwh["2026-10-20 07:00"]
    assert math.isnan(features.loc["2026-10-22 08:00", "kwh_lag_48"])
    # lags count elapsed hours: 168 h before 2026-10-27 09:00 CET (08:00 UTC) is 10:00 CEST, missing
    assert math.isnan(features.loc["2026-10-27 08:00", "kwh_lag_168"])
    assert features.loc["2026-10-27 07:00", "kwh_lag_168"] == kwh["2026-10-20 07:00"]  # 08:00 CET, 09:00 CEST
    # the day before's mean skips the missing hours: hours t-47..t-24, 22 of them known
    window = kwh["2026-10-19 10:00":"2026-10-20 09:00"]
    assert len(window) == 24 and window.count() == 22
    assert features.loc["2026-10-21 09:00", "kwh_roll24_mean_day_ago"] == pytest.approx(window.mean())
    assert features.loc["2026-10-21 09:00", "kwh_roll24_max_day_ago"] == window.max()


# -- metrics by hand ------------------------------------------------------------------------


def test_metrics_recomputed_by_hand_on_four_hours():
    metrics = evaluate([10, 20, 30, 40], [12, 18, 30, 44], [10, 10, 10, 10])
    assert metrics["mae"] == 2.0 and metrics["baseline_mae"] == 15.0  # (2+2+0+4)/4, (0+10+20+30)/4
    assert metrics["skill_mae"] == pytest.approx(1 - 2 / 15)
    assert metrics["mape"] == pytest.approx(10.0)  # (0.2 + 0.1 + 0 + 0.1) / 4
    assert metrics["nmbe"] == pytest.approx(-4.0)  # (-2 + 2 + 0 - 4) / (4 x 25): over-forecast
    assert metrics["cv_rmse"] == pytest.approx(math.sqrt(6) / 25 * 100)  # sqrt((4+4+0+16)/4) / 25
    assert metrics["baseline_nmbe"] == pytest.approx(60.0)  # 60 / (4 x 25)


def test_a_weekly_periodic_series_has_a_perfect_seasonal_naive():
    week = 1.0 + np.arange(168) % 24 + np.repeat(np.arange(7), 24)  # 1 + hour of day + day of week
    hourly = pd.DataFrame(
        {
            "hour_ts": pd.date_range("2026-06-01", periods=3 * 168, freq="h"),
            "kwh": np.tile(week, 3).astype(float),
        }
    )
    features = meter_features(hourly, "UTC").iloc[168:]
    metrics = evaluate(features["kwh"], seasonal_naive(features), features["kwh"] + 1.0)
    assert metrics["mae"] == 0.0 and metrics["nmbe"] == 0.0 and metrics["baseline_mae"] == 1.0
    assert metrics["skill_mae"] == 1.0


# -- bad input ------------------------------------------------------------------------------


def test_bad_rows_name_the_file_and_line_or_are_skipped_and_counted(tmp_path):
    stamps = [
        "2026-03-02 00:00",
        "soon",
        "2026-03-02 02:00",
        "2026-03-02 03:00",
        "2026-03-02 04:30",
        "2026-03-02 05:00",
    ]
    path = write_csv(tmp_path / "bad.csv", stamps, [1, 1, "-0.5", "n/a", 1, "1.2.3"])
    with pytest.raises(MeterDataError) as error:
        read_meter_csv(path)
    message = str(error.value)
    assert f"{path}, line 3: timestamp 'soon' is not an ISO 8601 date-time" in message
    assert "(and 3 more bad rows)" in message
    series = read_meter_csv(path, skip_bad_rows=True)
    assert [(row.line, row.reason) for row in series.bad_rows] == [
        (3, "timestamp 'soon' is not an ISO 8601 date-time (e.g. 2026-03-29T01:00:00+01:00)"),
        (4, "kWh '-0.5' is negative"),
        (6, "timestamp '2026-03-02 04:30' is not the start of an hour"),
        (7, "kWh '1.2.3' is not a number"),
    ]
    # 00:00 kept, 03:00 present but n/a (missing); 01:00, 02:00 and 05:00 were never readable
    assert series.rows == 6 and series.hours == 4 and series.missing_hours == 3
    assert series.hourly["kwh"].iloc[0] == 1.0


def test_a_local_time_that_does_not_exist_is_a_bad_row(tmp_path):
    path = write_csv(
        tmp_path / "spring.csv", ["2026-03-29 01:00", "2026-03-29 02:00", "2026-03-29 03:00"], [1, 2, 3]
    )
    with pytest.raises(
        MeterDataError, match=r"line 3: local time 2026-03-29 02:00:00 does not exist in Europe/Paris"
    ):
        read_meter_csv(path)
    assert read_meter_csv(path, skip_bad_rows=True).hourly["kwh"].tolist() == [1.0, 3.0]


def test_a_duplicate_utc_hour_is_an_error_unless_identical(tmp_path):
    stamps = [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T00:00:00Z",
        "2026-10-25T02:00:00+01:00",
    ]
    conflicting = write_csv(tmp_path / "dup.csv", stamps, [1, 2, 2.5, 3])
    with pytest.raises(MeterDataError) as error:
        read_meter_csv(conflicting)
    assert str(error.value) == (
        f"{conflicting}, lines 3 and 4: the same UTC hour 2026-10-25 00:00Z twice with different kWh (2, 2.5)"
    )
    identical = read_meter_csv(write_csv(tmp_path / "same.csv", stamps, [1, 2, 2, 3]))
    assert identical.duplicate_rows == 1 and identical.hourly["kwh"].tolist() == [1.0, 2.0, 3.0]


def test_a_file_that_is_not_utf8_text_is_a_clear_error(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("timestamp,kWh,relevé\n2026-01-05 00:00,1.5,été\n".encode("latin-1"))
    with pytest.raises(MeterDataError, match=f"{path}: not a UTF-8 CSV text file"):
        read_meter_csv(path)


def test_semicolons_and_decimal_commas(tmp_path):
    path = tmp_path / "enedis.csv"
    path.write_text(
        "Timestamp;kWh;quality\n2026-01-05 00:00;1,5;R\n2026-01-05 01:00;;E\n2026-01-05 02:00;0,25;R\n"
    )
    series = read_meter_csv(path)
    assert series.hourly["kwh"].tolist()[::2] == [1.5, 0.25] and series.missing_hours == 1


def test_too_little_data_says_how_many_days_are_needed(tmp_path, store):
    meter = synthetic_meter()
    meter = meter[meter["hour_ts"] < FIRST_UTC + pd.Timedelta(days=20)]
    path = write_csv(tmp_path / "short.csv", [t.isoformat() for t in meter["local"]], meter["kwh"])
    with pytest.raises(
        MeterDataError, match=r"20\.0 days of readings .* a 7-day hold-out needs at least 21 days"
    ):
        train_meter_forecast(read_meter_csv(path), store)


# -- training, MLflow, registry, CLI ---------------------------------------------------------


def test_training_counts_and_metrics(trained):
    assert trained.model_name == "meter_forecast_atelier_b" == "meter_forecast_" + slug("Atelier B")
    assert trained.hours == 841 and trained.missing_hours == 4 and trained.bad_rows == 0
    # hold-out: 6-12 November local (all CET): 7 x 24 hours, one missing (3 November is before)
    assert trained.holdout_start == pd.Timestamp("2026-11-05 23:00") and trained.holdout_hours == 168
    assert trained.evaluated_hours == 168 - 1  # 2026-11-10 15:00 local: 3 November 15:00 is missing
    assert trained.train_rows == 841 - 168 - 4
    predictions = trained.predictions
    recomputed = evaluate(predictions["kwh"], predictions["predicted_kwh"], predictions["seasonal_naive"])
    assert recomputed == pytest.approx(trained.metrics)
    # the seasonal naive's errors are arithmetic on the seeded CSV; the model's depend on the fit
    assert trained.metrics["baseline_mae"] == pytest.approx(0.6800659)
    assert trained.metrics["baseline_cv_rmse"] == pytest.approx(43.916589)
    assert trained.metrics["baseline_nmbe"] == pytest.approx(-10.823067)
    assert trained.metrics["mae"] == pytest.approx(0.656, abs=0.01)
    assert trained.metrics["skill_mae"] == pytest.approx(0.036, abs=0.015)
    # 11 November (a Wednesday, not a working day) is in the hold-out: neither forecast knows it
    day = predictions["local_ts"].dt.strftime("%m-%d")
    ordinary = predictions[day != "11-11"]
    model_mae = (ordinary["kwh"] - ordinary["predicted_kwh"]).abs().mean()
    naive_mae = (ordinary["kwh"] - ordinary["seasonal_naive"]).abs().mean()
    assert model_mae < naive_mae


def test_run_logged_with_params_metrics_and_plot(trained, store):
    import mlflow

    tracking.configure(store)
    run = mlflow.get_run(trained.run_id)
    assert run.info.experiment_id == tracking.experiment_id(store, "meter_forecast")
    params = run.data.params
    assert params["meter"] == "Atelier B" and params["source_file"] == "atelier_b.csv"
    assert params["timezone"] == PARIS and params["holdout_days"] == "7"
    assert params["holdout_start_local"] == "2026-11-06T00:00:00"
    assert (params["hours"], params["missing_hours"], params["train_rows"], params["evaluated_hours"]) == (
        "841",
        "4",
        str(841 - 168 - 4),
        "167",
    )
    assert params["features"] == ",".join(FEATURES)
    for key in ("mae", "mape", "smape", "cv_rmse", "nmbe", "baseline_mae", "baseline_cv_rmse", "skill_mae"):
        assert run.data.metrics[key] == pytest.approx(trained.metrics[key])
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(trained.run_id, "evaluation")]
    assert artifacts == ["evaluation/meter_holdout.png"]


def test_registered_model_loads_and_predicts(trained, meter_csv, store):
    import mlflow

    tracking.configure(store)
    version = mlflow.MlflowClient().get_model_version("meter_forecast_atelier_b", trained.version)
    assert trained.version == "1" and version.run_id == trained.run_id
    model = mlflow.pyfunc.load_model("models:/meter_forecast_atelier_b/1")
    assert model.metadata.signature.inputs.input_names() == list(FEATURES)
    features = meter_features(read_meter_csv(meter_csv).hourly, PARIS)
    holdout = features[features["hour_ts"].isin(trained.predictions["hour_ts"])]
    predicted = model.predict(holdout)  # extra columns (hour_ts, kwh...) are ignored
    np.testing.assert_allclose(np.asarray(predicted, float), trained.predictions["predicted_kwh"], rtol=1e-9)
    # every hour, including the first week and the gaps (NaN lags)
    everything = np.asarray(model.predict(features), float)
    assert everything.shape == (841,) and np.isfinite(everything).all() and (everything >= 0).all()
    # logged as a model from code: the MLmodel points at the code file, the estimator is an artifact
    flavor = mlflow.models.get_model_info("models:/meter_forecast_atelier_b/1").flavors["python_function"]
    assert flavor["model_code_path"].endswith("meter_forecast.py")
    assert list(flavor["artifacts"]) == ["estimator"]
    assert flavor["artifacts"]["estimator"]["path"].endswith("estimator.skops")  # no pickle


def test_cli_trains_prints_the_table_and_registers(meter_csv, trained, tmp_path):
    from lakehouse.ml.cli import ml_cli

    env = {
        "LAKEHOUSE_VAR_DIR": str(tmp_path / "var"),
        "LAKEHOUSE_ML__TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "LAKEHOUSE_ML__ARTIFACT_ROOT": str(tmp_path / "artifacts"),
    }
    result = CliRunner(env=env).invoke(ml_cli, ["meter", "train", str(meter_csv), "--holdout-days", "7"])
    assert result.exit_code == 0, result.output
    assert "837 rows, 841 hours from 2026-10-08 22:00Z to 2026-11-12 22:00Z, 4 missing" in result.output
    assert "167 of 168 hours evaluated" in result.output
    assert "skill on MAE" in result.output and "same hour last week" in result.output
    assert "registered model meter_forecast_atelier_b version 1" in result.output
    import mlflow

    tracking.configure(settings_for(tmp_path))
    run = mlflow.get_run(result.output.split("MLflow run ")[1].split()[0])
    assert run.data.params["meter"] == "atelier_b"
    assert run.data.metrics == pytest.approx(trained.metrics)  # same CSV, same seed, same metrics
    assert f"mae (kWh)    │  {trained.metrics['mae']:.3f} │               0.680 │" in result.output

    bad = write_csv(tmp_path / "bad.csv", ["2026-03-02 00:00", "later"], [1, 2])
    failed = CliRunner(env=env).invoke(ml_cli, ["meter", "train", str(bad)])
    assert failed.exit_code == 1 and f"{bad}, line 3: timestamp 'later'" in failed.output
