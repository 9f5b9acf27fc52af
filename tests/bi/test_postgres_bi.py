"""The BI schema in a real (embedded) PostgreSQL: views compared to gold, the
read-only role, merge, and a failed load that leaves the previous schema in place."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest

from lakehouse import postgres
from lakehouse.bi.gold import BiExportError, discover_gold_tables
from lakehouse.bi.postgres_bi import load_postgres_bi
from lakehouse.config import load_settings
from lakehouse.postgres import connect, ensure_server

from .conftest import fact_ventes, kpi_rupture_stock, write_gold

pytestmark = pytest.mark.slow  # starts an embedded PostgreSQL

VIEWS = (
    "v_energy_machine_anomalies",
    "v_energy_realtime_consumption",
    "v_pharma_delivery_performance",
    "v_pharma_stockout_rate",
)


@pytest.fixture(scope="module")
def endpoint():
    """One server for the module (it starts in seconds); each test's first load replaces
    the schema. Its data folder is outside pytest's temporary root, which every new pytest
    session on the machine resets to mode 0700, locking out the server's system user."""
    root = Path(tempfile.mkdtemp(prefix="lakehouse-bi-pg-"))
    settings = load_settings(var_dir=str(root / "var"), lake_root=str(root / "lake"))
    yield ensure_server(settings)
    server = postgres._servers.pop(str(settings.postgres_data_dir), None)
    if server is not None:
        server.cleanup()  # stops the server before its folder goes
    shutil.rmtree(root, ignore_errors=True)


def _query(endpoint, statement: str, params=None) -> list[tuple]:
    with connect(endpoint) as conn:
        return conn.execute(statement, params).fetchall()


def test_replace_loads_every_gold_table_and_the_dashboard_views(gold_lake, endpoint):
    gold = discover_gold_tables(gold_lake)
    report = load_postgres_bi(endpoint, gold)
    assert report.mode == "replace" and sorted(report.views) == list(VIEWS)
    for table in gold:
        assert (
            _query(endpoint, f"SELECT count(*) FROM bi.{table.name}")[0][0]
            == table.read().num_rows
            == report.rows[table.name]
        )

    # stock-out view = kpi_rupture_stock + site name, value for value (exact NUMERIC)
    stockout = _query(
        endpoint,
        "SELECT date_key, site_id, site_name, stockout_rate FROM bi.v_pharma_stockout_rate ORDER BY 1, 2",
    )
    gold_rows = sorted(
        (r["date_key"], r["site_id"], r["stockout_rate"]) for r in kpi_rupture_stock().to_pylist()
    )
    names = {"S01": "Usine de Compiègne", "S02": "Plateforme de Saran"}
    assert stockout == [(k, s, names[s], rate) for k, s, rate in gold_rows]
    assert stockout[-1] == (20261126, "S02", "Plateforme de Saran", Decimal("0.3000"))

    # anomalies view: the three non-normal machine-hours of the gold fact, with machine type
    anomalies = _query(
        endpoint,
        "SELECT machine_id, machine_type, extract(hour FROM hour_ts AT TIME ZONE 'UTC')::int, anomaly_class, date "
        "FROM bi.v_energy_machine_anomalies ORDER BY 1, 3",
    )
    assert [a[:4] for a in anomalies] == [
        ("M001", "tablet_press", 2, "warning"),
        ("M001", "tablet_press", 3, "critical"),
        ("M002", "hvac", 5, "warning"),
    ]
    assert {str(a[4]) for a in anomalies} == {"2026-11-26"}
    # real-time view: every machine-hour; M001 10+20+...+60 = 210, M002 100+...+105 = 615 kWh
    assert _query(
        endpoint, "SELECT machine_id, sum(kwh) FROM bi.v_energy_realtime_consumption GROUP BY 1 ORDER BY 1"
    ) == [("M001", 210.0), ("M002", 615.0)]
    # delivery view: OTIF per site over the period, S01 (8+8)/(10+8) = 16/18, S02 (4+2)/(5+4) = 6/9
    assert _query(
        endpoint,
        "SELECT site_id, sum(deliveries_otif), sum(deliveries_delivered), sum(deliveries_pending) "
        "FROM bi.v_pharma_delivery_performance GROUP BY 1 ORDER BY 1",
    ) == [("S01", 16, 18, 4), ("S02", 6, 9, 3)]
    # NULL stays NULL and the empty string stays empty
    assert _query(endpoint, "SELECT date_key, holiday_name FROM bi.dim_temps ORDER BY 1") == [
        (-1, None), (20261124, None), (20261125, ""), (20261126, None),
    ]  # fmt: skip
    assert _query(endpoint, "SELECT sum(net_amount) FROM bi.fact_ventes")[0][0] == Decimal("104.97")


