"""Fitting the energy models, their baselines and the time-based hold-out.

The models themselves (what is logged to MLflow and served) are defined in
``ml/models/`` as MLflow models from code; this module fits their estimators and
returns them wrapped in those definitions (``lakehouse.ml.model_code``).

- Forecast (``ml/models/energy_forecast.py``): ``HistGradientBoostingRegressor`` of an
  hour's kWh from what is known 24 hours before (``FORECAST_FEATURES``), against the
  seasonal naive forecast (the same hour a week before, ``kwh_lag_168``).
- Anomaly, supervised (``ml/models/energy_anomaly.py``):
  ``HistGradientBoostingClassifier`` on residual-like features, trained on labelled
  history. Why supervised rather than IsolationForest: the anomaly types look nothing
  alike (a stuck meter is *too* regular, a slow drift is a small steady bias, a
  shifted profile is a normal-looking hour at the wrong time); an isolation score
  ranks rare points and misses the first and last, while a classifier learns each
  signature from confirmed incidents (here the generator's ground truth; in a plant,
  maintenance tickets).
- Anomaly, without labels (``ml/models/energy_anomaly_label_free.py``): the hour
  against its own day-ahead forecast, with a robust per-machine threshold on the
  out-of-fold residuals; chosen automatically when no labels exist.
- Baseline of both detectors: a robust z-score of the hour against the median and
  MAD of the same hour of the previous 7 days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from lakehouse.ml.features import ANOMALY_FEATURES, FORECAST_FEATURES, TARGET

# One OpenMP thread: on a shared 2-core machine two threads fit 10x slower than one.
THREADS = 1
THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 19))  # 0.05 .. 0.9
MAD_TO_SIGMA = 1.4826
BASELINE_Z = 3.5  # robust z-score above which the baseline flags an hour
BASELINE_FLOOR = 0.02  # MAD floor, share of rated power: a flat history is not infinitely sure


@dataclass(frozen=True)
class Split:
    """Rows trained on, and the last ``holdout_days`` days kept for evaluation."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    cutoff: pd.Timestamp


def time_split(features: pd.DataFrame, holdout_days: int) -> Split:
    """Hours at or after (last hour's day + 1 - holdout_days) are the hold-out."""
    if features.empty:
        raise ValueError("no feature rows: is silver iot_readings_hourly empty?")
    last_day = features["hour_ts"].max().normalize()
    cutoff = last_day - pd.Timedelta(days=holdout_days - 1)
    is_holdout = features["hour_ts"] >= cutoff
    train, holdout = features[~is_holdout], features[is_holdout]
    if train.empty:
        days = features["hour_ts"].dt.normalize().nunique()
        raise ValueError(
            f"hold-out of {holdout_days} days leaves nothing to train on ({days} days of history)"
        )
    return Split(train.reset_index(drop=True), holdout.reset_index(drop=True), cutoff)


def design(frame: pd.DataFrame, columns: tuple[str, ...], categories: list[str]) -> pd.DataFrame:
    """The estimator's input: ``columns`` of ``frame`` as float64, ``machine_type`` as a
    categorical with the categories seen in training."""
    design = frame.loc[:, list(columns)].copy()
    for column in columns:
        if column == "machine_type":
            design[column] = pd.Categorical(design[column], categories=categories)
        else:
            design[column] = pd.to_numeric(design[column], errors="coerce").astype("float64")
    return design


def fit_design(frame: pd.DataFrame, columns: tuple[str, ...], categories: list[str]) -> pd.DataFrame:
    """``design`` for fitting: a column with no value at all (a lag longer than a young
    history) becomes 0.0, a constant the trees never split on. scikit-learn 1.9.1's
    binning fails on an all-missing column ("window shape cannot be larger than input
    array shape")."""
    frame = design(frame, columns, categories)
    empty = [c for c in columns if c != "machine_type" and frame[c].isna().all()]
    return frame.assign(**dict.fromkeys(empty, 0.0)) if empty else frame


def definition(name: str):
    """The module of ``ml/models/<name>.py`` (see ``lakehouse.ml.model_code``)."""
    from lakehouse.ml.model_code import load_definition

    return load_definition(name)


def machine_types(features: pd.DataFrame) -> list[str]:
    return sorted(features["machine_type"].dropna().unique().tolist())


