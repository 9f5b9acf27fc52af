"""Hooks the application registers with the jobs package: services started before a
run by the CLI, listeners told when a run ends."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakehouse.config import Settings
from lakehouse.jobs import JobRun, JobState, hooks, load_run, run_job
from lakehouse.jobs.cli import jobs_cli
from lakehouse.jobs.services import RunServices
from tests.jobs.fakes import FakeExecutor

WriteJobs = Callable[[str], Path]
JOBS = """
jobs:
  job:
    tasks:
      - {task_key: a, notebook: notebooks/write_params.ipynb}
"""


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hooks added by a test are gone after it."""
    monkeypatch.setattr(hooks, "_services", list(hooks._services))
    monkeypatch.setattr(hooks, "_run_listeners", list(hooks._run_listeners))


def test_importing_lakehouse_registers_the_application_hooks_in_any_process() -> None:
    code = (
        "import json, lakehouse.jobs.hooks as h;"
        "print(json.dumps([[f.__module__ + '.' + f.__name__ for f in h._services],"
        " [f.__module__ + '.' + f.__name__ for f in h.run_listeners()]]))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(output) == [["lakehouse.wiring.embedded_postgres"], ["lakehouse.wiring.audit_job_run"]]


def test_listeners_see_the_final_run_and_a_failing_one_is_a_warning(
    write_jobs: WriteJobs, registry: None
) -> None:
    seen: list[tuple[str, str, bool]] = []

    def remember(run: JobRun, services: RunServices) -> None:
        seen.append((run.run_id, run.state.value, services.record_history))

    def broken(run: JobRun, services: RunServices) -> None:
        raise ValueError("no")

    hooks.add_run_listener(remember)
    hooks.add_run_listener(broken)
    hooks.add_run_listener(remember)  # once only
    run = run_job(
        write_jobs(JOBS), "job", quiet=True, executor=FakeExecutor(), run_id="R1", record_history=False
    )
    assert seen == [("R1", "SUCCESS", False)]
    assert run.state == JobState.SUCCESS
    assert run.warnings == ["job 'job' run R1: broken failed: ValueError: no"]
    assert load_run(run.run_dir).warnings == run.warnings


def test_the_cli_starts_the_services_before_a_run_and_stops_on_a_failing_one(
    write_jobs: WriteJobs, project: Path, registry: None
) -> None:
    write_jobs(JOBS)
    started: list[Path] = []

    def database(settings: Settings) -> str:
        started.append(settings.project_root)
        return "database up"

    def cache(settings: Settings) -> None:
        raise RuntimeError("cannot start the cache")

    hooks.add_service(database)
    hooks.add_service(cache)
    result = CliRunner().invoke(jobs_cli, ["run", "job"])
    assert result.exit_code == 1
    assert "error: cannot start the cache" in result.output
    assert started == [project]
    assert not (project / "runs" / "job").exists()  # no run was started
