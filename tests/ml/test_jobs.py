"""The two ML jobs of jobs.yaml through papermill, on a copy of the tiny lake."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakehouse.jobs import load_jobs, run_job

from ..conftest import PROJECT_ROOT
from .conftest import RUN_DATE

pytestmark = pytest.mark.slow


def test_weekly_training_then_daily_scoring_fill_the_gold_prediction_tables(tiny_lake, tmp_path, monkeypatch):
    shutil.copytree(tiny_lake.root, tmp_path / "copy")
    lake, var, runs = tmp_path / "copy" / "lake", tmp_path / "copy" / "var", tmp_path / "runs"
    monkeypatch.setenv("LAKEHOUSE_HOME", str(PROJECT_ROOT))
    monkeypatch.setenv("LAKEHOUSE_VAR_DIR", str(var))
    monkeypatch.setenv("LAKEHOUSE_ML__HOLDOUT_DAYS", "3")
    jobs = load_jobs(PROJECT_ROOT / "jobs.yaml", project_root=PROJECT_ROOT)
    params = {"run_date": RUN_DATE.isoformat(), "lake_root": str(lake)}
    for job in ("ml_training_weekly", "ml_scoring_daily"):
        run = run_job(jobs, job, params=params, project_root=PROJECT_ROOT, runs_dir=runs, quiet=True)
        assert run.ok, f"{job}: {run.error}"
        assert list(Path(run.run_dir).glob("*.ipynb")), "executed notebooks are kept"

    assert (var / "mlflow" / "mlflow.db").is_file(), "the default store lives under var_dir"
    gold = lake / "gold" / "domain=energy" / "model=prediction"
    scores = DeltaTable(str(gold / "table=anomaly_scores")).to_pandas()
    forecast = DeltaTable(str(gold / "table=consumption_forecast")).to_pandas()
    # 4 machines x the 24 hours of the run date, and x the 24 hours after it.
    assert (len(scores), len(forecast)) == (96, 96)
    assert set(scores["model_version"]) == set(forecast["model_version"]) == {"1"}
    assert scores["hour_ts"].dt.date.eq(RUN_DATE).all()
