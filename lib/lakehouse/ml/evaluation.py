"""Evaluate registered energy models on a lake's hold-out, without retraining.

The hold-out is the one training uses: the last ``ml.holdout_days`` days of the
lake's history up to the run date (``models.time_split`` of the same features). The
figures have the names training logs to MLflow (``mae``, ``skill_mae``,
``f1_overall``, ``baseline_f1_spike``, ``event_recall_overall``, ...), so evaluating a
model on the lake it was trained on gives back exactly its run's metrics, and on
another lake tells how it carries over.

Default models: the champions of ``energy_consumption_forecast`` and
``energy_anomaly_detector``, plus the latest supervised and label-free versions of the
detector (told apart by the ``detector`` param of their runs) when they are not the
champion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Settings
from lakehouse.lake import Lake
from lakehouse.ml import models, tracking
from lakehouse.ml.features import TARGET
from lakehouse.ml.metrics import NORMAL, detector_report, forecast_report
from lakehouse.ml.tracking import ANOMALY_MODEL, FORECAST_MODEL
from lakehouse.ml.training import model_input, read_labels, spark_features, to_pandas

SUPERVISED = "energy_anomaly"
LABEL_FREE = "energy_anomaly_label_free"
FORECAST = "energy_forecast"


@dataclass(frozen=True)
class ModelRef:
    """A model to evaluate: its URI and, for a registered version, where it comes from."""

    uri: str
    name: str
    version: str | None = None
    run_id: str | None = None
    detector: str = ""  # energy_forecast, energy_anomaly, energy_anomaly_label_free
    champion: bool = False

    @property
    def label(self) -> str:
        version = f" v{self.version}" if self.version else ""
        role = " (champion)" if self.champion else ""
        return f"{self.detector or self.name}{version}{role}"


@dataclass(frozen=True)
class Holdout:
    """The lake's features split like training splits them, with labels and baseline."""

    split: models.Split
    events: pd.DataFrame | None  # ground truth (all of it), None without labels
    seconds: float

    @property
    def rows(self) -> pd.DataFrame:
        return self.split.holdout

    @property
    def events_in_holdout(self) -> pd.DataFrame | None:
        if self.events is None:
            return None
        events, last = self.events, self.rows["hour_ts"].max()
        return events[(events["end_ts"] > self.split.cutoff) & (events["start_ts"] <= last)]

    @property
    def labelled(self) -> bool:
        """Ground truth with anomalous hours in the hold-out: F1 can judge (as in training)."""
        return self.events is not None and bool((self.rows["anomaly_type"] != NORMAL).any())

    @property
    def forecast_rows(self) -> pd.DataFrame:
        """Hold-out hours with a value and a value a week before (the naive forecast)."""
        rows = self.rows
        return rows[rows["kwh_lag_168"].notna() & rows[TARGET].notna()].reset_index(drop=True)


@dataclass(frozen=True)
class Evaluation:
    """One model's hold-out figures, named as training logs them."""

    model: ModelRef
    kind: str  # "forecast" or "anomaly"
    metrics: dict[str, float]
    details: dict[str, object] = field(default_factory=dict)  # per type: model, baseline, event recall
    rows: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Report:
    lake_root: str
    run_date: str
    tracking_uri: str
    holdout_start: str
    holdout_end: str
    holdout_rows: int
    holdout_events: int | None
    baseline_flagged_share: float  # hours the robust z-score flags
    evaluations: list[Evaluation]
    seconds: float

    def as_dict(self) -> dict:
        head = {k: v for k, v in self.__dict__.items() if k != "evaluations"}
        return {**head, "models": [_evaluation_dict(e) for e in self.evaluations]}


def _evaluation_dict(evaluation: Evaluation) -> dict:
    return {
        **evaluation.model.__dict__,
        "kind": evaluation.kind,
        "rows": evaluation.rows,
        "seconds": round(evaluation.seconds, 2),
        "metrics": evaluation.metrics,
        "details": evaluation.details,
    }


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def _detector_of(run_id: str | None) -> str:
    if run_id is None:
        return ""
    return _client().get_run(run_id).data.params.get("detector", "")


def _ref(name: str, version, champion_version: str | None) -> ModelRef:
    run_id = str(version.run_id) if version.run_id else None
    detector = FORECAST if name == FORECAST_MODEL else _detector_of(run_id)
    number = str(version.version)
    return ModelRef(f"models:/{name}/{number}", name, number, run_id, detector, number == champion_version)


def champion_ref(name: str) -> ModelRef:
    """The champion of ``name``; LookupError (what to run) when it has none."""
    from lakehouse.ml.scoring import champion

    found = champion(name)
    return _ref(name, _client().get_model_version(name, found.version), found.version)


