"""The gold KPIs refreshed by day (by month, with the days a window or a latest-row
flag reaches) equal a full rebuild row for row, and the event log lists exactly the
days or months recomputed (hand-made silver, both domains)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from chispa import assert_df_equality

from lakehouse.lake import read_delta
from lakehouse.medallion import runner
from tests.gold.test_incremental import (
    D1,
    D2,
    D3,
    D4,
    T0,
    _context,
    _hour,
    _line,
    _stock,
    _write_silver,
    refresh_gold,
    silver_days_1_to_3,
)

OCT31 = dt.date(2026, 10, 31)
AT = dt.datetime(2026, 11, 4, 5)
KPIS = {
    "pharma": (
        "kpi_marge_journaliere",
        "kpi_marge_produit_site_mois",
        "kpi_rupture_stock",
        "kpi_performance_livraison",
        "kpi_duree_rupture",
        "kpi_rappels_en_stock",
    ),
    "energy": ("kpi_energie_machine", "kpi_energie_site", "kpi_anomalies_machine"),
}
CHANGING = ("silver_order_lines", "silver_stock_snapshots", "silver_deliveries", "silver_iot_readings_hourly")
WHOLE = {"kpi_duree_rupture", "kpi_anomalies_machine"}  # episodes: recomputed whole, by design


def _delivery(delivery_id, promised, actual, *, delivered=2, at=T0):
    """A delivery of 2 units promised on ``promised``; pending when ``actual`` is None."""
    done = actual is not None
    on_time = actual <= promised if done else None
    return (delivery_id, "O1", "S01", "C1", promised, actual, 2, delivered if done else None, "X", done,
            on_time, delivered == 2 if done else None, "d", 1, at)  # fmt: skip


def days_1_to_3() -> dict[str, list[tuple]]:
    """Days 1-3 of both domains, with an October order (its month stays untouched) and
    a delivery promised on day 3 still pending."""
    tables = silver_days_1_to_3()
    tables["silver_order_lines"].append(_line("O0", OCT31, "P2", "S01", 4))
    tables["silver_deliveries"].append(_delivery("DL3", D3, None))
    return tables


def day_4_arrives() -> dict[str, list[tuple]]:
    """Day 4: new rows, a late order line for day 1, a corrected day-2 stock count
    (P1 at S01: 0 -> 3), day 3's delivery delivered late and in part, a late hour for day 2."""
    tables = days_1_to_3()
    tables["silver_order_lines"] += [
        _line("O4", D1, "P2", "S01", 1, at=AT, line=2),
        _line("O5", D4, "P1", "S02", 7, at=AT),
    ]
    stock = [
        _stock(D2, "S01", "P1", 3) if row[:3] == (D2, "S01", "P1") else row
        for row in tables["silver_stock_snapshots"]
    ]
    tables["silver_stock_snapshots"] = [*stock, _stock(D4, "S01", "P1", 0), _stock(D4, "S01", "P2", 9)]
    deliveries = [row for row in tables["silver_deliveries"] if row[0] != "DL3"]
    tables["silver_deliveries"] = [
        *deliveries,
        _delivery("DL3", D3, D4, delivered=1, at=AT),
        _delivery("DL4", D4, None),
    ]
    tables["silver_iot_readings_hourly"] += [
        _hour("M001", D2, 11, 10.0, 7.5),  # late: extends day 2's critical episode
        _hour("M001", D4, 10, 40.0, 1.0),
    ]
    return tables


def october_corrected() -> dict[str, list[tuple]]:
    """Later still: October's order corrected (4 -> 6 units) and a late hour for day 1."""
    tables = day_4_arrives()
    tables["silver_order_lines"] = [
        _line("O0", OCT31, "P2", "S01", 6, at=AT) if row[0] == "O0" else row
        for row in tables["silver_order_lines"]
    ]
    tables["silver_iot_readings_hourly"].append(_hour("M001", D1, 23, 5.0, 1.0))
    return tables


def _recomputed(run, name: str) -> tuple[str, list[str]]:
    """(mode, days or months recomputed) of a KPI's refresh, from its event."""
    details = json.loads(run.event(name).details)
    unit = "months" if "months" in details else "days"
    return details["mode"], details[unit]


def _assert_kpis_equal(spark, incremental, full) -> None:
    for names in KPIS.values():
        for name in names:
            assert_df_equality(
                read_delta(spark, runner(incremental).path(name)),
                read_delta(spark, runner(full).path(name)),
                ignore_row_order=True,
                ignore_nullable=True,
            )


