"""The severity policy through the real job runner (papermill kernels): the gate
notebook stops the tasks that depend on it and the job's on_failure webhook alerts;
and the project's own ``pipeline_qualite`` job end to end on a small tmp lake."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nbformat
import pytest

from lakehouse.jobs import JobState, TaskState, run_job
from lakehouse.lake import Lake
from lakehouse.quality.model import ExpectationResult, QualityRun, SuiteRun
from lakehouse.quality.results import append_results, read_results, results_path
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow
GATE = PROJECT_ROOT / "notebooks" / "quality" / "quality_gate.ipynb"


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP server on 127.0.0.1 (free port) keeping the JSON bodies POSTed to it."""
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", bodies
    server.shutdown()
    server.server_close()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with the gate notebook and an ``export`` notebook that leaves a marker."""
    root = tmp_path / "project"
    (root / "conf" / "base").mkdir(parents=True)
    (root / "conf" / "base" / "lakehouse.yaml").write_text(
        "profile: test\nruns_dir: ./runs\npostgres:\n  mode: external\n"
    )
    (root / "notebooks" / "quality").mkdir(parents=True)
    shutil.copy(GATE, root / "notebooks" / "quality" / "quality_gate.ipynb")
    parameters = nbformat.v4.new_code_cell('marker = ""')
    parameters.metadata["tags"] = ["parameters"]
    export = nbformat.v4.new_notebook(
        cells=[
            parameters,
            nbformat.v4.new_code_cell('from pathlib import Path\nPath(marker).write_text("exported")'),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(export, root / "notebooks" / "export.ipynb")
    monkeypatch.setenv("LAKEHOUSE_HOME", str(root))
    monkeypatch.chdir(root)
    return root


def _quality_run(run_date: dt.date, *results: tuple[str, str, bool]) -> QualityRun:
    rows = [
        ExpectationResult(
            suite="gold.fact_ventes",
            layer="gold",
            table_name="fact_ventes",
            expectation=name,
            expectation_type="expect_x",
            column=None,
            severity=severity,
            success=success,
            observed_value=None,
            unexpected_count=None if success else 1,
            unexpected_percent=None,
            sample=None if success else "[99]",
            exception=None,
        )
        for name, severity, success in results
    ]
    at = dt.datetime.combine(run_date, dt.time(7), tzinfo=dt.UTC)
    return QualityRun(f"q-{run_date}", run_date, at, [SuiteRun("gold.fact_ventes", 0.2, rows)])


def _jobs_yaml(project: Path, url: str) -> Path:
    path = project / "jobs.yaml"
    path.write_text(
        textwrap.dedent(f"""
        jobs:
          load_bi:
            parameters:
              - {{name: run_date, default: ""}}
              - {{name: lake_root, default: ""}}
            webhook_notifications: {{on_failure: [{{url: "{url}"}}]}}
            tasks:
              - task_key: quality_gate
                notebook: notebooks/quality/quality_gate.ipynb
                parameters: {{run_date: "{{{{job.parameters.run_date}}}}", lake_root: "{{{{job.parameters.lake_root}}}}"}}
              - task_key: export
                notebook: notebooks/export.ipynb
                depends_on: [{{task_key: quality_gate}}]
                parameters: {{marker: "{project}/exported-{{{{job.parameters.run_date}}}}.txt"}}
          qualite:
            parameters:
              - {{name: run_date, default: ""}}
              - {{name: lake_root, default: ""}}
            webhook_notifications: {{on_failure: [{{url: "{url}"}}]}}
            tasks:
              - task_key: quality_alert
                notebook: notebooks/quality/quality_gate.ipynb
                parameters:
                  run_date: "{{{{job.parameters.run_date}}}}"
                  lake_root: "{{{{job.parameters.lake_root}}}}"
                  fail_on: critical
                  notify_warnings: true
        """).lstrip()
    )
    return path


def test_failed_critical_stops_the_dependent_task_and_alerts_warning_does_not(
    project: Path, tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = webhook
    lake = Lake(str(tmp_path / "lake"))
    results = results_path(lake)
    critical_day, warning_day = dt.date(2026, 11, 26), dt.date(2026, 11, 27)
    append_results(
        _quality_run(
            critical_day, ("key_unique", "critical", True), ("product_sk_in_dim_produit", "critical", False)
        ),
        results,
    )
    append_results(
        _quality_run(
            warning_day, ("key_unique", "critical", True), ("sales_channel_allowed", "warning", False)
        ),
        results,
    )
    jobs = _jobs_yaml(project, url)

    stopped = run_job(
        jobs, "load_bi", params={"run_date": str(critical_day), "lake_root": lake.root}, quiet=True
    )
    assert stopped.state == JobState.FAILED
    assert stopped.tasks["quality_gate"].state == TaskState.FAILED
    assert (
        "gold.fact_ventes: product_sk_in_dim_produit (1 unexpected, e.g. [99])"
        in stopped.tasks["quality_gate"].error
    )
    assert stopped.tasks["export"].state == TaskState.UPSTREAM_FAILED
    assert not (project / f"exported-{critical_day}.txt").exists()
    assert [b["event"] for b in bodies] == ["on_failure"]
    assert bodies[0]["failed_tasks"][0]["task_key"] == "quality_gate"
    assert "product_sk_in_dim_produit" in bodies[0]["failed_tasks"][0]["error"]

    passed = run_job(
        jobs, "load_bi", params={"run_date": str(warning_day), "lake_root": lake.root}, quiet=True
    )
    assert passed.state == JobState.SUCCESS, passed.error
    assert (project / f"exported-{warning_day}.txt").read_text() == "exported"
    assert len(bodies) == 1  # no new alert from the load job: the warning alerts in pipeline_qualite

    # The alert task of the quality job: the warning day succeeds and alerts...
    warned = run_job(jobs, "qualite", params={"run_date": str(warning_day), "lake_root": lake.root}, quiet=True)
    assert warned.state == JobState.SUCCESS, warned.error
    [alert] = bodies[1:]
    assert alert["event"] == "on_quality_warning" and alert["job"] == "qualite"
    assert alert["run_id"] == warned.run_id and alert["run_date"] == str(warning_day)
    assert alert["summary"] == f"1 failed warning expectation(s) on {warning_day}"
    assert alert["details"] == ["[warning] gold.fact_ventes: sales_channel_allowed (1 unexpected, e.g. [99])"]
    # ...the critical day fails the job (on_failure), and a clean day sends nothing.
    failed = run_job(jobs, "qualite", params={"run_date": str(critical_day), "lake_root": lake.root}, quiet=True)
    assert failed.state == JobState.FAILED
    assert [b["event"] for b in bodies[2:]] == ["on_failure"]


def test_pipeline_qualite_job_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dirty_lake: Lake
) -> None:
    """The committed job: run_quality validates every suite of the dirty lake, then the
    alert task fails on the failed expectations (so on_failure notifications go out)."""
    lake = Lake(str(tmp_path / "lake"))
    shutil.copytree(dirty_lake.root, lake.root)
    runs = tmp_path / "runs"
    monkeypatch.setenv("LAKEHOUSE_RUNS_DIR", str(runs))  # the kernels' settings: data docs under tmp
    run = run_job(
        PROJECT_ROOT / "jobs.yaml",
        "pipeline_qualite",
        params={"run_date": "2026-11-26", "lake_root": lake.root},
        project_root=PROJECT_ROOT,
        runs_dir=runs,
        quiet=True,
    )
    assert run.tasks["run_quality"].state == TaskState.SUCCESS, run.tasks["run_quality"].error
    assert run.state == JobState.FAILED and run.tasks["quality_alert"].state == TaskState.FAILED
    alert = run.tasks["quality_alert"].error
    # no volume history in this lake: 6 failures (the volume drop is not one yet), of
    # which the critical ones fail the alert task; the warnings are only sent
    assert "4 failed critical expectation(s)" in alert
    for name in ("key_order_id_line_number_unique", "product_sk_in_dim_produit", "fresh_within_48h", "kwh_in_range"):
        assert name in alert
    for name in ("temperature_c_in_range", "machine_sk_mostly_known"):
        assert name not in alert
    failed = read_results(results_path(lake))
    assert sorted(failed.loc[~failed["success"], "expectation"]) == sorted(
        [
            "key_order_id_line_number_unique",
            "product_sk_in_dim_produit",
            "fresh_within_48h",
            "kwh_in_range",
            "temperature_c_in_range",
            "machine_sk_mostly_known",
        ]
    )
    stored = read_results(results_path(lake))
    assert set(stored["suite"]) == {
        "silver.order_lines",
        "silver.iot_readings_hourly",
        "gold.dim_produit",
        "gold.dim_site",
        "gold.dim_temps",
        "gold.dim_machine",
        "gold.fact_ventes",
        "gold.fact_consommation_energie",
        "gold.fact_production",
    }
    quality_dir = runs / "quality"
    assert (quality_dir / "summary.html").is_file()
    assert len(list(quality_dir.glob("*/data_docs/index.html"))) == 1
