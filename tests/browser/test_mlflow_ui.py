"""The MLflow UI (`make mlflow-ui`) on a store where a small forecast model was trained,
registered and given the ``champion`` alias: the real ``mlflow server`` as a subprocess on
127.0.0.1, read through its REST API, and its pages opened offline in Chromium."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lakehouse.lake import Lake
from lakehouse.ml import tracking
from lakehouse.ml.training import (
    FORECAST_EXPERIMENT,
    TrainingResult,
    spark_features,
    to_pandas,
    train_forecast_model,
)

from .conftest import OfflineBrowser
from .servers import free_port, subprocess_server

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser_mlflow_ui")]
# Every page of the UI asks who the user is; without an auth app (`--app-name basic-auth`)
# the server answers 404, and the UI carries on as the anonymous user. Nothing else may fail.
NO_AUTH_APP = ("/ajax-api/2.0/mlflow/users/current",)
MAX_ITER = 60  # as tests/ml: enough to beat the seasonal naive baseline on the tiny lake


@dataclass(frozen=True)
class Store:
    tracking_uri: str
    training: TrainingResult
    experiment_id: str


@pytest.fixture(scope="module")
def store(spark, tiny_lake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One forecast model trained on the tiny energy lake into a store of its own."""
    import mlflow

    folder = tmp_path_factory.mktemp("mlflow_ui")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    settings = tiny_lake.settings(tracking_uri=uri, artifact_root=str(folder / "artifacts"))
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        features = to_pandas(spark_features(spark, Lake(tiny_lake.lake_root)))
        training = train_forecast_model(settings, features, max_iter=MAX_ITER)
        experiment = mlflow.get_experiment_by_name(FORECAST_EXPERIMENT).experiment_id
    finally:  # other tests of this worker keep their own store
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    assert training.decision.promote and training.version == "1"
    yield Store(uri, training, experiment)


@pytest.fixture(scope="module")
def mlflow_ui(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` on the store, as `make mlflow-ui` runs it, on a free loopback port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    folder = tmp_path_factory.mktemp("mlflow_server")
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--backend-store-uri", store.tracking_uri,
        "--default-artifact-root", (folder / "artifacts").as_uri(),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    with subprocess_server(command, f"{url}/health", log=folder / "server.log", env=env, timeout=120):
        yield url


def _check_rest_api(store: Store, mlflow_ui: str) -> None:
    """The values the UI shows, through the server's REST API."""
    training = store.training
    api = f"{mlflow_ui}/api/2.0/mlflow"
    experiments = httpx.post(f"{api}/experiments/search", json={"max_results": 100}, timeout=30).json()
    assert sorted(e["name"] for e in experiments["experiments"]) == ["Default", FORECAST_EXPERIMENT]

    run = httpx.get(f"{api}/runs/get", params={"run_id": training.run_id}, timeout=30).json()["run"]
    assert run["info"]["experiment_id"] == store.experiment_id and run["info"]["status"] == "FINISHED"
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics["mae"] == training.metrics["mae"]
    assert metrics["baseline_mae"] == training.metrics["baseline_mae"] > metrics["mae"]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["promoted"] == "True"
    history = httpx.get(
        f"{api}/metrics/get-history", params={"run_id": training.run_id, "metric_key": "mae"}, timeout=30
    )
    assert [m["value"] for m in history.json()["metrics"]] == [training.metrics["mae"]]
    artifacts = httpx.get(
        f"{api}/artifacts/list", params={"run_id": training.run_id, "path": "evaluation"}, timeout=30
    )
    assert [f["path"] for f in artifacts.json()["files"]] == ["evaluation/forecast_holdout.png"]

    champion = httpx.get(
        f"{api}/registered-models/alias",
        params={"name": tracking.FORECAST_MODEL, "alias": tracking.CHAMPION},
        timeout=30,
    ).json()["model_version"]
    assert (champion["version"], champion["run_id"]) == (training.version, training.run_id)
    model = httpx.get(
        f"{api}/registered-models/get", params={"name": tracking.FORECAST_MODEL}, timeout=30
    ).json()
    assert model["registered_model"]["aliases"] == [{"alias": "champion", "version": training.version}]


def test_mlflow_ui_serves_the_trained_champion_and_its_pages_render_offline(
    browser: OfflineBrowser, store: Store, mlflow_ui: str
) -> None:
    # one test for the server: pytest 9.2 ignores xdist's groups, so two would start it twice
    _check_rest_api(store, mlflow_ui)
    training = store.training
    ui = browser.visit("mlflow_experiments", f"{mlflow_ui}/#/experiments")
    page = ui.page
    page.get_by_text(FORECAST_EXPERIMENT).first.wait_for()
    assert FORECAST_EXPERIMENT in ui.check("body", min_chars=50, allow_http=NO_AUTH_APP)

    run_url = f"{mlflow_ui}/#/experiments/{store.experiment_id}/runs/{training.run_id}"
    ui.go("mlflow_run", run_url)
    page.get_by_text("baseline_mae").first.wait_for()
    text = ui.check("body", min_chars=100, allow_http=NO_AUTH_APP)
    assert "mae" in text and "skill_mae" in text and training.run_id in text
    shown = f"{training.metrics['mae']:.4g}"[:4]  # the UI rounds; the leading digits must be there
    assert shown in text, (shown, training.metrics["mae"])

    # the UI fetches /get-artifact?path=evaluation/forecast_holdout.png and shows it from a blob: URL
    ui.go("mlflow_run_artifact", f"{run_url}/artifacts/evaluation/forecast_holdout.png")
    image = page.locator("img[src^='blob:']").first
    image.wait_for(timeout=90_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("img => img.naturalWidth") > 200
    ui.check("body", min_chars=50, allow_http=NO_AUTH_APP)

    ui.go("mlflow_registered_models", f"{mlflow_ui}/#/models")
    page.get_by_text(tracking.FORECAST_MODEL).first.wait_for()
    assert tracking.FORECAST_MODEL in ui.check("body", min_chars=50, allow_http=NO_AUTH_APP)

    ui.go("mlflow_registered_model", f"{mlflow_ui}/#/models/{tracking.FORECAST_MODEL}")
    page.get_by_text("Version 1").first.wait_for()
    text = ui.check("body", min_chars=50, allow_http=NO_AUTH_APP)
    assert "champion" in text and "Version 1" in text
    page.close()
