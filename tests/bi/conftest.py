"""A small gold layer built by hand with the schemas of lib/lakehouse/gold (delta-rs,
no Spark: it takes milliseconds), plus a table and a column the exports do not know,
to show they follow the tables that exist."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from lakehouse.lake import Lake

D = Decimal
DAYS = [dt.date(2026, 11, 24), dt.date(2026, 11, 25), dt.date(2026, 11, 26)]
UTC = dt.UTC


def _key(day: dt.date) -> int:
    return int(day.strftime("%Y%m%d"))


def dim_site() -> pa.Table:
    return pa.table(
        {
            "site_sk": pa.array([101, 102, -1], pa.int64()),
            "site_id": ["S01", "S02", "UNKNOWN"],
            "site_name": ["Usine de Compiègne", "Plateforme de Saran", "Inconnu"],
            "site_type": ["plant", "distribution_centre", None],
            "city": ["Compiègne", "Saran", None],
            "region": ["Hauts-de-France", "Centre-Val de Loire", None],
            "country": ["FR", "FR", None],
        }
    )


def dim_temps() -> pa.Table:
    return pa.table(
        {
            "date_key": pa.array([_key(d) for d in DAYS] + [-1], pa.int32()),
            "date": pa.array([*DAYS, None], pa.date32()),
            "year": pa.array([2026, 2026, 2026, None], pa.int32()),
            "month": pa.array([11, 11, 11, None], pa.int32()),
            "day_name": ["mardi", "mercredi", "jeudi", "Inconnu"],
            "is_holiday": [False, False, False, None],
            "holiday_name": pa.array([None, "", None, None], pa.string()),  # "" must stay "" (not NULL)
        }
    )


def dim_produit() -> pa.Table:
    money = pa.decimal128(12, 4)
    return pa.table(
        {
            "product_sk": pa.array([11, 12, 21, -1], pa.int64()),
            "product_id": ["P1", "P1", "P2", "UNKNOWN"],
            "name": ["Paracétamol 500 mg", "Paracétamol 500 mg", "Ibuprofène 200 mg", "Inconnu"],
            "unit_cost": pa.array([D("1.1000"), D("1.2000"), D("2.0000"), None], money),
            "list_price": pa.array([D("2.5000"), D("2.6000"), D("4.0000"), None], money),
            "valid_from": pa.array(
                [dt.date(2026, 1, 1), dt.date(2026, 11, 25), dt.date(2026, 1, 1), dt.date(1900, 1, 1)]
            ),
            "valid_to": pa.array(
                [dt.date(2026, 11, 25), dt.date(9999, 12, 31), dt.date(9999, 12, 31), dt.date(9999, 12, 31)]
            ),
            "is_current": [False, True, True, True],
        }
    )


def fact_ventes() -> pa.Table:
    amount = pa.decimal128(18, 2)
    return pa.table(
        {
            "order_id": ["O1", "O1", "O2", "O3", "O4"],
            "line_number": pa.array([1, 2, 1, 1, 1], pa.int32()),
            "date_key": pa.array([20261124, 20261124, 20261125, 20261126, 20261126], pa.int32()),
            "order_date": pa.array([DAYS[0], DAYS[0], DAYS[1], DAYS[2], DAYS[2]]),
            "product_sk": pa.array([11, 21, 12, 21, -1], pa.int64()),
            "site_sk": pa.array([101, 101, 102, 102, 101], pa.int64()),
            "product_id": ["P1", "P2", "P1", "P2", "P9"],
            "site_id": ["S01", "S01", "S02", "S02", "S01"],
            "customer_id": ["C001", "C001", "C002", "C003", "C001"],
            "quantity": pa.array([10, 5, 20, 1, 3], pa.int32()),
            "discount_pct": pa.array(
                [D("0.00"), D("10.00"), None, D("0.00"), D("0.00")], pa.decimal128(5, 2)
            ),
            # 10 x 2.50 = 25.00; 5 x 4.00 - 10 % = 18.00; 20 x 2.60 = 52.00; 1 x 4.00; 3 x 1.99 = 5.97
            "net_amount": pa.array([D("25.00"), D("18.00"), D("52.00"), D("4.00"), D("5.97")], amount),
            "unit_cost": pa.array(
                [D("1.1000"), D("2.0000"), D("1.2000"), D("2.0000"), None], pa.decimal128(12, 4)
            ),
            "margin_amount": pa.array([D("14.00"), D("8.00"), D("28.00"), D("2.00"), None], amount),
        }
    )


def kpi_rupture_stock() -> pa.Table:
    rate = pa.decimal128(9, 4)
    # S01: 1, 2, 0 of 20 products out; S02: 0, 0, 3 of 10 (0.3000 on the last day)
    return pa.table(
        {
            "date_key": pa.array([_key(d) for d in DAYS] * 2, pa.int32()),
            "date": pa.array(DAYS * 2),
            "site_id": ["S01"] * 3 + ["S02"] * 3,
            "products": pa.array([20, 20, 20, 10, 10, 10], pa.int64()),
            "products_out_of_stock": pa.array([1, 2, 0, 0, 0, 3], pa.int64()),
            "products_below_safety_stock": pa.array([2, 2, 1, 0, 1, 4], pa.int64()),
            "stockout_rate": pa.array([D("0.0500"), D("0.1000"), D("0"), D("0"), D("0"), D("0.3000")], rate),
            "below_safety_stock_rate": pa.array(
                [D("0.1000"), D("0.1000"), D("0.0500"), D("0"), D("0.1000"), D("0.4000")], rate
            ),
        }
    )


def kpi_performance_livraison() -> pa.Table:
    # the last promised day (26th) has pending deliveries only
    return pa.table(
        {
            "date_key": pa.array([20261124, 20261125, 20261126, 20261124, 20261125, 20261126], pa.int32()),
            "date": pa.array(DAYS * 2),
            "site_id": ["S01"] * 3 + ["S02"] * 3,
            "deliveries_due": pa.array([10, 8, 4, 5, 5, 2], pa.int64()),
            "deliveries_delivered": pa.array([10, 8, 0, 5, 4, 0], pa.int64()),
            "deliveries_otif": pa.array([8, 8, 0, 4, 2, 0], pa.int64()),
            "deliveries_late": pa.array([1, 0, 0, 1, 2, 0], pa.int64()),
            "deliveries_pending": pa.array([0, 0, 4, 0, 1, 2], pa.int64()),
            "otif_rate": pa.array(
                [D("0.8000"), D("1.0000"), None, D("0.8000"), D("0.5000"), None], pa.decimal128(9, 4)
            ),
        }
    )


def dim_machine() -> pa.Table:
    return pa.table(
        {
            "machine_sk": pa.array([1001, 1002, -1], pa.int64()),
            "machine_id": ["M001", "M002", "UNKNOWN"],
            "site_id": ["S01", "S01", None],
            "machine_type": ["tablet_press", "hvac", None],
            "rated_power_kw": [50.0, 120.0, None],
            "valid_from": pa.array([dt.date(2020, 1, 1), dt.date(2020, 1, 1), dt.date(1900, 1, 1)]),
            "is_current": [True, True, True],
        }
    )


HOURS = [dt.datetime(2026, 11, 26, h, tzinfo=UTC) for h in range(6)]


def dim_temps_horaire() -> pa.Table:
    return pa.table(
        {
            "hour_key": pa.array([2026112600 + h for h in range(24)] + [-1], pa.int32()),
            "date_key": pa.array([20261126] * 24 + [-1], pa.int32()),
            "hour": pa.array([*range(24), None], pa.int32()),
            "is_working_hours": [6 <= h < 22 for h in range(24)] + [None],
        }
    )


ANOMALIES = {("M001", 2): "warning", ("M001", 3): "critical", ("M002", 5): "warning"}


def fact_consommation_energie() -> pa.Table:
    rows = [
        {
            "machine_sk": sk,
            "machine_id": machine,
            "hour_key": 2026112600 + h,
            "date_key": 20261126,
            "hour_ts": HOURS[h],
            "site_id": "S01",
            "kwh": float(10 * (h + 1) if machine == "M001" else 100 + h),  # M001: 10..60, M002: 100..105
            "mean_kw": float(10 * (h + 1) if machine == "M001" else 100 + h),
            "load_factor": 0.5,
            "temperature_c": None if (machine, h) == ("M002", 0) else 21.5,
            "vibration_mm_s": 9.0 if (machine, h) in ANOMALIES else 2.0,
            "anomaly_class": ANOMALIES.get((machine, h), "normal"),
        }
        for machine, sk in (("M001", 1001), ("M002", 1002))
        for h in range(6)
    ]
    schema = pa.schema(
        [
            ("machine_sk", pa.int64()), ("machine_id", pa.string()), ("hour_key", pa.int32()),
            ("date_key", pa.int32()), ("hour_ts", pa.timestamp("us", tz="UTC")), ("site_id", pa.string()),
            ("kwh", pa.float64()), ("mean_kw", pa.float64()), ("load_factor", pa.float64()),
            ("temperature_c", pa.float64()), ("vibration_mm_s", pa.float64()), ("anomaly_class", pa.string()),
        ]
    )  # fmt: skip
    return pa.Table.from_pylist(rows, schema)


def fact_production() -> pa.Table:
    return pa.table(
        {
            "batch_id": ["B1", "B2", "B3"],
            "machine_sk": pa.array([1001, 1001, 1002], pa.int64()),
            "machine_id": ["M001", "M001", "M002"],
            "date_key": pa.array([20261126] * 3, pa.int32()),
            "site_id": ["S01", "S01", "S01"],
            "start_ts": pa.array(HOURS[:3], pa.timestamp("us", tz="UTC")),
            "units_produced": pa.array([1000, 1200, 0], pa.int64()),
            "attributed_kwh": [12.5, 30.0, None],
        }
    )


def kpi_test_extra() -> pa.Table:
    """A KPI table the exports know nothing about (no declared key)."""
    return pa.table(
        {"site_id": ["S01", "S02"], "date_key": pa.array([20261126] * 2, pa.int32()), "value": [1.5, None]}
    )


GOLD = {
    ("pharma", "star", "dim_site"): dim_site,
    ("pharma", "star", "dim_temps"): dim_temps,
    ("pharma", "star", "dim_produit"): dim_produit,
    ("pharma", "star", "fact_ventes"): fact_ventes,
    ("pharma", "kpi", "kpi_rupture_stock"): kpi_rupture_stock,
    ("pharma", "kpi", "kpi_performance_livraison"): kpi_performance_livraison,
    ("energy", "star", "dim_machine"): dim_machine,
    ("energy", "star", "dim_temps_horaire"): dim_temps_horaire,
    ("energy", "star", "fact_consommation_energie"): fact_consommation_energie,
    ("energy", "star", "fact_production"): fact_production,
    ("energy", "kpi", "kpi_test_extra"): kpi_test_extra,
}


def write_gold(lake: Lake, domain: str, model: str, name: str, data: pa.Table) -> str:
    path = lake.gold(domain, model, name)  # type: ignore[arg-type]
    write_deltalake(path, data, mode="overwrite", schema_mode="overwrite")
    return path


def build_gold(root: Path) -> Lake:
    lake = Lake(str(root / "lake"))
    for (domain, model, name), make in GOLD.items():
        write_gold(lake, domain, model, name, make())
    # a folder that is not a Delta table (e.g. a crashed first write) is ignored
    (root / "lake" / "gold" / "domain=pharma" / "model=kpi" / "table=half_written").mkdir(parents=True)
    return lake


@pytest.fixture
def gold_lake(tmp_path: Path) -> Lake:
    return build_gold(tmp_path)
