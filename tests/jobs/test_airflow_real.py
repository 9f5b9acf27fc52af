"""The DAGs of `lakehouse jobs export-airflow`, loaded and run by a real Apache Airflow 3.

Airflow lives in its own virtualenv (`make airflow-venv`: var/airflow-venv, or the
folder named by LAKEHOUSE_AIRFLOW_VENV); without it these tests are skipped. Every job
of the project's jobs.yaml is exported into a temporary dags folder, Airflow gets a
temporary AIRFLOW_HOME (SQLite metadata database), and everything Airflow is asked goes
through subprocesses of that virtualenv: the CLI, and a small script run by its
interpreter that loads the DagBag and prints what Airflow made of each DAG as JSON.
Then `airflow dags test` runs pipeline_ingestion and pipeline_transformation end to end
on a tiny generated lake (embedded PostgreSQL for the referential): their tasks call
`lakehouse jobs run-task` of the project's own environment (LAKEHOUSE_BIN), which runs
the notebooks through papermill.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakehouse.jobs import load_jobs, templates
from lakehouse.jobs.airflow_export import TRIGGER_RULES, dag_file_name, export_airflow
from lakehouse.jobs.cron import cron_expression
from lakehouse.jobs.schema import RunIf

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUN_DATE = "2026-11-26"
LAKEHOUSE_BIN = str(Path(sys.executable).parent / "lakehouse")
# Recorded in the DAG files at export; the workers' LAKEHOUSE_BIN (the project's own
# command) must win, as docs/airflow.md tells a deployment to rely on.
EXPORTED_BIN = "/opt/not-installed-here/bin/lakehouse"


def _airflow_venv() -> Path | None:
    configured = os.environ.get("LAKEHOUSE_AIRFLOW_VENV")
    venv = Path(configured) if configured else PROJECT_ROOT / "var" / "airflow-venv"
    return venv if (venv / "bin" / "airflow").exists() else None


AIRFLOW_VENV = _airflow_venv()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("airflow_real"),
    pytest.mark.skipif(
        AIRFLOW_VENV is None,
        reason="no Airflow virtualenv: run `make airflow-venv` (var/airflow-venv) "
        "or set LAKEHOUSE_AIRFLOW_VENV to one with Apache Airflow 3 installed",
    ),
]

# Run by the Airflow virtualenv's interpreter: argv[1] the dags folder, argv[2] a folder
# holding one broken DAG file (its import error must be reported: the zero of the
# project's folder is not an artefact of the loading).
DAGBAG_SCRIPT = r"""
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # before Airflow 3.1
    from airflow.models.dagbag import DagBag
import airflow


def seconds(delta):
    return None if delta is None else delta.total_seconds()


def zone(tz):
    return None if tz is None else getattr(tz, "name", str(tz))


def describe(dag):
    timetable = dag.timetable
    return {
        "timetable": type(timetable).__name__,
        "schedule": getattr(timetable, "expression", None),
        "schedule_timezone": zone(getattr(timetable, "timezone", None)),
        "timezone": zone(dag.timezone),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "params": {key: dag.params[key] for key in dag.params},
        "tags": sorted(dag.tags),
        "tasks": {
            task.task_id: {
                "operator": type(task).__name__,
                "upstream": sorted(task.upstream_task_ids),
                "downstream": sorted(task.downstream_task_ids),
                "retries": task.retries,
                "retry_delay": seconds(task.retry_delay),
                "execution_timeout": seconds(task.execution_timeout),
                "trigger_rule": str(getattr(task.trigger_rule, "value", task.trigger_rule)),
                "cwd": task.cwd,
                "env": dict(task.env),
            }
            for task in dag.tasks
        },
    }


