"""Energy readings: seasonality, and anomalies that really show in the files."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from lakehouse.generate import GenerationParams
from lakehouse.generate.energy import ANOMALY_TYPES, plan_anomalies, simulate_machine
from lakehouse.generate.production import build_production_batches
from lakehouse.generate.referential import build_referential

from .conftest import RUN_DATE, SMALL, Run
from .helpers import entity_files

PARAMS = GenerationParams(run_date=RUN_DATE, **SMALL)


@pytest.fixture(scope="module")
def file_readings(small_run: Run) -> pd.DataFrame:
    frames = [
        pd.read_json(p, lines=True, convert_dates=False, precise_float=True)
        for p in entity_files(small_run.lake, "source=iot/readings", "*.jsonl")
    ]
    readings = pd.concat(frames, ignore_index=True)
    start = pd.Timestamp(PARAMS.start_date, tz="UTC")
    readings["minute"] = ((pd.to_datetime(readings["ts"]) - start).dt.total_seconds() // 60).astype(int)
    return readings.sort_values(["machine_id", "minute"]).reset_index(drop=True)


def _minutes(ts: pd.Series) -> np.ndarray:
    start = pd.Timestamp(PARAMS.start_date, tz="UTC")
    return ((pd.to_datetime(ts) - start).dt.total_seconds() // 60).astype(int).to_numpy()


def test_anomalies_overlap_readings_that_really_deviate(small_run: Run, file_readings: pd.DataFrame):
    ref = build_referential(PARAMS)
    batches = build_production_batches(PARAMS, ref)
    truth = pd.read_csv(small_run.truth / "energy_anomalies.csv")
    assert list(truth.columns) == ["machine_id", "start_ts", "end_ts", "anomaly_type"]
    assert set(truth["anomaly_type"]) == set(ANOMALY_TYPES)
    shifts = {(a.machine_id, a.start): round(a.magnitude * 60) for a in plan_anomalies(PARAMS, ref)}
    truth["start"], truth["end"] = _minutes(truth["start_ts"]), _minutes(truth["end_ts"])
    assert (truth["start"] >= 0).all() and (truth["end"] <= PARAMS.minutes).all()

    for machine in ref.machines.to_dict("records"):
        observed = file_readings[file_readings["machine_id"] == machine["machine_id"]]
        assert list(observed["minute"]) == list(range(PARAMS.minutes))
        kw = observed["kw"].to_numpy()
        # The same machine without anomalies: identical noise, so any gap is the anomaly.
        normal = simulate_machine(PARAMS, machine, batches[batches["machine_id"] == machine["machine_id"]]).kw
        inside = np.zeros(PARAMS.minutes, dtype=bool)
        for a in truth[truth["machine_id"] == machine["machine_id"]].itertuples():
            window = slice(a.start, a.end)
            inside[window] = True
            ratio = kw[window] / normal[window]
            if a.anomaly_type == "spike":
                assert ratio.min() > 1.45 and ratio.max() < 3.05, a
            elif a.anomaly_type == "drift":
                assert a.end - a.start >= 1440, "drifts last a day or more"
                quarter = (a.end - a.start) // 4
                assert ratio[-quarter:].mean() > ratio[:quarter].mean() + 0.1, a
                assert ratio[-1] > 1.2, a
            elif a.anomaly_type == "slow_drift":
                days = (a.end - a.start) / 1440
                assert days >= 2 or a.end - a.start == PARAMS.minutes // 2, "slow drifts last days"
                # 3-6 % a day: +/- 3 % noise shows the creep only over hours.
                first, last = ratio[:120].mean(), ratio[-120:].mean()
                assert 0.03 * days - 0.02 < last - first < 0.06 * days + 0.02, (a, first, last)
            elif a.anomaly_type == "profile_shift":
                shift = shifts[(a.machine_id, a.start)]
                assert 120 <= shift <= 240, "2-4 hours"
                # Exactly the machine's own readings of `shift` minutes before.
                assert (kw[window] == normal[a.start - shift : a.end - shift]).all(), a
                assert (kw[window] != normal[window]).any(), a
            else:
                assert len(np.unique(kw[window])) == 1, "a stuck meter repeats one value"
                assert len(np.unique(normal[window])) > 1
                assert (a.end - a.start) >= 120
        assert (kw[~inside] == normal[~inside]).all(), "readings outside anomalies are normal"


def test_power_follows_shifts_weekends_and_batches(file_readings: pd.DataFrame):
    ref = build_referential(PARAMS)
    producing = ref.machines.loc[ref.machines["machine_type"] != "hvac", "machine_id"].iloc[0]
    rows = file_readings[file_readings["machine_id"] == producing]
    hour = (rows["minute"] % 1440) // 60
    assert rows.loc[hour.between(8, 11), "kw"].median() > 3 * rows.loc[hour.between(0, 3), "kw"].median()
    batches = build_production_batches(PARAMS, ref)
    running = np.zeros(PARAMS.minutes, dtype=bool)
    for b in batches[batches["machine_id"] == producing].itertuples():
        running[b.start_minute : b.end_minute] = True
    kw = rows["kw"].to_numpy()
    assert np.median(kw[running]) > 2.5 * np.median(kw[~running])


def test_anomalies_cover_two_to_four_percent_of_machine_minutes_at_scale_1():
    params = GenerationParams(seed=42, scale=1.0, days=30, run_date=RUN_DATE)
    anomalies = plan_anomalies(params, build_referential(params))
    minutes = sum(a.end - a.start for a in anomalies)
    assert 0.02 <= minutes / (20 * params.minutes) <= 0.04
    assert {a.anomaly_type for a in anomalies} == set(ANOMALY_TYPES)
    # Budget 3 % of 864,000 = 25,920 minutes; count = share x budget / mean duration:
    # slow_drift 0.30 x 25,920 / 4,320 = 1.8 -> 2; drift 0.25 x 25,920 / 2,160 = 3;
    # profile_shift 0.15 x 25,920 / 1,440 = 2.7 -> 3; stuck 0.15 x 25,920 / 240 = 16.2
    # -> 16; spike 0.15 x 25,920 / 32.5 = 119.6 -> 120 (all placed: the fleet has room).
    counts = {kind: sum(a.anomaly_type == kind for a in anomalies) for kind in ANOMALY_TYPES}
    assert counts == {"spike": 120, "drift": 3, "slow_drift": 2, "stuck_sensor": 16, "profile_shift": 3}
    for machine_id in {a.machine_id for a in anomalies}:
        mine = sorted((a.start, a.end) for a in anomalies if a.machine_id == machine_id)
        assert all(end <= next_start for (_, end), (next_start, _) in zip(mine, mine[1:]))
    assert dt.date(2026, 10, 28) == params.start_date