def latest_by_detector(name: str = ANOMALY_MODEL) -> dict[str, ModelRef]:
    """detector (the ``detector`` param of the run) -> its latest version of ``name``."""
    champion = tracking.champion_version(name)
    versions = sorted(_client().search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    return {ref.detector: ref for ref in (_ref(name, v, champion) for v in versions) if ref.detector}


def default_models() -> list[ModelRef]:
    """Both champions, then the latest supervised and label-free detectors that are not."""
    refs = [champion_ref(FORECAST_MODEL), champion_ref(ANOMALY_MODEL)]
    latest = latest_by_detector(ANOMALY_MODEL)
    refs += [latest[d] for d in (SUPERVISED, LABEL_FREE) if d in latest and not latest[d].champion]
    return refs


def resolve(uri: str) -> ModelRef:
    """``models:/<name>/<version>`` or ``models:/<name>@<alias>`` with its registry
    facts; any other URI MLflow loads (``runs:/...``) as is."""
    from mlflow.exceptions import MlflowException

    if not uri.startswith("models:/"):
        return ModelRef(uri, uri)
    path = uri.removeprefix("models:/")
    try:
        if "@" in path:
            name, alias = path.split("@", 1)
            version = _client().get_model_version_by_alias(name, alias)
        else:
            name, _, number = path.partition("/")
            if not number.isdigit():
                return ModelRef(uri, uri)
            version = _client().get_model_version(name, number)
    except MlflowException as exc:
        raise LookupError(f"{uri}: no such registered model version ({exc.message})") from exc
    return _ref(name, version, tracking.champion_version(name))


def holdout(spark: SparkSession, settings: Settings, events_path: str | Path | None = None) -> Holdout:
    """Features of the lake up to the run date, labelled from the ground truth (when
    there is one) and scored by the robust z-score baseline, split like training."""
    started = time.perf_counter()
    end = pd.Timestamp(settings.run_date) + pd.Timedelta(days=1)
    features = spark_features(spark, Lake(settings.lake_root))
    features = to_pandas(features.where(F.col("hour_ts") < F.lit(end.to_pydatetime())))
    events = read_labels(events_path or settings.ground_truth_dir / "energy_anomalies.csv")
    labels = models.label_hours(features, events) if events is not None else NORMAL
    labelled = features.assign(anomaly_type=labels, **models.robust_zscore_baseline(features))
    split = models.time_split(labelled, settings.ml.holdout_days)
    return Holdout(split, events, time.perf_counter() - started)


def load(ref: ModelRef):
    """The pyfunc model of ``ref`` and its kind (by the outputs of its signature)."""
    import mlflow

    try:
        pyfunc = mlflow.pyfunc.load_model(ref.uri)
    except Exception as exc:  # MLflow raises several types for a URI it cannot resolve
        raise LookupError(f"cannot load {ref.uri}: {exc}") from exc
    outputs = pyfunc.metadata.get_output_schema()
    kind = "anomaly" if outputs is not None and "is_anomaly" in outputs.input_names() else "forecast"
    return pyfunc, kind


def _inputs(pyfunc, frame: pd.DataFrame) -> pd.DataFrame:
    return model_input(frame, tuple(pyfunc.metadata.get_input_schema().input_names()))


def forecast_figures(pyfunc, data: Holdout) -> tuple[dict[str, float], int]:
    """MAE & co of the model and of the seasonal naive forecast, and the skill on MAE."""
    rows = data.forecast_rows
    if rows.empty:
        raise ValueError("no hold-out hour has a value a week before: the lake needs holdout_days + 7 days")
    predicted = np.asarray(pyfunc.predict(_inputs(pyfunc, rows)), float)
    naive = models.seasonal_naive(rows).to_numpy(float)
    return forecast_report(rows[TARGET].to_numpy(float), predicted, naive), len(rows)


def anomaly_figures(pyfunc, data: Holdout) -> tuple[dict[str, float], dict[str, object]]:
    """The detector's and the baseline's figures (without a labelled anomalous hour in
    the hold-out: the flagged share only, as training logs)."""
    scored = pyfunc.predict(_inputs(pyfunc, data.rows))
    metrics, details = {}, {}
    if data.labelled:
        metrics, details = detector_report(
            data.rows, scored["is_anomaly"], data.rows["baseline_flag"], data.events_in_holdout
        )
    metrics["flagged_share"] = float(scored["is_anomaly"].mean())
    return metrics, details


def evaluate(ref: ModelRef, data: Holdout) -> Evaluation:
    started = time.perf_counter()
    pyfunc, kind = load(ref)
    if kind == "forecast":
        metrics, rows = forecast_figures(pyfunc, data)
        details: dict[str, object] = {}
    else:
        (metrics, details), rows = anomaly_figures(pyfunc, data), len(data.rows)
    return Evaluation(ref, kind, metrics, details, rows, time.perf_counter() - started)


def evaluate_models(
    spark: SparkSession,
    settings: Settings,
    model_uris: list[str] | tuple[str, ...] = (),
    *,
    events_path: str | Path | None = None,
) -> Report:
    """Evaluate ``model_uris`` (default: ``default_models()``) on the hold-out of the
    lake of ``settings`` up to its run date, in the MLflow store of ``settings``."""
    started = time.perf_counter()
    uri = tracking.configure(settings)
    refs = [resolve(u) for u in model_uris] if model_uris else default_models()
    data = holdout(spark, settings, events_path)
    evaluations = [evaluate(ref, data) for ref in refs]
    in_holdout = data.events_in_holdout
    return Report(
        lake_root=settings.lake_root,
        run_date=settings.run_date.isoformat(),
        tracking_uri=uri,
        holdout_start=data.split.cutoff.isoformat(),
        holdout_end=data.rows["hour_ts"].max().isoformat(),
        holdout_rows=len(data.rows),
        holdout_events=None if in_holdout is None else len(in_holdout),
        baseline_flagged_share=float(data.rows["baseline_flag"].mean()),
        evaluations=evaluations,
        seconds=time.perf_counter() - started,
    )
