"""The internal read-only HTTP API over gold (FastAPI; OpenAPI at /openapi.json, /docs).

Every ``/v1`` route needs ``Authorization: Bearer <token>``; the token's role decides
which tables, rows and columns are served (conf/base/access.yaml). Errors always have
the body ``{"error": {"code", "message", "details"}}``.

The documentation pages ``/docs`` (Swagger UI) and ``/redoc`` are served with their
JavaScript and CSS from the server itself (``/static/docs``, the files of the
``fastapi-offline`` package), never from a CDN, so they work on a machine without internet.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from lakehouse.access import AccessDenied, AccessPolicy, GoldTable, can_read_table, check_columns, check_table
from lakehouse.access import visible_columns as policy_columns
from lakehouse.api.audit import AuditBuffer
from lakehouse.api.gold import GoldReader, InvalidQuery, Page
from lakehouse.api.gold import Query as GoldQuery
from lakehouse.api.tokens import Principal, TokenStore

log = logging.getLogger("lakehouse.api")
_PAGE_PARAMETERS = {"date_from", "date_to", "site", "product", "machine", "columns", "limit", "offset"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


# --- response models (for the OpenAPI document) ---------------------------------------------


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorResponse(BaseModel):
    error: ErrorBody


class ColumnInfo(BaseModel):
    name: str
    type: str


class TableInfo(BaseModel):
    name: str
    domain: str
    model: str
    columns: list[ColumnInfo]


class TablePage(BaseModel):
    table: str
    version: int
    total: int
    limit: int
    offset: int
    next: str | None
    columns: list[str]
    rows: list[dict[str, Any]]


class Me(BaseModel):
    name: str
    role: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (401, 403, 404, 422)
}


class GoldJSONResponse(JSONResponse):
    """JSON with decimals as numbers, dates and timestamps as ISO 8601 strings."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=_json_default, ensure_ascii=False, separators=(",", ":")).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


@dataclass
class ApiContext:
    reader: GoldReader
    tokens: TokenStore
    audit: AuditBuffer | None
    default_page_size: int
    max_page_size: int


