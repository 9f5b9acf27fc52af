"""Airflow export: the generated DAG file's structure (ast), the same file executed
against a stub ``airflow`` module, and its task command run for real once."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lakehouse.jobs import load_jobs
from lakehouse.jobs.airflow_export import TRIGGER_RULES, dag_source
from lakehouse.jobs.cli import jobs_cli

WriteJobs = Callable[[str], Path]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
NB = "notebooks/write_params.ipynb"
JOBS = f"""
jobs:
  etl:
    description: every run_if
    tags: {{team: data}}
    parameters:
      - {{name: run_date, default: "2026-01-01"}}
      - {{name: label, default: x}}
      - {{name: stamp, default: "{{{{job.start_time.iso_date}}}}"}}
    max_concurrent_runs: 2
    schedule: {{quartz_cron_expression: "0 30 6 ? * MON-FRI", timezone: Europe/Paris, pause_status: PAUSED}}
    tasks:
      - task_key: extract
        notebook: {NB}
        parameters: {{out_path: "{{{{job.run_id}}}}.json", run_date: "{{{{job.parameters.run_date}}}}", label: "{{{{job.parameters.label}}}}-{{{{job.parameters.stamp}}}}"}}
        max_retries: 3
        retry_interval_seconds: 90
        timeout_seconds: 600
      - {{task_key: a, notebook: {NB}, depends_on: [{{task_key: extract}}], run_if: ALL_DONE}}
      - {{task_key: b, notebook: {NB}, depends_on: [{{task_key: extract}}], run_if: AT_LEAST_ONE_SUCCESS}}
      - {{task_key: c, notebook: {NB}, depends_on: [{{task_key: a}}, {{task_key: b}}], run_if: NONE_FAILED}}
      - {{task_key: d, notebook: {NB}, depends_on: [{{task_key: a}}, {{task_key: b}}], run_if: ALL_FAILED}}
      - {{task_key: e.f-g, notebook: {NB}, depends_on: [{{task_key: c}}], run_if: AT_LEAST_ONE_FAILED}}
      - {{task_key: h, notebook: {NB}, depends_on: [{{task_key: extract}}]}}
"""


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]


def _keywords(call: ast.Call) -> dict[str, ast.expr]:
    return {kw.arg: kw.value for kw in call.keywords if kw.arg}


def _seconds(node: ast.expr) -> float | None:
    """``datetime.timedelta(seconds=N)`` -> N; ``None`` -> None."""
    if isinstance(node, ast.Constant) and node.value is None:
        return None
    assert isinstance(node, ast.Call) and ast.unparse(node.func) == "datetime.timedelta"
    return ast.literal_eval(_keywords(node)["seconds"])


def test_generated_dag_structure(write_jobs: WriteJobs, project: Path) -> None:
    write_jobs(JOBS)
    result = CliRunner().invoke(jobs_cli, ["export-airflow", "etl", "--out", str(project / "dags")])
    assert result.exit_code == 0, result.output
    path = project / "dags" / "lakehouse_etl.py"
    assert result.stdout.strip() == f"wrote {path}"
    source = path.read_text()
    tree = ast.parse(source)
    compile(source, str(path), "exec")

    [dag] = _calls(tree, "DAG")
    dag_args = {k: ast.unparse(v) for k, v in _keywords(dag).items()}
    assert dag_args["dag_id"] == "'etl'" and dag_args["schedule"] == "'30 6 * * MON-FRI'"
    assert dag_args["start_date"] == "pendulum.datetime(2024, 1, 1, tz='Europe/Paris')"
    assert dag_args["catchup"] == "False" and dag_args["max_active_runs"] == "2"
    assert dag_args["is_paused_upon_creation"] == "True"
    assert ast.literal_eval(_keywords(dag)["params"]) == {"run_date": "2026-01-01", "label": "x"}
    assert ast.literal_eval(_keywords(dag)["tags"]) == ["lakehouse", "team:data"]

    operators = {
        ast.literal_eval(_keywords(call)["task_id"]): _keywords(call) for call in _calls(tree, "BashOperator")
    }
    assert list(operators) == ["extract", "a", "b", "c", "d", "e.f-g", "h"]
    rules = {key: ast.literal_eval(kw["trigger_rule"]) for key, kw in operators.items()}
    assert rules == {
        "extract": "all_success",
        "a": "all_done",
        "b": "one_success",
        "c": "none_failed",
        "d": "all_failed",
        "e.f-g": "one_failed",
        "h": "all_success",
    }
    assert set(rules.values()) == set(TRIGGER_RULES.values())
    extract = operators["extract"]
    assert ast.literal_eval(extract["retries"]) == 3
    assert _seconds(extract["retry_delay"]) == 90 and _seconds(extract["execution_timeout"]) == 600
    assert (
        _seconds(operators["a"]["execution_timeout"]) is None
        and ast.literal_eval(operators["a"]["retries"]) == 0
    )
    assert "retry_on_timeout: false" in source

    edges = {
        (ast.literal_eval(node.left.slice), ast.literal_eval(node.right.slice))
        for node in ast.walk(tree)
        if isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.RShift)
        and isinstance(node.left, ast.Subscript)
        and isinstance(node.right, ast.Subscript)
    }
    assert edges == {
        ("extract", "a"),
        ("extract", "b"),
        ("extract", "h"),
        ("a", "c"),
        ("b", "c"),
        ("a", "d"),
        ("b", "d"),
        ("c", "e.f-g"),
    }


STUB_AIRFLOW = """
class DAG:
    current = None
    def __init__(self, **kwargs):
        self.kwargs, self.tasks, self.edges = kwargs, {}, set()
    def __enter__(self):
        DAG.current = self
        return self
    def __exit__(self, *exc):
        DAG.current = None