bag = DagBag(dag_folder=sys.argv[1])
broken = DagBag(dag_folder=sys.argv[2])
print(json.dumps({
    "version": airflow.__version__,
    "import_errors": bag.import_errors,
    "warnings": getattr(bag, "captured_warnings", {}),
    "broken_import_errors": len(broken.import_errors),
    "files": sorted(dag.fileloc for dag in bag.dags.values()),
    "dags": {dag_id: describe(dag) for dag_id, dag in bag.dags.items()},
}, default=str))
"""


class Airflow:
    """A temporary Airflow installation: AIRFLOW_HOME, dags folder, environment."""

    def __init__(self, venv: Path, base: Path) -> None:
        self.venv, self.base = venv, base
        self.home, self.dags = base / "airflow_home", base / "dags"
        self.home.mkdir()
        self.dags.mkdir()
        path = [entry for entry in os.environ.get("PATH", "").split(os.pathsep) if entry]
        project_bin = str(Path(sys.executable).parent)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        env = {k: v for k, v in env.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__", "LAKEHOUSE_"))}
        env.update(
            PATH=os.pathsep.join([str(venv / "bin"), *(p for p in path if p != project_bin)]),
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="120",
            # the workers' side of docs/airflow.md: where the project's command is
            LAKEHOUSE_BIN=LAKEHOUSE_BIN,
        )
        self.env = env

    def run(self, *args: str, timeout: float = 180, env: dict[str, str] | None = None) -> str:
        completed = subprocess.run(
            [str(self.venv / "bin" / "airflow"), *args],
            cwd=self.base,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert completed.returncode == 0, (
            f"airflow {' '.join(args)} exited {completed.returncode}\n"
            f"{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
        )
        return completed.stdout

    def json(self, *args: str) -> object:
        """The JSON printed by ``airflow ... -o json`` (the last line that parses)."""
        out = self.run(*args)
        for line in reversed(out.splitlines()):
            if line.strip().startswith(("[", "{")):
                return json.loads(line)
        raise AssertionError(f"no JSON in the output of airflow {' '.join(args)}:\n{out[-2000:]}")


@pytest.fixture(scope="module")
def jobs():
    return load_jobs(PROJECT_ROOT / "jobs.yaml", project_root=PROJECT_ROOT)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, jobs) -> Airflow:
    """Every job exported into the dags folder, and ``airflow db migrate`` done."""
    assert AIRFLOW_VENV is not None
    instance = Airflow(AIRFLOW_VENV, tmp_path_factory.mktemp("airflow"))
    for name in jobs.jobs:
        path = export_airflow(
            jobs, name, instance.dags, project_root=PROJECT_ROOT, lakehouse_bin=EXPORTED_BIN
        )
        assert repr(EXPORTED_BIN) in path.read_text()
    instance.run("db", "migrate")
    return instance


@pytest.fixture(scope="module")
def dagbag(airflow: Airflow) -> dict:
    broken = airflow.base / "broken_dags"
    broken.mkdir()
    (broken / "broken.py").write_text(
        "from airflow import DAG\nfrom airflow.no_such_module import Operator\n"
    )
    completed = subprocess.run(
        [str(airflow.venv / "bin" / "python"), "-c", DAGBAG_SCRIPT, str(airflow.dags), str(broken)],
        cwd=airflow.base,
        env=airflow.env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_airflow_is_3_and_loads_every_dag_without_import_errors(dagbag: dict, jobs) -> None:
    assert dagbag["version"].startswith("3."), dagbag["version"]
    assert dagbag["import_errors"] == {}
    assert dagbag["warnings"] == {}, "Airflow warns about the DAG files (deprecations?)"
    assert dagbag["broken_import_errors"] == 1, "a broken DAG file must be reported"
    assert set(dagbag["dags"]) == set(jobs.jobs)


def test_each_dag_matches_jobs_yaml(dagbag: dict, jobs, airflow: Airflow) -> None:
    for name, job in jobs.jobs.items():
        dag = dagbag["dags"][name]
        if job.schedule:
            assert dag["timetable"] == "CronTriggerTimetable", name
            assert dag["schedule"] == cron_expression(job.schedule), name
            assert dag["timezone"] == dag["schedule_timezone"] == job.schedule.timezone, name
        else:
            assert dag["timetable"] == "NullTimetable" and dag["schedule"] is None, name
        assert dag["catchup"] is False and dag["max_active_runs"] == job.max_concurrent_runs, name
        plain = {p.name: p.default or "" for p in job.parameters if not templates.references(p.default or "")}
        assert dag["params"] == plain, name
        assert "lakehouse" in dag["tags"], name

        downstream: dict[str, set[str]] = {task.task_key: set() for task in job.tasks}
        for task in job.tasks:
            for upstream in task.upstream:
                downstream[upstream].add(task.task_key)
        assert set(dag["tasks"]) == set(downstream), name
        for task in job.tasks:
            got = dag["tasks"][task.task_key]
            where = f"{name}.{task.task_key}"
            assert got["operator"] == "BashOperator", where
            assert got["upstream"] == sorted(task.upstream), where
            assert got["downstream"] == sorted(downstream[task.task_key]), where
            assert got["retries"] == task.max_retries, where
            assert got["retry_delay"] == task.retry_interval_seconds, where
            assert got["execution_timeout"] == (task.timeout_seconds or None), where
            assert got["trigger_rule"] == TRIGGER_RULES[RunIf(task.run_if)], where
            assert got["cwd"] == str(PROJECT_ROOT), where
            assert got["env"]["LAKEHOUSE_BIN"] == LAKEHOUSE_BIN, where
            assert got["env"]["LAKEHOUSE_JOB"] == name and got["env"]["LAKEHOUSE_TASK"] == task.task_key

    # the same, as the Airflow CLI sees it once the files are parsed into the database
    airflow.run("dags", "reserialize")
    assert airflow.json("dags", "list-import-errors", "-o", "json") == []
    listed = airflow.json("dags", "list", "-o", "json")
    assert {entry["dag_id"] for entry in listed} == set(jobs.jobs)
    assert {Path(entry["fileloc"]).name for entry in listed} == {dag_file_name(n) for n in jobs.jobs}
    tasks = airflow.run("tasks", "list", "pipeline_transformation").split()
    assert sorted(tasks) == sorted(t.task_key for t in jobs.job("pipeline_transformation").tasks)


@pytest.fixture(scope="module")
def tiny_lake(tmp_path_factory) -> Iterator[dict[str, Path]]:
    """2 days at scale 0.05: landing files, and the referential in an embedded PostgreSQL
    kept up by this process for the kernels (found through LAKEHOUSE_VAR_DIR)."""
    from lakehouse.config import load_settings
    from lakehouse.generate import generate_all
    from lakehouse.postgres import ensure_server

    base = tmp_path_factory.mktemp("airflow_lake")
    paths = {"lake": base / "lake", "var": base / "var", "runs": base / "runs"}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LAKEHOUSE_HOME", str(PROJECT_ROOT))
        env.setenv("LAKEHOUSE_LAKE_ROOT", str(paths["lake"]))
        env.setenv("LAKEHOUSE_VAR_DIR", str(paths["var"]))
        env.setenv("LAKEHOUSE_RUNS_DIR", str(paths["runs"]))
        settings = load_settings(run_date=RUN_DATE, generator={"scale": 0.05, "days": 2, "seed": 7})
        generate_all(settings, endpoint=ensure_server(settings))
    yield paths  # outside the variables: the tests pass them to Airflow themselves


BRONZE = [
    "bronze/source=erp/table=order_lines",
    "bronze/source=erp/table=deliveries",
    "bronze/source=erp/table=stock_snapshots",
    "bronze/source=erp/table=production_batches",
    "bronze/source=iot/table=readings",
]
GOLD = [
    "gold/domain=pharma/model=star/table=fact_ventes",
    "gold/domain=pharma/model=star/table=dim_produit",
    "gold/domain=pharma/model=kpi/table=kpi_marge_journaliere",
]


def _dags_test(airflow: Airflow, tiny_lake: dict[str, Path], dag_id: str) -> Path:
    """``airflow dags test DAG RUN_DATE``; returns the run's folder under the runs folder."""
    # The lake reaches the notebooks as the DAG's `lake_root` param (the run's conf), not
    # through the environment; the rest of the project's state stays in temporary folders.
    env = {
        "LAKEHOUSE_HOME": str(PROJECT_ROOT),
        "LAKEHOUSE_VAR_DIR": str(tiny_lake["var"]),
        "LAKEHOUSE_RUNS_DIR": str(tiny_lake["runs"]),
    }
    conf = json.dumps({"lake_root": str(tiny_lake["lake"])})
    started = time.perf_counter()
    out = airflow.run("dags", "test", dag_id, RUN_DATE, "-c", conf, env=env, timeout=300)
    print(f"airflow dags test {dag_id}: {time.perf_counter() - started:.1f}s")
    [dag_run] = airflow.json("dags", "list-runs", dag_id, "-o", "json")
    assert dag_run["state"] == "success", out[-3000:]
    [run_dir] = [p for p in (tiny_lake["runs"] / dag_id).iterdir() if p.name.startswith("manual__")]
    return run_dir