def test_types_keys_and_filter_indexes(gold_lake, endpoint):
    load_postgres_bi(endpoint, discover_gold_tables(gold_lake))
    types = dict(
        _query(
            endpoint,
            "SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns c "
            "JOIN pg_attribute a ON a.attrelid = 'bi.fact_ventes'::regclass AND a.attname = c.column_name "
            "WHERE table_schema = 'bi' AND table_name = 'fact_ventes'",
        )
    )
    assert types["net_amount"] == "numeric(18,2)" and types["order_date"] == "date"
    assert types["quantity"] == "integer" and types["product_sk"] == "bigint" and types["order_id"] == "text"
    keys = _query(
        endpoint,
        "SELECT tc.table_name, string_agg(kcu.column_name, ',' ORDER BY kcu.ordinal_position) "
        "FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage kcu "
        "USING (constraint_schema, constraint_name) WHERE tc.constraint_type = 'PRIMARY KEY' "
        "AND tc.table_schema = 'bi' GROUP BY 1 ORDER BY 1",
    )
    assert dict(keys)["fact_ventes"] == "order_id,line_number"
    assert dict(keys)["fact_consommation_energie"] == "machine_id,hour_key"
    assert dict(keys)["dim_site"] == "site_sk"  # the star's surrogate key (dim_site's contract)
    unique = _query(
        endpoint,
        "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc "
        "JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name) "
        "WHERE tc.constraint_type = 'UNIQUE' AND tc.table_schema = 'bi'",
    )
    assert unique == [("dim_site", "site_id")]  # its natural key, which the views join on
    assert "kpi_test_extra" not in dict(keys)  # unknown table: loaded, no invented key
    indexes = {r[0] for r in _query(endpoint, "SELECT indexname FROM pg_indexes WHERE schemaname = 'bi'")}
    assert {
        "fact_ventes_date_key_idx",
        "fact_ventes_site_id_idx",
        "fact_ventes_product_sk_idx",
        "fact_consommation_energie_hour_ts_idx",
        "fact_consommation_energie_machine_sk_idx",
        "kpi_rupture_stock_site_id_idx",
    } <= indexes
    assert "kpi_rupture_stock_date_key_idx" not in indexes  # leading column of the primary key already


def test_bi_reader_can_read_the_views_and_cannot_write(gold_lake, endpoint):
    load_postgres_bi(endpoint, discover_gold_tables(gold_lake))
    reader = dataclasses.replace(endpoint, user="bi_reader")
    with psycopg.connect(reader.conninfo(), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM bi.v_pharma_stockout_rate").fetchone()[0] == 6
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM bi.fact_ventes")
        conn.execute("SET default_transaction_read_only = off")  # a reader may flip it: privileges still hold
        for statement in (
            "INSERT INTO bi.dim_site (site_sk, site_id) VALUES (9, 'S09')",
            "UPDATE bi.kpi_rupture_stock SET stockout_rate = 0",
            "DELETE FROM bi.fact_ventes",
            "TRUNCATE bi.dim_temps",
            "CREATE TABLE bi.mine (x int)",
            "DROP VIEW bi.v_pharma_stockout_rate",
        ):
            with pytest.raises((psycopg.errors.InsufficientPrivilege,)):
                conn.execute(statement)
    assert _query(endpoint, "SELECT count(*) FROM bi.fact_ventes")[0][0] == 5


def test_merge_upserts_by_key_and_keeps_rows_gold_no_longer_has(gold_lake, endpoint):
    load_postgres_bi(endpoint, discover_gold_tables(gold_lake))
    # gold now: O1/1 re-priced, O4 gone, O5 new
    changed = fact_ventes().filter(pa.compute.not_equal(fact_ventes()["order_id"], "O4")).to_pylist()
    changed[0]["net_amount"] = Decimal("24.00")
    changed.append({**changed[-1], "order_id": "O5", "net_amount": Decimal("1.50")})
    write_gold(
        gold_lake, "pharma", "star", "fact_ventes", pa.Table.from_pylist(changed, fact_ventes().schema)
    )
    report = load_postgres_bi(endpoint, discover_gold_tables(gold_lake), mode="merge")
    assert report.rows["fact_ventes"] == 5  # 4 upserted + 1 inserted
    rows = dict(_query(endpoint, "SELECT order_id || '/' || line_number, net_amount FROM bi.fact_ventes"))
    assert rows == {
        "O1/1": Decimal("24.00"), "O1/2": Decimal("18.00"), "O2/1": Decimal("52.00"),
        "O3/1": Decimal("4.00"), "O4/1": Decimal("5.97"), "O5/1": Decimal("1.50"),
    }  # fmt: skip
    assert sorted(report.views) == list(VIEWS)


def test_merge_refuses_a_changed_schema_and_changes_nothing(gold_lake, endpoint):
    load_postgres_bi(endpoint, discover_gold_tables(gold_lake))
    write_gold(
        gold_lake,
        "pharma",
        "star",
        "fact_ventes",
        fact_ventes().append_column("channel", pa.array(["web"] * 5)),
    )
    with pytest.raises(BiExportError, match=r"bi.fact_ventes has columns .* load with mode 'replace'"):
        load_postgres_bi(endpoint, discover_gold_tables(gold_lake), mode="merge")
    assert _query(endpoint, "SELECT count(*) FROM bi.fact_ventes")[0][0] == 5
    load_postgres_bi(endpoint, discover_gold_tables(gold_lake), mode="replace")  # takes the new column
    assert _query(endpoint, "SELECT DISTINCT channel FROM bi.fact_ventes") == [("web",)]


def test_a_failed_replace_leaves_the_previous_schema_whole(gold_lake, endpoint):
    load_postgres_bi(endpoint, discover_gold_tables(gold_lake))
    # the new gold rupture table is fine, but fact_ventes (loaded later) has a duplicate key
    write_gold(gold_lake, "pharma", "kpi", "kpi_rupture_stock", kpi_rupture_stock().slice(0, 2))
    write_gold(
        gold_lake,
        "pharma",
        "star",
        "fact_ventes",
        pa.concat_tables([fact_ventes(), fact_ventes().slice(1, 1)]),
    )
    with pytest.raises(BiExportError, match="'fact_ventes': key"):
        load_postgres_bi(endpoint, discover_gold_tables(gold_lake))
    assert _query(endpoint, "SELECT count(*) FROM bi.v_pharma_stockout_rate")[0][0] == 6  # not 2
    assert _query(endpoint, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bi%' ORDER BY 1") == [
        ("bi",)
    ]
