"""Production batches: 2-4 a day on each production machine (hvac units produce none).

Grain: one row per batch, key ``batch_id``. Batches of one machine never overlap and
stay within their day (UTC); ``end_ts`` is exclusive (the machine runs the minutes
``[start_ts, end_ts)``), which is also what drives the energy readings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lakehouse.generate.formats import iso_ts
from lakehouse.generate.params import MINUTES_PER_DAY, GenerationParams
from lakehouse.generate.referential import Referential
from lakehouse.generate.vocabulary import UNITS_PER_HOUR

LAST_END_MINUTE = 23 * 60 + 50  # batches finish before midnight


def batch_minutes(rng: np.random.Generator, n_batches: int) -> list[tuple[int, int]]:
    """``(start, end)`` minutes of the day for ``n_batches`` back-to-back batches of
    1.5-4.5 h, 15-75 min changeovers, the first starting between 05:30 and 07:30;
    squeezed proportionally when they would run past 23:50."""
    first = rng.uniform(5.5 * 60, 7.5 * 60)
    durations = rng.uniform(90, 270, n_batches)
    gaps = rng.uniform(15, 75, n_batches)
    gaps[0] = 0.0
    span = durations.sum() + gaps.sum()
    squeeze = min(1.0, (LAST_END_MINUTE - first) / span)
    durations, gaps = durations * squeeze, gaps * squeeze
    out, clock = [], first
    for duration, gap in zip(durations, gaps):
        start = int(round(clock + gap))
        end = int(round(clock + gap + duration))
        out.append((start, end))
        clock = clock + gap + duration
    return out


def build_production_batches(params: GenerationParams, ref: Referential) -> pd.DataFrame:
    """All batches of the period with ``start_minute``/``end_minute`` (offsets from
    the first day, for the energy model) and ``drop_date`` (the day they started)."""
    machines = ref.machines[ref.machines["machine_type"] != "hvac"]
    active = ref.products.loc[ref.product_popularity > 0, "product_id"].to_numpy()
    rows = []
    for machine_id, site_id, machine_type in zip(
        machines["machine_id"], machines["site_id"], machines["machine_type"]
    ):
        # Each machine makes a fixed handful of products (its campaign plan).
        portfolio = params.rng("production", machine_id).choice(
            active, size=min(len(active), 8), replace=False
        )
        for d, day in enumerate(params.dates):
            rng = params.rng("production", machine_id, day)
            n_batches = int(rng.integers(2, 5)) if day.weekday() < 5 else 2
            for seq, (start, end) in enumerate(batch_minutes(rng, n_batches), start=1):
                hours = (end - start) / 60
                produced = int(UNITS_PER_HOUR[machine_type] * hours * rng.uniform(0.85, 1.05))
                rejected = int(round(produced * rng.uniform(0.002, 0.03)))
                rows.append(
                    (
                        f"B{day:%Y%m%d}-{machine_id}-{seq}",
                        machine_id,
                        site_id,
                        str(rng.choice(portfolio)),
                        d * MINUTES_PER_DAY + start,
                        d * MINUTES_PER_DAY + end,
                        produced,
                        rejected,
                        day,
                    )
                )
    frame = pd.DataFrame(
        rows,
        columns=[
            "batch_id", "machine_id", "site_id", "product_id", "start_minute", "end_minute",
            "units_produced", "units_rejected", "drop_date",
        ],
    )  # fmt: skip
    return frame.sort_values(["drop_date", "machine_id", "start_minute"]).reset_index(drop=True)


def batch_records(params: GenerationParams, batches: pd.DataFrame) -> pd.DataFrame:
    """Batches as exported, column by column (ISO 8601 UTC timestamps)."""
    return pd.DataFrame(
        {
            "batch_id": batches["batch_id"],
            "machine_id": batches["machine_id"],
            "site_id": batches["site_id"],
            "product_id": batches["product_id"],
            "start_ts": iso_ts(batches["start_minute"].to_numpy(), params.start_date),
            "end_ts": iso_ts(batches["end_minute"].to_numpy(), params.start_date),
            "units_produced": batches["units_produced"].astype(np.int64),
            "units_rejected": batches["units_rejected"].astype(np.int64),
        }
    )
