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
from lakehouse.ml.features import ANOMALY_FEATURES, FORECAST_FEATURES, KEYS, TARGET, build_hourly_features
from lakehouse.ml.metrics import detection_metrics, event_recall, forecast_metrics, skill
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
    """The columns a registered model takes: numbers as float64, machine_type as str."""
    design = frame.loc[:, list(columns)].copy()
    for column in columns:
        if column == "machine_type":
            design[column] = design[column].astype(str)
        else:
            design[column] = pd.to_numeric(design[column], errors="coerce").astype("float64")
    return design.reset_index(drop=True)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "scikit-learn", "pandas", "numpy", "lakehouse")]


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
    import mlflow
    from mlflow.models import infer_signature

    signature = infer_signature(example, model.predict(None, example))
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=model,
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
    return champion.predict(frame)


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
    ours = forecast_metrics(actual, predicted)
    naive = forecast_metrics(actual, models.seasonal_naive(holdout).to_numpy(float))
    metrics = {
        **ours,
        **{f"baseline_{k}": v for k, v in naive.items()},
        "skill_mae": skill(ours["mae"], naive["mae"]),
    }
    champion = _champion_predictions(FORECAST_MODEL, x_holdout)
    champion_mae = None if champion is None else forecast_metrics(actual, np.asarray(champion, float))["mae"]
    decision = tracking.promotion_decision(
        "mae", ours["mae"], naive["mae"], champion_mae, higher_is_better=False
    )

    tracking.configure(settings)
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


def _flatten(prefix: str, scores: dict[str, dict[str, float]]) -> dict[str, float]:
    return {
        f"{prefix}{key}_{kind}": value for kind, values in scores.items() for key, value in values.items()
    }


def train_anomaly_model(
    settings: Settings, features: pd.DataFrame, events: pd.DataFrame, *, max_iter: int = 300
) -> TrainingResult:
    """Fit the detector on labelled history, compare with the robust z-score baseline
    on the hold-out (per type, and per event), log, register, maybe promote."""
    import mlflow

    started = time.perf_counter()
    baseline = models.robust_zscore_baseline(features)
    labelled = features.assign(anomaly_type=models.label_hours(features, events), **baseline)
    split = models.time_split(labelled, settings.ml.holdout_days)
    is_anomaly = split.train["anomaly_type"] != "normal"
    if not is_anomaly.any() or is_anomaly.all():
        raise ValueError("the training hours need both normal and anomalous hours (see energy_anomalies.csv)")
    model = models.train_anomaly(
        split.train,
        is_anomaly,
        seed=settings.ml.seed,
        threshold=settings.ml.anomaly_threshold,
        max_iter=max_iter,
    )
    holdout = split.holdout
    x_holdout = model_input(holdout, ANOMALY_FEATURES)
    scored = model.predict(None, x_holdout)
    ours = detection_metrics(scored["is_anomaly"], holdout["anomaly_type"])
    theirs = detection_metrics(holdout["baseline_flag"], holdout["anomaly_type"])
    in_holdout = events[(events["end_ts"] > split.cutoff) & (events["start_ts"] <= holdout["hour_ts"].max())]
    flagged = holdout.loc[scored["is_anomaly"].to_numpy(), ["machine_id", "hour_ts"]]
    ours_events = event_recall(flagged, in_holdout)
    theirs_events = event_recall(
        holdout.loc[holdout["baseline_flag"].to_numpy(), ["machine_id", "hour_ts"]], in_holdout
    )
    metrics = {
        **_flatten("", ours),
        **_flatten("baseline_", theirs),
        **{f"event_recall_{k}": v for k, v in ours_events.items()},
        **{f"baseline_event_recall_{k}": v for k, v in theirs_events.items()},
    }
    champion = _champion_predictions(ANOMALY_MODEL, x_holdout)
    champion_f1 = None
    if champion is not None:
        champion_f1 = detection_metrics(champion["is_anomaly"], holdout["anomaly_type"])["overall"]["f1"]
    decision = tracking.promotion_decision(
        "f1", ours["overall"]["f1"], theirs["overall"]["f1"], champion_f1, higher_is_better=True
    )

    tracking.configure(settings)
    with mlflow.start_run(experiment_id=tracking.experiment_id(settings, ANOMALY_EXPERIMENT)) as run:
        mlflow.log_params(
            {
                "estimator": "HistGradientBoostingClassifier",
                "max_iter": max_iter,
                "seed": settings.ml.seed,
                "threshold": settings.ml.anomaly_threshold,
                "holdout_days": settings.ml.holdout_days,
                "holdout_start": split.cutoff.isoformat(),
                "train_rows": len(split.train),
                "train_anomalous_rows": int(is_anomaly.sum()),
                "holdout_rows": len(holdout),
                "holdout_events": len(in_holdout),
                "baseline": f"robust z-score > {models.BASELINE_Z}, same hour of the previous 7 days",
                "features": ",".join(ANOMALY_FEATURES),
            }
        )
        version = _log_evaluated_model(
            ANOMALY_MODEL,
            model,
            model_input(split.train, ANOMALY_FEATURES).head(200),
            metrics={**metrics, **({"champion_f1_overall": champion_f1} if champion_f1 is not None else {})},
            plot=lambda folder: _f1_plot(ours, theirs, folder / "anomaly_f1.png"),
            decision=decision,
        )
    details = {
        "model": ours,
        "baseline": theirs,
        "event_recall": ours_events,
        "baseline_event_recall": theirs_events,
    }
    return TrainingResult(
        ANOMALY_MODEL, version, run.info.run_id, metrics, decision, time.perf_counter() - started, details
    )


def train_all(
    spark: SparkSession, settings: Settings, *, events_path: str | Path | None = None, max_iter: int = 300
) -> list[TrainingResult]:
    """Both models from the lake of ``settings`` up to its run date."""
    lake = Lake(settings.lake_root)
    end = pd.Timestamp(settings.run_date) + pd.Timedelta(days=1)
    features = to_pandas(spark_features(spark, lake).where(F.col("hour_ts") < F.lit(end.to_pydatetime())))
    events = models.read_events(events_path or settings.ground_truth_dir / "energy_anomalies.csv")
    return [
        train_forecast_model(settings, features, max_iter=max_iter),
        train_anomaly_model(settings, features, events, max_iter=max_iter),
    ]
