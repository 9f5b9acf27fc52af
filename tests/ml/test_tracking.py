"""Which version is each model's champion, read straight from the SQLite store: the
same answer as MLflow's registry, and MLflow itself wherever that read is not certain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.ml import tracking
from lakehouse.ml.scoring import environment_differences
from lakehouse.ml.tracking import ANOMALY_MODEL, FORECAST_MODEL, ChampionModel

from .conftest import RUN_DATE

UNTRAINED = "energy_model_never_promoted"


def _settings(tmp_path: Path, **ml):
    from lakehouse.config import load_settings

    return load_settings(
        lake_root=str(tmp_path / "lake"), var_dir=str(tmp_path / "var"), run_date=RUN_DATE, ml=ml
    )


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A SQLite store: the forecast with versions 1-2 (champion 2), the detector with
    versions 1-3 (champion 3, then version 3 deleted: no champion left) and 1 again
    promoted, a model with a version and no alias. Registered through MLflow itself."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("registry")
    settings = _settings(folder)
    tracking.configure(settings)
    client = MlflowClient()
    for name, versions in ((FORECAST_MODEL, 2), (ANOMALY_MODEL, 3), (UNTRAINED, 1)):
        client.create_registered_model(name)
        for number in range(1, versions + 1):
            source = (folder / "artifacts" / name / str(number)).as_uri()
            client.create_model_version(name, source, run_id=None)
    client.set_registered_model_alias(FORECAST_MODEL, tracking.CHAMPION, "1")
    client.set_registered_model_alias(FORECAST_MODEL, tracking.CHAMPION, "2")  # the alias moved
    client.set_registered_model_alias(ANOMALY_MODEL, tracking.CHAMPION, "3")
    client.delete_model_version(ANOMALY_MODEL, "3")  # takes its alias with it
    return settings, client


def test_champions_read_from_the_file_are_the_registry_s(registry):
    settings, client = registry
    found = tracking.champions(settings, (FORECAST_MODEL, ANOMALY_MODEL, UNTRAINED, "no_such_model"))
    forecast = client.get_model_version_by_alias(FORECAST_MODEL, tracking.CHAMPION)
    assert found == {
        FORECAST_MODEL: ChampionModel(
            FORECAST_MODEL, "2", "", client.get_model_version_download_uri(FORECAST_MODEL, "2")
        ),
        ANOMALY_MODEL: None,  # its champion's version was deleted
        UNTRAINED: None,  # registered, never promoted
        "no_such_model": None,
    }
    assert found[FORECAST_MODEL].version == str(forecast.version)
    assert (
        found[FORECAST_MODEL].uri == (settings.var_dir.parent / "artifacts" / FORECAST_MODEL / "2").as_uri()
    )
    assert tracking.missing_champions(settings) == [ANOMALY_MODEL]
    assert tracking.champion_version(FORECAST_MODEL) == "2"  # the store MLflow points at


def test_a_promoted_version_is_seen_at_once(registry):
    settings, client = registry
    client.set_registered_model_alias(ANOMALY_MODEL, tracking.CHAMPION, "1")
    try:
        found = tracking.champions(settings)[ANOMALY_MODEL]
        assert (found.version, found.uri) == ("1", client.get_model_version_download_uri(ANOMALY_MODEL, "1"))
        assert tracking.missing_champions(settings) == []
    finally:
        client.delete_registered_model_alias(ANOMALY_MODEL, tracking.CHAMPION)


def test_without_a_store_file_no_model_has_a_champion_and_mlflow_stays_unimported(tmp_path):
    """The daily bootstrap's check: no MLflow import, no store created."""
    code = (
        "import sys\n"
        "from lakehouse.config import load_settings\n"
        "from lakehouse.ml import tracking\n"
        f"s = load_settings(lake_root={str(tmp_path / 'lake')!r}, var_dir={str(tmp_path / 'var')!r})\n"
        "print(tracking.missing_champions(s), 'mlflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[-2] == f"['{FORECAST_MODEL}', '{ANOMALY_MODEL}'] False"
    assert not (tmp_path / "var" / "mlflow" / "mlflow.db").exists()


def test_the_file_is_read_without_importing_mlflow(registry):
    settings, _ = registry
    code = (
        "import sys\n"
        "from lakehouse.config import load_settings\n"
        "from lakehouse.ml import tracking\n"
        f"s = load_settings(lake_root={str(settings.lake_root)!r}, var_dir={str(settings.var_dir)!r})\n"
        "print(tracking.missing_champions(s), 'mlflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[-2] == f"['{ANOMALY_MODEL}'] False"


@pytest.mark.parametrize(
    ("uri", "workspace"),
    [
        ("http://127.0.0.1:5000", ""),  # a tracking server
        ("sqlite:///{db}?timeout=30", ""),  # options only SQLAlchemy knows
        ("sqlite:///{db}", "team_a"),  # an MLflow workspace other than the default one
    ],
)
def test_other_stores_and_workspaces_are_asked_through_mlflow(registry, monkeypatch, uri, workspace):
    settings, _ = registry
    db = tracking.tracking_uri(settings).removeprefix("sqlite:///")
    monkeypatch.setenv("MLFLOW_WORKSPACE", workspace)
    asked = []

    def through_mlflow(names):
        asked.append(names)
        return dict.fromkeys(names)

    monkeypatch.setattr(tracking, "_champions_from_mlflow", through_mlflow)
    monkeypatch.setattr(tracking, "configure", lambda settings: None)
    other = _settings(settings.var_dir.parent, tracking_uri=uri.format(db=db))
    assert tracking.champions(other) == {FORECAST_MODEL: None, ANOMALY_MODEL: None}
    assert asked == [(FORECAST_MODEL, ANOMALY_MODEL)]


def test_an_unreadable_file_is_asked_through_mlflow(tmp_path, monkeypatch):
    db = tmp_path / "mlflow.db"
    db.write_text("not a database", encoding="utf-8")
    monkeypatch.setattr(tracking, "_champions_from_mlflow", lambda names: {n: "asked MLflow" for n in names})
    monkeypatch.setattr(tracking, "configure", lambda settings: None)
    settings = _settings(tmp_path, tracking_uri=f"sqlite:///{db}")
    assert tracking.champions(settings, (FORECAST_MODEL,)) == {FORECAST_MODEL: "asked MLflow"}


def test_environment_differences_name_each_pin_that_differs(tmp_path):
    from importlib.metadata import version

    (tmp_path / "requirements.txt").write_text(
        f"numpy=={version('numpy')}\n"  # as installed: no difference
        "scikit-learn==0.0.1\n"
        "no-such-package-for-lakehouse==1.0\n"
        "pandas\n"  # not pinned: nothing to compare
        "# a comment\n",
        encoding="utf-8",
    )
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    same_python = {"python_function": {"python_version": f"{running}.0"}}
    assert environment_differences(tmp_path, same_python) == [
        f"scikit-learn==0.0.1 (here: {version('scikit-learn')})",
        "no-such-package-for-lakehouse==1.0 (here: not installed)",
    ]
    older = {"python_function": {"python_version": "3.8.10"}}
    assert environment_differences(tmp_path / "nothing", older) == [
        f"Python 3.8.10 (here: {sys.version.split()[0]})"
    ]
    assert environment_differences(tmp_path / "nothing", {}) == []
