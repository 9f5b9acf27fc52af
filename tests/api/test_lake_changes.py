"""The API follows the lake: new tables, new versions, new columns; and every read is audited."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from lakehouse.access import AccessPolicy
from lakehouse.api.audit import AuditBuffer
from lakehouse.api.gold import GoldReader, Query
from lakehouse.governance.audit import read_log, verify
from tests.api.conftest import Api, build_gold, gold_path, serve


@pytest.fixture
def live_api(tmp_path: Path, policy: AccessPolicy) -> Iterator[Api]:
    """A server that checks the Delta version on every request (check_seconds=0)."""
    root = str(tmp_path / "lake")
    build_gold(root)
    server, client = serve(root, policy, check_seconds=0)
    with server:
        yield client


def kpi_rows(day: int, site: str, value: float) -> pa.Table:
    return pa.table({"date_key": pa.array([day], pa.int32()), "site_id": [site], "energy_cost_eur": [value]})


def test_new_kpi_table_new_version_and_new_column_are_served(live_api: Api) -> None:
    path = gold_path(live_api.lake_root, "energy/kpi/kpi_cout_energie")
    assert live_api.get("/v1/kpis/kpi_cout_energie", "admin").status_code == 404

    write_deltalake(path, kpi_rows(20261101, "S01", 12.5))  # another team adds a KPI table
    first = live_api.get("/v1/kpis/kpi_cout_energie", "admin").json()
    assert (first["version"], first["total"]) == (0, 1)
    # Its domain comes from its path: an energy table, so the pharma analyst is refused.
    assert live_api.get("/v1/kpis/kpi_cout_energie", "pharma_analyst").status_code == 403

    write_deltalake(path, kpi_rows(20261102, "S02", 7.0), mode="append")
    second = live_api.get("/v1/kpis/kpi_cout_energie", "admin").json()
    assert (second["version"], second["total"]) == (1, 2)

    with_column = kpi_rows(20261103, "S01", 3.0).append_column("kwh", pa.array([20.0]))
    write_deltalake(path, with_column, mode="append", schema_mode="merge")
    third = live_api.get("/v1/kpis/kpi_cout_energie", "admin").json()
    assert third["version"] == 2
    assert third["columns"] == ["date_key", "site_id", "energy_cost_eur", "kwh"]
    assert [(r["date_key"], r["kwh"]) for r in third["rows"]] == [(20261101, None), (20261102, None), (20261103, 20.0)]
    # The site manager's row policy applies to the new table too (S01 only).
    manager = live_api.get("/v1/kpis/kpi_cout_energie", "site_manager_s01").json()
    assert [r["date_key"] for r in manager["rows"]] == [20261101, 20261103]


def test_reads_and_refusals_are_in_the_audit_log_without_tokens(live_api: Api) -> None:
    assert live_api.get("/v1/kpis/kpi_marge_journaliere", "site_manager_s01", site="S01").status_code == 200
    assert live_api.get("/v1/tables/fact_ventes", "energy_analyst").status_code == 403
    assert live_api.get("/v1/tables/fact_ventes", "admin", columns="customer_id").status_code == 403
    assert live_api.get("/v1/tables/fact_ventes").status_code == 401  # no identity: nothing to record
    assert live_api.audit.flush() == 3

    log = read_log(live_api.lake_root).to_pylist()
    assert [(e["actor"], e["action"], e["target"]) for e in log] == [
        ("user-site_manager_s01", "api.read", "gold.pharma.kpi.kpi_marge_journaliere"),
        ("user-energy_analyst", "api.denied", "gold.pharma.star.fact_ventes"),
        ("user-admin", "api.denied", "gold.pharma.star.fact_ventes"),
    ]
    assert '"rows":2' in log[0]["details"] and '"role":"site_manager_s01"' in log[0]["details"]
    assert '"code":"column_forbidden"' in log[2]["details"]
    assert verify(live_api.lake_root).ok
    everything = str(log)
    assert not any(token in everything for token in live_api.tokens.values())


def test_audit_buffer_flushes_in_the_background_when_full_and_retries_failures(tmp_path: Path) -> None:
    written: list[list[dict]] = []
    failures = iter([RuntimeError("lake unreachable")])

    def sink(lake_root: str, events: list[dict]) -> None:
        failure = next(failures, None)
        if failure:
            raise failure
        written.append(events)

    buffer = AuditBuffer(str(tmp_path), flush_seconds=0.05, flush_events=1000, sink=sink)
    buffer.record(actor="a", action="api.read", target="t1")
    assert buffer.flush() == 0  # the sink failed: the event is kept for the next flush
    buffer.record(actor="b", action="api.read", target="t2")
    buffer.start()
    deadline = time.monotonic() + 5
    while not written and time.monotonic() < deadline:
        time.sleep(0.01)
    buffer.close()
    assert [[e["target"] for e in batch] for batch in written] == [["t1", "t2"]]


def test_a_full_buffer_wakes_the_writer_before_its_period(tmp_path: Path) -> None:
    written: list[int] = []
    buffer = AuditBuffer(str(tmp_path), flush_seconds=60, flush_events=3, sink=lambda root, events: written.append(len(events)))
    buffer.start()
    for index in range(3):
        buffer.record(actor="a", action="api.read", target=f"t{index}")
    deadline = time.monotonic() + 5
    while not written and time.monotonic() < deadline:
        time.sleep(0.01)
    assert written == [3]
    buffer.close()
    assert written == [3]  # nothing left to write at close


def test_a_table_removed_under_the_server_gives_a_500_error_body(live_api: Api) -> None:
    assert live_api.get("/v1/tables/dim_produit", "admin").status_code == 200
    shutil.rmtree(gold_path(live_api.lake_root, "pharma/star/dim_produit"))
    response = live_api.get("/v1/tables/dim_produit", "admin", product="P1")
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "the server could not answer; the error is in its log",
            "details": {"path": "/v1/tables/dim_produit"},
        }
    }


def test_pages_of_one_query_come_from_the_cached_snapshot_result(tmp_path: Path, policy: AccessPolicy) -> None:
    root = str(tmp_path / "lake")
    build_gold(root)
    reader = GoldReader(root, policy, check_seconds=3600)
    table = reader.table("fact_ventes")
    first = reader.query(table, "admin", Query(), limit=2, offset=0)
    data_files = list(Path(table.path).glob("*.parquet"))
    assert data_files
    for data_file in data_files:
        data_file.unlink()  # the next page can only come from the cache now
    second = reader.query(table, "admin", Query(), limit=2, offset=2)
    # Sorted by date_key, site_id, product_id, order_id, line_number: O1/1, O1/2 | O2/1, O3/1 | O4/1.
    assert [(r["order_id"], r["line_number"]) for r in first.rows + second.rows] == [("O1", 1), ("O1", 2), ("O2", 1), ("O3", 1)]
    assert (first.version, second.version, second.total) == (0, 0, 5)
