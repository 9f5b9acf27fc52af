"""The two ML jobs of jobs.yaml through papermill, on a copy of the tiny lake."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

from lakehouse.jobs import load_jobs, run_job

from ..conftest import PROJECT_ROOT
from .conftest import RUN_DATE

pytestmark = pytest.mark.slow


def _registered_versions(var: Path) -> dict[str, list[str]]:
    import sqlite3

    with sqlite3.connect(var / "mlflow" / "mlflow.db") as db:
        rows = db.execute("SELECT name, version FROM model_versions ORDER BY name, version").fetchall()
    versions: dict[str, list[str]] = {}
    for name, version in rows:
        versions.setdefault(name, []).append(str(version))
    return versions


def _champions(var: Path) -> dict[str, str]:
    import sqlite3

    with sqlite3.connect(var / "mlflow" / "mlflow.db") as db:
        rows = db.execute("SELECT name, version FROM registered_model_aliases WHERE alias = 'champion'")
        return {name: str(version) for name, version in rows.fetchall()}


def _without_scored_at(frame: pd.DataFrame) -> pd.DataFrame:
    keys = ["machine_id", "hour_ts"]
    return frame.drop(columns="scored_at").sort_values(keys).reset_index(drop=True)


def test_daily_scoring_bootstraps_the_models_once_and_catches_up_then_weekly_training_keeps_champions(
    tiny_lake, tmp_path, monkeypatch
):
    shutil.copytree(tiny_lake.root, tmp_path / "copy")
    lake, var, runs = tmp_path / "copy" / "lake", tmp_path / "copy" / "var", tmp_path / "runs"
    monkeypatch.setenv("LAKEHOUSE_HOME", str(PROJECT_ROOT))
    monkeypatch.setenv("LAKEHOUSE_VAR_DIR", str(var))
    monkeypatch.setenv("LAKEHOUSE_ML__HOLDOUT_DAYS", "3")
    monkeypatch.setenv("LAKEHOUSE_ML__CATCH_UP_DAYS", "3")
    jobs = load_jobs(PROJECT_ROOT / "jobs.yaml", project_root=PROJECT_ROOT)
    params = {"run_date": RUN_DATE.isoformat(), "lake_root": str(lake)}

    # A lake no model was trained for: the daily scoring job trains, registers, scores.
    first = run_job(
        jobs, "ml_scoring_daily", params=params, project_root=PROJECT_ROOT, runs_dir=runs, quiet=True
    )
    assert first.ok, first.error
    assert sorted(p.name for p in Path(first.run_dir).glob("*.ipynb")) == [
        "bootstrap_models.ipynb",
        "score_energy.ipynb",
    ]
    assert (var / "mlflow" / "mlflow.db").is_file(), "the default store lives under var_dir"
    # The forecast; the supervised detector (labels exist) then the label-free one.
    assert _registered_versions(var) == {
        "energy_anomaly_detector": ["1", "2"],
        "energy_consumption_forecast": ["1"],
    }
    gold = lake / "gold" / "domain=energy" / "model=prediction"
    scores = DeltaTable(str(gold / "table=anomaly_scores")).to_pandas()
    forecast = DeltaTable(str(gold / "table=consumption_forecast")).to_pandas()
    # Caught up 3 days (catch_up_days): 4 machines x 72 hours scored; each scored day
    # forecasts the next one: the 24th's forecast is the 25th, ..., the 26th's the 27th.
    assert (len(scores), len(forecast)) == (4 * 72, 4 * 72)
    first_day = RUN_DATE - dt.timedelta(days=2)
    assert sorted(set(scores["hour_ts"].dt.date)) == [first_day + dt.timedelta(days=k) for k in range(3)]
    assert sorted(set(forecast["hour_ts"].dt.date)) == [first_day + dt.timedelta(days=k) for k in range(1, 4)]
    assert set(forecast["model_version"]) == {"1"}
    assert set(scores["model_name"]) == {"energy_anomaly_detector"}
    assert scores["model_run_id"].str.len().gt(0).all() and forecast["model_run_id"].str.len().gt(0).all()
    bootstrap = json.loads((Path(first.run_dir) / "bootstrap_models.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in bootstrap["cells"] for o in c.get("outputs", []))
    assert "no champion yet for energy_consumption_forecast, energy_anomaly_detector: training" in printed
    assert "skill_mae" in printed and "#/experiments/" in printed

    # The next run trains nothing and scores the run date only (its rows replaced).
    again = run_job(
        jobs, "ml_scoring_daily", params=params, project_root=PROJECT_ROOT, runs_dir=runs, quiet=True
    )
    assert again.ok, again.error
    assert _registered_versions(var)["energy_consumption_forecast"] == ["1"]
    bootstrap = json.loads((Path(again.run_dir) / "bootstrap_models.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in bootstrap["cells"] for o in c.get("outputs", []))
    assert "every model has a champion: not retrained" in printed
    rescored = DeltaTable(str(gold / "table=anomaly_scores")).to_pandas()
    assert len(rescored) == 4 * 72
    newer = rescored["scored_at"] > scores["scored_at"].max()
    assert set(rescored.loc[newer, "hour_ts"].dt.date) == {RUN_DATE}
    # Scored again with the same champions: the same rows, only scored_at is newer.
    reforecast = DeltaTable(str(gold / "table=consumption_forecast")).to_pandas()
    for before, after in ((scores, rescored), (forecast, reforecast)):
        pd.testing.assert_frame_equal(_without_scored_at(after), _without_scored_at(before))
    score_nb = json.loads((Path(again.run_dir) / "score_energy.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in score_nb["cells"] for o in c.get("outputs", []))
    assert (
        f"scored {RUN_DATE} to {RUN_DATE}: 96 machine-hours, 192 forecast hours, 0 fact rows updated"
        in printed
    )

    # The weekly training retrains on the same data: same metrics, no promotion.
    weekly = run_job(
        jobs, "ml_training_weekly", params=params, project_root=PROJECT_ROOT, runs_dir=runs, quiet=True
    )
    assert weekly.ok, weekly.error
    assert _registered_versions(var)["energy_consumption_forecast"] == ["1", "2"]
    assert _champions(var) == {"energy_anomaly_detector": "1", "energy_consumption_forecast": "1"}
