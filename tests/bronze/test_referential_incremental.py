"""Incremental referential loads against a real (embedded) PostgreSQL: watermark,
upsert by key, partitioned reads, full refresh, and no password in errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lakehouse import maintenance
from lakehouse import pipelines as dp
from lakehouse.bronze.referential import (
    INCREMENTAL_KEYS,
    ReferentialLoadError,
    changed_rows_query,
    load_changes,
    partitions_for,
    plan_extraction,
    read_changed_rows,
)
from lakehouse.bronze.settings import ReferentialLoadSettings
from lakehouse.config import load_settings
from lakehouse.generate.postgres_load import create_statements
from lakehouse.lake import Lake, read_delta
from lakehouse.postgres import PostgresEndpoint, connect, ensure_server

pytestmark = pytest.mark.slow  # starts an embedded PostgreSQL

DATASETS = [f"bronze_{t}_changes" for t in INCREMENTAL_KEYS] + [f"bronze_{t}" for t in INCREMENTAL_KEYS]
T0 = "2026-11-01 08:00:00+00"
SITES = [
    ("S01", "Usine Lyon", "Lyon", "ARA", "FR", "plant"),
    ("S02", "DC Paris", "Paris", "IDF", "FR", "distribution_center"),
]
PRODUCTS = [
    ("P001", "3400930000011", "Doliprane 500", "N02BE01", "analgesic", "tablet", 1.1, 2.2, True),
    ("P002", "3400930000028", "Spasfon 80", "A03AX12", "antispasmodic", "tablet", 1.5, 3.0, True),
    ("P003", "3400930000035", "Smecta", "A07BC05", "antidiarrheal", "powder", 2.0, 4.5, True),
    ("P004", "3400930000042", "Efferalgan", "N02BE01", "analgesic", "tablet", 1.2, 2.6, False),
]
MACHINES = [
    ("M001", "S01", "tablet_press", 55.0, "2020-01-01"),
    ("M002", "S01", "coater", 30.0, "2021-06-01"),
]
CUSTOMERS = [("C001", "pharmacy", "Pharmacie A", "Ana", "a@x.fr", "01", "1 rue", "69001", "Lyon")]


def _insert(conn, table: str, rows: list[tuple], updated_at: str = T0) -> None:
    width = len(rows[0]) + 1
    marks = ", ".join(["%s"] * width)
    for row in rows:
        conn.execute(f"INSERT INTO referential.{table} VALUES ({marks})", [*row, updated_at])


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("referential")
    settings = load_settings(lake_root=str(root / "lake"), var_dir=str(root / "var"))
    endpoint = ensure_server(settings)
    return settings, endpoint


@pytest.fixture
def seeded(pg, tmp_path: Path):
    """A fresh referential schema with hand-made rows, and a fresh lake."""
    settings, endpoint = pg
    with connect(endpoint) as conn:
        for statement in create_statements("referential"):
            conn.execute(statement)
        _insert(conn, "sites", SITES)
        _insert(conn, "products", PRODUCTS[:3])  # 3 products at first, P004 comes later
        _insert(conn, "machines", MACHINES)
        _insert(conn, "customers", CUSTOMERS)
    return settings.model_copy(update={"lake_root": str(tmp_path / "lake")}), endpoint


def _runner(spark, settings) -> dp.PipelineRunner:
    graph = dp.load_graph("pharma", ["lakehouse.bronze.tables"])
    return dp.PipelineRunner(spark, graph, Lake(settings.lake_root), parameters={"settings": settings})


def _run(runner: dp.PipelineRunner, run_id: str, **kwargs) -> dp.PipelineRun:
    return runner.run(refresh=DATASETS, include_upstreams=False, run_id=run_id, **kwargs)


def _rows(spark, runner, dataset: str) -> set[tuple]:
    return {tuple(r) for r in read_delta(spark, runner.path(dataset)).collect()}


def test_full_then_incremental_upsert_then_nothing(spark, seeded):
    settings, endpoint = seeded
    runner = _runner(spark, settings)
    first = _run(runner, "r1")
    counts = {t: maintenance.row_count(runner.path(f"bronze_{t}")) for t in INCREMENTAL_KEYS}
    assert counts == {"products": 3, "sites": 2, "machines": 2, "customers": 1}
    assert first.event("bronze_products_changes").rows_written == 3
    products = read_delta(spark, runner.path("bronze_products"))
    assert products.columns == [
        "product_id",
        "cip13",
        "name",
        "atc_code",
        "atc_class",
        "dosage_form",
        "unit_cost",
        "list_price",
        "is_active",
        "updated_at",
    ]  # the PostgreSQL table's columns, in order: same as the former full reads
    before = _rows(spark, runner, "bronze_products")
    untouched_tables = {t: _rows(spark, runner, f"bronze_{t}") for t in ("sites", "machines", "customers")}

    # In PostgreSQL: 2 updates (new list price, deactivation) and 1 insert.
    with connect(endpoint) as conn:
        conn.execute(
            "UPDATE referential.products SET list_price = 2.5, updated_at = '2026-11-20 09:00:00+00' "
            "WHERE product_id = 'P001'"
        )
        conn.execute(
            "UPDATE referential.products SET is_active = false, updated_at = '2026-11-20 09:05:00+00' "
            "WHERE product_id = 'P003'"
        )
        _insert(conn, "products", PRODUCTS[3:], "2026-11-20 09:10:00+00")

    second = _run(runner, "r2")
    assert second.event("bronze_products_changes").rows_written == 3  # only the 3 changed rows read
    after = _rows(spark, runner, "bronze_products")
    assert len(after) == 4
    changed = {row[0] for row in after - before}
    removed = {row[0] for row in before - after}
    assert changed == {"P001", "P003", "P004"} and removed == {"P001", "P003"}  # exactly those 3 rows
    current = {r.product_id: r for r in read_delta(spark, runner.path("bronze_products")).collect()}
    assert float(current["P001"].list_price) == 2.5 and current["P003"].is_active is False
    assert current["P002"].updated_at == before_row(before, "P002")[-1]  # untouched row as it was
    for table, rows in untouched_tables.items():  # the other tables had no change: no row read
        assert second.event(f"bronze_{table}_changes").rows_written == 0
        assert _rows(spark, runner, f"bronze_{table}") == rows
    assert maintenance.row_count(runner.path("bronze_products_changes")) == 3 + 3  # every version kept

    versions = {
        d: maintenance.version(runner.path(d)) for d in ("bronze_products", "bronze_products_changes")
    }
    third = _run(runner, "r3")
    assert third.event("bronze_products_changes").rows_written == 0
    assert _rows(spark, runner, "bronze_products") == after
    assert maintenance.row_count(runner.path("bronze_products_changes")) == 6
    assert maintenance.version(runner.path("bronze_products")) == versions["bronze_products"]  # no commit

    # A full refresh re-reads everything and gives the same current rows.
    _run(runner, "r4", full_refresh=["bronze_products_changes", "bronze_products"])
    assert _rows(spark, runner, "bronze_products") == after
    assert maintenance.row_count(runner.path("bronze_products_changes")) == 4


def before_row(rows: set[tuple], key: str) -> tuple:
    return next(row for row in rows if row[0] == key)


def test_large_extractions_are_split_into_range_reads(spark, seeded):
    _, endpoint = seeded
    small = ReferentialLoadSettings(rows_per_partition=1, max_partitions=3)
    # 3 products, 1 per partition, at most 3 reads: ceil(3 / 1) = 3; 1 row -> 1 read.
    assert (partitions_for(3, small), partitions_for(1, small), partitions_for(10, small)) == (3, 1, 3)
    with connect(endpoint) as conn:  # spread updated_at so every range holds a row
        for i, key in enumerate(("P001", "P002", "P003")):
            conn.execute(
                "UPDATE referential.products SET updated_at = %s WHERE product_id = %s",
                [dt.datetime(2026, 11, 2 + i, tzinfo=dt.UTC), key],
            )
    plan = plan_extraction(endpoint, "products", None, small)
    assert (plan.rows, plan.partitions) == (3, 3)
    assert plan.upper_us - plan.lower_us == 2 * 86_400 * 1_000_000  # 2 days between first and last
    split = read_changed_rows(spark, endpoint, plan)
    assert sorted(r.product_id for r in split.collect()) == ["P001", "P002", "P003"]

    since = plan.lower_us  # after the first row's updated_at: P002 and P003 only
    later = plan_extraction(endpoint, "products", since, small)
    assert later.rows == 2
    assert sorted(r.product_id for r in read_changed_rows(spark, endpoint, later).collect()) == [
        "P002",
        "P003",
    ]


def test_bad_identifier_is_refused():
    with pytest.raises(ValueError, match="identifier"):
        changed_rows_query("referential", "products; DROP TABLE x", None)


def test_connection_errors_never_show_the_password(spark, pg, tmp_path: Path):
    _, good = pg
    secret = "s3cr3t-pw"
    # The embedded server trusts local users, so the password is accepted and the read of a
    # missing table fails (a wrong database would fail too, but only after a 30 s pool timeout).
    endpoint = PostgresEndpoint(good.host, good.port, good.database, good.user, secret, "referential")
    assert secret not in repr(endpoint)
    with pytest.raises(ReferentialLoadError) as failure:
        load_changes(
            spark,
            endpoint,
            "no_such_table",
            changes_path=str(tmp_path / "changes"),
            checkpoint=str(tmp_path / "checkpoint"),
            settings=ReferentialLoadSettings(),
        )
    message = str(failure.value)
    assert "referential.no_such_table" in message and "does not exist" in message
    assert secret not in message and secret not in repr(failure.value)
    assert failure.value.__cause__ is None and failure.value.__suppress_context__
