"""The benchmark's engine comparison: the library's gold transformations on the
embedded engine and the DuckDB SQL give the same rows on a tiny hand-made input."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.bench import compare

UTC_US = pa.timestamp("us", tz="UTC")
D = Decimal


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _write(folder: Path, name: str, rows: list[dict], schema: pa.Schema) -> None:
    (folder / name).mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / name / "part-0.parquet")


def _line(order_id, line, day, product, site, quantity, price, discount):
    return {
        "order_id": order_id, "line_number": line, "order_date": dt.date.fromisoformat(day),
        "customer_id": "C1", "product_id": product, "site_id": site, "quantity": quantity,
        "unit_price": price, "discount_pct": discount, "sales_channel": None,
    }


def _reading(machine, ts, kwh, kw, vibration, *, ingested="2026-11-11T00:00:00", corrupt=None, line=1):
    return {
        "machine_id": machine, "ts": None if ts is None else _ts(ts), "kwh": kwh, "kw": kw,
        "temperature_c": 20.0, "vibration_mm_s": vibration, "_corrupt_record": corrupt,
        "_ingested_at": _ts(ingested), "_source_file": "readings.jsonl", "_line_number": line,
    }


@pytest.fixture
def tiny_inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    _write(folder, "order_lines", [
        _line("O1", 1, "2026-11-10", "P1", "S1", 3, D("12.3450"), D("5.00")),
        _line("O1", 2, "2026-11-20", "P1", "S1", 1, D("12.3450"), D("0.00")),  # second price period
        _line("O2", 1, "2026-11-10", "P9", "S2", 2, D("5.0000"), None),  # unknown product, no discount
    ], pa.schema([
        ("order_id", pa.string()), ("line_number", pa.int32()), ("order_date", pa.date32()),
        ("customer_id", pa.string()), ("product_id", pa.string()), ("site_id", pa.string()),
        ("quantity", pa.int32()), ("unit_price", pa.decimal128(12, 4)), ("discount_pct", pa.decimal128(5, 2)),
        ("sales_channel", pa.string()),
    ]))
    _write(folder, "products", [
        {"product_id": "P1", "cip13": "3400000000001", "name": "Doliprane", "atc_code": "N02BE01",
         "atc_class": "N", "dosage_form": "tablet", "unit_cost": D("11.0000"), "list_price": D("12.3450"),
         "is_active": True, "updated_at": _ts("2026-11-01T00:00:00")},
    ], pa.schema([
        ("product_id", pa.string()), ("cip13", pa.string()), ("name", pa.string()), ("atc_code", pa.string()),
        ("atc_class", pa.string()), ("dosage_form", pa.string()), ("unit_cost", pa.decimal128(12, 4)),
        ("list_price", pa.decimal128(12, 4)), ("is_active", pa.bool_()), ("updated_at", UTC_US),
    ]))
    _write(folder, "product_prices", [
        {"product_id": "P1", "valid_from": dt.date(2026, 1, 1), "valid_to": dt.date(2026, 11, 15),
         "unit_cost": D("10.0000"), "list_price": D("12.3450")},
        {"product_id": "P1", "valid_from": dt.date(2026, 11, 15), "valid_to": None,
         "unit_cost": D("11.0000"), "list_price": D("12.3450")},
    ], pa.schema([
        ("product_id", pa.string()), ("valid_from", pa.date32()), ("valid_to", pa.date32()),
        ("unit_cost", pa.decimal128(12, 4)), ("list_price", pa.decimal128(12, 4)),
    ]))
    machine_schema = pa.schema([
        ("machine_id", pa.string()), ("site_id", pa.string()), ("machine_type", pa.string()),
        ("rated_power_kw", pa.float64()), ("commissioned_on", pa.date32()), ("updated_at", UTC_US),
    ])
    _write(folder, "machines", [
        {"machine_id": m, "site_id": "S1", "machine_type": "press", "rated_power_kw": rated,
         "commissioned_on": dt.date(2020, 1, 1), "updated_at": _ts("2026-11-01T00:00:00")}
        for m, rated in (("M001", 10.0), ("M002", 0.0), ("M003", 10.0))
    ], machine_schema)
    _write(folder, "production_runs", [
        {"batch_id": "B1", "machine_id": "M001", "site_id": "S1", "product_id": "P1",
         "start_ts": _ts("2026-11-10T10:30:00"), "end_ts": _ts("2026-11-10T11:15:00"),
         "units_produced": 100, "units_rejected": 1},
    ], pa.schema([
        ("batch_id", pa.string()), ("machine_id", pa.string()), ("site_id", pa.string()),
        ("product_id", pa.string()), ("start_ts", UTC_US), ("end_ts", UTC_US),
        ("units_produced", pa.int64()), ("units_rejected", pa.int64()),
    ]))
    _write(folder, "iot_readings", [
        _reading("M001", "2026-11-10T10:00:00", 0.1, 6.0, 1.0, line=1),
        _reading("M001", "2026-11-10T10:01:00", 0.2, 10.0, 1.0, line=2),
        # the same minute sent again later: the latest copy wins
        _reading("M001", "2026-11-10T10:01:00", 0.3, 12.0, 3.0, ingested="2026-11-12T00:00:00", line=2),
        _reading("M001", None, None, None, None, corrupt="{broken", line=3),
        _reading("M002", "2026-11-10T10:00:00", 0.5, 30.0, 8.0, line=4),  # rated 0: no load factor
        _reading("M003", "2026-11-10T10:00:00", 0.25, 15.0, None, line=5),  # overloaded, vibration unknown
        _reading("M999", "2026-11-10T10:00:00", 9.9, 1.0, 1.0, line=6),  # not in the referential
    ], pa.schema([
        ("machine_id", pa.string()), ("ts", UTC_US), ("kwh", pa.float64()), ("kw", pa.float64()),
        ("temperature_c", pa.float64()), ("vibration_mm_s", pa.float64()), ("_corrupt_record", pa.string()),
        ("_ingested_at", UTC_US), ("_source_file", pa.string()), ("_line_number", pa.int32()),
    ]))
    return folder


def _rows(folder: Path, name: str) -> list[dict]:
    return compare.read_output(folder, name, compare.CHECKS[name]).to_dict("records")


def test_embedded_and_duckdb_agree_and_match_hand_computed_rows(spark, tiny_inputs: Path, tmp_path: Path):
    sail, duck = tmp_path / "sail", tmp_path / "duckdb"
    assert compare.run_spark_subset(spark, tiny_inputs, sail) > 0
    assert compare.run_duckdb_subset(tiny_inputs, duck, threads=1) > 0

    assert compare.compare_outputs(duck, sail) == {name: [] for name in compare.OUTPUTS}

    sales = {(r["order_id"], r["line_number"]): r for r in _rows(duck, "fact_ventes")}
    # O1/1: gross 3 x 12.345 = 37.035 -> 37.04 (half up); discount 37.035 x 5 % = 1.85175 -> 1.85;
    # net 37.04 - 1.85 = 35.19; cost 3 x 10.00 (period before 15/11) = 30.00; margin 5.19. In cents:
    assert [sales["O1", 1][c] for c in ("gross_amount", "discount_amount", "net_amount", "cost_amount", "margin_amount")] == [3704, 185, 3519, 3000, 519]
    # O1/2: 12.345 -> 12.35, cost 11.00 (second period), margin 1.35
    assert [sales["O1", 2][c] for c in ("net_amount", "cost_amount", "margin_amount")] == [1235, 1100, 135]
    # O2: unknown product keeps its line with no cost; a NULL discount gives NULL net
    assert [sales["O2", 1][c] for c in ("gross_amount", "net_amount", "cost_amount", "unit_cost")] == [1000, None, None, None]

    kpi = {(r["date_key"], r["site_id"]): r for r in _rows(sail, "kpi_marge_journaliere")}
    assert sorted(kpi) == [(20261110, "S1"), (20261110, "S2"), (20261120, "S1")]
    day = kpi[20261110, "S1"]
    # margin rate 5.19 / 35.19 = 0.147485... -> 0.1475
    assert (day["orders"], day["units_sold"], day["net_revenue"], day["margin"]) == (1, 3, 3519, 519)
    assert float(day["margin_rate"]) == pytest.approx(0.1475, abs=1e-9)

    energy = {r["machine_id"]: r for r in _rows(sail, "fact_consommation_energie")}
    assert sorted(energy) == ["M001", "M002", "M003"]  # M999 is not a known machine
    m1 = energy["M001"]
    # 10:00 + the latest copy of 10:01: kwh 0.1 + 0.3; mean kW (6 + 12) / 2 = 9 over 10 rated = 0.9;
    # max vibration 3.0 > 2.8 -> warning; batch B1 runs 10:30-11:15: 30 minutes of this hour
    assert (m1["hour_key"], m1["minutes_observed"], m1["anomaly_class"]) == (2026111010, 2, "warning")
    assert (m1["kwh"], m1["load_factor"], m1["production_minutes"]) == pytest.approx((0.4, 0.9, 30.0))
    assert energy["M002"]["anomaly_class"] == "critical" and energy["M002"]["load_factor"] != energy["M002"]["load_factor"]
    assert energy["M003"]["anomaly_class"] == "warning"  # load factor 15 / 10 = 1.5 > 1.2


def test_differences_name_the_output_column_and_row(tiny_inputs: Path, tmp_path: Path):
    compare.run_duckdb_subset(tiny_inputs, tmp_path / "duckdb", threads=1)
    check = compare.CHECKS["fact_ventes"]
    expected = compare.read_output(tmp_path / "duckdb", "fact_ventes", check)
    found = expected.copy()
    found.loc[0, "net_amount"] = found.loc[0, "net_amount"] + 1  # one cent off

    problems = compare.differences("fact_ventes", expected, found, check)

    assert len(problems) == 1
    assert problems[0].startswith("fact_ventes.net_amount: 1 rows differ, first at {'order_id': 'O1', 'line_number': 1")
    assert compare.differences("fact_ventes", expected, found.iloc[:2], check) == ["fact_ventes: 3 rows against 2"]


def test_energy_floats_beyond_the_kwh_tolerance_are_reported(tiny_inputs: Path, tmp_path: Path):
    compare.run_duckdb_subset(tiny_inputs, tmp_path / "duckdb", threads=1)
    check = compare.CHECKS["fact_consommation_energie"]
    expected = compare.read_output(tmp_path / "duckdb", "fact_consommation_energie", check)
    within, beyond = expected.copy(), expected.copy()
    within.loc[0, "kwh"] += 5e-7
    beyond.loc[0, "kwh"] += 2e-6

    assert compare.differences("energy", expected, within, check) == []
    assert [p.split(":")[0] for p in compare.differences("energy", expected, beyond, check)] == ["energy.kwh"]
