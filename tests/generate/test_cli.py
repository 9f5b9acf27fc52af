"""The ``generate`` click command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakehouse.generate import generate_command


def test_help_names_every_option_and_where_files_go():
    result = CliRunner().invoke(generate_command, ["--help"])
    assert result.exit_code == 0, result.output
    for text in ("--scale", "--days", "--seed", "--run-date", "--no-postgres", "YYYY-MM-DD",
                 "landing/source=erp", "ground_truth", "LAKEHOUSE_LAKE_ROOT"):  # fmt: skip
        assert text in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scale", "0"], "--scale"),
        (["--scale", "51"], "--scale"),
        (["--days", "0"], "--days"),
        (["--seed", "-1"], "--seed"),
        (["--run-date", "2026-02-31"], "--run-date"),
    ],
)
def test_invalid_options_fail_before_generating(args, message, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_LAKE_ROOT", str(tmp_path / "lake"))
    result = CliRunner().invoke(generate_command, [*args, "--no-postgres"])
    assert result.exit_code == 2
    assert message in result.output and "Invalid value" in result.output
    assert not (tmp_path / "lake").exists()


def _run(tmp_path: Path, monkeypatch, *extra: str):
    monkeypatch.setenv("LAKEHOUSE_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("LAKEHOUSE_VAR_DIR", str(tmp_path / "var"))
    args = ["--scale", "0.05", "--days", "3", "--seed", "3", "--run-date", "2026-11-26", *extra]
    return CliRunner().invoke(generate_command, args)


def test_generate_files_only(tmp_path: Path, monkeypatch):
    result = _run(tmp_path, monkeypatch, "--no-postgres")
    assert result.exit_code == 0, result.output
    assert "order_lines" in result.stdout and "iot_readings" in result.stdout
    assert str(tmp_path / "lake" / "landing") in result.stdout
    assert "not loaded" in result.stdout
    files = sorted((tmp_path / "lake/landing/source=erp/order_lines").glob("*/*.csv"))
    assert [f.name for f in files] == [f"order_lines_2026112{d}.csv" for d in (4, 5, 6)]
    truth = json.loads((tmp_path / "var/ground_truth/defects.json").read_text())
    assert truth["generator"] == {
        "seed": 3, "scale": 0.05, "days": 3, "run_date": "2026-11-26", "start_date": "2026-11-24",
    }  # fmt: skip
    assert not (tmp_path / "var" / "postgres").exists()


@pytest.mark.slow  # starts an embedded PostgreSQL
def test_generate_with_postgres(tmp_path: Path, monkeypatch):
    result = _run(tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "schema referential" in result.stdout
    assert (tmp_path / "var" / "postgres").is_dir()
