"""The same gold transformations on three engines, and a check that they agree.

The subset compared (the library functions, imported, not copied):

- ``fact_ventes``: ``build_dim_produit`` then ``build_fact_ventes`` (order line x
  product version valid at the order date, amounts rounded to the cent);
- ``kpi_marge_journaliere``: ``build_kpi_marge_journaliere`` (day x site);
- ``fact_consommation_energie``: the minute readings of bronze resampled to the hour
  (``prepare_hourly_readings``: latest copy per minute, production minutes), known
  machines only, then ``build_fact_consommation_energie`` (load factor, anomaly class).

Inputs are Parquet files exported from the lake (silver order lines, products,
prices, machines, production runs; bronze IoT readings); each engine writes its three
outputs as Parquet. ``spark_subset`` runs on any Spark session (the embedded engine
through Spark Connect, or classic JVM Spark); ``DUCKDB_SQL`` is the same logic as
DuckDB SQL, the single-node reference. Surrogate keys (``product_sk``,
``machine_sk``: Spark's xxhash64) have no DuckDB twin and are left out of the check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.dataset as pads

from lakehouse.gold.dimensions import OPEN_END
from lakehouse.gold.energy_star import (
    OVERLOAD_LOAD_FACTOR,
    VIBRATION_ZONE_B_MAX_MM_S,
    VIBRATION_ZONE_C_MAX_MM_S,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lakehouse.lake import Lake

INPUTS = ("order_lines", "products", "product_prices", "machines", "production_runs", "iot_readings")
OUTPUTS = ("fact_ventes", "kpi_marge_journaliere", "fact_consommation_energie")
READING_COLUMNS = (
    "machine_id",
    "ts",
    "kwh",
    "kw",
    "temperature_c",
    "vibration_mm_s",
    "_corrupt_record",
    "_ingested_at",
    "_source_file",
    "_line_number",
)


# --------------------------------------------------------------------------- Spark


def spark_subset(inputs: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """The compared outputs from the library's transformations (any Spark session)."""
    from lakehouse.gold.dimensions import build_dim_produit
    from lakehouse.gold.energy_star import build_dim_machine, build_fact_consommation_energie
    from lakehouse.gold.pharma_kpis import build_kpi_marge_journaliere
    from lakehouse.gold.pharma_star import build_fact_ventes
    from lakehouse.silver.energy import HOURLY_COLUMNS, prepare_hourly_readings

    fact_ventes = build_fact_ventes(
        inputs["order_lines"], build_dim_produit(inputs["products"], inputs["product_prices"])
    )
    hourly = (
        prepare_hourly_readings(inputs["iot_readings"], inputs["machines"], inputs["production_runs"])
        .where("_check_is_known_machine")
        .select(*HOURLY_COLUMNS)
    )
    energy = build_fact_consommation_energie(hourly, build_dim_machine(inputs["machines"]))
    return {
        "fact_ventes": fact_ventes,
        "kpi_marge_journaliere": build_kpi_marge_journaliere(fact_ventes),
        "fact_consommation_energie": energy,
    }


def run_spark_subset(spark: SparkSession, input_dir: str | Path, output_dir: str | Path) -> float:
    """Read the Parquet inputs, write the three outputs as Parquet; wall seconds."""
    started = time.perf_counter()
    inputs = {name: spark.read.parquet(str(Path(input_dir) / name)) for name in INPUTS}
    for name, frame in spark_subset(inputs).items():
        frame.write.mode("overwrite").parquet(str(Path(output_dir) / name))
    return time.perf_counter() - started


# Lake table of each input (silver, except the minute readings of bronze).
INPUT_TABLES = {
    "order_lines": ("silver", "pharma", "order_lines"),
    "products": ("silver", "pharma", "products"),
    "product_prices": ("silver", "pharma", "product_prices"),
    "machines": ("silver", "energy", "machines"),
    "production_runs": ("silver", "energy", "production_runs"),
    "iot_readings": ("bronze", "iot", "readings"),
}


