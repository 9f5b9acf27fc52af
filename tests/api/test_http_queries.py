"""Values, filters, pagination and error bodies of the API, over real HTTP."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from lakehouse.access import AccessPolicy
from tests.api.conftest import MAX_PAGE, Api, serve


def keys(body: dict) -> list[tuple[str, int]]:
    return [(row["order_id"], row["line_number"]) for row in body["rows"]]


def test_kpi_values_match_the_gold_table(api: Api) -> None:
    body = api.get("/v1/kpis/kpi_marge_journaliere", "pharma_analyst", limit=10).json()
    assert body["table"] == "kpi_marge_journaliere"
    assert body["version"] == 0
    assert (body["total"], body["limit"], body["offset"], body["next"]) == (4, 10, 0, None)
    # Decimals are JSON numbers, dates ISO strings; the day with an unknown cost keeps its NULLs.
    assert body["rows"] == [
        {"date_key": 20261101, "date": "2026-11-01", "site_id": "S01", "orders": 1, "net_revenue": 15.5, "cost": 9.0, "margin": 6.5, "margin_rate": 0.4194},
        {"date_key": 20261102, "date": "2026-11-02", "site_id": "S02", "orders": 1, "net_revenue": 15.0, "cost": 9.0, "margin": 6.0, "margin_rate": 0.4},
        {"date_key": 20261103, "date": "2026-11-03", "site_id": "S01", "orders": 1, "net_revenue": 5.0, "cost": None, "margin": None, "margin_rate": None},
        {"date_key": 20261103, "date": "2026-11-03", "site_id": "S03", "orders": 1, "net_revenue": 22.0, "cost": 12.0, "margin": 10.0, "margin_rate": 0.4545},
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"date_from": "2026-11-02", "date_to": "2026-11-03"}, [("O2", 1), ("O3", 1), ("O4", 1)]),
        ({"date_from": "2026-11-03"}, [("O3", 1), ("O4", 1)]),
        ({"date_to": "2026-11-01"}, [("O1", 1), ("O1", 2)]),
        ({"date_from": "2026-11-02", "date_to": "2026-11-02"}, [("O2", 1)]),  # one day, bounds inclusive
        ({"date_from": "2026-12-01"}, []),
        ({"site": ["S02", "S03"]}, [("O2", 1), ("O4", 1)]),
        ({"product": "P2"}, [("O1", 2), ("O4", 1)]),
        ({"product": "P2", "site": "S03", "date_from": "2026-11-03"}, [("O4", 1)]),
    ],
)
def test_filters_select_the_expected_order_lines(api: Api, params: dict, expected: list) -> None:
    body = api.get("/v1/tables/fact_ventes", "admin", limit=MAX_PAGE, **params).json()
    assert keys(body) == expected
    assert body["total"] == len(expected)


def test_columns_parameter_projects_in_the_requested_order(api: Api) -> None:
    body = api.get("/v1/tables/fact_ventes", "admin", columns="net_amount,order_id", site="S02").json()
    assert body["columns"] == ["net_amount", "order_id"]
    assert body["rows"] == [{"net_amount": 15.0, "order_id": "O2"}]


def test_pages_follow_next_links_and_cover_every_row_once(api: Api) -> None:
    everything = api.get("/v1/tables/fact_ventes", "admin", limit=MAX_PAGE).json()["rows"]
    # 5 rows by 2: pages of 2, 2 and 1; the last page has no next link.
    first = api.get("/v1/tables/fact_ventes", "admin", limit=2).json()
    assert (first["total"], first["offset"], len(first["rows"])) == (5, 0, 2)
    assert parse_qs(urlsplit(first["next"]).query) == {"limit": ["2"], "offset": ["2"]}
    pages, body = [first], first
    while body["next"]:
        body = httpx.get(body["next"], headers={"Authorization": f"Bearer {api.tokens['admin']}"}).json()
        pages.append(body)
    assert [len(p["rows"]) for p in pages] == [2, 2, 1]
    assert [p["offset"] for p in pages] == [0, 2, 4]
    assert [row for p in pages for row in p["rows"]] == everything
    assert pages[-1]["next"] is None


def test_next_link_keeps_the_filters(api: Api) -> None:
    body = api.get("/v1/tables/fact_ventes", "admin", site="S01", limit=1).json()
    assert body["total"] == 3
    assert parse_qs(urlsplit(body["next"]).query) == {"site": ["S01"], "limit": ["1"], "offset": ["1"]}


def test_default_page_size_and_offset_past_the_end(api: Api) -> None:
    default = api.get("/v1/tables/fact_ventes", "admin").json()
    assert (default["limit"], len(default["rows"])) == (3, 3)  # the test app's default page size
    past = api.get("/v1/tables/fact_ventes", "admin", offset=99).json()
    assert (past["total"], past["rows"], past["next"]) == (5, [], None)


@pytest.mark.parametrize(
    ("path", "params", "code", "message_part"),
    [
        ("/v1/tables/fact_ventes", {"limit": 0}, "invalid_parameter", "limit"),
        ("/v1/tables/fact_ventes", {"limit": MAX_PAGE + 1}, "invalid_query", "maximum page size 50"),
        ("/v1/tables/fact_ventes", {"offset": -1}, "invalid_parameter", "offset"),
        ("/v1/tables/fact_ventes", {"limit": "ten"}, "invalid_parameter", "limit"),
        ("/v1/tables/fact_ventes", {"date_from": "2026-02-30"}, "invalid_parameter", "date_from"),
        ("/v1/tables/fact_ventes", {"date_from": "2026-11-03", "date_to": "2026-11-01"}, "invalid_query", "is after"),
        ("/v1/tables/fact_ventes", {"sites": "S01"}, "invalid_query", "unknown query parameter(s) sites"),
        ("/v1/tables/fact_ventes", {"columns": "order_id,nope"}, "invalid_query", "no column(s) nope"),
        ("/v1/tables/dim_produit", {"date_from": "2026-11-01"}, "invalid_query", "no date_key column"),
        ("/v1/tables/fact_consommation_energie", {"product": "P1"}, "invalid_query", "no product_id column"),
    ],
)
def test_bad_parameters_are_422_with_an_error_body(api: Api, path: str, params: dict, code: str, message_part: str) -> None:
    response = api.get(path, "admin", **params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == code
    assert message_part in error["message"]
    assert isinstance(error["details"], dict)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_token"),
        ({"Authorization": "Bearer not-a-token"}, "invalid_token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing_token"),
        ({"Authorization": "Bearer"}, "missing_token"),
    ],
)
def test_missing_or_bad_token_is_401(api: Api, headers: dict, code: str) -> None:
    response = httpx.get(api.url + "/v1/kpis/kpi_marge_journaliere", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == code
    assert "rows" not in response.text


def test_unknown_table_and_route_are_404(api: Api) -> None:
    unknown = api.get("/v1/tables/fact_nothing", "admin")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {"code": "table_not_found", "message": "no gold table named 'fact_nothing'", "details": {"table": "fact_nothing"}}
    not_kpi = api.get("/v1/kpis/fact_ventes", "admin")
    assert (not_kpi.status_code, not_kpi.json()["error"]["code"]) == (404, "table_not_found")
    route = api.get("/v2/anything", "admin")
    assert (route.status_code, route.json()["error"]["code"]) == (404, "not_found")


def test_health_needs_no_token_and_me_names_the_caller(api: Api) -> None:
    assert httpx.get(api.url + "/health").json() == {"status": "ok"}
    assert api.get("/v1/me", "energy_analyst").json() == {"name": "user-energy_analyst", "role": "energy_analyst"}


def test_openapi_documents_bearer_auth_filters_and_errors(api: Api) -> None:
    spec = httpx.get(api.url + "/openapi.json").json()
    operation = spec["paths"]["/v1/tables/{name}"]["get"]
    parameters = {p["name"] for p in operation["parameters"]}
    assert {"date_from", "date_to", "site", "product", "machine", "columns", "limit", "offset"} <= parameters
    assert {"401", "403", "404", "422"} <= set(operation["responses"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_filtering_on_a_hidden_column_is_403(api: Api) -> None:
    # A role that may not see product_id must not learn its values from filtered row counts.
    policy = AccessPolicy.model_validate(
        {"roles": {"admin": {"domains": ["pharma"], "deny_columns": ["product_id", "date_key"]}}}
    )
    server, client = serve(api.lake_root, policy)
    with server:
        by_product = client.get("/v1/tables/fact_ventes", "admin", product="P1", columns="product_id")
        by_date = client.get("/v1/tables/fact_ventes", "admin", date_from="2026-11-01")
        unfiltered = client.get("/v1/tables/fact_ventes", "admin", limit=MAX_PAGE)
    assert by_product.status_code == 403
    assert by_product.json()["error"]["details"] == {"role": "admin", "table": "fact_ventes", "columns": ["product_id"]}
    assert (by_date.status_code, by_date.json()["error"]["details"]["columns"]) == (403, ["date_key"])
    assert unfiltered.status_code == 200 and unfiltered.json()["total"] == 5
    assert "product_id" not in unfiltered.json()["columns"]
