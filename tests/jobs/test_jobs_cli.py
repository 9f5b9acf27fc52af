"""``lakehouse jobs ...`` through click's CliRunner."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakehouse.jobs.cli import jobs_cli

WriteJobs = Callable[[str], Path]

JOBS = """
jobs:
  daily:
    description: one good task
    parameters: [{name: label, default: x}]
    tasks:
      - task_key: only
        notebook: notebooks/write_params.ipynb
        parameters: {label: "{{job.parameters.label}}", out_path: "{{job.name}}.json"}
  broken:
    tasks:
      - {task_key: explode, notebook: notebooks/fail.ipynb}
      - {task_key: after, notebook: notebooks/write_params.ipynb, depends_on: [{task_key: explode}]}
"""


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def test_validate_list_and_schema(cli: CliRunner, write_jobs: WriteJobs, project: Path) -> None:
    path = write_jobs(JOBS)
    result = cli.invoke(jobs_cli, ["validate"])
    assert result.exit_code == 0 and "valid: 2 jobs, 3 tasks" in result.output
    listing = cli.invoke(jobs_cli, ["list"])
    assert listing.exit_code == 0
    assert "daily" in listing.output and "after explode" in listing.output
    schema = cli.invoke(jobs_cli, ["schema", "-o", str(project / "jobs.schema.json")])
    assert schema.exit_code == 0
    assert json.loads((project / "jobs.schema.json").read_text())["title"] == "Lakehouse jobs.yaml"
    path.write_text(JOBS.replace("depends_on: [{task_key: explode}]", "depends_on: [{task_key: nope}]"))
    bad = cli.invoke(jobs_cli, ["validate", "--file", str(path)])
    assert bad.exit_code == 1
    assert "depends_on names unknown task 'nope'" in bad.stderr and f"{path}:13" in bad.stderr
    assert "--param" in cli.invoke(jobs_cli, ["run", "--help"]).output


def test_run_status_and_exit_codes(cli: CliRunner, write_jobs: WriteJobs, project: Path) -> None:
    write_jobs(JOBS)
    unknown = cli.invoke(jobs_cli, ["run", "daily", "--param", "lable=y"])
    assert unknown.exit_code == 1 and "no parameter 'lable'" in unknown.stderr
    assert not (project / "runs").exists(), "parameters are checked before anything runs"
    malformed = cli.invoke(jobs_cli, ["run", "daily", "--param", "oops"])
    assert malformed.exit_code == 2 and "NAME=VALUE" in malformed.stderr

    ok = cli.invoke(jobs_cli, ["run", "daily", "-p", "label=from-cli", "--run-id", "R-ok", "-q"])
    assert ok.exit_code == 0, ok.stderr
    assert f"run folder: {project / 'runs' / 'daily' / 'R-ok'}" in ok.stdout
    assert "SUCCESS" in ok.stdout
    assert json.loads((project / "notebooks" / "daily.json").read_text())["label"] == "from-cli"

    failed = cli.invoke(jobs_cli, ["run", "broken", "--run-id", "R-bad"])
    assert failed.exit_code == 1
    assert "task 'explode' failed" in failed.stderr and "ValueError: boom" in failed.stderr
    assert "UPSTREAM_FAILED" in failed.stdout
    assert "explode started" in failed.stderr, "progress lines go to stderr"

    status = cli.invoke(jobs_cli, ["status"])
    assert status.exit_code == 0 and "R-ok" in status.stdout and "R-bad" in status.stdout
    latest = cli.invoke(jobs_cli, ["status", "broken"])
    assert "R-ok" not in latest.stdout and "ValueError: boom" in latest.stdout
