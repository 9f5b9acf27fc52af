"""Train, evaluate, log and (maybe) promote the two energy models.

Same features, same seed, same metrics: the estimators use no random validation
split, rows are sorted by key before training, and MLflow only records.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Settings
from lakehouse.lake import Lake, read_delta
from lakehouse.ml import models, tracking
from lakehouse.ml.features import FORECAST_FEATURES, KEYS, TARGET, build_hourly_features
from lakehouse.ml.metrics import detection_metrics, detector_report, forecast_metrics, forecast_report
from lakehouse.ml.model_code import code_path, definition_name
from lakehouse.ml.tracking import ANOMALY_MODEL, FORECAST_MODEL

FORECAST_EXPERIMENT = "energy_forecast"
ANOMALY_EXPERIMENT = "energy_anomaly"


@dataclass(frozen=True)
class TrainingResult:
    model_name: str
    version: str
    run_id: str
    metrics: dict[str, float]
    decision: tracking.Decision
    seconds: float
    details: dict[str, object] = field(default_factory=dict)


def calendar_frame(spark: SparkSession, start: dt.date, end: dt.date) -> DataFrame:
    from lakehouse.gold.dimensions import build_dim_temps

    return build_dim_temps(spark, start, end).select("date_key", "is_holiday")


def spark_features(spark: SparkSession, lake: Lake, hourly: DataFrame | None = None) -> DataFrame:
    """Features of every hour of silver ``iot_readings_hourly`` (or of ``hourly``)."""
    hourly = hourly if hourly is not None else read_delta(spark, lake.silver("energy", "iot_readings_hourly"))
    machines = read_delta(spark, lake.silver("energy", "machines"))
    bounds = hourly.agg(F.min("hour_ts").alias("low"), F.max("hour_ts").alias("high")).first()
    if bounds is None or bounds["low"] is None:
        raise ValueError(
            f"{lake.silver('energy', 'iot_readings_hourly')} has no rows: nothing to build features from"
        )
    calendar = calendar_frame(spark, bounds["low"].date(), bounds["high"].date() + dt.timedelta(days=1))
    return build_hourly_features(hourly, machines, calendar)


def to_pandas(features: DataFrame) -> pd.DataFrame:
    """Collect features sorted by key (training order decides the model)."""
    frame = features.toPandas().sort_values(list(KEYS)).reset_index(drop=True)
    frame["hour_ts"] = pd.to_datetime(frame["hour_ts"])
    return frame


def model_input(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The columns a registered model takes: numbers as float64, machine_type and
    machine_id as str."""
    design = frame.loc[:, list(columns)].copy()
    for column in columns:
        if column in ("machine_type", "machine_id"):
            design[column] = design[column].astype(str)
        else:
            design[column] = pd.to_numeric(design[column], errors="coerce").astype("float64")
    return design.reset_index(drop=True)


def _requirements() -> list[str]:
    from importlib.metadata import version

    packages = ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "lakehouse")
    return [f"{p}=={version(p)}" for p in packages]


def _log_evaluated_model(name: str, model, example: pd.DataFrame, *, metrics, plot, decision) -> str:
    """In the active MLflow run: the hold-out metrics, the evaluation plot (``plot(folder)``
    returns its path), the registered model and the gate's verdict; the new version takes
    the ``champion`` alias only if the gate promotes it. Returns the version."""
    import mlflow

    mlflow.log_metrics(metrics)
    with tempfile.TemporaryDirectory() as folder:
        mlflow.log_artifact(str(plot(Path(folder))), "evaluation")
    version, _ = _log_model(name, model, example)
    mlflow.set_tags({"promoted": str(decision.promote), "promotion_reason": decision.reason})
    if decision.promote:
        tracking.set_champion(name, version)
    return version


def _log_model(name: str, model, example: pd.DataFrame) -> tuple[str, str]:
    """Log ``model`` as a model from code: its definition file of ``ml/models/`` and
    its estimator's files (``model.save``), not a pickle of the object."""
    import mlflow
    from mlflow.models import infer_signature

    signature = infer_signature(example, model.predict(None, example))
    with tempfile.TemporaryDirectory() as folder:
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code_path(definition_name(model))),
            artifacts=model.save(Path(folder)),
            signature=signature,
            input_example=example.head(5),
            registered_model_name=name,
            pip_requirements=_requirements(),  # inferring them imports the model in a subprocess: slow
        )
    return str(info.registered_model_version), info.model_id


def _champion_predictions(model_name: str, frame: pd.DataFrame) -> pd.DataFrame | pd.Series | None:
    import mlflow

    if tracking.champion_version(model_name) is None:
        return None
    champion = mlflow.pyfunc.load_model(f"models:/{model_name}@{tracking.CHAMPION}")
    columns = tuple(champion.metadata.get_input_schema().input_names())  # its own inputs
    return champion.predict(model_input(frame, columns))


