"""Comparing two lakes table by table: what the engine tests share."""

from __future__ import annotations

import decimal
import math
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUN_DATE = "2026-11-26"
GENERATOR = {"scale": 0.05, "days": 4, "seed": 7}
KEY = "cross-engine-test-key-0123456789abcdef"  # one pseudonymisation key for both lakes
# Columns that say when a row was written, not what it holds.
RUN_TIME_COLUMNS = {"_ingested_at", "_processed_at", "_loaded_at", "_built_at", "_updated_at", "_run_id"}
FLOAT_TOLERANCE = 1e-6


def tables(lake: str | Path, layer: str) -> dict[str, str]:
    """Name (the path under the lake root) -> path of each Delta table of ``layer``."""
    from lakehouse.catalog import find_tables

    root = str(lake).rstrip("/")
    return {path[len(root) :].strip("/"): path for path in find_tables(root) if f"/{layer}/" in path}


def rows(path: str, normalise=lambda value: value) -> tuple[list[str], list[tuple]]:
    """Column names and sorted rows of a Delta table (delta-rs), run-time columns left out."""
    from deltalake import DeltaTable

    table = DeltaTable(path).to_pyarrow_table()
    names = [n for n in table.column_names if n not in RUN_TIME_COLUMNS]
    found = [tuple(normalise(_normalise(row[n])) for n in names) for row in table.select(names).to_pylist()]
    return names, sorted(found, key=_sort_key)


def _normalise(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return tuple(_normalise(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _normalise(v)) for k, v in value.items()))
    return value


def _sort_key(row: tuple) -> tuple:
    """Floats sort coarsely (sums in another order differ in their last bits); they
    are compared within FLOAT_TOLERANCE afterwards, not rounded."""
    return tuple((v is None, f"{v:.3f}" if isinstance(v, float) else str(v)) for v in row)


def assert_same(a, b, where: str) -> None:
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and abs(a - b) <= FLOAT_TOLERANCE, f"{where}: {a} != {b}"
    elif isinstance(a, decimal.Decimal) or isinstance(b, decimal.Decimal):
        assert a == b, f"{where}: {a} != {b} (money must match to the cent)"
    elif isinstance(a, tuple) and isinstance(b, tuple):
        assert len(a) == len(b), f"{where}: {a} != {b}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_tables(
    expected: dict[str, str], found: dict[str, str], normalise=lambda value: value
) -> None:
    """Every table of ``expected`` in ``found``, same columns, same rows."""
    assert expected, "no table to compare"
    assert sorted(found) == sorted(expected)
    for name in sorted(expected):
        expected_columns, expected_rows = rows(expected[name], normalise)
        found_columns, found_rows = rows(found[name], normalise)
        assert found_columns == expected_columns, f"{name}: columns differ"
        assert len(found_rows) == len(expected_rows), (
            f"{name}: {len(found_rows)} rows, expected {len(expected_rows)}"
        )
        for index, (x, y) in enumerate(zip(expected_rows, found_rows)):
            assert_same(x, y, f"{name} row {index}")
