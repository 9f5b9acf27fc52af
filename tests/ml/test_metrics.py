"""Evaluation metrics, hand-computed."""

from __future__ import annotations

import pandas as pd
import pytest

from lakehouse.ml.metrics import detection_metrics, event_recall, forecast_metrics, skill


def test_forecast_metrics_by_hand():
    m = forecast_metrics([10.0, 20.0], [12.0, 18.0])
    assert m["mae"] == pytest.approx(2.0)
    assert m["rmse"] == pytest.approx(2.0)
    assert m["mape"] == pytest.approx(15.0)  # (2/10 + 2/20) / 2
    assert m["smape"] == pytest.approx((4 / 22 + 4 / 38) / 2 * 100)
    assert m["cv_rmse"] == pytest.approx(2.0 / 15.0 * 100)  # RMSE / mean actual
    assert m["nmbe"] == pytest.approx(0.0)  # (-2 + 2) / (2 x 15)
    # Under-forecast by 3 kWh each hour: (3 + 3) / (2 x 15) = +20 %.
    assert forecast_metrics([10.0, 20.0], [7.0, 17.0])["nmbe"] == pytest.approx(20.0)
    assert skill(2.0, 8.0) == pytest.approx(0.75)


def test_forecast_metrics_refuse_an_empty_holdout():
    with pytest.raises(ValueError, match="hold-out"):
        forecast_metrics([], [])


def test_detection_metrics_per_type():
    types = pd.Series(["normal", "normal", "normal", "spike", "spike", "drift", "drift", "drift"])
    flags = pd.Series([True, False, False, True, True, True, False, False])
    m = detection_metrics(flags, types)
    # overall: TP 3 (spike x2, drift x1), FP 1, FN 2 -> P 3/4, R 3/5, F1 2/3
    assert m["overall"]["precision"] == pytest.approx(0.75)
    assert m["overall"]["recall"] == pytest.approx(0.6)
    assert m["overall"]["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    # spike: normal + spike hours only: TP 2, FP 1 -> P 2/3, R 1
    assert (m["spike"]["precision"], m["spike"]["recall"], m["spike"]["support"]) == (
        pytest.approx(2 / 3),
        1.0,
        2,
    )
    # drift: TP 1, FP 1, FN 2 -> P 1/2, R 1/3, F1 0.4
    assert m["drift"]["f1"] == pytest.approx(0.4)


def test_event_recall_counts_events_with_one_flagged_hour():
    events = pd.DataFrame(
        {
            "machine_id": ["M1", "M1", "M2"],
            "start_ts": pd.to_datetime(["2026-11-01 10:30", "2026-11-02 00:00", "2026-11-01 00:00"]),
            "end_ts": pd.to_datetime(["2026-11-01 12:00", "2026-11-02 05:00", "2026-11-01 01:00"]),
            "anomaly_type": ["spike", "drift", "spike"],
        }
    )
    # 10:00 is the hour where the 10:30 spike starts; 12:00 is after the first event.
    flagged = pd.DataFrame(
        {"machine_id": ["M1", "M1"], "hour_ts": pd.to_datetime(["2026-11-01 10:00", "2026-11-02 05:00"])}
    )
    assert event_recall(flagged, events) == {"overall": pytest.approx(1 / 3), "drift": 0.0, "spike": 0.5}
    assert event_recall(flagged, events.iloc[0:0]) == {}