"""
STUB_BASH = """
from airflow import DAG

class BashOperator:
    def __init__(self, task_id, **kwargs):
        self.task_id, self.kwargs, self.dag = task_id, kwargs, DAG.current
        self.dag.tasks[task_id] = self
    def __rshift__(self, other):
        self.dag.edges.add((self.task_id, other.task_id))
        return other
"""
STUB_PENDULUM = """
import datetime, zoneinfo
def datetime(year, month, day, tz="UTC"):
    import datetime as dt
    return dt.datetime(year, month, day, tzinfo=zoneinfo.ZoneInfo(tz))
"""


@pytest.fixture
def stub_airflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tiny ``airflow`` (DAG, BashOperator) and ``pendulum`` modules on sys.path."""
    root = tmp_path / "stubs"
    (root / "airflow" / "operators").mkdir(parents=True)
    (root / "airflow" / "__init__.py").write_text(STUB_AIRFLOW)
    (root / "airflow" / "operators" / "__init__.py").write_text("")
    (root / "airflow" / "operators" / "bash.py").write_text(STUB_BASH)
    (root / "pendulum.py").write_text(STUB_PENDULUM)
    monkeypatch.syspath_prepend(str(root))
    for name in ("airflow", "airflow.operators", "airflow.operators.bash", "pendulum"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield
    for name in ("airflow", "airflow.operators", "airflow.operators.bash", "pendulum"):
        sys.modules.pop(name, None)


def _render(value: str, context: dict[str, str]) -> str:
    """The few Jinja expressions of the DAG, as Airflow would render them."""
    for expression, rendered in context.items():
        value = value.replace("{{ " + expression + " }}", rendered)
    assert "{{" not in value, value
    return value


@pytest.mark.slow
def test_dag_executes_and_its_command_runs_the_task(
    write_jobs: WriteJobs, project: Path, stub_airflow: None
) -> None:
    path = write_jobs(JOBS)
    source = dag_source(
        load_jobs(path),
        "etl",
        project_root=project,
        lakehouse_bin=str(Path(sys.executable).parent / "lakehouse"),
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, "lakehouse_etl.py", "exec"), namespace)
    dag = namespace["dag"]
    assert (
        dag.kwargs["schedule"] == "30 6 * * MON-FRI"
        and str(dag.kwargs["start_date"].tzinfo) == "Europe/Paris"
    )
    assert ("c", "e.f-g") in dag.edges and len(dag.edges) == 8
    extract = dag.tasks["extract"]
    assert extract.kwargs["execution_timeout"].total_seconds() == 600 and extract.kwargs["retries"] == 3

    context = {
        "run_id": "manual__2026-11-26T05:00:00+00:00",
        "ti.try_number": "1",
        "dag_run.start_date.isoformat()": "2026-11-26T05:00:00+00:00",
        "params.run_date": "2026-11-26",
        "params.label": "from-airflow",
    }
    env = {key: _render(value, context) for key, value in extract.kwargs["env"].items()}
    completed = subprocess.run(
        ["bash", "-c", extract.kwargs["bash_command"]],
        cwd=extract.kwargs["cwd"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    run_dir = project / "runs" / "etl" / "manual__2026-11-26T05:00:00+00:00"
    written = json.loads((project / "notebooks" / "manual__2026-11-26T05:00:00+00:00.json").read_text())
    assert written["run_date"] == "2026-11-26" and written["task_key"] == "extract"
    assert written["label"] == "from-airflow-2026-11-26", (
        "templated default rendered with the DAG run's start"
    )
    assert json.loads((run_dir / "extract.task.json").read_text())["state"] == "SUCCESS"
    assert (run_dir / "extract.ipynb").exists()


def test_project_jobs_file_has_the_architecture_jobs() -> None:
    jobs = load_jobs(PROJECT_ROOT / "jobs.yaml", project_root=PROJECT_ROOT)
    tasks = {name: [t.task_key for t in job.tasks] for name, job in jobs.jobs.items()}
    assert tasks == {
        "daily": ["ingestion", "transformation", "quality", "ml_scoring", "load_bi", "catalog"],
        "dag_ingest_ref_data": ["bronze_referential"],
        "dag_ingest_erp": ["bronze_erp"],
        "dag_ingest_iot": ["bronze_iot"],
        "dag_ingest_regulatory": ["bronze_regulatory"],
        "pipeline_ingestion": ["ref_data", "erp", "iot", "regulatory"],
        "pipeline_transformation": ["silver_pharma", "gold_pharma", "silver_energy", "gold_energy"],
        "pipeline_qualite": ["run_quality", "quality_alert"],
        "pipeline_load_bi": ["quality_gate", "export_tableau", "load_postgres_bi", "build_dashboards"],
        "ml_training_weekly": ["train_energy_models"],
        "ml_scoring_daily": ["bootstrap_models", "score_energy"],
    }
    daily = jobs.job("daily")
    assert daily.schedule is not None and (daily.schedule.cron, daily.schedule.timezone) == (
        "0 6 * * *",
        "Europe/Paris",
    )
    # daily chains the stage jobs; only daily and the weekly training are scheduled
    children = {t.task_key: t.run_job_task.job_name for t in daily.tasks if t.run_job_task}
    assert children == {
        "ingestion": "pipeline_ingestion",
        "transformation": "pipeline_transformation",
        "quality": "pipeline_qualite",
        "ml_scoring": "ml_scoring_daily",
        "load_bi": "pipeline_load_bi",
    }
    assert {name for name, job in jobs.jobs.items() if job.schedule} == {"daily", "ml_training_weekly"}
    assert daily.task("transformation").upstream == ["ingestion"]
    assert daily.task("load_bi").upstream == ["quality", "ml_scoring"]
    assert daily.task("catalog").upstream == ["load_bi"] and daily.task("catalog").run_if == "ALL_DONE"
    assert jobs.job("pipeline_transformation").task("gold_pharma").upstream == ["silver_pharma"]
    # every export waits for the quality gate
    load_bi = jobs.job("pipeline_load_bi")
    assert all(load_bi.task(key).upstream == ["quality_gate"] for key in tasks["pipeline_load_bi"][1:])
    assert load_bi.task("quality_gate").parameters["fail_on"] == "critical"
    for job in jobs.jobs.values():
        assert job.parameter_defaults() == {"run_date": "", "lake_root": ""}
    source = dag_source(jobs, "daily", project_root=PROJECT_ROOT)
    assert "schedule='0 6 * * *'" in source
    assert "    tasks['ingestion'] >> tasks['transformation']\n" in source
