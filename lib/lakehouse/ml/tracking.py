"""The MLflow store of the project, experiments per model, and the promotion gate.

Tracking and registry share one SQLite file under ``<var_dir>/mlflow/`` unless
``ml.tracking_uri`` says otherwise; each experiment stores its artifacts under
``ml.artifact_root``. Registered models carry a ``champion`` alias: a new version gets
it only if it beats the current champion and the baseline on the same hold-out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lakehouse.config import Settings

CHAMPION = "champion"
FORECAST_MODEL = "energy_consumption_forecast"
ANOMALY_MODEL = "energy_anomaly_detector"


def tracking_uri(settings: Settings) -> str:
    if settings.ml.tracking_uri:
        return settings.ml.tracking_uri
    folder = settings.var_dir / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def artifact_root(settings: Settings) -> str:
    return settings.ml.artifact_root or str(settings.var_dir / "mlflow" / "artifacts")


def run_url(settings: Settings, experiment: str, run_id: str) -> str:
    """Where the MLflow UI (``make mlflow-ui``, ``ml.ui_url``) shows a run."""
    return f"{settings.ml.ui_url.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"


def configure(settings: Settings) -> str:
    """Point MLflow at the project's store (no telemetry); returns the tracking URI."""
    import mlflow

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # bars flood job logs
    uri = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def experiment_id(settings: Settings, name: str) -> str:
    """The experiment ``name``, created with its artifacts under ``artifact_root``."""
    import mlflow

    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = f"{artifact_root(settings)}/{name}"
    if "://" not in location:
        Path(location).mkdir(parents=True, exist_ok=True)
        location = Path(location).as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


@dataclass(frozen=True)
class Decision:
    """Whether a new model version takes the ``champion`` alias, and why."""

    promote: bool
    reason: str
    metric: str
    challenger: float
    baseline: float
    champion: float | None


def promotion_decision(
    metric: str, challenger: float, baseline: float, champion: float | None, *, higher_is_better: bool
) -> Decision:
    """Promote only if the challenger is strictly better than the baseline and than
    the current champion (when there is one) on the same hold-out."""

    def better(a: float, b: float) -> bool:
        return a > b if higher_is_better else a < b

    if not better(challenger, baseline):
        reason = f"{metric} {challenger:.4g} does not beat the baseline's {baseline:.4g}"
        return Decision(False, reason, metric, challenger, baseline, champion)
    if champion is not None and not better(challenger, champion):
        reason = f"{metric} {challenger:.4g} does not beat the champion's {champion:.4g}"
        return Decision(False, reason, metric, challenger, baseline, champion)
    against = "the baseline" if champion is None else f"the baseline and the champion ({champion:.4g})"
    return Decision(
        True, f"{metric} {challenger:.4g} beats {against}", metric, challenger, baseline, champion
    )


def champion_version(model_name: str) -> str | None:
    """Version number holding the ``champion`` alias, or None (no model, no alias)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(model_name, CHAMPION).version)
    except MlflowException:
        return None


def missing_champions() -> list[str]:
    """The registered models (forecast, anomaly) without a ``champion`` yet."""
    return [m for m in (FORECAST_MODEL, ANOMALY_MODEL) if champion_version(m) is None]


def set_champion(model_name: str, version: str) -> None:
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(model_name, CHAMPION, version)


CHAMPION_METRICS = {
    FORECAST_MODEL: ("skill_mae", "mae", "cv_rmse", "nmbe"),
    ANOMALY_MODEL: ("f1_overall", "baseline_f1_overall", "flagged_share"),
}


def champion_lines(settings: Settings) -> list[str]:
    """Per registered model: its champion version, the detector, headline hold-out
    metrics, and a second line with the link to its MLflow run; or that it has none."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    configure(settings)
    client, lines = MlflowClient(), []
    for name, wanted in CHAMPION_METRICS.items():
        try:
            version = client.get_model_version_by_alias(name, CHAMPION)
        except MlflowException:
            lines.append(f"{name}: no champion yet")
            continue
        run = client.get_run(version.run_id)
        metrics = ", ".join(f"{k} {run.data.metrics[k]:.3g}" for k in wanted if k in run.data.metrics)
        detector = run.data.params.get("detector", "")
        lines.append(f"{name} v{version.version}{f' ({detector})' if detector else ''}: {metrics}")
        lines.append(f"  run {run_url(settings, run.info.experiment_id, run.info.run_id)}")
    return lines