def export_inputs(spark: SparkSession, lake: Lake, output_dir: str | Path) -> dict[str, int]:
    """Write the compared inputs from the lake's Delta tables as Parquet; rows per input."""
    from lakehouse.lake import read_delta

    rows = {}
    for name, (layer, area, table) in INPUT_TABLES.items():
        path = lake.bronze(area, table) if layer == "bronze" else lake.silver(area, table)  # type: ignore[arg-type]
        frame = read_delta(spark, path)
        if name == "iot_readings":
            frame = frame.select(*READING_COLUMNS)
        frame.write.mode("overwrite").parquet(str(Path(output_dir) / name))
        rows[name] = pads.dataset(str(Path(output_dir) / name), format="parquet").count_rows()
    return rows


# --------------------------------------------------------------------------- DuckDB

DUCKDB_SQL = {
    "dim_produit": f"""
        SELECT p.product_id, pr.valid_from, COALESCE(pr.valid_to, DATE '{OPEN_END.isoformat()}') AS valid_to,
               pr.unit_cost
        FROM products p JOIN product_prices pr USING (product_id)""",
    # Decimal arithmetic stays exact: "* 0.01" rather than "/ 100" (DuckDB divides decimals as doubles).
    "fact_ventes": """
        SELECT o.order_id, o.line_number, CAST(strftime(o.order_date, '%Y%m%d') AS INTEGER) AS date_key,
               o.order_date, o.product_id, o.site_id, o.customer_id, o.sales_channel, o.quantity,
               o.unit_price, o.discount_pct, d.unit_cost,
               CAST(ROUND(o.quantity * o.unit_price, 2) AS DECIMAL(18,2)) AS gross_amount,
               CAST(ROUND(o.quantity * o.unit_price * o.discount_pct * 0.01, 2) AS DECIMAL(18,2)) AS discount_amount,
               CAST(ROUND(o.quantity * o.unit_price, 2) - ROUND(o.quantity * o.unit_price * o.discount_pct * 0.01, 2)
                    AS DECIMAL(18,2)) AS net_amount,
               CAST(ROUND(o.quantity * d.unit_cost, 2) AS DECIMAL(18,2)) AS cost_amount,
               CAST(net_amount - cost_amount AS DECIMAL(18,2)) AS margin_amount
        FROM order_lines o LEFT JOIN dim_produit d
          ON o.product_id = d.product_id AND o.order_date >= d.valid_from AND o.order_date < d.valid_to""",
    "kpi_marge_journaliere": """
        SELECT date_key, order_date AS date, site_id, COUNT(DISTINCT order_id) AS orders, COUNT(*) AS order_lines,
               CAST(SUM(quantity) AS BIGINT) AS units_sold,
               CAST(SUM(net_amount) AS DECIMAL(18,2)) AS net_revenue,
               CAST(SUM(cost_amount) AS DECIMAL(18,2)) AS cost,
               CAST(SUM(margin_amount) AS DECIMAL(18,2)) AS margin,
               CASE WHEN SUM(net_amount) <> 0 THEN ROUND(SUM(margin_amount) / SUM(net_amount), 4) END
                   AS margin_rate
        FROM fact_ventes GROUP BY date_key, order_date, site_id""",
    "readings": """
        SELECT machine_id, ts, kwh, kw, temperature_c, vibration_mm_s,
               to_timestamp(floor(epoch(ts) / 3600) * 3600) AS hour_ts
        FROM iot_readings WHERE _corrupt_record IS NULL AND ts IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY machine_id, ts ORDER BY _ingested_at DESC NULLS LAST,
                                   _source_file DESC NULLS LAST, _line_number DESC NULLS LAST) = 1""",
    "batch_hours": """
        WITH spans AS (
            SELECT machine_id, CAST(epoch(start_ts) AS BIGINT) AS s, CAST(epoch(end_ts) AS BIGINT) AS e
            FROM production_runs),
        hours AS (
            SELECT machine_id, s, e, unnest(generate_series(CAST(floor(s / 3600) AS BIGINT),
                                                            CAST(floor((e - 1) / 3600) AS BIGINT))) AS h
            FROM spans)
        SELECT machine_id, to_timestamp(h * 3600) AS hour_ts,
               LEAST(SUM((LEAST(e, h * 3600 + 3600) - GREATEST(s, h * 3600)) / 60.0), 60.0) AS production_minutes
        FROM hours GROUP BY machine_id, h""",
    "fact_consommation_energie": f"""
        WITH hourly AS (
            SELECT machine_id, hour_ts, SUM(kwh) AS kwh, AVG(kw) AS mean_kw, MAX(kw) AS peak_kw,
                   AVG(temperature_c) AS mean_temperature_c, MAX(vibration_mm_s) AS max_vibration_mm_s,
                   COUNT(*) AS minutes_observed
            FROM readings
            WHERE machine_id IN (SELECT machine_id FROM machines)  -- silver quarantines unknown machines
            GROUP BY machine_id, hour_ts),
        facts AS (
            SELECT h.machine_id, h.hour_ts, m.site_id, h.kwh, h.mean_kw, h.peak_kw,
                   CASE WHEN m.rated_power_kw > 0 THEN h.mean_kw / m.rated_power_kw END AS load_factor,
                   h.mean_temperature_c AS temperature_c, h.max_vibration_mm_s AS vibration_mm_s,
                   h.minutes_observed, COALESCE(b.production_minutes, 0.0) AS production_minutes
            FROM hourly h
            LEFT JOIN machines m  -- the machine version valid on the hour's day (silver: one per machine)
              ON h.machine_id = m.machine_id AND CAST(h.hour_ts AS DATE) >= m.commissioned_on
            LEFT JOIN batch_hours b ON h.machine_id = b.machine_id AND h.hour_ts = b.hour_ts)
        SELECT machine_id, CAST(strftime(hour_ts, '%Y%m%d%H') AS INTEGER) AS hour_key,
               CAST(strftime(hour_ts, '%Y%m%d') AS INTEGER) AS date_key, *  EXCLUDE (machine_id),
               CASE WHEN vibration_mm_s > {VIBRATION_ZONE_C_MAX_MM_S} THEN 'critical'
                    WHEN vibration_mm_s > {VIBRATION_ZONE_B_MAX_MM_S} THEN 'warning'
                    WHEN load_factor > {OVERLOAD_LOAD_FACTOR} THEN 'warning'
                    WHEN vibration_mm_s IS NOT NULL THEN 'normal' END AS anomaly_class
        FROM facts""",
}
_DUCKDB_VIEWS = ("dim_produit", "readings", "batch_hours")


