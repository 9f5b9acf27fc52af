"""A tiny energy lake for the model tests: the generator's own machine simulation
(4 machines x 16 days, every anomaly type), resampled to silver's hourly grain in
pandas and written as the silver Delta tables, plus the ground-truth CSV."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lakehouse.generate import GenerationParams
from lakehouse.generate.energy import anomalies_frame, plan_anomalies, simulate_machine
from lakehouse.generate.production import build_production_batches
from lakehouse.generate.referential import build_referential

RUN_DATE = dt.date(2026, 11, 26)
TINY = GenerationParams(seed=11, scale=0.2, days=16, run_date=RUN_DATE)


@dataclass(frozen=True)
class TinyLake:
    root: Path
    lake_root: str
    var_dir: Path
    truth: Path
    hourly: pd.DataFrame

    def settings(self, **ml):
        from lakehouse.config import load_settings

        return load_settings(
            lake_root=self.lake_root,
            var_dir=str(self.var_dir),
            run_date=RUN_DATE,
            ml={"holdout_days": 3, **ml},
        )


def hourly_readings(params: GenerationParams) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(silver-like hourly readings, machines, ground truth) of one generation."""
    ref = build_referential(params)
    batches = build_production_batches(params, ref)
    anomalies = plan_anomalies(params, ref)
    start = pd.Timestamp(params.start_date)
    hours = params.minutes // 60
    frames = []
    for machine in ref.machines.to_dict("records"):
        mine = batches[batches["machine_id"] == machine["machine_id"]]
        series = simulate_machine(
            params, machine, mine, [a for a in anomalies if a.machine_id == machine["machine_id"]]
        )
        running = np.zeros(params.minutes)
        for b in mine.itertuples():
            running[b.start_minute : b.end_minute] = 1.0
        by_hour = lambda a: a.reshape(hours, 60)  # noqa: E731
        frames.append(
            pd.DataFrame(
                {
                    "machine_id": machine["machine_id"],
                    "hour_ts": start + pd.to_timedelta(np.arange(hours), unit="h"),
                    "kwh": by_hour(series.kwh).sum(axis=1),
                    "mean_kw": by_hour(series.kw).mean(axis=1),
                    "peak_kw": by_hour(series.kw).max(axis=1),
                    "mean_temperature_c": by_hour(series.temperature_c).mean(axis=1),
                    "max_vibration_mm_s": by_hour(series.vibration_mm_s).max(axis=1),
                    "minutes_observed": 60,
                    "production_minutes": by_hour(running).sum(axis=1),
                }
            )
        )
    machines = ref.machines[["machine_id", "site_id", "machine_type", "rated_power_kw"]]
    return pd.concat(frames, ignore_index=True), machines, anomalies_frame(params, anomalies)


@pytest.fixture(scope="session")
def tiny_lake(spark, tmp_path_factory: pytest.TempPathFactory) -> TinyLake:
    from lakehouse.lake import Lake, write_delta

    root = tmp_path_factory.mktemp("ml")
    lake = Lake(str(root / "lake"))
    hourly, machines, truth = hourly_readings(TINY)
    write_delta(spark.createDataFrame(hourly), lake.silver("energy", "iot_readings_hourly"))
    write_delta(spark.createDataFrame(machines), lake.silver("energy", "machines"))
    truth_path = root / "var" / "ground_truth" / "energy_anomalies.csv"
    truth_path.parent.mkdir(parents=True)
    truth.to_csv(truth_path, index=False)
    return TinyLake(root, lake.root, root / "var", truth_path, hourly)


def own_mlflow_store(tiny_lake: TinyLake, folder: Path):
    """Settings of the tiny lake with an MLflow store of their own in ``folder`` (one
    SQLite file per test module: modules may run side by side on other workers)."""
    from lakehouse.ml import tracking

    settings = tiny_lake.settings(
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}", artifact_root=str(folder / "artifacts")
    )
    tracking.configure(settings)
    return settings
