"""The API's /docs (Swagger UI) and /redoc, served by a real uvicorn server on a free
loopback port and opened offline: the pages render from the server's own assets, and
"Authorize" with a bearer token makes "Try it out" answer with the token's identity."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.api.conftest import Api, build_gold, serve
from tests.api.conftest import policy as policy  # noqa: F401  (fixture)

from .conftest import OfflineBrowser

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser_api_docs")]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory, policy) -> Iterator[Api]:  # noqa: F811
    root = str(tmp_path_factory.mktemp("api_docs") / "lake")
    build_gold(root)
    server, client = serve(root, policy)
    assert client.url.startswith("http://127.0.0.1:")
    with server:
        yield client


def test_swagger_ui_renders_offline_and_authorize_takes_a_bearer_token(
    browser: OfflineBrowser, api_server: Api
) -> None:
    visit = browser.visit("api_docs_swagger_ui", api_server.url + "/docs")
    page = visit.page
    page.locator(".opblock").first.wait_for()
    assert "Lakehouse internal API" in page.locator(".information-container").inner_text()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/health", "/v1/me", "/v1/tables", "/v1/tables/{name}", "/v1/kpis", "/v1/kpis/{name}"} <= set(
        paths
    )

    me = page.locator("#operations-service-me_v1_me_get")
    me.locator(".opblock-summary").click()
    me.locator(".try-out__btn").click()
    me.locator("button.execute").click()
    status = me.locator(".live-responses-table td.response-col_status:not(.col_header)")
    status.wait_for()
    assert status.inner_text().strip().startswith("401")
    assert (
        "missing_token"
        in me.locator(".live-responses-table td.response-col_description:not(.col_header)").inner_text()
    )
    # the one error this page may log: the browser reporting that deliberate 401
    assert visit.errors == [
        "console: Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    assert visit.http_errors == [f"401 {api_server.url}/v1/me"]
    visit.errors.clear()
    visit.http_errors.clear()

    token = api_server.tokens["pharma_analyst"]
    page.locator(".auth-wrapper button.authorize").click()
    dialog = page.locator(".modal-ux")
    assert "HTTPBearer" in dialog.inner_text() and "http, Bearer" in dialog.inner_text()
    dialog.locator("input").fill(token)
    dialog.locator("button.modal-btn.authorize").click()
    assert dialog.locator("button.modal-btn", has_text="Logout").count() == 1  # authorized
    dialog.locator("button.btn-done").click()

    me.locator("button.execute").click()
    me.locator(".live-responses-table td.response-col_status:not(.col_header)", has_text="200").wait_for()
    body = me.locator(
        ".live-responses-table td.response-col_description:not(.col_header) .microlight"
    ).first.inner_text()
    assert json.loads(body) == {"name": "user-pharma_analyst", "role": "pharma_analyst"}
    assert f"Authorization: Bearer {token}" in me.locator(".curl-command").inner_text()
    visit.check(".swagger-ui .information-container", min_chars=20)
    page.close()


def test_redoc_renders_offline(browser: OfflineBrowser, api_server: Api) -> None:
    visit = browser.visit("api_docs_redoc", api_server.url + "/redoc")
    page = visit.page
    page.locator(".api-content h1").first.wait_for()
    text = visit.check(".api-content", min_chars=200)
    assert "Lakehouse internal API" in text
    assert "HTTPBearer" in text  # "Authorizations: HTTPBearer" on each /v1 operation
    operations = page.locator("[data-section-id^='tag/']").count()
    assert operations >= 3  # tags service, gold, kpis
    for summary in ("Me", "Tables", "Table Rows", "Kpi Rows"):
        assert summary in text, summary
    page.close()