# DuckDB takes 80 % of the machine's memory by default: at scale 50 it held 16.5 GiB
# (the embedded engine's subset 12 GiB), above the benchmark's 16 GiB budget.
DUCKDB_MEMORY_LIMIT = "8GiB"


def run_duckdb_subset(input_dir: str | Path, output_dir: str | Path, *, threads: int | None = None) -> float:
    """The subset as DuckDB SQL over the same Parquet inputs (``DUCKDB_MEMORY_LIMIT``,
    beyond which it spills to disk); wall seconds."""
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        for name in INPUTS:
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{_parquet_glob(input_dir, name)}')"
            )
        for name in _DUCKDB_VIEWS:
            con.execute(f"CREATE VIEW {name} AS {DUCKDB_SQL[name]}")
        con.execute(f"CREATE TABLE fact_ventes AS {DUCKDB_SQL['fact_ventes']}")
        for name in OUTPUTS:
            query = "SELECT * FROM fact_ventes" if name == "fact_ventes" else DUCKDB_SQL[name]
            target = Path(output_dir) / name
            target.mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY ({query}) TO '{target / 'part-0.parquet'}' (FORMAT parquet)")
    finally:
        con.close()
    return time.perf_counter() - started


def _parquet_glob(folder: str | Path, name: str) -> str:
    path = Path(folder) / name
    return str(path / "*.parquet") if path.is_dir() else str(path)


# --------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class OutputCheck:
    """How one output is compared: rows sorted by ``keys``; ``money`` to the cent;
    ``floats`` within their absolute tolerance; ``exact`` as they are."""

    keys: tuple[str, ...]
    exact: tuple[str, ...]
    money: tuple[str, ...] = ()
    floats: tuple[tuple[str, float], ...] = ()

    @property
    def columns(self) -> list[str]:
        names = [*self.keys, *self.exact, *self.money, *(name for name, _ in self.floats)]
        return list(dict.fromkeys(names))


