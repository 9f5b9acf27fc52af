"""Roles x tables x columns x rows of conf/base/access.yaml, over real HTTP."""

from __future__ import annotations

import pytest

from tests.api.conftest import MAX_PAGE, Api

FACT_VENTES = ["order_id", "line_number", "date_key", "order_date", "site_id", "product_id", "customer_id", "quantity", "net_amount", "cost_amount", "margin_amount"]
KPI_MARGE = ["date_key", "date", "site_id", "orders", "net_revenue", "cost", "margin", "margin_rate"]
CONSOMMATION = ["machine_id", "hour_key", "date_key", "hour_ts", "site_id", "kwh", "anomaly_class"]
DIM_PRODUIT = ["product_id", "name", "unit_cost", "list_price"]


def without(columns: list[str], *hidden: str) -> list[str]:
    return [c for c in columns if c not in hidden]


# None: 403. customer_id is hidden from every role (pii_columns); "*margin*"/"*cost*"
# from site managers; "*margin*", "*cost*", "*price*" from energy analysts.
MATRIX = {
    ("admin", "fact_ventes"): without(FACT_VENTES, "customer_id"),
    ("admin", "kpi_marge_journaliere"): KPI_MARGE,
    ("admin", "fact_consommation_energie"): CONSOMMATION,
    ("admin", "dim_produit"): DIM_PRODUIT,
    ("pharma_analyst", "fact_ventes"): without(FACT_VENTES, "customer_id"),
    ("pharma_analyst", "kpi_marge_journaliere"): KPI_MARGE,
    ("pharma_analyst", "fact_consommation_energie"): None,
    ("pharma_analyst", "dim_produit"): DIM_PRODUIT,
    ("energy_analyst", "fact_ventes"): None,
    ("energy_analyst", "kpi_marge_journaliere"): None,
    ("energy_analyst", "fact_consommation_energie"): CONSOMMATION,
    ("energy_analyst", "dim_produit"): ["product_id", "name"],
    ("site_manager_s01", "fact_ventes"): without(FACT_VENTES, "customer_id", "cost_amount", "margin_amount"),
    ("site_manager_s01", "kpi_marge_journaliere"): without(KPI_MARGE, "cost", "margin", "margin_rate"),
    ("site_manager_s01", "fact_consommation_energie"): CONSOMMATION,
    ("site_manager_s01", "dim_produit"): ["product_id", "name", "list_price"],
}

# Rows each role sees (all roles with access see every row, except the site manager).
ALL_ROWS = {"fact_ventes": 5, "kpi_marge_journaliere": 4, "fact_consommation_energie": 3, "dim_produit": 2}
SITE_S01_ROWS = {"fact_ventes": 3, "kpi_marge_journaliere": 2, "fact_consommation_energie": 2, "dim_produit": 2}


@pytest.mark.parametrize(("role", "table"), sorted(MATRIX))
def test_role_sees_exactly_its_tables_columns_and_rows(api: Api, role: str, table: str) -> None:
    response = api.get(f"/v1/tables/{table}", role, limit=MAX_PAGE)
    expected_columns = MATRIX[(role, table)]
    if expected_columns is None:
        assert response.status_code == 403
        body = response.json()
        assert set(body) == {"error"}, "a refusal carries no data"
        assert body["error"]["code"] == "table_forbidden"
        domain = "energy" if table == "fact_consommation_energie" else "pharma"
        assert body["error"]["details"] == {"role": role, "table": table, "domain": domain}
        return
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["columns"] == expected_columns
    assert all(list(row) == expected_columns for row in body["rows"])
    expected_rows = SITE_S01_ROWS[table] if role == "site_manager_s01" else ALL_ROWS[table]
    assert body["total"] == expected_rows == len(body["rows"])
    if role == "site_manager_s01" and "site_id" in expected_columns:
        assert {row["site_id"] for row in body["rows"]} == {"S01"}


@pytest.mark.parametrize("role", ["admin", "pharma_analyst", "energy_analyst", "site_manager_s01"])
def test_table_list_shows_only_readable_tables(api: Api, role: str) -> None:
    response = api.get("/v1/tables", role)
    assert response.status_code == 200
    listed = {t["name"]: [c["name"] for c in t["columns"]] for t in response.json()}
    expected = {table: columns for (r, table), columns in MATRIX.items() if r == role and columns is not None}
    assert listed == expected


def test_kpi_list_holds_only_kpi_tables(api: Api) -> None:
    assert [t["name"] for t in api.get("/v1/kpis", "admin").json()] == ["kpi_marge_journaliere"]
    assert api.get("/v1/kpis", "energy_analyst").json() == []


def test_site_manager_rows_are_exactly_site_s01(api: Api) -> None:
    body = api.get("/v1/tables/fact_ventes", "site_manager_s01", limit=MAX_PAGE).json()
    assert [(r["order_id"], r["line_number"]) for r in body["rows"]] == [("O1", 1), ("O1", 2), ("O3", 1)]
    kpi = api.get("/v1/kpis/kpi_marge_journaliere", "site_manager_s01").json()
    assert kpi["rows"] == [
        {"date_key": 20261101, "date": "2026-11-01", "site_id": "S01", "orders": 1, "net_revenue": 15.5},
        {"date_key": 20261103, "date": "2026-11-03", "site_id": "S01", "orders": 1, "net_revenue": 5.0},
    ]


def test_site_filter_cannot_widen_the_row_policy(api: Api) -> None:
    # S02 exists (O2) but the site manager's policy keeps S01 only: an empty answer, not a leak.
    body = api.get("/v1/tables/fact_ventes", "site_manager_s01", site="S02").json()
    assert (body["total"], body["rows"]) == (0, [])


@pytest.mark.parametrize(
    ("role", "column", "code"),
    [
        ("site_manager_s01", "margin_amount", "column_forbidden"),
        ("site_manager_s01", "cost_amount", "column_forbidden"),
        ("admin", "customer_id", "column_forbidden"),  # personal data: nobody, admin included
        ("pharma_analyst", "customer_id", "column_forbidden"),
    ],
)
def test_asking_for_a_hidden_column_is_403_without_data(api: Api, role: str, column: str, code: str) -> None:
    response = api.get("/v1/tables/fact_ventes", role, columns=f"order_id,{column}")
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": code,
            "message": f"role '{role}' may not read column(s) {column} of table 'fact_ventes'",
            "details": {"role": role, "table": "fact_ventes", "columns": [column]},
        }
    }


def test_energy_analyst_reads_machine_hours_with_values(api: Api) -> None:
    body = api.get("/v1/tables/fact_consommation_energie", "energy_analyst", machine="M1").json()
    # M1's two hours; the second has no reading (NULL kWh stays null).
    assert body["rows"] == [
        {"machine_id": "M1", "hour_key": 2026110100, "date_key": 20261101, "hour_ts": "2026-11-01T00:00:00+00:00", "site_id": "S01", "kwh": 10.5, "anomaly_class": "normal"},
        {"machine_id": "M1", "hour_key": 2026110101, "date_key": 20261101, "hour_ts": "2026-11-01T01:00:00+00:00", "site_id": "S01", "kwh": None, "anomaly_class": "normal"},
    ]
