"""Incremental refresh of gold equals a full rebuild (hand-made silver, both domains):
the facts are refreshed by day (``incremental=dp.by_day(...)``) by the gold layer's
pipeline run."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from chispa import assert_df_equality

from lakehouse.context import RunContext
from lakehouse.lake import Lake, read_delta, write_delta
from lakehouse.medallion import layer_datasets, run_layer, runner
from lakehouse.ml.scoring import apply_scores_to_fact
from lakehouse.pipelines.incremental import changed_partitions, day_ranges, days_predicate

RUN_DATE = dt.date(2026, 11, 4)
D1, D2, D3, D4 = (dt.date(2026, 11, d) for d in (1, 2, 3, 4))
T0 = dt.datetime(2026, 11, 1, 5)

SCHEMAS = {
    "silver_products": "product_id string, cip13 string, name string, atc_code string, atc_class string, "
    "dosage_form string, unit_cost decimal(12,4), list_price decimal(12,4), is_active boolean, updated_at timestamp",
    "silver_product_prices": "product_id string, valid_from date, valid_to date, unit_cost decimal(12,4), "
    "list_price decimal(12,4)",
    "silver_sites": "site_id string, name string, city string, region string, country string, site_type string, "
    "updated_at timestamp",
    "silver_order_lines": "order_id string, line_number int, order_date date, customer_id string, product_id string, "
    "site_id string, quantity int, unit_price decimal(12,4), discount_pct decimal(5,2), sales_channel string, "
    "_source_file string, _line_number int, _ingested_at timestamp",
    "silver_stock_snapshots": "snapshot_date date, site_id string, product_id string, quantity_on_hand int, "
    "safety_stock int, _source_file string, _line_number int, _ingested_at timestamp",
    "silver_deliveries": "delivery_id string, order_id string, site_id string, customer_id string, "
    "promised_date date, actual_date date, quantity_ordered int, quantity_delivered int, carrier string, "
    "is_delivered boolean, is_on_time boolean, is_complete boolean, _source_file string, _line_number int, "
    "_ingested_at timestamp",
    "silver_recalls": "notice_id string, published_date date, cip13 string, lot_number string, severity string, "
    "reason string, source string, retrieved_at timestamp, product_id string, product_name string, "
    "match_method string, is_our_product boolean, _source_file string, _ingested_at timestamp",
    "silver_machine_history": "machine_id string, site_id string, machine_type string, rated_power_kw double, "
    "commissioned_on date, valid_from date, valid_to date, updated_at timestamp",
    "silver_iot_readings_hourly": "machine_id string, hour_ts timestamp, kwh double, mean_kw double, "
    "peak_kw double, mean_temperature_c double, max_vibration_mm_s double, minutes_observed long, "
    "production_minutes double",
    "silver_production_runs": "batch_id string, machine_id string, site_id string, product_id string, "
    "start_ts timestamp, end_ts timestamp, units_produced bigint, units_rejected bigint",
}


def _line(order_id, day, product, site, quantity, *, at=T0, line=1):
    return (order_id, 1, day, "C1", product, site, quantity, Decimal("10.0000"), Decimal("0.00"), "direct",
            f"f{day:%d}", line, at)  # fmt: skip


def _stock(day, site, product, quantity):
    return (day, site, product, quantity, 5, f"s{day:%d}", 1, T0)


def _hour(machine, day, hour, kwh, vibration):
    return (machine, dt.datetime.combine(day, dt.time(hour)), kwh, kwh, kwh, 20.0, vibration, 60, 0.0)


def silver_days_1_to_3() -> dict[str, list[tuple]]:
    return {
        "silver_products": [
            ("P1", "3400930000001", "Doliprane", "N02BE01", "N", "cp", Decimal("6"), Decimal("10"), True, T0),
            ("P2", "3400930000002", "Ibuprofene", "M01AE01", "M", "cp", Decimal("3"), Decimal("8"), True, T0),
        ],
        "silver_product_prices": [
            ("P1", dt.date(2026, 1, 1), None, Decimal("6"), Decimal("10")),
            ("P2", dt.date(2026, 1, 1), None, Decimal("3"), Decimal("8")),
        ],
        "silver_sites": [
            ("S01", "Usine", "Lyon", "ARA", "FR", "plant", T0),
            ("S02", "Entrepot", "Lille", "HDF", "FR", "distribution_center", T0),
        ],
        "silver_order_lines": [
            _line("O1", D1, "P1", "S01", 2),
            _line("O2", D2, "P2", "S02", 3),
            _line("O3", D3, "P1", "S09", 1),  # unknown site: site_sk -1
        ],
        "silver_stock_snapshots": [
            *[_stock(d, "S01", "P1", q) for d, q in ((D1, 4), (D2, 0), (D3, 0))],
            *[_stock(d, "S01", "P2", 9) for d in (D1, D2, D3)],
        ],
        "silver_deliveries": [
            ("DL1", "O1", "S01", "C1", D2, D2, 2, 2, "X", True, True, True, "d1", 1, T0),
        ],
        "silver_recalls": [
            (
                "R1",
                D2,
                "3400930000002",
                "AB01234",
                "II",
                "purity",
                "agency",
                T0,
                "P2",
                "Ibuprofene",
                "cip13",
                True,
                "r2",
                T0,
            ),
        ],  # fmt: skip
        "silver_machine_history": [
            ("M001", "S01", "tablet_press", 20.0, dt.date(2020, 1, 1), dt.date(2020, 1, 1), D3, T0),
            ("M001", "S01", "tablet_press", 40.0, dt.date(2020, 1, 1), D3, None, T0),
        ],
        "silver_iot_readings_hourly": [
            _hour("M001", D1, 10, 10.0, 1.0),
            _hour("M001", D1, 11, 12.0, 3.0),  # warning
            _hour("M001", D2, 10, 10.0, 8.0),  # critical
            _hour("M001", D3, 10, 30.0, 1.0),
        ],
        "silver_production_runs": [
            (
                "B1",
                "M001",
                "S01",
                "P1",
                dt.datetime(2026, 11, 1, 10, 30),
                dt.datetime(2026, 11, 1, 11, 30),
                10,
                0,
            ),
        ],
    }


def silver_days_1_to_4() -> dict[str, list[tuple]]:
    """Day 4's data: a new day, a late line for day 1, a corrected day-2 line (the
    newer version replaces the older one in silver), a late hour for day 2."""
    tables = silver_days_1_to_3()
    at = dt.datetime(2026, 11, 4, 5)
    tables["silver_order_lines"] = [
        _line("O1", D1, "P1", "S01", 2),
        _line("O2", D2, "P2", "S02", 5, at=at),  # corrected: 3 -> 5 units
        _line("O3", D3, "P1", "S09", 1),
        _line("O4", D1, "P2", "S01", 1, at=at, line=2),  # late line for day 1
        _line("O5", D4, "P1", "S02", 7, at=at),
    ]
    tables["silver_stock_snapshots"] += [_stock(D4, "S01", "P1", 0), _stock(D4, "S01", "P2", 9)]
    tables["silver_iot_readings_hourly"] += [
        _hour("M001", D2, 11, 10.0, 7.5),  # late hour: extends day 2's critical episode
        _hour("M001", D4, 10, 40.0, 1.0),
    ]
    return tables


def _scores(spark):
    """The anomaly model scored days 1 and 2: it flags day 1's 10:00 (rules: normal),
    not day 1's 11:00 (warning), and flags day 2's 10:00 (critical)."""
    rows = [(D1, 10, 0.9, True), (D1, 11, 0.2, False), (D2, 10, 0.95, True)]
    return spark.createDataFrame(
        [("M001", dt.datetime.combine(d, dt.time(h)), score, flag, "energy_anomaly", "1", "run-1", T0)
         for d, h, score, flag in rows],
        "machine_id string, hour_ts timestamp, anomaly_score double, is_anomaly boolean, model_name string, "
        "model_version string, model_run_id string, scored_at timestamp",
    )  # fmt: skip


def _write_silver(spark, pipeline, tables: dict[str, list[tuple]]) -> None:
    for name, rows in tables.items():
        frame = spark.createDataFrame(rows, SCHEMAS[name])
        frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
            pipeline.path(name)
        )


def _context(spark, root) -> RunContext:
    from lakehouse.config import load_settings

    settings = load_settings(lake_root=str(root), run_date=RUN_DATE)
    return RunContext(settings, spark, Lake(str(root)), RUN_DATE, "test-run", dt.datetime(2026, 11, 4, 6))


def refresh_gold(ctx: RunContext, domain: str, *, full_refresh: bool = False):
    """What the gold notebooks run: the domain's gold layer (full_refresh: rebuilt)."""
    run = run_layer(ctx, "gold", under=f"domain={domain}", full_refresh=full_refresh)
    assert run.status == "COMPLETED", run.error
    return run


