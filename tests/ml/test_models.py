"""Baselines, labels, hold-out split and the promotion gate (no MLflow needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lakehouse.ml import models
from lakehouse.ml.tracking import promotion_decision


def _hours(n: int, kwh: np.ndarray, machine: str = "M1") -> pd.DataFrame:
    stamps = pd.Timestamp("2026-11-01") + pd.to_timedelta(np.arange(n), unit="h")
    return pd.DataFrame(
        {
            "machine_id": machine,
            "hour_ts": stamps,
            "hour_of_day": stamps.hour,
            "kwh": kwh,
            "rated_power_kw": 100.0,
        }
    )


def test_robust_baseline_flags_the_spike_not_the_daily_profile():
    # 10 days of a daily profile (0..23 kWh by hour) + noise-free, then a spike of
    # +30 kWh on day 9 at 12:00; same hour's history is 12 every day, MAD 0 ->
    # floor 2 % of 100 kW = 2 -> z = 30 / 2 = 15 > 3.5.
    kwh = np.tile(np.arange(24, dtype=float), 10)
    spike = 8 * 24 + 12
    kwh[spike] += 30.0
    frame = _hours(240, kwh)
    baseline = models.robust_zscore_baseline(frame)
    assert baseline.loc[spike, "baseline_z"] == pytest.approx(15.0)
    assert baseline["baseline_flag"].sum() == 1 and baseline.loc[spike, "baseline_flag"]
    # The first 5 days have fewer than 5 same-hour values: no score, no flag.
    assert baseline.loc[: 5 * 24 - 1, "baseline_z"].isna().all()


def test_label_hours_marks_every_hour_an_event_touches():
    frame = _hours(6, np.zeros(6))
    events = pd.DataFrame(
        {
            "machine_id": ["M1", "M9"],
            "start_ts": pd.to_datetime(["2026-11-01 01:50", "2026-11-01 00:00"]),
            "end_ts": pd.to_datetime(["2026-11-01 03:00", "2026-11-01 06:00"]),  # exclusive
            "anomaly_type": ["stuck_sensor", "spike"],
        }
    )
    assert models.label_hours(frame, events).tolist() == [
        "normal",
        "stuck_sensor",
        "stuck_sensor",
        "normal",
        "normal",
        "normal",
    ]


def test_time_split_keeps_the_last_days_out_and_refuses_too_short_history():
    frame = _hours(96, np.ones(96))  # 4 days
    split = models.time_split(frame, holdout_days=1)
    assert split.cutoff == pd.Timestamp("2026-11-04")
    assert (len(split.train), len(split.holdout)) == (72, 24)
    with pytest.raises(ValueError, match="nothing to train on"):
        models.time_split(frame, holdout_days=4)


@pytest.mark.parametrize(
    ("challenger", "baseline", "champion", "promote", "reason"),
    [
        (2.0, 5.0, None, True, "beats the baseline"),
        (2.0, 5.0, 3.0, True, "beats the baseline and the champion"),
        (6.0, 5.0, None, False, "does not beat the baseline"),
        (4.0, 5.0, 3.0, False, "does not beat the champion"),
        (3.0, 5.0, 3.0, False, "does not beat the champion"),  # a tie keeps the champion
    ],
)
def test_promotion_gate_lower_is_better(challenger, baseline, champion, promote, reason):
    decision = promotion_decision("mae", challenger, baseline, champion, higher_is_better=False)
    assert decision.promote is promote
    assert reason in decision.reason


def test_promotion_gate_higher_is_better():
    assert promotion_decision("f1", 0.9, 0.5, 0.8, higher_is_better=True).promote
    assert not promotion_decision("f1", 0.7, 0.5, 0.8, higher_is_better=True).promote
    assert not promotion_decision("f1", 0.4, 0.5, None, higher_is_better=True).promote


def _labelled_hours(days: int, anomalous_days: set[int]) -> tuple[pd.DataFrame, pd.Series]:
    from lakehouse.ml.features import ANOMALY_FEATURES

    n = days * 24
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({c: rng.normal(size=n) for c in ANOMALY_FEATURES})
    frame["machine_type"] = "mixer"
    frame["hour_ts"] = pd.Timestamp("2026-11-01") + pd.to_timedelta(np.arange(n), unit="h")
    labels = pd.Series(False, index=frame.index)
    for day in anomalous_days:  # ten anomalous hours a day, shown by a flat hour
        labels.iloc[day * 24 + 8 : day * 24 + 18] = True
    frame["is_flat_hour"] = labels.astype(float)
    return frame, labels


def test_threshold_tuned_out_of_fold_separates_a_clean_signal():
    # Anomalies in each third of 12 days: 40 anomalous hours to fit on in every fold
    # (leaves need 20 hours).
    frame, labels = _labelled_hours(12, {1, 2, 5, 6, 9, 10})
    threshold = models.tune_threshold(frame, labels, seed=1, max_iter=30)
    assert 0.05 <= threshold <= 0.9
    model = models.train_anomaly(frame, labels, seed=1, max_iter=30)
    scored = model.predict(None, frame)
    assert model.threshold == threshold
    assert (scored["is_anomaly"] == labels).all(), "a perfectly separable signal is found exactly"


def test_threshold_falls_back_to_one_half_without_labels_in_every_fit():
    frame, labels = _labelled_hours(12, {1, 2})  # only the first third has anomalies
    assert models.tune_threshold(frame, labels, seed=1, max_iter=30) == 0.5


def _forecast_frame(days: int, machines=("M1", "M2")) -> pd.DataFrame:
    """A noise-free daily profile per machine (M2 twice M1) with every forecast feature;
    the week-old lag is missing everywhere (a history shorter than a week)."""
    from lakehouse.ml.features import FORECAST_FEATURES

    frames = []
    for k, machine in enumerate(machines):
        frame = _hours(days * 24, np.tile(np.arange(24, dtype=float), days) * (k + 1), machine)
        for column in FORECAST_FEATURES:
            if column not in frame:
                frame[column] = np.nan if column == "kwh_lag_168" else 0.0
        frame["machine_type"] = "press"
        frame["kwh_lag_24"] = frame["kwh"]  # the same hour the day before: the same value
        frame["is_flat_hour"] = 0
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_a_feature_without_any_value_is_fitted_as_a_constant():
    frame = _forecast_frame(3)
    model = models.train_forecast(frame, seed=1, max_iter=20)
    assert model.predict(None, frame).notna().all()


def test_label_free_detector_flags_a_residual_far_outside_the_machines_own_spread():
    frame = _forecast_frame(6)
    model = models.train_label_free(frame, seed=1, max_iter=300)
    assert set(model.residuals) == {"M1", "M2", "*"}
    test = frame[frame["hour_ts"] >= frame["hour_ts"].max().normalize()].reset_index(drop=True)
    # M1 at 12:00 draws 12 + 40 kWh: 40 % of rated power, 20x the 2 % floor of the scale.
    spike = test.index[(test["machine_id"] == "M1") & (test["hour_of_day"] == 12)][0]
    test.loc[spike, "kwh"] += 40.0
    # M2 at 03:00: a stuck meter (flat hour while drawing power) scores 1.
    stuck = test.index[(test["machine_id"] == "M2") & (test["hour_of_day"] == 3)][0]
    test.loc[stuck, "is_flat_hour"] = 1
    scored = model.predict(None, test)
    assert scored.loc[spike, "anomaly_score"] > 0.8 and scored.loc[stuck, "anomaly_score"] == 1.0
    assert sorted(scored.index[scored["is_anomaly"]]) == sorted([spike, stuck])
    # A machine never seen in training falls back to the fleet's spread.
    unseen = test[test["machine_id"] == "M1"].assign(machine_id="M9")
    assert not model.predict(None, unseen.reset_index(drop=True))["anomaly_score"].isna().any()
