"""The documentation pages /docs and /redoc over real HTTP: their assets are served by the
API itself (no CDN), and the OpenAPI document declares the bearer scheme "Authorize" uses.
The pages rendered in Chromium, offline, are in tests/browser/test_api_docs.py."""

from __future__ import annotations

import re

import httpx

from lakehouse.api.app import DOCS_STATIC_URL, docs_static_dir

from .conftest import Api


def _loaded_urls(html: str) -> list[str]:
    """URLs of the scripts, stylesheets and icons a page loads."""
    return re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', html)


def test_docs_pages_load_only_assets_of_the_server_itself(api: Api) -> None:
    docs = httpx.get(api.url + "/docs")
    redoc = httpx.get(api.url + "/redoc")
    assert docs.status_code == redoc.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert sorted(_loaded_urls(docs.text)) == [
        f"{DOCS_STATIC_URL}/favicon.png",
        f"{DOCS_STATIC_URL}/swagger-ui-bundle.js",
        f"{DOCS_STATIC_URL}/swagger-ui.css",
    ]
    assert sorted(_loaded_urls(redoc.text)) == [
        f"{DOCS_STATIC_URL}/favicon.png",
        f"{DOCS_STATIC_URL}/redoc.standalone.js",
    ]
    assert "fonts.googleapis.com" not in redoc.text and "cdn" not in docs.text.lower()
    assert "url: '/openapi.json'" in docs.text and '"validatorUrl": null' in docs.text
    assert 'spec-url="/openapi.json"' in redoc.text


def test_docs_assets_are_served_whole_with_their_types(api: Api) -> None:
    expected = {
        "swagger-ui-bundle.js": "javascript",
        "swagger-ui.css": "text/css",
        "redoc.standalone.js": "javascript",
        "favicon.png": "image/png",
    }
    for name, kind in expected.items():
        response = httpx.get(f"{api.url}{DOCS_STATIC_URL}/{name}")
        assert response.status_code == 200, name
        assert kind in response.headers["content-type"], (name, response.headers["content-type"])
        shipped = (docs_static_dir() / name).read_bytes()
        if name == "redoc.standalone.js":  # its one remote URL, the Redocly logo, replaced by a data: image
            logo = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
            assert shipped.count(logo) == 1 and b"cdn.redoc.ly" not in response.content
            before, after = shipped.split(logo)
            assert response.content.startswith(before) and response.content.endswith(after)
            assert response.content[len(before) : -len(after)].startswith(b"data:image/")
        else:
            assert response.content == shipped
    assert b"SwaggerUIBundle" in (docs_static_dir() / "swagger-ui-bundle.js").read_bytes()[:1000]
    assert httpx.get(f"{api.url}{DOCS_STATIC_URL}/nothing.js").status_code == 404
    assert "oauth2" in httpx.get(api.url + "/docs/oauth2-redirect").text.lower()


def test_openapi_declares_the_bearer_scheme_on_every_data_route_and_hides_the_docs(api: Api) -> None:
    spec = httpx.get(api.url + "/openapi.json").json()
    assert spec["components"]["securitySchemes"] == {
        "HTTPBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from `lakehouse api token create`.",
        }
    }
    secured = {
        path for path, item in spec["paths"].items() if item["get"].get("security") == [{"HTTPBearer": []}]
    }
    assert secured == {"/v1/me", "/v1/tables", "/v1/tables/{name}", "/v1/kpis", "/v1/kpis/{name}"}
    assert "security" not in spec["paths"]["/health"]["get"]
    assert not {"/docs", "/redoc", "/docs/oauth2-redirect"} & set(spec["paths"])


def test_docs_need_no_token_but_the_data_still_does(api: Api) -> None:
    assert httpx.get(api.url + "/docs").status_code == 200
    assert httpx.get(api.url + "/v1/tables").status_code == 401
    assert api.get("/v1/me", "admin").json() == {"name": "user-admin", "role": "admin"}
