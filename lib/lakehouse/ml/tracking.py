"""The MLflow store of the project, experiments per model, and the promotion gate.

Tracking and registry share one SQLite file under ``<var_dir>/mlflow/`` unless
``ml.tracking_uri`` says otherwise; each experiment stores its artifacts under
``ml.artifact_root``. Registered models carry a ``champion`` alias: a new version gets
it only if it beats the current champion and the baseline on the same hold-out.

Which version is a model's champion is read straight from a SQLite store
(``champions``): asking MLflow first imports it and opens its SQLAlchemy store, about
4 s of a daily run that only needs two rows. Other stores go through MLflow.
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


@dataclass(frozen=True)
class ChampionModel:
    """The registered version of ``name`` holding the ``champion`` alias."""

    name: str
    version: str
    run_id: str
    location: str = ""  # the version's files (its storage location); "" = ask the registry

    @property
    def uri(self) -> str:
        """What ``mlflow.pyfunc.load_model`` loads: the version's files when the store
        gave their location (no registry round trip), else this version in the registry."""
        return self.location or f"models:/{self.name}/{self.version}"


# MLflow's registry tables as of MLflow 3.17 (mlflow/store/model_registry/dbmodels):
# an alias row points at (name, version); a deleted version keeps its row with this stage.
_DELETED_STAGE = "Deleted_Internal"
_CHAMPION_SQL = """
SELECT v.version, v.run_id, v.storage_location
FROM registered_model_aliases a
JOIN model_versions v ON v.name = a.name AND v.version = a.version{same_workspace}
WHERE a.name = ? AND a.alias = ? AND v.current_stage != ?{in_workspace}
"""


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to the working directory,
    as SQLAlchemy reads it); None for any other store or a URI with options."""
    if not uri.startswith("sqlite:///") or "?" in uri:
        return None
    return Path(uri.removeprefix("sqlite:///"))


def _champions_from_sqlite(uri: str, names: tuple[str, ...]) -> dict[str, ChampionModel | None] | None:
    """The champions of ``names`` read from the SQLite file of ``uri`` with the standard
    library (read-only); None when that is not possible or not certain (another kind of
    store, an MLflow workspace chosen, a schema that is not the one above): then ask MLflow."""
    import sqlite3

    path = _sqlite_path(uri)
    if path is None or os.environ.get("MLFLOW_WORKSPACE", "").strip():
        return None
    if not path.exists():
        return dict.fromkeys(names)  # a store nothing was ever registered in
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(registered_model_aliases)")}
            scoped = "workspace" in columns  # MLflow 3.x: the default workspace unless one is chosen
            sql = _CHAMPION_SQL.format(
                same_workspace=" AND v.workspace = a.workspace" if scoped else "",
                in_workspace=" AND a.workspace = 'default'" if scoped else "",
            )
            found: dict[str, ChampionModel | None] = {}
            for name in names:
                rows = db.execute(sql, (name, CHAMPION, _DELETED_STAGE)).fetchall()
                if len(rows) > 1:
                    return None
                found[name] = (
                    ChampionModel(name, str(rows[0][0]), rows[0][1] or "", rows[0][2] or "") if rows else None
                )
            return found
    except sqlite3.Error:
        return None


def _champions_from_mlflow(names: tuple[str, ...]) -> dict[str, ChampionModel | None]:
    """The champions of ``names`` in the store MLflow points at."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client, found = MlflowClient(), {}
    for name in names:
        try:
            version = client.get_model_version_by_alias(name, CHAMPION)
        except MlflowException:
            found[name] = None
            continue
        found[name] = ChampionModel(name, str(version.version), str(version.run_id or ""))
    return found


def champions(
    settings: Settings | None = None, names: tuple[str, ...] = (FORECAST_MODEL, ANOMALY_MODEL)
) -> dict[str, ChampionModel | None]:
    """Model name -> its champion, or None (no such model, no alias). In the store of
    ``settings`` (read without importing MLflow when it is a SQLite file), or without
    settings the one MLflow points at (``configure``)."""
    if settings is not None:
        uri = tracking_uri(settings)
    else:
        import mlflow

        uri = mlflow.get_registry_uri()
    found = _champions_from_sqlite(uri, names)
    if found is not None:
        return found
    if settings is not None:
        configure(settings)
    return _champions_from_mlflow(names)


def champion_version(model_name: str) -> str | None:
    """Version number holding the ``champion`` alias in the store MLflow points at, or
    None (no model, no alias)."""
    champion = champions(names=(model_name,))[model_name]
    return None if champion is None else champion.version


def missing_champions(settings: Settings | None = None) -> list[str]:
    """The registered models (forecast, anomaly) without a ``champion`` yet, in the
    store of ``settings`` (MLflow not imported for a SQLite store) or MLflow's current one."""
    return [name for name, champion in champions(settings).items() if champion is None]


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