def _fact(run, name: str) -> tuple[str, list[str], int, str]:
    """(mode, days rebuilt, rows written, reason) of a fact's refresh, from its event."""
    event = run.event(name)
    details = json.loads(event.details)
    return details["mode"], details["days"], event.rows_written, details["reason"]


def _gold(spark, ctx: RunContext) -> dict[str, object]:
    pipeline = runner(ctx)
    return {name: read_delta(spark, pipeline.path(name)) for name in layer_datasets(pipeline.graph, "gold")}


@pytest.mark.slow
def test_incremental_day_4_gives_the_same_gold_as_a_full_rebuild(spark, tmp_path):
    incremental = _context(spark, tmp_path / "incremental")
    _write_silver(spark, runner(incremental), silver_days_1_to_3())
    for domain in ("pharma", "energy"):
        refresh_gold(incremental, domain, full_refresh=True)
    # the daily scoring runs after gold: scores stored, then the fact's rows updated in place
    write_delta(_scores(spark), incremental.lake.gold("energy", "prediction", "anomaly_scores"))
    assert apply_scores_to_fact(spark, incremental.lake, _scores(spark)) == 3
    _write_silver(spark, runner(incremental), silver_days_1_to_4())
    refreshed = {d: refresh_gold(incremental, d) for d in ("pharma", "energy")}

    full = _context(spark, tmp_path / "full")
    _write_silver(spark, runner(full), silver_days_1_to_4())
    write_delta(_scores(spark), full.lake.gold("energy", "prediction", "anomaly_scores"))
    for domain in ("pharma", "energy"):
        refresh_gold(full, domain, full_refresh=True)

    mode, days, rows_written, _ = _fact(refreshed["pharma"], "fact_ventes")
    assert (mode, days) == ("days", ["2026-11-01", "2026-11-02", "2026-11-04"])
    assert rows_written == 4  # O1, O4 (day 1), O2 (day 2), O5 (day 4); O3 (day 3) untouched
    mode, days, _, _ = _fact(refreshed["energy"], "fact_consommation_energie")
    # day 1: scored since the last refresh (its fingerprint includes the scores' day)
    assert (mode, days) == ("days", ["2026-11-01", "2026-11-02", "2026-11-04"])
    expected, actual = _gold(spark, full), _gold(spark, incremental)
    assert set(actual) == set(expected)
    for name in sorted(expected):
        assert_df_equality(
            actual[name],
            expected[name],
            ignore_row_order=True,
            ignore_nullable=True,
            ignore_column_order=False,
        )
    hours = {r.hour_key: r for r in actual["fact_consommation_energie"].collect()}
    assert (hours[2026110110].rule_anomaly_class, hours[2026110110].anomaly_class) == ("normal", "warning")
    assert (hours[2026110111].model_anomaly_score, hours[2026110111].anomaly_class) == (0.2, "warning")
    assert (hours[2026110210].anomaly_class, hours[2026110410].model_anomaly_score) == ("critical", None)
    fact = {r.order_id: r for r in actual["fact_ventes"].collect()}
    assert fact["O2"].quantity == 5 and fact["O2"].net_amount == Decimal("50.00")  # 5 x 10.00
    assert fact["O3"].site_sk == -1 and fact["O3"].product_sk != -1

    again = refresh_gold(incremental, "pharma")
    assert _fact(again, "fact_ventes")[:2] == ("unchanged", [])