KWH_TOLERANCE = 1e-6
CHECKS = {
    "fact_ventes": OutputCheck(
        keys=("order_id", "line_number", "product_id", "unit_cost"),
        exact=("date_key", "site_id", "quantity"),
        money=("gross_amount", "discount_amount", "net_amount", "cost_amount", "margin_amount"),
    ),
    "kpi_marge_journaliere": OutputCheck(
        keys=("date_key", "site_id"),
        exact=("orders", "order_lines", "units_sold"),
        money=("net_revenue", "cost", "margin"),
        # DuckDB divides decimals as doubles: a rate can land on the other side of a
        # half at the 4th decimal, so one unit of it is tolerated.
        floats=(("margin_rate", 1e-4 + 1e-12),),
    ),
    "fact_consommation_energie": OutputCheck(
        keys=("machine_id", "hour_key"),
        exact=("date_key", "site_id", "minutes_observed", "anomaly_class"),
        floats=(
            ("kwh", KWH_TOLERANCE),
            ("mean_kw", KWH_TOLERANCE),
            ("peak_kw", KWH_TOLERANCE),
            ("load_factor", KWH_TOLERANCE),
            ("temperature_c", KWH_TOLERANCE),
            ("vibration_mm_s", KWH_TOLERANCE),
            ("production_minutes", KWH_TOLERANCE),
        ),
    ),
}


def read_output(output_dir: str | Path, name: str, check: OutputCheck) -> pd.DataFrame:
    """One engine's output: the checked columns, money in cents, sorted by the keys."""
    frame = (
        pads.dataset(str(Path(output_dir) / name), format="parquet")
        .to_table(columns=check.columns)
        .to_pandas()
    )
    for column in check.money:
        frame[column] = pd.Series([_cents(v) for v in frame[column]], index=frame.index, dtype=object)
    if "unit_cost" in frame:
        frame["unit_cost"] = frame["unit_cost"].map(lambda v: None if v is None or v != v else str(v))
    return frame.sort_values(list(check.keys), na_position="first", kind="stable").reset_index(drop=True)


def _cents(value: object) -> int | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return int((Decimal(str(value)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def differences(name: str, expected: pd.DataFrame, found: pd.DataFrame, check: OutputCheck) -> list[str]:
    """Human-readable differences between two outputs (empty: they agree)."""
    if len(expected) != len(found):
        return [f"{name}: {len(expected)} rows against {len(found)}"]
    problems = []
    for column in [*check.keys, *check.exact, *check.money]:
        left, right = expected[column].astype(object), found[column].astype(object)
        same = (left == right) | (left.isna() & right.isna())
        if not same.all():
            row = int(np.flatnonzero(~same.to_numpy())[0])
            problems.append(
                f"{name}.{column}: {int((~same).sum())} rows differ, first at "
                f"{_key_of(expected, row, check.keys)}: {left[row]!r} against {right[row]!r}"
            )
    for column, tolerance in check.floats:
        left = expected[column].astype(float).to_numpy()
        right = found[column].astype(float).to_numpy()
        close = np.isclose(left, right, rtol=0, atol=tolerance, equal_nan=True)
        if not close.all():
            row = int(np.flatnonzero(~close)[0])
            problems.append(
                f"{name}.{column}: {int((~close).sum())} rows differ by more than {tolerance:g}, first at "
                f"{_key_of(expected, row, check.keys)}: {left[row]!r} against {right[row]!r}"
            )
    return problems


def _key_of(frame: pd.DataFrame, row: int, keys: tuple[str, ...]) -> dict[str, object]:
    values = (frame[key].iloc[row] for key in keys)
    return {key: v.item() if isinstance(v, np.generic) else v for key, v in zip(keys, values)}


def compare_outputs(reference_dir: str | Path, other_dir: str | Path) -> dict[str, list[str]]:
    """Output name -> differences of ``other_dir`` against ``reference_dir``."""
    return {
        name: differences(
            name, read_output(reference_dir, name, check), read_output(other_dir, name, check), check
        )
        for name, check in CHECKS.items()
    }


def output_rows(output_dir: str | Path) -> dict[str, int]:
    return {
        name: pads.dataset(str(Path(output_dir) / name), format="parquet").count_rows() for name in OUTPUTS
    }
