"""A tmp lake with hand-built gold Delta tables and the API served over real HTTP.

Gold tables (written with delta-rs, the way the API reads them):

fact_ventes (gold/domain=pharma/model=star), one row per order line:
    order_id line date_key  site product customer qty  net    cost   margin
    O1       1    20261101  S01  P1      C1       2    10.00  6.00   4.00
    O1       2    20261101  S01  P2      C1       1     5.50  3.00   2.50
    O2       1    20261102  S02  P1      C2       3    15.00  9.00   6.00
    O3       1    20261103  S01  P1      C3       1     5.00  NULL   NULL   (cost unknown)
    O4       1    20261103  S03  P2      C4       4    22.00 12.00  10.00

kpi_marge_journaliere (gold/domain=pharma/model=kpi): the sums of fact_ventes per day x site.
fact_consommation_energie (gold/domain=energy/model=star): machine x hour.
dim_produit (gold/domain=pharma/model=star): no site_id, no date_key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from lakehouse.access import AccessPolicy, load_access_policy
from lakehouse.api import BackgroundServer, create_app
from lakehouse.api.audit import AuditBuffer
from lakehouse.api.tokens import TokenStore, hash_token
from lakehouse.config import ApiToken

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ROLES = ("admin", "pharma_analyst", "energy_analyst", "site_manager_s01")
MAX_PAGE = 50

D2 = pa.decimal128(18, 2)


def fact_ventes() -> pa.Table:
    return pa.table(
        {
            "order_id": ["O1", "O1", "O2", "O3", "O4"],
            "line_number": pa.array([1, 2, 1, 1, 1], pa.int32()),
            "date_key": pa.array([20261101, 20261101, 20261102, 20261103, 20261103], pa.int32()),
            "order_date": [dt.date(2026, 11, 1), dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3), dt.date(2026, 11, 3)],
            "site_id": ["S01", "S01", "S02", "S01", "S03"],
            "product_id": ["P1", "P2", "P1", "P1", "P2"],
            "customer_id": ["C1", "C1", "C2", "C3", "C4"],
            "quantity": pa.array([2, 1, 3, 1, 4], pa.int32()),
            "net_amount": pa.array([Decimal("10.00"), Decimal("5.50"), Decimal("15.00"), Decimal("5.00"), Decimal("22.00")], D2),
            "cost_amount": pa.array([Decimal("6.00"), Decimal("3.00"), Decimal("9.00"), None, Decimal("12.00")], D2),
            "margin_amount": pa.array([Decimal("4.00"), Decimal("2.50"), Decimal("6.00"), None, Decimal("10.00")], D2),
        }
    )


def kpi_marge_journaliere() -> pa.Table:
    # net_revenue S01 on 11-01 = 10.00 + 5.50 = 15.50; cost 6.00 + 3.00 = 9.00; margin 4.00 + 2.50 = 6.50;
    # margin_rate = 6.50 / 15.50 = 0.4194; O3's unknown cost leaves cost, margin and rate NULL.
    return pa.table(
        {
            "date_key": pa.array([20261101, 20261102, 20261103, 20261103], pa.int32()),
            "date": [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3), dt.date(2026, 11, 3)],
            "site_id": ["S01", "S02", "S01", "S03"],
            "orders": [1, 1, 1, 1],
            "net_revenue": pa.array([Decimal("15.50"), Decimal("15.00"), Decimal("5.00"), Decimal("22.00")], D2),
            "cost": pa.array([Decimal("9.00"), Decimal("9.00"), None, Decimal("12.00")], D2),
            "margin": pa.array([Decimal("6.50"), Decimal("6.00"), None, Decimal("10.00")], D2),
            "margin_rate": pa.array([Decimal("0.4194"), Decimal("0.4000"), None, Decimal("0.4545")], pa.decimal128(9, 4)),
        }
    )


def fact_consommation_energie() -> pa.Table:
    return pa.table(
        {
            "machine_id": ["M1", "M1", "M2"],
            "hour_key": pa.array([2026110100, 2026110101, 2026110100], pa.int32()),
            "date_key": pa.array([20261101, 20261101, 20261101], pa.int32()),
            "hour_ts": pa.array([dt.datetime(2026, 11, 1, h, tzinfo=dt.UTC) for h in (0, 1, 0)], pa.timestamp("us", tz="UTC")),
            "site_id": ["S01", "S01", "S02"],
            "kwh": [10.5, None, 7.25],
            "anomaly_class": ["normal", "normal", "spike"],
        }
    )


def dim_produit() -> pa.Table:
    return pa.table(
        {
            "product_id": ["P1", "P2"],
            "name": ["Paracetamol 500 mg", "Amoxicilline 1 g"],
            "unit_cost": pa.array([Decimal("3.0000"), Decimal("3.0000")], pa.decimal128(12, 4)),
            "list_price": pa.array([Decimal("5.0000"), Decimal("5.5000")], pa.decimal128(12, 4)),
        }
    )


GOLD = {
    "pharma/star/fact_ventes": fact_ventes,
    "pharma/kpi/kpi_marge_journaliere": kpi_marge_journaliere,
    "energy/star/fact_consommation_energie": fact_consommation_energie,
    "pharma/star/dim_produit": dim_produit,
}


def gold_path(root: str, key: str) -> str:
    domain, model, name = key.split("/")
    return f"{root}/gold/domain={domain}/model={model}/table={name}"


def build_gold(root: str) -> None:
    for key, build in GOLD.items():
        write_deltalake(gold_path(root, key), build())


@dataclass
class Api:
    url: str
    lake_root: str
    tokens: dict[str, str]  # role -> token
    audit: AuditBuffer

    def get(self, path: str, role: str | None = None, **params: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.get(self.url + path, headers=headers, params=params, timeout=30)


@pytest.fixture(scope="session")
def policy() -> AccessPolicy:
    return load_access_policy(PROJECT_ROOT / "conf" / "base" / "access.yaml")


def serve(lake_root: str, policy: AccessPolicy, *, check_seconds: float = 1.0) -> tuple[BackgroundServer, Api]:
    tokens = {role: f"test-token-{role}-{index}" for index, role in enumerate(ROLES)}
    store = TokenStore(ApiToken(name=f"user-{role}", role=role, sha256=hash_token(t)) for role, t in tokens.items())
    audit = AuditBuffer(lake_root, flush_seconds=60, flush_events=10_000)
    app = create_app(
        lake_root=lake_root, policy=policy, tokens=store, audit=audit,
        default_page_size=3, max_page_size=MAX_PAGE, snapshot_check_seconds=check_seconds,
    )  # fmt: skip
    server = BackgroundServer(app)
    return server, Api(url=server.url, lake_root=lake_root, tokens=tokens, audit=audit)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, policy: AccessPolicy) -> Iterator[Api]:
    """One server over one gold lake for the read-only tests of a module."""
    root = str(tmp_path_factory.mktemp("api") / "lake")
    build_gold(root)
    server, client = serve(root, policy)
    with server:
        yield client
