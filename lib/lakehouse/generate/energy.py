"""Minute-level energy readings of the machines, with injected anomalies.

Grain: one reading per (machine_id, ts) minute, the key; one file per plant and day
(UTC). Power follows rated power x load: production machines idle low at night,
stand by during the 05:00-22:00 shifts and run at 65-90 % while a batch runs;
hvac follows occupancy. Weekends are quieter. Noise is smoothed white noise.

Anomalies (about 3 % of machine-minutes at scale 1, at least one of each type):

- ``spike``: 5-60 minutes at 1.5-3x power (vibration up too);
- ``drift``: power rises linearly by 25-50 % over 1-2 days, temperature by 5-10 °C
  and vibration with it (wear);
- ``slow_drift``: power creeps up by 3-6 % a day for 2-4 days (a fouled filter, a
  worn bearing), temperature and vibration with it: hard to see within a day;
- ``stuck_sensor``: the power meter repeats its first value (``kw`` and ``kwh``
  constant) for 2-6 hours;
- ``profile_shift``: for 12-36 hours the machine follows its own profile of 2-4 hours
  earlier (a clock or schedule error: it runs when no batch is planned, and idles
  when one is).

Windows are ``[start, end)`` in minutes from the first day 00:00 UTC; in the ground
truth ``end_ts`` is exclusive too.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.generate.formats import iso_ts, json_fixed_point_parts, text_bytes
from lakehouse.generate.params import MINUTES_PER_DAY, GenerationParams
from lakehouse.generate.referential import Referential

ANOMALY_SHARE = 0.03  # of machine-minutes, split as in plan_anomalies
ANOMALY_TYPES = ("spike", "drift", "slow_drift", "stuck_sensor", "profile_shift")
READING_COLUMNS = ("machine_id", "ts", "kwh", "kw", "temperature_c", "vibration_mm_s")


@dataclass(frozen=True)
class Anomaly:
    """One injected anomaly on one machine over minutes ``[start, end)``."""

    machine_id: str
    anomaly_type: str
    start: int
    end: int
    # spike: power factor; drift: relative rise at the end; slow_drift: relative rise
    # per day; profile_shift: hours the profile is shifted by; stuck_sensor: 0
    magnitude: float


@dataclass(frozen=True)
class MachineSeries:
    """One machine's readings over the whole period (arrays of ``params.minutes``)."""

    machine_id: str
    kw: np.ndarray
    kwh: np.ndarray
    temperature_c: np.ndarray
    vibration_mm_s: np.ndarray


def readings_path(site_id: str, day: dt.date) -> str:
    return f"landing/source=iot/readings/{day.isoformat()}/readings_{site_id}_{day:%Y%m%d}.jsonl"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def calendar_arrays(params: GenerationParams) -> tuple[np.ndarray, np.ndarray]:
    """Hour of day (float) and weekend flag for every minute of the period."""
    minute = np.arange(params.minutes)
    hour = (minute % MINUTES_PER_DAY) / 60.0
    weekend_day = np.array([d.weekday() >= 5 for d in params.dates])
    return hour, np.repeat(weekend_day, MINUTES_PER_DAY)


