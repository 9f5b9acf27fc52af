"""``lakehouse api``: serve the internal API and manage its tokens."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from lakehouse.config import ConfigError, Settings, load_settings

console = Console()


@click.group("api")
def api_cli() -> None:
    """The internal read-only HTTP API over gold (see docs/api.md).

    \b
    Examples:
      lakehouse api token create --role pharma_analyst --name alice
      lakehouse api serve --port 8000
      curl -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:8000/v1/kpis/kpi_marge_journaliere?site=S01"
    """


@api_cli.command("serve")
@click.option("--host", default=None, help="Default: api.host of the configuration (127.0.0.1).")
@click.option("--port", type=int, default=None, help="Default: api.port of the configuration (8000).")
@click.option("--lake-root", default=None, help="Default: lake_root of the configuration.")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log each request (never its token).")
def serve(host: str | None, port: int | None, lake_root: str | None, access_log: bool) -> None:
    """Serve the API until Ctrl-C (OpenAPI documentation at /docs)."""
    import uvicorn

    from lakehouse.api.server import app_from_settings

    settings = _settings(lake_root=lake_root)
    try:
        app = app_from_settings(settings)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    tokens = len(app.state.api.tokens)
    if not tokens:
        console.print("[yellow]no API token yet[/]: create one with `lakehouse api token create --role R`")
    host, port = host or settings.api.host, port or settings.api.port
    console.print(f"Serving gold of {settings.lake_root} on http://{host}:{port} ({tokens} token(s)); docs at /docs")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log)


@api_cli.group("token")
def token() -> None:
    """Bearer tokens (only their SHA-256 is stored, in api.tokens_file)."""


@token.command("create")
@click.option("--role", required=True, help="A role of conf/base/access.yaml.")
@click.option("--name", default=None, help="Who uses it (shown in the audit log); default: <role>-<n>.")
def token_create(role: str, name: str | None) -> None:
    """Create a token, store its hash and print the token once (it cannot be shown again)."""
    from lakehouse.api.server import load_policy
    from lakehouse.api.tokens import create_token, read_tokens_file

    settings = _settings()
    policy = load_policy(settings)
    if role not in policy.roles:
        raise click.BadParameter(f"unknown role {role!r}; roles: {', '.join(sorted(policy.roles))}", param_hint="--role")
    path = settings.project_root / settings.api.tokens_file
    name = name or f"{role}-{len(read_tokens_file(path)) + 1}"
    try:
        secret = create_token(path, name=name, role=role)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"Token for [bold]{name}[/] (role {role}); its hash is in {path}. Copy it now, it is not stored:", highlight=False)
    click.echo(secret)


@token.command("list")
def token_list() -> None:
    """Names and roles of the known tokens (never the tokens)."""
    from lakehouse.api.tokens import read_tokens_file

    settings = _settings()
    table = Table(title="API tokens")
    table.add_column("name")
    table.add_column("role")
    table.add_column("from")
    for entry in settings.api.tokens:
        table.add_row(entry.name, entry.role, "settings")
    for entry in read_tokens_file(settings.project_root / settings.api.tokens_file):
        table.add_row(entry.name, entry.role, str(settings.api.tokens_file))
    console.print(table)


def _settings(**overrides: str | None) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