def _forecast_plot(holdout: pd.DataFrame, predicted: np.ndarray, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    machine = holdout.groupby("machine_id")[TARGET].sum().idxmax()
    mine = holdout["machine_id"] == machine
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(holdout.loc[mine, "hour_ts"], holdout.loc[mine, TARGET], label="actual", lw=1)
    ax.plot(holdout.loc[mine, "hour_ts"], predicted[mine.to_numpy()], label="model", lw=1)
    ax.plot(
        holdout.loc[mine, "hour_ts"],
        holdout.loc[mine, "kwh_lag_168"],
        label="same hour last week",
        lw=1,
        ls=":",
    )
    ax.set(title=f"Hold-out, machine {machine}", ylabel="kWh per hour")
    ax.legend()
    fig.autofmt_xdate()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _f1_plot(model_scores: dict, baseline_scores: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(model_scores)
    x = np.arange(len(kinds))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(x - 0.2, [model_scores[k]["f1"] for k in kinds], 0.4, label="model")
    ax.bar(x + 0.2, [baseline_scores.get(k, {}).get("f1", 0.0) for k in kinds], 0.4, label="robust z-score")
    ax.set_xticks(x, kinds)
    ax.set(title="Hold-out F1 per anomaly type", ylim=(0, 1))
    ax.legend()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def train_forecast_model(
    settings: Settings, features: pd.DataFrame, *, max_iter: int = 300
) -> TrainingResult:
    """Fit on history, evaluate on the hold-out hours that have a seasonal naive
    forecast, log to MLflow, register, and promote if the gate says so."""
    import mlflow

    started = time.perf_counter()
    split = models.time_split(features, settings.ml.holdout_days)
    holdout = split.holdout[split.holdout["kwh_lag_168"].notna() & split.holdout[TARGET].notna()]
    holdout = holdout.reset_index(drop=True)
    if holdout.empty:
        raise ValueError(
            "no hold-out hour has a value a week before: generate at least holdout_days + 7 days"
        )
    model = models.train_forecast(split.train, seed=settings.ml.seed, max_iter=max_iter)
    x_holdout = model_input(holdout, FORECAST_FEATURES)
    predicted = model.predict(None, x_holdout).to_numpy()
    actual = holdout[TARGET].to_numpy(float)
    metrics = forecast_report(actual, predicted, models.seasonal_naive(holdout).to_numpy(float))
    tracking.configure(settings)  # before the gate: its champion is the one of this store
    champion = _champion_predictions(FORECAST_MODEL, holdout)
    champion_mae = None if champion is None else forecast_metrics(actual, np.asarray(champion, float))["mae"]
    decision = tracking.promotion_decision(
        "mae", metrics["mae"], metrics["baseline_mae"], champion_mae, higher_is_better=False
    )

    with mlflow.start_run(experiment_id=tracking.experiment_id(settings, FORECAST_EXPERIMENT)) as run:
        mlflow.log_params(
            {
                "estimator": "HistGradientBoostingRegressor",
                "max_iter": max_iter,
                "seed": settings.ml.seed,
                "holdout_days": settings.ml.holdout_days,
                "holdout_start": split.cutoff.isoformat(),
                "train_rows": len(split.train),
                "holdout_rows": len(holdout),
                "features": ",".join(FORECAST_FEATURES),
            }
        )
        version = _log_evaluated_model(
            FORECAST_MODEL,
            model,
            model_input(split.train, FORECAST_FEATURES).head(200),
            metrics={**metrics, **({"champion_mae": champion_mae} if champion_mae is not None else {})},
            plot=lambda folder: _forecast_plot(holdout, predicted, folder / "forecast_holdout.png"),
            decision=decision,
        )
    return TrainingResult(
        FORECAST_MODEL, version, run.info.run_id, metrics, decision, time.perf_counter() - started
    )


def _label_free_decision(holdout: pd.DataFrame, model) -> tracking.Decision:
    """The gate without labels, where F1 cannot judge: the first detector is promoted;
    later, a label-free detector replaces only a label-free champion, and only if its
    expected kWh is closer on the hold-out (MAE). A supervised champion is kept."""
    import mlflow

    rows = holdout[holdout[TARGET].notna()]
    actual = rows[TARGET].to_numpy(float)
    ours = forecast_metrics(actual, model.expected_kwh(rows))["mae"]
    if tracking.champion_version(ANOMALY_MODEL) is None:
        return tracking.Decision(
            True, "no labels; first detector: promoted", "expected_kwh_mae", ours, ours, None
        )
    champion = mlflow.pyfunc.load_model(f"models:/{ANOMALY_MODEL}@{tracking.CHAMPION}").unwrap_python_model()
    if not hasattr(champion, "expected_kwh"):
        reason = "no labels to compare with the champion (trained on labels): champion kept"
        return tracking.Decision(False, reason, "expected_kwh_mae", ours, ours, None)
    theirs = forecast_metrics(actual, champion.expected_kwh(rows))["mae"]
    return tracking.promotion_decision("expected_kwh_mae", ours, float("inf"), theirs, higher_is_better=False)


def _train_detector(
    settings: Settings,
    features: pd.DataFrame,
    events: pd.DataFrame | None,
    *,
    label_free: bool,
    max_iter: int,
) -> TrainingResult:
    """Fit one anomaly detector (supervised on ``events``, or label-free), evaluate it
    on the hold-out against the robust z-score baseline (per type and per event) when
    labels exist, log, register, maybe promote."""
    import mlflow

    started = time.perf_counter()
    baseline = models.robust_zscore_baseline(features)
    labels = models.label_hours(features, events) if events is not None else "normal"
    labelled = features.assign(anomaly_type=labels, **baseline)
    split = models.time_split(labelled, settings.ml.holdout_days)
    is_anomaly = split.train["anomaly_type"] != "normal"
    seed = settings.ml.seed
    if label_free:
        model = models.train_label_free(split.train, seed=seed, max_iter=max_iter)
        columns, estimator = (
            model.input_columns,
            "label-free: residual of the day-ahead forecast, per-machine MAD",
        )
    else:
        if not is_anomaly.any() or is_anomaly.all():
            raise ValueError(
                "the training hours need both normal and anomalous hours (see energy_anomalies.csv)"
            )
        model = models.train_anomaly(
            split.train, is_anomaly, seed=seed, threshold=settings.ml.anomaly_threshold, max_iter=max_iter
        )
        columns, estimator = model.input_columns, "HistGradientBoostingClassifier"
    holdout = split.holdout
    x_holdout = model_input(holdout, columns)
    scored = model.predict(None, x_holdout)
    metrics, details, logged_only = {}, {}, {}
    tracking.configure(settings)  # before the gate: its champion is the one of this store
    holdout_labelled = events is not None and bool((holdout["anomaly_type"] != "normal").any())
    if holdout_labelled:
        last = holdout["hour_ts"].max()
        in_holdout = events[(events["end_ts"] > split.cutoff) & (events["start_ts"] <= last)]
        n_events = len(in_holdout)
        metrics, details = detector_report(
            holdout, scored["is_anomaly"], holdout["baseline_flag"], in_holdout
        )
        champion = _champion_predictions(ANOMALY_MODEL, holdout)
        champion_f1 = None
        if champion is not None:
            champion_f1 = detection_metrics(champion["is_anomaly"], holdout["anomaly_type"])["overall"]["f1"]
            logged_only["champion_f1_overall"] = champion_f1
        decision = tracking.promotion_decision(
            "f1",
            details["model"]["overall"]["f1"],
            details["baseline"]["overall"]["f1"],
            champion_f1,
            higher_is_better=True,
        )
    elif label_free:
        n_events = 0  # no labelled hour in the hold-out: F1 cannot judge
        decision = _label_free_decision(holdout, model)
    else:
        raise ValueError(
            "the hold-out has no labelled anomalous hour: F1 cannot judge the supervised detector"
        )
    metrics["flagged_share"] = float(scored["is_anomaly"].mean())

    with mlflow.start_run(experiment_id=tracking.experiment_id(settings, ANOMALY_EXPERIMENT)) as run:
        mlflow.log_params(
            {
                "estimator": estimator,
                "detector": definition_name(model),
                "labels": "ground truth" if events is not None else "none",
                "max_iter": max_iter,
                "seed": seed,
                "threshold": getattr(model, "threshold", "per machine"),
                "holdout_days": settings.ml.holdout_days,
                "holdout_start": split.cutoff.isoformat(),
                "train_rows": len(split.train),
                "train_anomalous_rows": int(is_anomaly.sum()) if events is not None else "unknown",
                "holdout_rows": len(holdout),
                "holdout_events": n_events,
                "baseline": f"robust z-score > {models.BASELINE_Z}, same hour of the previous 7 days",
                "features": ",".join(columns),
            }
        )
        plot = (
            (lambda folder: _f1_plot(details["model"], details["baseline"], folder / "anomaly_f1.png"))
            if details
            else (lambda folder: _score_plot(holdout, scored, folder / "anomaly_scores.png"))
        )
        version = _log_evaluated_model(
            ANOMALY_MODEL,
            model,
            model_input(split.train, columns).head(200),
            metrics={**metrics, **logged_only},
            plot=plot,
            decision=decision,
        )
    return TrainingResult(
        ANOMALY_MODEL, version, run.info.run_id, metrics, decision, time.perf_counter() - started, details
    )


def train_anomaly_model(
    settings: Settings, features: pd.DataFrame, events: pd.DataFrame, *, max_iter: int = 300
) -> TrainingResult:
    """The supervised detector (ml/models/energy_anomaly.py) on labelled history."""
    return _train_detector(settings, features, events, label_free=False, max_iter=max_iter)


def train_label_free_model(
    settings: Settings, features: pd.DataFrame, events: pd.DataFrame | None = None, *, max_iter: int = 300
) -> TrainingResult:
    """The label-free detector (ml/models/energy_anomaly_label_free.py); ``events``, when
    given, only evaluate it (F1 per type beside the supervised one and the baseline)."""
    return _train_detector(settings, features, events, label_free=True, max_iter=max_iter)


def _score_plot(holdout: pd.DataFrame, scored: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(scored["anomaly_score"], bins=40)
    ax.axvline(0.5, color="red", ls=":", label="flag")
    ax.set(title=f"Hold-out anomaly scores ({int(scored['is_anomaly'].sum())} hours flagged)", yscale="log")
    ax.legend()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def read_labels(path: str | Path) -> pd.DataFrame | None:
    """Incident labels (``energy_anomalies.csv``), or None when there are none: no file,
    or a file without rows."""
    if not Path(path).is_file():
        return None
    events = models.read_events(path)
    return events if len(events) else None


def train_all(
    spark: SparkSession, settings: Settings, *, events_path: str | Path | None = None, max_iter: int = 300
) -> list[TrainingResult]:
    """The forecast and the anomaly detectors from the lake of ``settings`` up to its
    run date. With incident labels, the supervised detector first, then the label-free
    one (promoted only if its F1 is better); without labels, the label-free one alone."""
    lake = Lake(settings.lake_root)
    end = pd.Timestamp(settings.run_date) + pd.Timedelta(days=1)
    features = to_pandas(spark_features(spark, lake).where(F.col("hour_ts") < F.lit(end.to_pydatetime())))
    check_history(features, settings.ml.holdout_days)
    events = read_labels(events_path or settings.ground_truth_dir / "energy_anomalies.csv")
    results = [train_forecast_model(settings, features, max_iter=max_iter)]
    if events is not None:
        try:
            results.append(train_anomaly_model(settings, features, events, max_iter=max_iter))
        except ValueError as exc:  # labels, but none in the training or hold-out hours
            print(f"supervised anomaly detector not trained: {exc}; the label-free one alone")
    results.append(train_label_free_model(settings, features, events, max_iter=max_iter))
    return results


class NotEnoughHistory(ValueError):
    """Too few days in silver to train and evaluate the models."""


def history_days_needed(holdout_days: int) -> int:
    """The hold-out, a week before it (the seasonal naive forecast) and a training day."""
    return holdout_days + 8


def check_history(features: pd.DataFrame, holdout_days: int) -> None:
    days = features["hour_ts"].dt.normalize().nunique() if len(features) else 0
    needed = history_days_needed(holdout_days)
    if days < needed:
        raise NotEnoughHistory(
            f"silver iot_readings_hourly holds {days} days up to the run date; training needs at least "
            f"{needed} (ml.holdout_days {holdout_days} + a week for the seasonal naive forecast + a training day)"
        )


def summary(results: list[TrainingResult], settings: Settings) -> pd.DataFrame:
    """One row per trained model: version, whether it became champion and why, its
    headline hold-out metrics, and the link to its MLflow run (``make mlflow-ui``)."""
    import mlflow

    rows = []
    for result in results:
        run = mlflow.get_run(result.run_id)
        metrics = {
            k: round(result.metrics[k], 4)
            for k in tracking.CHAMPION_METRICS[result.model_name]
            if k in result.metrics
        }
        rows.append(
            {
                "model": result.model_name,
                "detector": run.data.params.get("detector", "energy_forecast"),
                "version": result.version,
                "champion": result.decision.promote,
                "why": result.decision.reason,
                "metrics": ", ".join(f"{k} {v}" for k, v in metrics.items()),
                "seconds": round(result.seconds, 1),
                "run": tracking.run_url(settings, run.info.experiment_id, result.run_id),
            }
        )
    return pd.DataFrame(
        rows, columns=["model", "detector", "version", "champion", "why", "metrics", "seconds", "run"]
    )