def _forecast_estimator(
    rows: pd.DataFrame, categories: list[str], *, seed: int, max_iter: int, loss: str = "squared_error"
) -> HistGradientBoostingRegressor:
    """Fitted on the rows of ``rows`` with a known target (NULL lags are fine)."""
    rows = rows[rows[TARGET].notna()]
    estimator = HistGradientBoostingRegressor(
        loss=loss,
        max_iter=max_iter,
        learning_rate=0.05,
        max_leaf_nodes=31,
        min_samples_leaf=20,
        l2_regularization=1.0,
        categorical_features="from_dtype",
        early_stopping=False,  # no random validation split: same data + seed, same model
        random_state=seed,
    )
    with threadpool_limits(THREADS):
        estimator.fit(fit_design(rows, FORECAST_FEATURES, categories), rows[TARGET].to_numpy(float))
    return estimator


def train_forecast(train: pd.DataFrame, *, seed: int, max_iter: int = 300):
    """``EnergyForecast`` (ml/models/energy_forecast.py) fitted on every training hour
    with a known target."""
    categories = machine_types(train[train[TARGET].notna()])
    estimator = _forecast_estimator(train, categories, seed=seed, max_iter=max_iter)
    return definition("energy_forecast").EnergyForecast(estimator, categories)


def seasonal_naive(frame: pd.DataFrame) -> pd.Series:
    """The same hour a week before."""
    return frame["kwh_lag_168"]


def _anomaly_estimator(
    train: pd.DataFrame, labels: pd.Series, categories: list[str], seed: int, max_iter: int
):
    estimator = HistGradientBoostingClassifier(
        max_iter=max_iter,
        learning_rate=0.05,
        max_leaf_nodes=31,
        min_samples_leaf=20,
        l2_regularization=1.0,
        categorical_features="from_dtype",
        early_stopping=False,
        random_state=seed,
    )
    with threadpool_limits(THREADS):
        estimator.fit(fit_design(train, ANOMALY_FEATURES, categories), labels.to_numpy(int))
    return estimator


def tune_threshold(
    train: pd.DataFrame, labels: pd.Series, *, seed: int, max_iter: int, folds: int = 3
) -> float:
    """The score threshold with the best F1 over the training period, scored out of
    fold: the period is cut into ``folds`` consecutive time blocks, each scored by a
    model fitted on the others (ties: the higher threshold). 0.5 when the labels
    cannot support it (a block without both classes to fit on)."""
    from lakehouse.ml.metrics import precision_recall_f1

    block = time_blocks(train["hour_ts"], folds)
    truth = labels.to_numpy(bool)
    categories = machine_types(train)
    score = np.zeros(len(train))
    for k in range(folds):
        fit = block != k
        if truth[fit].all() or not truth[fit].any():
            return 0.5
        estimator = _anomaly_estimator(train[fit], labels[fit], categories, seed, max_iter)
        with threadpool_limits(THREADS):
            score[~fit] = estimator.predict_proba(design(train[~fit], ANOMALY_FEATURES, categories))[:, 1]
    if not truth.any():
        return 0.5
    f1 = [precision_recall_f1(score >= t, truth)["f1"] for t in THRESHOLD_GRID]
    best = max(range(len(f1)), key=lambda i: (round(f1[i], 9), THRESHOLD_GRID[i]))
    return THRESHOLD_GRID[best]


def train_anomaly(
    train: pd.DataFrame, labels: pd.Series, *, seed: int, threshold: float | None = None, max_iter: int = 300
):
    """``EnergyAnomalyDetector`` (ml/models/energy_anomaly.py) fitted on training hours; ``labels`` is True for an hour inside an anomaly window.
    ``threshold`` None: tuned on the end of the training period (``tune_threshold``)."""
    if threshold is None:
        threshold = tune_threshold(train, labels, seed=seed, max_iter=max_iter)
    categories = machine_types(train)
    estimator = _anomaly_estimator(train, labels, categories, seed, max_iter)
    return definition("energy_anomaly").EnergyAnomalyDetector(estimator, categories, threshold)


def time_blocks(hours: pd.Series, folds: int) -> np.ndarray:
    """The consecutive time block (0 .. folds-1) of each row, blocks of equal hour counts."""
    distinct = np.sort(hours.unique())
    edges = [distinct[int(len(distinct) * k / folds)] for k in range(1, folds)]
    return np.searchsorted(np.array(edges), hours.to_numpy(), side="right")


