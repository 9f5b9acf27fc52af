"""Small hand-built silver and gold tables (run date 2026-11-26) for the quality suites:
a clean set that passes every suite, and the injected problems of the tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.sql import SparkSession

from lakehouse.lake import Lake, write_delta

RUN_DATE = dt.date(2026, 11, 26)
UTC = dt.UTC

SCHEMAS = {
    "dim_produit": "product_sk BIGINT, product_id STRING, unit_cost DECIMAL(12,4), list_price DECIMAL(12,4), "
    "valid_from DATE, valid_to DATE, is_current BOOLEAN",
    "dim_site": "site_sk BIGINT, site_id STRING, site_name STRING, site_type STRING",
    "dim_temps": "date_key INT, date DATE",
    "dim_machine": "machine_sk BIGINT, machine_id STRING, site_id STRING, rated_power_kw DOUBLE",
    "dim_temps_horaire": "hour_key INT, date_key INT",
    "fact_ventes": "order_id STRING, line_number INT, date_key INT, order_date DATE, product_sk BIGINT, "
    "site_sk BIGINT, product_id STRING, quantity INT, discount_pct DECIMAL(5,2), gross_amount DECIMAL(18,2), "
    "net_amount DECIMAL(18,2), sales_channel STRING",
    "fact_consommation_energie": "machine_sk BIGINT, machine_id STRING, hour_key INT, date_key INT, kwh DOUBLE, "
    "temperature_c DOUBLE, vibration_mm_s DOUBLE, minutes_observed BIGINT, anomaly_class STRING",
    "fact_production": "batch_id STRING, machine_sk BIGINT, units_produced BIGINT, units_rejected BIGINT, "
    "attributed_kwh DOUBLE",
    "order_lines": "order_id STRING, line_number INT, order_date DATE, product_id STRING, quantity INT",
    "iot_readings_hourly": "machine_id STRING, hour_ts TIMESTAMP, kwh DOUBLE, minutes_observed BIGINT",
}
PATHS = {
    "dim_produit": lambda lake: lake.gold("pharma", "star", "dim_produit"),
    "dim_site": lambda lake: lake.gold("pharma", "star", "dim_site"),
    "dim_temps": lambda lake: lake.gold("pharma", "star", "dim_temps"),
    "dim_machine": lambda lake: lake.gold("energy", "star", "dim_machine"),
    "dim_temps_horaire": lambda lake: lake.gold("energy", "star", "dim_temps_horaire"),
    "fact_ventes": lambda lake: lake.gold("pharma", "star", "fact_ventes"),
    "fact_consommation_energie": lambda lake: lake.gold("energy", "star", "fact_consommation_energie"),
    "fact_production": lambda lake: lake.gold("energy", "star", "fact_production"),
    "order_lines": lambda lake: lake.silver("pharma", "order_lines"),
    "iot_readings_hourly": lambda lake: lake.silver("energy", "iot_readings_hourly"),
}
MACHINES = {100: "M1", 200: "M2"}
# the unknown member (key -1) every gold dimension holds (lakehouse.gold.keys)
UNKNOWN = {
    "dim_produit": (-1, "UNKNOWN", None, None, None, None, None),
    "dim_site": (-1, "UNKNOWN", "Inconnu", None),
    "dim_temps": (-1, None),
    "dim_machine": (-1, "UNKNOWN", None, None),
    "dim_temps_horaire": (-1, -1),
}


def _d(text: str) -> Decimal:
    return Decimal(text)


def _sale(order: str, line: int, day: int, product_sk: int | None, site_sk: int, quantity: int = 2) -> tuple:
    date = dt.date(2026, 11, day)
    return (
        order,
        line,
        int(f"{date:%Y%m%d}"),
        date,
        product_sk,
        site_sk,
        f"P{product_sk}",
        quantity,
        _d("5.00"),
        _d("20.00"),
        _d("19.00"),
        "direct",
    )


def _reading(machine_sk: int, hour: int, kwh: float, temperature: float = 25.0) -> tuple:
    key = int(f"20261126{hour:02d}")
    return (
        machine_sk,
        MACHINES.get(machine_sk, "UNKNOWN"),
        key,
        20261126,
        kwh,
        temperature,
        2.0,
        60,
        "normal",
    )


def clean_rows() -> dict[str, list[tuple]]:
    """Every table valid: keys unique, every fact key in its dimension, sales up to the
    run date, 48 machine-hours of the run date (kWh 5..28, mean 16.5)."""
    days = [dt.date(2026, 11, d) for d in range(20, 31)]
    return {
        "dim_produit": [
            *[
                (sk, f"P{sk}", _d("1.5000"), _d("3.0000"), dt.date(2026, 1, 1), None, True)
                for sk in (1, 2, 3)
            ],
            UNKNOWN["dim_produit"],
        ],
        "dim_site": [
            (10, "S1", "Lyon plant", "plant"),
            (20, "S2", "Paris DC", "distribution_center"),
            UNKNOWN["dim_site"],
        ],
        "dim_temps": [*[(int(f"{d:%Y%m%d}"), d) for d in days], UNKNOWN["dim_temps"]],
        "dim_machine": [(100, "M1", "S1", 50.0), (200, "M2", "S1", 150.0), UNKNOWN["dim_machine"]],
        "dim_temps_horaire": [
            *[(int(f"{d:%Y%m%d}{h:02d}"), int(f"{d:%Y%m%d}")) for d in days for h in range(24)],
            UNKNOWN["dim_temps_horaire"],
        ],
        "fact_ventes": [
            _sale("O1", 1, 25, 1, 10),
            _sale("O1", 2, 25, 2, 10),
            _sale("O2", 1, 26, 3, 20),
            _sale("O2", 2, 26, 1, 20),
            _sale("O3", 1, 26, 2, 10),
            _sale("O3", 2, 26, 3, 20),
        ],
        "fact_consommation_energie": [
            _reading(sk, hour, 5.0 + hour) for sk in (100, 200) for hour in range(24)
        ],
        "fact_production": [("B1", 100, 1000, 10, 40.0), ("B2", 200, 500, 0, 80.0), ("B3", 100, 0, 0, 0.0)],
        "order_lines": [
            (o, line, dt.date(2026, 11, 25 if o == "O1" else 26), f"P{line}", 2)
            for o in ("O1", "O2", "O3")
            for line in (1, 2)
        ],
        "iot_readings_hourly": [
            (name, dt.datetime(2026, 11, 26, hour, tzinfo=UTC), 5.0 + hour, 60)
            for name in MACHINES.values()
            for hour in range(24)
        ],
    }


def dirty_rows() -> dict[str, list[tuple]]:
    """The clean set with injected problems, only in two facts:

    * fact_ventes: line (O1, 1) twice (duplicate key), product_sk 99 (orphan), and no
      sale after 2026-11-23 (stale: the latest date must be >= 2026-11-25);
    * fact_consommation_energie: 12 machine-hours instead of 48 (volume drop against a
      history of 48, 48, 48), kWh -3 in one hour (out of range), 130 degC in another
      (out of range, warning only; the mean, 33.75 degC, stays inside its band), one
      hour on the unknown machine -1 (1 of 12 rows: more than 1 %, a warning).
    """
    rows = clean_rows()
    rows["fact_ventes"] = [
        _sale("O1", 1, 22, 1, 10),
        _sale("O1", 1, 22, 1, 10),
        _sale("O1", 2, 22, 99, 10),
        _sale("O2", 1, 23, 3, 20),
    ]
    energy = [_reading(100, hour, 5.0 + hour) for hour in range(12, 24)]
    energy[0] = _reading(100, 12, -3.0)
    energy[1] = _reading(100, 13, 18.0, temperature=130.0)  # (11 x 25 + 130) / 12 = 33.75 degC mean
    energy[2] = _reading(-1, 14, 19.0)  # 1 of 12 hours on the unknown machine: 8 % > 1 %
    rows["fact_consommation_energie"] = energy
    return rows


def write_tables(spark: SparkSession, lake: Lake, rows: dict[str, list[tuple]]) -> None:
    for name, data in rows.items():
        write_delta(spark.createDataFrame(data, SCHEMAS[name]), PATHS[name](lake))