def _rows(lake: Path, relative: str) -> int:
    return DeltaTable(str(lake / relative)).to_pyarrow_table().num_rows


def test_dags_test_runs_ingestion_then_transformation_through_the_projects_command(
    airflow: Airflow, tiny_lake: dict[str, Path], jobs
) -> None:
    lake = tiny_lake["lake"]
    for dag_id, tables in (("pipeline_ingestion", BRONZE), ("pipeline_transformation", GOLD)):
        run_dir = _dags_test(airflow, tiny_lake, dag_id)
        job = jobs.job(dag_id)
        records = {
            p.name.removesuffix(".task.json"): json.loads(p.read_text()) for p in run_dir.glob("*.task.json")
        }
        assert set(records) == {task.task_key for task in job.tasks}, "each Airflow task ran run-task once"
        for key, record in records.items():
            assert record["state"] == "SUCCESS", record
            assert record["attempts"] == 1
            assert record["parameters"].get("run_date", RUN_DATE) == RUN_DATE  # the logical date
            assert record["parameters"].get("lake_root", str(lake)) == str(lake)  # the DAG run's conf
            if job.task(key).notebook:  # run by papermill into the run's folder
                assert Path(record["output_notebook"]) == run_dir / f"{key}.ipynb"
                assert (run_dir / f"{key}.ipynb").is_file()
                assert record["input_notebook"].startswith(str(PROJECT_ROOT / "notebooks"))
        # the real Airflow kept the order of jobs.yaml: a task started after its upstreams ended
        for task in job.tasks:
            for upstream in task.upstream:
                assert records[upstream]["end_time"] <= records[task.task_key]["start_time"], (dag_id, task)
        for relative in tables:
            assert _rows(lake, relative) > 0, relative
    executed = {p.stem for p in tiny_lake["runs"].rglob("*.ipynb")}
    assert {"bronze_erp", "bronze_iot", "bronze_referential", "silver_pharma", "gold_pharma"} <= executed
