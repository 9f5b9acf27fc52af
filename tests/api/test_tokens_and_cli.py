"""Tokens (only hashes stored), `lakehouse api token create`, and the API built from settings."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from lakehouse.api import BackgroundServer, app_from_settings
from lakehouse.api.tokens import TOKEN_PREFIX, TokenStore, create_token, hash_token, read_tokens_file
from lakehouse.cli import main
from lakehouse.config import load_settings
from lakehouse.governance.audit import read_log
from tests.api.conftest import build_gold


def test_create_token_stores_only_its_hash_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "local" / "api_tokens.yaml"
    token = create_token(path, name="alice", role="pharma_analyst")
    assert token.startswith(TOKEN_PREFIX) and len(token) > 40
    text = path.read_text()
    assert token not in text
    assert yaml.safe_load(text) == {"tokens": [{"name": "alice", "role": "pharma_analyst", "sha256": hash_token(token)}]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    principal = TokenStore(read_tokens_file(path)).authenticate(token)
    assert (principal.name, principal.role) == ("alice", "pharma_analyst")
    assert TokenStore(read_tokens_file(path)).authenticate(token + "x") is None
    with pytest.raises(ValueError, match="'alice' already exists"):
        create_token(path, name="alice", role="admin")


def test_cli_token_create_prints_the_token_once_and_refuses_unknown_roles(tmp_path: Path, monkeypatch) -> None:
    tokens_file = tmp_path / "api_tokens.yaml"
    monkeypatch.setenv("LAKEHOUSE_API__TOKENS_FILE", str(tokens_file))
    runner = CliRunner()
    result = runner.invoke(main, ["api", "token", "create", "--role", "energy_analyst", "--name", "bob"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert read_tokens_file(tokens_file)[0].sha256 == hash_token(token)

    listed = runner.invoke(main, ["api", "token", "list"])
    assert "bob" in listed.output and "energy_analyst" in listed.output and token not in listed.output

    refused = runner.invoke(main, ["api", "token", "create", "--role", "intern"])
    assert refused.exit_code == 2
    assert "unknown role 'intern'" in refused.output


def test_api_from_settings_serves_a_token_file_and_audits_on_shutdown(tmp_path: Path, monkeypatch) -> None:
    lake_root = str(tmp_path / "lake")
    build_gold(lake_root)
    tokens_file = tmp_path / "api_tokens.yaml"
    token = create_token(tokens_file, name="carol", role="admin")
    monkeypatch.setenv("LAKEHOUSE_API__TOKENS_FILE", str(tokens_file))
    settings = load_settings(lake_root=lake_root)

    with BackgroundServer(app_from_settings(settings)) as server:
        url = server.url + "/v1/kpis/kpi_marge_journaliere"
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        assert (response.status_code, response.json()["total"]) == (200, 4)
        # A token created while the server runs works, a revoked one stops working (file checked every 1 s).
        later = create_token(tokens_file, name="erin", role="energy_analyst")
        tokens_file.write_text(tokens_file.read_text().replace("carol", "revoked").replace(hash_token(token), "f" * 64))
        time.sleep(1.1)
        assert httpx.get(server.url + "/v1/me", headers={"Authorization": f"Bearer {later}"}).json()["name"] == "erin"
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    # Stopping the server flushes the buffered audit events to the lake.
    log = read_log(lake_root).to_pylist()
    assert [(e["actor"], e["action"], e["target"]) for e in log] == [("carol", "api.read", "gold.pharma.kpi.kpi_marge_journaliere")]


def test_a_token_with_a_role_missing_from_access_yaml_stops_the_start(tmp_path: Path, monkeypatch) -> None:
    tokens_file = tmp_path / "api_tokens.yaml"
    create_token(tokens_file, name="dave", role="auditor")
    monkeypatch.setenv("LAKEHOUSE_API__TOKENS_FILE", str(tokens_file))
    with pytest.raises(ValueError, match=r"role\(s\) \['auditor'\] not defined"):
        app_from_settings(load_settings(lake_root=str(tmp_path / "lake")))