def running_mask(params: GenerationParams, batches: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Load of the batch running at each minute (0 where none runs): 65-90 % per batch."""
    load = np.zeros(params.minutes)
    for start, end in zip(batches["start_minute"], batches["end_minute"]):
        load[start:end] = rng.uniform(0.65, 0.9)
    return load


def smooth(values: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Causal weighted average: ``kernel[0]`` weighs the current minute, ``kernel[k]``
    the minute k before; the first value is held before the start."""
    padded = np.concatenate([np.full(len(kernel) - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def simulate_machine(
    params: GenerationParams,
    machine: dict[str, object],
    batches: pd.DataFrame,
    anomalies: list[Anomaly] | tuple[Anomaly, ...] = (),
) -> MachineSeries:
    """Readings of one machine; ``batches`` are that machine's batches. The noise
    comes from the machine's own stream, so the same machine without ``anomalies``
    gives identical readings outside the anomaly windows."""
    machine_id = str(machine["machine_id"])
    rated = float(machine["rated_power_kw"])
    rng = params.rng("iot", machine_id)
    hour, weekend = calendar_arrays(params)
    if machine["machine_type"] == "hvac":
        occupancy = _sigmoid((hour - 6.0) * 2.0) * _sigmoid((20.0 - hour) * 2.0)
        load = 0.30 + 0.30 * occupancy * np.where(weekend, 0.6, 1.0)
        load = load + 0.04 * np.sin(2 * np.pi * (hour - 15.0) / 24.0)  # afternoon heat
        base_temp, temp_gain, base_vib, vib_gain = 16.0, 8.0, 1.0, 2.0
    else:
        shift = _sigmoid((hour - 5.0) * 3.0) * _sigmoid((22.0 - hour) * 3.0)
        standby = (0.05 + 0.13 * shift) * np.where(weekend, 0.7, 1.0)
        running = running_mask(params, batches, rng)
        cycle = 0.03 * np.sin(2 * np.pi * np.arange(params.minutes) / 17.0)
        load = np.where(running > 0, running + cycle, standby)
        # A healthy machine stays in ISO 10816 zones A/B (<= 2.8 mm/s) even at full load
        # (0.6 + 1.8 x 0.93 + noise < 2.7): vibration above it means an anomaly.
        base_temp, temp_gain, base_vib, vib_gain = 22.0, 18.0, 0.6, 1.8
    # Unit-variance noise correlated over ~5 minutes, 3 % of the power.
    noise = smooth(rng.normal(0.0, 1.0, params.minutes), np.full(5, 0.2)) * np.sqrt(5)
    kw = rated * load * (1.0 + 0.03 * noise)
    thermal = np.exp(-np.arange(120) / 25.0)
    temperature = base_temp + temp_gain * smooth(load, thermal / thermal.sum())
    temperature = temperature + rng.normal(0.0, 0.2, params.minutes)
    vibration = base_vib + vib_gain * load + np.abs(rng.normal(0.0, 0.12, params.minutes))

    for anomaly in anomalies:  # first, so the shifted profile is a normal one
        if anomaly.anomaly_type == "profile_shift":
            shift = round(anomaly.magnitude * 60)
            source = slice(anomaly.start - shift, anomaly.end - shift)
            for series in (kw, temperature, vibration):
                series[anomaly.start : anomaly.end] = series[source].copy()
    for anomaly in anomalies:
        window = slice(anomaly.start, anomaly.end)
        if anomaly.anomaly_type == "spike":
            kw[window] *= anomaly.magnitude
            vibration[window] *= 1.0 + (anomaly.magnitude - 1.0) / 2.0
        elif anomaly.anomaly_type == "drift":
            ramp = np.linspace(0.0, anomaly.magnitude, anomaly.end - anomaly.start)
            kw[window] *= 1.0 + ramp
            temperature[window] += ramp * 20.0
            vibration[window] *= 1.0 + 1.5 * ramp
        elif anomaly.anomaly_type == "slow_drift":
            days = (anomaly.end - anomaly.start) / MINUTES_PER_DAY
            ramp = np.linspace(0.0, anomaly.magnitude * days, anomaly.end - anomaly.start)
            kw[window] *= 1.0 + ramp
            temperature[window] += ramp * 20.0
            vibration[window] *= 1.0 + 1.5 * ramp
    kw = np.round(kw, 3)
    kwh = np.round(kw / 60.0, 5)
    for anomaly in anomalies:
        if anomaly.anomaly_type == "stuck_sensor":  # after rounding: truly constant
            kw[anomaly.start : anomaly.end] = kw[anomaly.start]
            kwh[anomaly.start : anomaly.end] = kwh[anomaly.start]
    return MachineSeries(machine_id, kw, kwh, np.round(temperature, 2), np.round(vibration, 3))


def plan_anomalies(params: GenerationParams, ref: Referential) -> list[Anomaly]:
    """Anomalies for the whole fleet: non-overlapping per machine, at least 30
    minutes apart, sorted by machine and start. Long kinds are placed first; none
    lasts more than half the period, so short periods still get every kind."""
    rng = params.rng("energy_anomalies")
    machine_ids = ref.machines["machine_id"].tolist()
    total = params.minutes
    budget = ANOMALY_SHARE * len(machine_ids) * total
    # kind, share of the budget, duration range (minutes), magnitude range; the
    # budget share / mean duration gives the count.
    plan = [
        ("slow_drift", 0.30, (2880, 5760), (0.03, 0.06)),
        ("drift", 0.25, (1440, 2880), (0.25, 0.5)),
        ("profile_shift", 0.15, (720, 2160), (2.0, 4.0)),
        ("stuck_sensor", 0.15, (120, 360), (0.0, 0.0)),
        ("spike", 0.15, (5, 60), (1.5, 3.0)),
    ]
    taken: dict[str, list[tuple[int, int]]] = {m: [] for m in machine_ids}
    anomalies = []
    for kind, share, (shortest, longest), (low, high) in plan:
        count = max(1, round(share * budget / ((shortest + longest) / 2)))
        for _ in range(count):
            duration = min(int(rng.integers(shortest, longest + 1)), max(5, total // 2))
            magnitude = float(rng.uniform(low, high)) if high > 0 else 0.0
            # A shifted profile copies the readings of `magnitude` hours before.
            earliest = round(magnitude * 60) + 1 if kind == "profile_shift" else 0
            for _attempt in range(50):
                machine_id = machine_ids[int(rng.integers(0, len(machine_ids)))]
                start = int(rng.integers(earliest, total - duration + 1))
                end = start + duration
                if all(end + 30 <= s or start >= e + 30 for s, e in taken[machine_id]):
                    taken[machine_id].append((start, end))
                    anomalies.append(Anomaly(machine_id, kind, start, end, round(magnitude, 4)))
                    break
    return sorted(anomalies, key=lambda a: (a.machine_id, a.start))


def anomalies_frame(params: GenerationParams, anomalies: list[Anomaly]) -> pd.DataFrame:
    """Ground truth ``energy_anomalies.csv``: machine_id, start_ts, end_ts (exclusive),
    anomaly_type."""
    starts = np.array([a.start for a in anomalies], dtype=np.int64)
    ends = np.array([a.end for a in anomalies], dtype=np.int64)
    return pd.DataFrame(
        {
            "machine_id": [a.machine_id for a in anomalies],
            "start_ts": iso_ts(starts, params.start_date),
            "end_ts": iso_ts(ends, params.start_date),
            "anomaly_type": [a.anomaly_type for a in anomalies],
        },
        columns=["machine_id", "start_ts", "end_ts", "anomaly_type"],
    )


# Readings kept between simulation and writing as integers of their last written
# digit (kW to 3 decimals, °C to 2, mm/s to 3): k / 10**d is the very float
# np.round(x, d) gave, and 12 bytes a machine-minute instead of 32.
FIXED_POINT = {"kw": 3, "temperature_c": 2, "vibration_mm_s": 3}
KWH_DECIMALS = 5
DECIMALS = {"kwh": KWH_DECIMALS, **FIXED_POINT}


@dataclass(frozen=True)
class PlantReadings:
    """One plant's readings over the period, arrays (machines, minutes) per column
    of :data:`FIXED_POINT`."""

    machine_ids: list[str]
    columns: dict[str, np.ndarray]

    def day(self, day_index: int) -> dict[str, np.ndarray]:
        """The day's readings as integers of their last digit, flattened minute by
        minute (machines in id order within a minute); ``kwh`` recomputed from ``kw``
        as the simulation does (a stuck meter holds both, so the formula holds there
        too)."""
        window = slice(day_index * MINUTES_PER_DAY, (day_index + 1) * MINUTES_PER_DAY)
        units = {name: self.columns[name][:, window].T.reshape(-1) for name in FIXED_POINT}
        kwh = np.round(units["kw"] / 10.0 ** FIXED_POINT["kw"] / 60.0, KWH_DECIMALS)
        return {"kwh": np.rint(kwh * 10.0**KWH_DECIMALS).astype(np.int64), **units}


def simulate_plant(
    params: GenerationParams,
    ref: Referential,
    site_id: str,
    batches: pd.DataFrame,
    anomalies: list[Anomaly],
) -> PlantReadings:
    """Every machine of one plant, in machine_id order, simulated one at a time into
    the compact :class:`PlantReadings` (one machine's float series alive at a time)."""
    machines = ref.machines[ref.machines["site_id"] == site_id].sort_values("machine_id")
    columns = {name: np.empty((len(machines), params.minutes), np.int32) for name in FIXED_POINT}
    batches_of = dict(tuple(batches.groupby("machine_id", sort=False)))
    anomalies_of: dict[str, list[Anomaly]] = {}
    for anomaly in anomalies:
        anomalies_of.setdefault(anomaly.machine_id, []).append(anomaly)
    for m, machine in enumerate(machines.to_dict("records")):
        machine_id = machine["machine_id"]
        series = simulate_machine(
            params, machine, batches_of.get(machine_id, batches.iloc[:0]), anomalies_of.get(machine_id, [])
        )
        for name, decimals in FIXED_POINT.items():
            columns[name][m] = np.rint(getattr(series, name) * 10.0**decimals)
    return PlantReadings(machines["machine_id"].tolist(), columns)


def readings_jsonl(params: GenerationParams, plant: PlantReadings, day_index: int) -> bytes:
    """One day of one plant as JSON lines, minute by minute, machines in id order;
    numbers spelled as pandas' ``to_json(double_precision=6)`` did. Built from ten
    text columns joined once: the constant keys ride on the machine, timestamp and
    fraction texts, so no scalar is broadcast."""
    n = len(plant.machine_ids)
    first = day_index * MINUTES_PER_DAY
    stamps = iso_ts(np.arange(first, first + MINUTES_PER_DAY), params.start_date)
    names = READING_COLUMNS[2:]
    heads = pa.array([f'{{"machine_id":{json.dumps(m)},"ts":' for m in plant.machine_ids])
    times = pa.array([f'"{ts}","{names[0]}":' for ts in stamps])
    parts = [
        heads.take(pa.array(np.tile(np.arange(n), MINUTES_PER_DAY))),
        times.take(pa.array(np.repeat(np.arange(MINUTES_PER_DAY), n))),
    ]
    values = plant.day(day_index)
    for name, then in zip(names, [f',"{name}":' for name in names[1:]] + ["}"]):
        parts += json_fixed_point_parts(values[name], DECIMALS[name], then)
    return text_bytes(pc.binary_join_element_wise(*parts, ""))