def create_app(
    *,
    lake_root: str,
    policy: AccessPolicy,
    tokens: TokenStore,
    audit: AuditBuffer | None = None,
    default_page_size: int = 100,
    max_page_size: int = 5000,
    snapshot_check_seconds: float = 1.0,
) -> FastAPI:
    """The API application for one lake. The app starts ``audit``'s writer thread when
    it starts, and flushes and stops it when it stops; ``audit=None`` records nothing."""
    context = ApiContext(
        reader=GoldReader(lake_root, policy, check_seconds=snapshot_check_seconds),
        tokens=tokens,
        audit=audit,
        default_page_size=default_page_size,
        max_page_size=max_page_size,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if audit is not None:
            audit.start()
        yield
        if audit is not None:
            audit.close()

    app = FastAPI(
        title="Lakehouse internal API",
        version="1",
        description=(
            "Read-only access to the gold tables and KPIs of the lakehouse. Authenticate with "
            "`Authorization: Bearer <token>` (`lakehouse api token create --role R`). What a "
            "token's role may read (tables, rows, columns) is set in conf/base/access.yaml."
        ),
        lifespan=lifespan,
        default_response_class=GoldJSONResponse,
        docs_url=None,  # served by _add_docs_routes with local assets, not FastAPI's CDN ones
        redoc_url=None,
    )
    app.state.api = context
    _add_error_handlers(app)
    _add_docs_routes(app)
    _add_routes(app, context)
    return app


# --- documentation pages (self-hosted assets) -----------------------------------------------

DOCS_STATIC_URL = "/static/docs"


def docs_static_dir() -> Path:
    """Swagger UI (``swagger-ui-bundle.js``, ``swagger-ui.css``), ReDoc
    (``redoc.standalone.js``) and ``favicon.png``, as shipped by the fastapi-offline wheel."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


# ReDoc's sidebar shows the Redocly logo from a CDN whatever the options: served here
# with that one URL replaced by a blank image, so /redoc fetches nothing from elsewhere.
_REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
_BLANK_IMAGE = b"data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


@functools.cache
def _redoc_offline_js() -> bytes:
    return (docs_static_dir() / "redoc.standalone.js").read_bytes().replace(_REDOC_CDN_LOGO, _BLANK_IMAGE)


def _add_docs_routes(app: FastAPI) -> None:
    """FastAPI's "self-hosting JavaScript and CSS for docs" pattern: the pages load only
    URLs of this server. They need no token (they hold no data); "Authorize" in /docs
    takes a bearer token for "Try it out", as declared by the OpenAPI document."""

    @app.get(f"{DOCS_STATIC_URL}/redoc.standalone.js", include_in_schema=False)
    def redoc_js() -> Response:  # declared before the mount, so it wins over the file
        return Response(_redoc_offline_js(), media_type="text/javascript; charset=utf-8")

    app.mount(DOCS_STATIC_URL, StaticFiles(directory=docs_static_dir()), name="docs-static")
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_redirect_url}",
            swagger_js_url=f"{root}{DOCS_STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC_URL}/favicon.png",
            # no badge from the public validator service
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )


# --- authentication and audit ---------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="A token from `lakehouse api token create`.")


def _principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise ApiError(401, "missing_token", "send the header Authorization: Bearer <token>")
    principal = request.app.state.api.tokens.authenticate(credentials.credentials)
    if principal is None:
        raise ApiError(401, "invalid_token", "the bearer token is unknown or revoked")
    return principal


Caller = Annotated[Principal, Depends(_principal)]


def _record(context: ApiContext, principal: Principal, action: str, target: str, details: dict[str, Any]) -> None:
    if context.audit is not None:
        context.audit.record(actor=principal.name, action=action, target=target, details={"role": principal.role, **details})


# --- routes ---------------------------------------------------------------------------------


def _add_routes(app: FastAPI, context: ApiContext) -> None:
    reader = context.reader
    policy = reader.policy

    @app.get("/health", tags=["service"], summary="Liveness probe (no token needed)")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/me", tags=["service"], response_model=Me, responses=_ERRORS)
    def me(caller: Caller) -> Me:
        """The identity and role of the token."""
        return Me(name=caller.name, role=caller.role)

    def list_tables(caller: Principal, *, model: str | None) -> list[TableInfo]:
        infos = []
        for table in sorted(reader.tables().values(), key=lambda t: (t.domain, t.model, t.name)):
            if (model and table.model != model) or not can_read_table(policy, caller.role, table):
                continue
            schema = reader.schema(table)
            visible = policy_columns(policy, caller.role, table, schema.names)
            columns = [ColumnInfo(name=n, type=str(schema.field(n).type)) for n in visible]
            infos.append(TableInfo(name=table.name, domain=table.domain, model=table.model, columns=columns))
        _record(context, caller, "api.list", model or "gold", {"tables": len(infos)})
        return infos

    @app.get("/v1/tables", tags=["gold"], response_model=list[TableInfo], responses=_ERRORS)
    def tables(caller: Caller) -> list[TableInfo]:
        """Gold tables the caller's role may read, with the columns it sees."""
        return list_tables(caller, model=None)

    @app.get("/v1/kpis", tags=["kpis"], response_model=list[TableInfo], responses=_ERRORS)
    def kpis(caller: Caller) -> list[TableInfo]:
        """KPI tables (gold/domain=*/model=kpi) the caller's role may read."""
        return list_tables(caller, model="kpi")

    def read_page(
        request: Request,
        caller: Principal,
        name: str,
        *,
        model: str | None,
        date_from: dt.date | None,
        date_to: dt.date | None,
        site: list[str] | None,
        product: list[str] | None,
        machine: list[str] | None,
        columns: str | None,
        limit: int | None,
        offset: int,
    ) -> GoldJSONResponse:
        unknown = sorted(set(request.query_params) - _PAGE_PARAMETERS)
        if unknown:
            raise InvalidQuery(f"unknown query parameter(s) {', '.join(unknown)}", {"allowed": sorted(_PAGE_PARAMETERS)})
        limit = limit or context.default_page_size
        if limit > context.max_page_size:
            raise InvalidQuery(f"limit {limit} is above the maximum page size {context.max_page_size}", {"limit": limit})
        table = reader.table(name)
        if table is None or (model and table.model != model):
            raise ApiError(404, "table_not_found", f"no {model or 'gold'} table named {name!r}", {"table": name})
        mapping = policy.tables.filters
        filters = tuple(
            (mapping.get(parameter, parameter), tuple(values))
            for parameter, values in (("site", site), ("product", product), ("machine", machine))
            if values
        )
        requested = tuple(c.strip() for c in columns.split(",") if c.strip()) if columns else None
        # Filtering on a hidden column would reveal its values through the row counts.
        used = [*(requested or ()), *(column for column, _ in filters)]
        if date_from or date_to:
            used.append(policy.tables.date_column)
        try:
            check_table(policy, caller.role, table)
            if used:
                check_columns(policy, caller.role, table, used, reader.schema(table).names)
        except AccessDenied as exc:
            _record(context, caller, "api.denied", table.qualified, {"code": exc.code, **exc.details})
            raise
        query = GoldQuery(columns=requested, date_from=date_from, date_to=date_to, filters=filters)
        page = reader.query(table, caller.role, query, limit=limit, offset=offset)
        _record(
            context,
            caller,
            "api.read",
            table.qualified,
            {"version": page.version, "query": str(request.url.query), "rows": len(page.rows)},
        )
        return GoldJSONResponse(_page_body(request, table, page, limit=limit, offset=offset))

    limit_query = Query(None, ge=1, description=f"page size (default {context.default_page_size}, at most {context.max_page_size})")
    offset_query = Query(0, ge=0, description="rows to skip (see `next`)")
    date_from_query = Query(None, description="first day, YYYY-MM-DD (on date_key)")
    date_to_query = Query(None, description="last day, YYYY-MM-DD (inclusive)")
    site_query = Query(None, description="site_id (repeat for several)")
    product_query = Query(None, description="product_id (repeat for several)")
    machine_query = Query(None, description="machine_id (repeat for several)")
    columns_query = Query(None, description="comma-separated columns; default: all the role may see")

    @app.get("/v1/tables/{name}", tags=["gold"], response_model=TablePage, responses=_ERRORS)
    def table_rows(
        request: Request,
        caller: Caller,
        name: str,
        date_from: dt.date | None = date_from_query,
        date_to: dt.date | None = date_to_query,
        site: list[str] | None = site_query,
        product: list[str] | None = product_query,
        machine: list[str] | None = machine_query,
        columns: str | None = columns_query,
        limit: int | None = limit_query,
        offset: int = offset_query,
    ) -> GoldJSONResponse:
        """Rows of a gold table, filtered and paginated, as the caller's role may see them."""
        return read_page(
            request, caller, name, model=None, date_from=date_from, date_to=date_to, site=site,
            product=product, machine=machine, columns=columns, limit=limit, offset=offset,
        )  # fmt: skip

    @app.get("/v1/kpis/{name}", tags=["kpis"], response_model=TablePage, responses=_ERRORS)
    def kpi_rows(
        request: Request,
        caller: Caller,
        name: str,
        date_from: dt.date | None = date_from_query,
        date_to: dt.date | None = date_to_query,
        site: list[str] | None = site_query,
        product: list[str] | None = product_query,
        machine: list[str] | None = machine_query,
        columns: str | None = columns_query,
        limit: int | None = limit_query,
        offset: int = offset_query,
    ) -> GoldJSONResponse:
        """Rows of a KPI table (e.g. kpi_marge_journaliere), filtered and paginated."""
        return read_page(
            request, caller, name, model="kpi", date_from=date_from, date_to=date_to, site=site,
            product=product, machine=machine, columns=columns, limit=limit, offset=offset,
        )  # fmt: skip


def _page_body(request: Request, table: GoldTable, page: Page, *, limit: int, offset: int) -> dict[str, Any]:
    following = offset + limit
    next_url = str(request.url.include_query_params(offset=following, limit=limit)) if following < page.total else None
    return {
        "table": table.name,
        "version": page.version,
        "total": page.total,
        "limit": limit,
        "offset": offset,
        "next": next_url,
        "columns": page.columns,
        "rows": page.rows,
    }


# --- errors ---------------------------------------------------------------------------------


def _error(status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return GoldJSONResponse(body, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(AccessDenied)
    async def access_denied(request: Request, exc: AccessDenied) -> JSONResponse:
        return _error(403, exc.code, str(exc), exc.details)

    @app.exception_handler(InvalidQuery)
    async def invalid_query(request: Request, exc: InvalidQuery) -> JSONResponse:
        return _error(422, "invalid_query", str(exc), exc.details)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"parameter": ".".join(str(part) for part in e["loc"][1:]) or str(e["loc"][0]), "message": e["msg"]}
            for e in exc.errors()
        ]
        message = "; ".join(f"{p['parameter']}: {p['message']}" for p in problems)
        return _error(422, "invalid_parameter", message, {"problems": problems})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("API error on %s", request.url.path)
        return _error(500, "internal_error", "the server could not answer; the error is in its log", {"path": request.url.path})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), {"path": request.url.path})