def train_label_free(train: pd.DataFrame, *, seed: int, max_iter: int = 300, folds: int = 3):
    """``EnergyAnomalyLabelFree`` (ml/models/energy_anomaly_label_free.py): needs no
    labels. Each time block's residuals come from a regressor fitted on the other
    blocks (an in-sample residual is too small to set a threshold with); per machine,
    their median and MAD relative to rated power set the threshold."""
    known = train[train[TARGET].notna()].reset_index(drop=True)
    categories = machine_types(known)
    block = time_blocks(known["hour_ts"], folds)
    residual = np.full(len(known), np.nan)
    for k in range(folds):
        fit = block != k
        estimator = _forecast_estimator(
            known[fit], categories, seed=seed, max_iter=max_iter, loss="absolute_error"
        )
        with threadpool_limits(THREADS):
            expected = estimator.predict(design(known[~fit], FORECAST_FEATURES, categories))
        residual[~fit] = known.loc[~fit, TARGET].to_numpy(float) - expected
    relative = pd.Series(residual / known["rated_power_kw"].to_numpy(float), index=known.index)

    def median_mad(values: pd.Series) -> list[float]:
        values = values.dropna()
        median = float(values.median())
        return [median, float((values - median).abs().median())]

    residuals = {str(m): median_mad(group) for m, group in relative.groupby(known["machine_id"])}
    residuals["*"] = [float(np.median([v[0] for v in residuals.values()])),
                      float(np.median([v[1] for v in residuals.values()]))]  # fmt: skip
    estimator = _forecast_estimator(known, categories, seed=seed, max_iter=max_iter, loss="absolute_error")
    return definition("energy_anomaly_label_free").EnergyAnomalyLabelFree(estimator, categories, residuals)


def robust_zscore_baseline(features: pd.DataFrame, *, window_days: int = 7) -> pd.DataFrame:
    """Robust z-score of each hour's kWh against the median and MAD of the same hour
    of the machine's previous ``window_days`` days (at least 5 of them): flags
    |z| > 3.5. Needs the full history before the hours it scores; returns
    ``baseline_z`` and ``baseline_flag`` aligned on ``features``' index."""
    frame = features[["machine_id", "hour_ts", "hour_of_day", "kwh", "rated_power_kw"]].sort_values("hour_ts")
    keys = [frame["machine_id"], frame["hour_of_day"]]
    history = frame.groupby(keys)["kwh"].shift(1).groupby(keys)  # the same hour, earlier days
    median = history.transform(lambda s: s.rolling(window_days, min_periods=5).median())
    mad = history.transform(
        lambda s: s.rolling(window_days, min_periods=5).apply(
            lambda w: np.median(np.abs(w - np.median(w))), raw=True
        )
    )
    scale = np.maximum(MAD_TO_SIGMA * mad, BASELINE_FLOOR * frame["rated_power_kw"])
    z = (frame["kwh"] - median) / scale
    result = pd.DataFrame({"baseline_z": z, "baseline_flag": (z.abs() > BASELINE_Z) & z.notna()})
    return result.reindex(features.index)


def label_hours(features: pd.DataFrame, events: pd.DataFrame) -> pd.Series:
    """The anomaly type of each machine-hour (``'normal'`` outside every window): an
    hour is anomalous when any of its minutes is inside ``[start_ts, end_ts)``."""
    labels = pd.Series("normal", index=features.index, dtype=object)
    hours = features["hour_ts"]
    for event in events.itertuples():
        start = pd.Timestamp(event.start_ts).tz_localize(None).floor("h")
        end = pd.Timestamp(event.end_ts).tz_localize(None)
        inside = (features["machine_id"] == event.machine_id) & (hours >= start) & (hours < end)
        labels[inside] = event.anomaly_type
    return labels


def read_events(path) -> pd.DataFrame:
    """Ground truth ``energy_anomalies.csv`` with UTC-naive timestamps."""
    events = pd.read_csv(path)
    expected = {"machine_id", "start_ts", "end_ts", "anomaly_type"}
    if not expected <= set(events.columns):
        raise ValueError(f"{path}: expected columns {sorted(expected)}, found {list(events.columns)}")
    for column in ("start_ts", "end_ts"):
        events[column] = pd.to_datetime(events[column], utc=True).dt.tz_localize(None)
    return events
