"""Evaluation of the energy models: forecast errors (with ASHRAE Guideline 14's
CV(RMSE) and NMBE) and anomaly detection per type and per event.

Anomaly metrics per type T are computed on the hours that are either normal or of
type T: a flagged normal hour is a false positive of every type, a flagged hour of
another type counts for neither. ``overall`` uses every hour.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NORMAL = "normal"


def forecast_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE (kWh), MAPE and sMAPE (%), RMSE (kWh), CV(RMSE) (% of the mean) and NMBE
    (%, positive = under-forecast: sum(actual - predicted) / (n x mean actual))."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    if len(actual) == 0:
        raise ValueError("no hours to evaluate the forecast on (is the hold-out empty?)")
    error = actual - predicted
    mean = actual.mean()
    rmse = float(np.sqrt(np.mean(error**2)))
    nonzero = actual != 0
    denominator = np.abs(actual) + np.abs(predicted)
    return {
        "mae": float(np.mean(np.abs(error))),
        "mape": float(np.mean(np.abs(error[nonzero] / actual[nonzero])) * 100),
        "smape": float(np.mean(np.where(denominator > 0, 2 * np.abs(error) / denominator, 0.0)) * 100),
        "rmse": rmse,
        "cv_rmse": rmse / mean * 100,
        "nmbe": float(error.sum() / (len(actual) * mean) * 100),
    }


def skill(model_error: float, baseline_error: float) -> float:
    """1 - model / baseline: 0.2 means 20 % less error than the baseline."""
    return 1.0 - model_error / baseline_error if baseline_error > 0 else float("nan")


def precision_recall_f1(flagged: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1 and support of boolean flags against the boolean truth."""
    tp = int((flagged & truth).sum())
    fp = int((flagged & ~truth).sum())
    fn = int((~flagged & truth).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}


def detection_metrics(flagged: pd.Series, anomaly_type: pd.Series) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support (anomalous hours) per type and ``overall``;
    ``anomaly_type`` is ``'normal'`` for normal hours."""
    flagged_np = flagged.to_numpy(bool)
    types = anomaly_type.to_numpy(object)
    is_anomaly = types != NORMAL
    result = {"overall": precision_recall_f1(flagged_np, is_anomaly)}
    for kind in sorted(set(types) - {NORMAL}):
        subset = (types == kind) | ~is_anomaly
        result[kind] = precision_recall_f1(flagged_np[subset], is_anomaly[subset])
    return result


def event_recall(flagged_hours: pd.DataFrame, events: pd.DataFrame) -> dict[str, float]:
    """Share of anomaly events with at least one flagged hour inside, per type and
    ``overall``. ``flagged_hours``: machine_id, hour_ts (flagged only); ``events``:
    machine_id, start_ts, end_ts (exclusive), anomaly_type."""
    if events.empty:
        return {}
    hours = flagged_hours.groupby("machine_id")["hour_ts"].apply(lambda s: np.sort(s.to_numpy()))
    found = []
    for event in events.itertuples():
        stamps = hours.get(event.machine_id, np.array([], dtype="datetime64[ns]"))
        start = pd.Timestamp(event.start_ts).floor("h").to_datetime64()
        end = pd.Timestamp(event.end_ts).to_datetime64()
        found.append(bool(((stamps >= start) & (stamps < end)).any()))
    detected = pd.Series(found, index=events.index)
    result = {"overall": float(detected.mean())}
    for kind, group in detected.groupby(events["anomaly_type"]):
        result[str(kind)] = float(group.mean())
    return result


def forecast_report(actual: np.ndarray, predicted: np.ndarray, naive: np.ndarray) -> dict[str, float]:
    """``forecast_metrics`` of the model, the same of the seasonal naive forecast as
    ``baseline_*``, and ``skill_mae``: the figures training logs and evaluation gives."""
    ours = forecast_metrics(actual, predicted)
    theirs = forecast_metrics(actual, naive)
    return {
        **ours,
        **{f"baseline_{k}": v for k, v in theirs.items()},
        "skill_mae": skill(ours["mae"], theirs["mae"]),
    }


def _flatten(prefix: str, scores: dict[str, dict[str, float]]) -> dict[str, float]:
    return {
        f"{prefix}{key}_{kind}": value for kind, values in scores.items() for key, value in values.items()
    }


def detector_report(
    rows: pd.DataFrame, flagged: pd.Series, baseline_flag: pd.Series, events: pd.DataFrame
) -> tuple[dict[str, float], dict[str, dict]]:
    """A detector's and the baseline's figures on labelled hold-out ``rows``
    (``machine_id``, ``hour_ts``, ``anomaly_type``) against ``events`` of the hold-out:
    flat metrics as MLflow logs them (``f1_overall``, ``baseline_recall_spike``,
    ``event_recall_overall``...) and the same per type as ``details``."""
    details = {}
    for who, flags in (("model", flagged), ("baseline", baseline_flag)):
        hours = rows.loc[flags.to_numpy(bool), ["machine_id", "hour_ts"]]
        details[who] = detection_metrics(flags, rows["anomaly_type"])
        details[f"{'baseline_' if who == 'baseline' else ''}event_recall"] = event_recall(hours, events)
    metrics = {
        **_flatten("", details["model"]),
        **_flatten("baseline_", details["baseline"]),
        **{f"event_recall_{k}": v for k, v in details["event_recall"].items()},
        **{f"baseline_event_recall_{k}": v for k, v in details["baseline_event_recall"].items()},
    }
    return metrics, details
