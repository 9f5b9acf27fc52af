"""The engine tests' Apache Spark Connect server and the two lakes (one per engine)
built from the same generated sources."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.engines.lakes import GENERATOR, KEY, PROJECT_ROOT, RUN_DATE


@pytest.fixture(scope="session")
def spark_url():
    """The URL of a local Apache Spark Connect server: the one `lakehouse spark serve`
    runs, else one started for the session (and stopped after it)."""
    from lakehouse import spark_server
    from lakehouse.config import load_settings

    settings = load_settings()  # the project's var/: its ivy cache holds the jars
    running = spark_server.read_state(settings)
    if running is not None and running.alive and spark_server._port_answers(running.port):
        yield running.url
        return
    began = time.monotonic()
    state = spark_server.start(settings, port=0, cores="2", driver_memory="3g")
    print(f"Spark Connect server started in {time.monotonic() - began:.1f} s")
    try:
        yield state.url
    finally:
        close_connect_sessions()
        spark_server.stop(settings)


def close_connect_sessions() -> None:
    """Close this process's Spark Connect sessions before their server goes: a client
    still open at exit sends cleanup calls to the dead server and retries them with
    back-off for minutes, holding the test process open after its last test."""
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    for _ in range(10):
        session = ConnectSession._get_default_session()
        if session is None:
            return
        session.stop()


def run_pipelines(base: Path, spark_remote: str | None) -> Path:
    """Generate the sources into ``base`` and run ingestion then transformation."""
    from lakehouse.config import load_settings
    from lakehouse.generate import generate_all
    from lakehouse.jobs import load_jobs, run_job
    from lakehouse.postgres import ensure_server

    lake, runs = base / "lake", base / "runs"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LAKEHOUSE_HOME", str(PROJECT_ROOT))
        env.setenv("LAKEHOUSE_LAKE_ROOT", str(lake))
        env.setenv("LAKEHOUSE_VAR_DIR", str(base / "var"))
        env.setenv("LAKEHOUSE_RUNS_DIR", str(runs))
        env.setenv("LAKEHOUSE_GOVERNANCE__PSEUDONYMISATION_KEY", KEY)
        if spark_remote:
            env.setenv("SPARK_REMOTE", spark_remote)
        else:
            env.delenv("SPARK_REMOTE", raising=False)
        settings = load_settings(run_date=RUN_DATE, generator=GENERATOR)
        generate_all(settings, endpoint=ensure_server(settings))  # kept up for the kernels
        jobs = load_jobs(PROJECT_ROOT / "jobs.yaml", project_root=PROJECT_ROOT)
        for job in ("pipeline_ingestion", "pipeline_transformation"):
            began = time.monotonic()
            run = run_job(
                jobs,
                job,
                params={"run_date": RUN_DATE, "lake_root": str(lake)},
                project_root=PROJECT_ROOT,
                runs_dir=runs,
                max_parallel=2,
                quiet=True,
            )
            print(f"{'spark' if spark_remote else 'sail'}: {job} {time.monotonic() - began:.1f} s")
            assert run.ok, f"{job} on {'Apache Spark' if spark_remote else 'Sail'}: {run.error}"
    return lake


@pytest.fixture(scope="session")
def lakes(spark_url, tmp_path_factory):
    return {
        "sail": run_pipelines(tmp_path_factory.mktemp("sail"), None),
        "spark": run_pipelines(tmp_path_factory.mktemp("spark"), spark_url),
    }