def _rebuild(spark, ctx, tables) -> None:
    _write_silver(spark, runner(ctx), tables)
    for domain in KPIS:
        refresh_gold(ctx, domain, full_refresh=True)


def _refresh(spark, ctx, tables) -> dict[str, object]:
    """What a daily run does: only the silver tables with new rows are written (the
    others keep their version, as the pipeline leaves an unchanged view)."""
    _write_silver(spark, runner(ctx), {name: tables[name] for name in CHANGING})
    return {domain: refresh_gold(ctx, domain) for domain in KPIS}


@pytest.mark.slow
def test_kpis_refreshed_by_day_equal_a_full_rebuild(spark, tmp_path):
    incremental, full = _context(spark, tmp_path / "incremental"), _context(spark, tmp_path / "full")
    _rebuild(spark, incremental, days_1_to_3())

    runs = _refresh(spark, incremental, day_4_arrives())
    _rebuild(spark, full, day_4_arrives())
    _assert_kpis_equal(spark, incremental, full)
    pharma, energy = runs["pharma"], runs["energy"]
    assert _recomputed(pharma, "kpi_marge_journaliere") == ("days", ["2026-11-01", "2026-11-04"])
    assert _recomputed(pharma, "kpi_marge_produit_site_mois") == ("months", ["2026-11"])  # October kept
    assert _recomputed(pharma, "kpi_rupture_stock") == ("days", ["2026-11-02", "2026-11-04"])
    assert _recomputed(pharma, "kpi_performance_livraison") == ("days", ["2026-11-03", "2026-11-04"])
    # plus day 3, the sites' latest snapshot before: its recall row moves to day 4
    assert _recomputed(pharma, "kpi_rappels_en_stock") == ("days", ["2026-11-02", "2026-11-03", "2026-11-04"])
    for name in ("kpi_energie_machine", "kpi_energie_site"):
        # day 2's late hour reaches day 3's windows; day 3 held the latest hour before
        assert _recomputed(energy, name) == ("days", ["2026-11-02", "2026-11-03", "2026-11-04"])
    for name in WHOLE:
        assert runner(incremental).graph.datasets[name].incremental is None

    gold = runner(incremental)
    delivery = (
        read_delta(spark, gold.path("kpi_performance_livraison")).where("date = DATE'2026-11-03'").first()
    )
    assert (delivery.deliveries_delivered, delivery.deliveries_late, delivery.otif_rate) == (1, 1, 0.0)
    recalls = [
        (r.notice_id, r.snapshot_date) for r in read_delta(spark, gold.path("kpi_rappels_en_stock")).collect()
    ]
    assert recalls == [("R1", D4)]
    latest = read_delta(spark, gold.path("kpi_energie_machine")).where("is_latest").collect()
    assert [(r.hour_key, r.rolling_24h_kwh) for r in latest] == [(2026110410, 40.0)]

    again = _refresh(spark, incremental, day_4_arrives())
    for domain, names in KPIS.items():
        for name in set(names) - WHOLE:
            assert _recomputed(again[domain], name) == ("unchanged", []), name

    runs = _refresh(spark, incremental, october_corrected())
    _rebuild(spark, full, october_corrected())
    _assert_kpis_equal(spark, incremental, full)
    assert _recomputed(runs["pharma"], "kpi_marge_journaliere") == ("days", ["2026-10-31"])
    assert _recomputed(runs["pharma"], "kpi_marge_produit_site_mois") == ("months", ["2026-10"])
    for name in ("kpi_energie_machine", "kpi_energie_site"):
        # day 1's late hour, day 2 whose windows reach it, day 4 the latest hour
        assert _recomputed(runs["energy"], name) == ("days", ["2026-11-01", "2026-11-02", "2026-11-04"])
    months = {
        (r.month_key, r.product_id): r.units_sold
        for r in read_delta(spark, gold.path("kpi_marge_produit_site_mois")).collect()
    }
    assert months[(202610, "P2")] == 6
    hours = {
        r.hour_key: r.rolling_24h_kwh for r in read_delta(spark, gold.path("kpi_energie_machine")).collect()
    }
    assert hours[2026110210] == 27.0  # day 1's 11:00 (12) and 23:00 (5), day 2's 10:00 (10)