def test_changed_days_are_new_changed_or_gone():
    before = {"2026-11-01": "1:5", "2026-11-02": "2:7", "2026-11-03": "1:1"}
    now = {"2026-11-01": "1:5", "2026-11-02": "2:8", "2026-11-04": "1:2"}
    assert changed_partitions(now, before) == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert changed_partitions(before, before) == []


def test_days_predicate_merges_consecutive_days():
    days = ["2026-11-04", "2026-11-01", "2026-11-02"]
    assert day_ranges(days) == [(D1, D2), (D4, D4)]
    assert days_predicate("order_date", days, is_timestamp=False) == (
        "(order_date BETWEEN DATE'2026-11-01' AND DATE'2026-11-02') OR "
        "(order_date BETWEEN DATE'2026-11-04' AND DATE'2026-11-04')"
    )
    assert days_predicate("hour_ts", ["2026-12-31"], is_timestamp=True) == (
        "(hour_ts >= TIMESTAMP'2026-12-31 00:00:00' AND hour_ts < TIMESTAMP'2027-01-01 00:00:00')"
    )
    with pytest.raises(ValueError, match="no day"):
        days_predicate("order_date", [], is_timestamp=False)


@pytest.mark.slow
def test_a_dimension_change_rebuilds_the_fact_and_a_removed_day_is_deleted(spark, tmp_path):
    ctx = _context(spark, tmp_path)
    tables = silver_days_1_to_4()
    _write_silver(spark, runner(ctx), tables)
    refresh_gold(ctx, "pharma", full_refresh=True)

    without_day_4 = [row for row in tables["silver_order_lines"] if row[2] != D4]
    _write_silver(spark, runner(ctx), {"silver_order_lines": without_day_4})
    removed = refresh_gold(ctx, "pharma")
    assert _fact(removed, "fact_ventes")[:3] == ("days", ["2026-11-04"], 0)
    fact = read_delta(spark, runner(ctx).path("fact_ventes"))
    assert sorted(r.order_id for r in fact.collect()) == ["O1", "O2", "O3", "O4"]

    # P1's cost changes from 1 Nov: every fact row of P1 must take the new cost
    prices = [
        ("P1", dt.date(2026, 1, 1), D1, Decimal("6"), Decimal("10")),
        ("P1", D1, None, Decimal("7"), Decimal("10")),
        ("P2", dt.date(2026, 1, 1), None, Decimal("3"), Decimal("8")),
    ]
    _write_silver(spark, runner(ctx), {"silver_product_prices": prices})
    rebuilt = refresh_gold(ctx, "pharma")
    mode, _, _, reason = _fact(rebuilt, "fact_ventes")
    assert (mode, reason) == ("full", "other inputs changed: dim_produit")
    costs = {r.order_id: r.cost_amount for r in read_delta(spark, runner(ctx).path("fact_ventes")).collect()}
    assert costs == {
        "O1": Decimal("14.00"),
        "O2": Decimal("15.00"),
        "O3": Decimal("7.00"),
        "O4": Decimal("3.00"),
    }
    # O1: 2 x 7; O2: 5 x 3; O3: 1 x 7; O4: 1 x 3
