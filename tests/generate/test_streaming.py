"""Files rendered one at a time and column by column: the same text as row by row, and
memory that follows one file rather than the whole period."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from lakehouse.generate import GenerationParams
from lakehouse.generate.energy import plan_anomalies, readings_jsonl, simulate_machine, simulate_plant
from lakehouse.generate.formats import csv_line, csv_lines, fr_decimal, json_fixed_point, json_values
from lakehouse.generate.order_export import order_line_files
from lakehouse.generate.orders import build_order_lines
from lakehouse.generate.production import build_production_batches
from lakehouse.generate.referential import build_referential

from .conftest import RUN_DATE, SMALL, Run
from .helpers import csv_rows, entity_files, jsonl_lines

PARAMS = GenerationParams(run_date=RUN_DATE, **SMALL)


def test_readings_are_what_pandas_wrote_row_by_row():
    """Each day of a plant, from the fixed-point plant arrays, equals pandas' JSON of
    the machines' float series (the writer before files were rendered by Arrow)."""
    ref = build_referential(PARAMS)
    batches = build_production_batches(PARAMS, ref)
    anomalies = plan_anomalies(PARAMS, ref)
    site_id = ref.sites.loc[ref.sites["site_type"] == "plant", "site_id"].iloc[0]
    plant = simulate_plant(PARAMS, ref, site_id, batches, anomalies)
    machines = ref.machines[ref.machines["site_id"] == site_id].sort_values("machine_id")
    series = [
        simulate_machine(
            PARAMS,
            machine,
            batches[batches["machine_id"] == machine["machine_id"]],
            [a for a in anomalies if a.machine_id == machine["machine_id"]],
        )
        for machine in machines.to_dict("records")
    ]
    assert plant.machine_ids == [s.machine_id for s in series]
    for day in range(PARAMS.days):
        window = slice(day * 1440, (day + 1) * 1440)
        stamps = pd.date_range(PARAMS.dates[day], periods=1440, freq="min").strftime("%Y-%m-%dT%H:%M:00Z")
        expected = pd.DataFrame(
            {
                "machine_id": np.tile(plant.machine_ids, 1440),
                "ts": np.repeat(stamps, len(series)),
                **{
                    name: np.stack([getattr(s, name)[window] for s in series]).T.reshape(-1)
                    for name in ("kwh", "kw", "temperature_c", "vibration_mm_s")
                },
            }
        ).to_json(orient="records", lines=True, double_precision=6)
        assert readings_jsonl(PARAMS, plant, day).decode("utf-8") == expected


@pytest.mark.parametrize("entity", ["deliveries", "production_batches"])
def test_json_lines_are_compact_json_dumps(small_run: Run, entity):
    checked = 0
    for path in entity_files(small_run.lake, f"source=erp/{entity}", "*.jsonl"):
        for _, line, record in jsonl_lines(path):
            if record is not None:
                assert line == json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                checked += 1
    assert checked >= 10


def test_csv_lines_are_csv_line_of_their_fields(small_run: Run):
    for folder in ("order_lines", "stock_snapshots"):
        for path in entity_files(small_run.lake, f"source=erp/{folder}", "*.csv"):
            _, rows = csv_rows(path)
            assert rows
            assert all(line == csv_line(fields) for _, line, fields in rows)


def test_column_spellings_match_the_row_by_row_ones():
    values = np.array([3.5, 0, 12.346, 2.675, -1.005, -0.001, 1234567.891, 0.125, 99.995])
    assert list(fr_decimal(values, 2)) == [f"{v:.2f}".replace(".", ",") for v in np.round(values, 2)]
    assert list(fr_decimal(values, 0)) == [f"{v:.0f}" for v in np.round(values, 0)]
    fields = [np.array(["a", "b;c", 'd"e', "x\ny", "é"], dtype=object), np.array(["1,5"] * 5, dtype=object)]
    assert csv_lines(fields) == [csv_line(row) for row in zip(*fields)]
    texts = ["plain", None, 'quote "', "back\\slash", "tab\t", "é ü", "\x01"]
    assert json_values(texts).to_pylist() == [json.dumps(t, ensure_ascii=False) for t in texts]
    numbers = pd.Series([3, None, -7], dtype=object)
    assert json_values(numbers).to_pylist() == ["3", "null", "-7"]
    floats = np.array([1.0, 0.00001, 0.00083, 12.5, 1999.999, 0.0])
    assert json_values(floats).to_pylist() == ["1.0", "0.00001", "0.00083", "12.5", "1999.999", "0.0"]
    units = np.array([100000, 1, 83, 1250000, 0, 123456789, 10, 99999])
    spelled = pd.Series(units / 1e5).to_json(orient="values", double_precision=6)
    assert "[" + ",".join(json_fixed_point(units, 5).to_pylist()) + "]" == spelled
    with pytest.raises(ValueError, match="non-negative"):
        json_fixed_point(np.array([-5]), 1)


def _peak_bytes_writing_order_lines(days: int) -> int:
    """Peak memory traced while the order-line files are rendered and dropped one by
    one (the clean lines, built before, are not counted)."""
    params = GenerationParams(seed=3, scale=1.0, days=days, run_date=RUN_DATE)
    lines = build_order_lines(params, build_referential(params))
    tracemalloc.start()
    try:
        written = sum(len(file.text()) for file, _ in order_line_files(params, lines))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written > 50_000 * days
    return peak


def test_order_line_memory_follows_one_file_not_the_period():
    # Eight times the days: the per-line plan (about 80 bytes a line) grows with them,
    # the text of one file (about 900 bytes a line while rendered) does not. Rendering
    # every file at once made the peak grow about as much as the days.
    two, sixteen = _peak_bytes_writing_order_lines(2), _peak_bytes_writing_order_lines(16)
    assert sixteen < 2.5 * two, (two, sixteen)
