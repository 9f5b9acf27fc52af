"""Same numbers on both engines: the embedded Sail server and Apache Spark 4 with Delta
Lake over Spark Connect (``lakehouse spark serve``).

The same generated sources (scale 0.05, 4 days, one seed) go through the ingestion and
transformation jobs of jobs.yaml once per engine, each into its own lake and PostgreSQL;
every gold table must hold the same rows (money to the cent, kWh within 1e-6) and every
silver quarantine the same number of rows. Delta-Spark's tables (checkpoints included)
must stay readable and restorable by the delta-rs code paths.

Needs Java 17 and Maven Central (the server's jars, cached in var/ivy): skipped unless
LAKEHOUSE_TEST_SPARK=1 (``make test-spark``).
"""

from __future__ import annotations

import decimal
import math
import os
import time
from pathlib import Path

import pytest

if os.environ.get("LAKEHOUSE_TEST_SPARK") != "1":
    pytest.skip("Apache Spark engine tests: set LAKEHOUSE_TEST_SPARK=1 (make test-spark)", allow_module_level=True)

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark_engine")]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUN_DATE = "2026-11-26"
GENERATOR = {"scale": 0.05, "days": 4, "seed": 7}
KEY = "cross-engine-test-key-0123456789abcdef"  # one pseudonymisation key for both lakes
# Columns that say when a row was written, not what it holds.
RUN_TIME_COLUMNS = {"_ingested_at", "_processed_at", "_loaded_at", "_built_at", "_updated_at", "_run_id"}
FLOAT_TOLERANCE = 1e-6


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
        _close_connect_sessions()
        spark_server.stop(settings)


def _close_connect_sessions() -> None:
    """Close this process's Spark Connect sessions before their server goes: a client
    still open at exit sends cleanup calls to the dead server and retries them with
    back-off for minutes, holding the test process open after its last test."""
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    for _ in range(10):
        session = ConnectSession._get_default_session()
        if session is None:
            return
        session.stop()


def _run_pipelines(base: Path, spark_remote: str | None) -> Path:
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
        "sail": _run_pipelines(tmp_path_factory.mktemp("sail"), None),
        "spark": _run_pipelines(tmp_path_factory.mktemp("spark"), spark_url),
    }


def _tables(lake: Path, layer: str) -> dict[str, str]:
    from lakehouse.catalog import find_tables

    return {path[len(str(lake)) :].strip("/"): path for path in find_tables(str(lake)) if f"/{layer}/" in path}


def _rows(path: str) -> list[tuple]:
    from deltalake import DeltaTable

    table = DeltaTable(path).to_pyarrow_table()
    names = [n for n in table.column_names if n not in RUN_TIME_COLUMNS]
    rows = [tuple(_normalise(row[n]) for n in names) for row in table.select(names).to_pylist()]
    return names, sorted(rows, key=_sort_key)


def _normalise(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return tuple(_normalise(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _normalise(v)) for k, v in value.items()))
    return value


def _sort_key(row: tuple) -> tuple:
    """Floats sort coarsely (sums in another order differ in their last bits); they
    are compared within FLOAT_TOLERANCE afterwards, not rounded."""
    return tuple((v is None, f"{v:.3f}" if isinstance(v, float) else str(v)) for v in row)


def _assert_same(a, b, where: str) -> None:
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and abs(a - b) <= FLOAT_TOLERANCE, f"{where}: {a} != {b}"
    elif isinstance(a, decimal.Decimal) or isinstance(b, decimal.Decimal):
        assert a == b, f"{where}: {a} != {b} (money must match to the cent)"
    elif isinstance(a, tuple) and isinstance(b, tuple):
        assert len(a) == len(b), f"{where}: {a} != {b}"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_every_gold_table_holds_the_same_rows_on_both_engines(lakes):
    sail, spark = _tables(lakes["sail"], "gold"), _tables(lakes["spark"], "gold")
    assert sail, "no gold table was built"
    assert sorted(spark) == sorted(sail)
    for name in sorted(sail):
        sail_columns, sail_rows = _rows(sail[name])
        spark_columns, spark_rows = _rows(spark[name])
        assert spark_columns == sail_columns, f"{name}: columns differ"
        assert len(spark_rows) == len(sail_rows), f"{name}: {len(spark_rows)} rows on Spark, {len(sail_rows)} on Sail"
        for index, (x, y) in enumerate(zip(sail_rows, spark_rows)):
            _assert_same(x, y, f"{name} row {index}")


def test_every_quarantine_holds_as_many_rows_on_both_engines(lakes):
    from lakehouse import maintenance

    sail, spark = _tables(lakes["sail"], "silver"), _tables(lakes["spark"], "silver")
    quarantines = sorted(name for name in sail if name.endswith("_quarantine"))
    assert quarantines, "no quarantine table"
    counts = {
        name: (maintenance.row_count(sail[name]), maintenance.row_count(spark[name])) for name in quarantines
    }
    assert all(s == p for s, p in counts.values()), counts
    assert {name: maintenance.row_count(spark[name]) for name in spark} == {
        name: maintenance.row_count(sail[name]) for name in sail
    }


def test_delta_rs_reads_and_restores_a_table_delta_spark_checkpointed(spark_url, tmp_path):
    """Delta-Spark writes a checkpoint every 10 commits and its own protocol: the
    delta-rs paths (version, history, appended files, restore) must still work."""
    from lakehouse import maintenance
    from lakehouse.config import load_settings
    from lakehouse.engine import get_spark
    from lakehouse.pipelines.delta_source import read_appended

    session = get_spark(load_settings(spark={"engine": "remote", "remote": spark_url}))
    path = str(tmp_path / "t")
    for batch in range(12):
        session.createDataFrame([(batch, f"d{batch % 2}", decimal.Decimal("1.05"))], "k int, p string, amount decimal(12,2)").write.format(
            "delta"
        ).mode("append").partitionBy("p").save(path)
    assert (tmp_path / "t" / "_delta_log" / "00000000000000000010.checkpoint.parquet").exists()
    assert maintenance.version(path) == 11
    assert maintenance.row_count(path) == 12
    assert len(maintenance.history(path)) == 12
    appended, version = read_appended(session, path, since_version=9)
    assert version == 11 and sorted(r.k for r in appended.collect()) == [10, 11]
    maintenance.open_table(path).restore(5)
    assert sorted(r.k for r in session.read.format("delta").load(path).collect()) == list(range(6))
    session.createDataFrame([(99, "d1", decimal.Decimal("2.00"))], "k int, p string, amount decimal(12,2)").write.format(
        "delta"
    ).mode("append").partitionBy("p").save(path)  # Spark writes on after delta-rs's restore
    assert maintenance.row_count(path) == 7


S3_HEADER = "order_id;line_number;order_date;customer_id;product_id;product_label;site_id;quantity;unit_price;discount_pct"


def test_bronze_on_an_s3_lake_runs_on_spark_with_the_same_s3_uris(tmp_path, monkeypatch, aws_env, s3_client, bucket):
    """The lake root stays ``s3://bucket/lake`` on Spark (S3A serves the ``s3`` scheme):
    bronze reads the landing drop and writes Delta on the local S3 server, delta-rs
    reads it back from the same URI."""
    import datetime as dt

    from lakehouse import maintenance, spark_server
    from lakehouse import pipelines as dp
    from lakehouse.config import load_settings
    from lakehouse.engine import get_spark
    from lakehouse.lake import Lake
    from lakehouse.landing import S3Landing

    for key, value in {"AWS_ENDPOINT": aws_env, "AWS_ENDPOINT_URL": aws_env, "AWS_ALLOW_HTTP": "true"}.items():
        monkeypatch.setenv(key, value)  # the server (started below), pyarrow.fs and delta-rs read them
    lake_root = f"s3://{bucket}/lake"
    drop = tmp_path / "order_lines_20261101.csv"
    lines = [S3_HEADER, "O1;1;01/11/2026;C1;P1;Paracétamol;S01;2;1,50;0", "O2;1;01/11/2026;C1;P1;ragged"]
    drop.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    S3Landing(bucket, "lake", client=s3_client).upload_drop(drop, "erp", "order_lines", dt.date(2026, 11, 1))

    # A server of its own: S3A takes the endpoint when the server starts. Jars from the project's cache.
    project = load_settings()
    settings = load_settings(var_dir=str(tmp_path / "var"))
    state = spark_server.start(
        settings, port=0, cores="2", driver_memory="1g", extra_conf={"spark.jars.ivy": str(project.var_dir / "ivy")}
    )
    try:
        session = get_spark(load_settings(spark={"engine": "remote", "remote": state.url}))
        graph = dp.load_graph("pharma", ["lakehouse.bronze.tables"])
        runner = dp.PipelineRunner(session, graph, Lake(lake_root), parameters={})
        event = runner.run(refresh=["bronze_order_lines"], include_upstreams=False, run_id="s3").event("bronze_order_lines")
        assert (event.status, event.rows_read, event.rows_written) == ("COMPLETED", 2, 2), event
        path = runner.path("bronze_order_lines")
        assert path == f"{lake_root}/bronze/source=erp/table=order_lines"
        assert maintenance.row_count(path) == 2  # delta-rs reads what Delta-Spark wrote on S3
        rows = {r["order_id"] or r["_corrupt_record"]: r for r in maintenance.open_table(path).to_pyarrow_table().to_pylist()}
        assert rows["O1"]["product_label"] == "Paracétamol"
        assert session.read.format("delta").load(path).count() == 2
        session.stop()
    finally:
        spark_server.stop(settings)


def test_python_udf_output_written_on_spark_stays_readable_by_delta_rs(spark_url, tmp_path):
    """Spark Connect 4.2 types a DDL schema's strings with an explicit collation, which
    Delta-Spark writes as ``string collate UTF8_BINARY`` (unreadable by delta-rs):
    ``lake.write_delta`` writes plain ``string`` (as the ML scoring's mapInPandas does)."""
    from deltalake import DeltaTable
    from pyspark.sql import functions as F

    from lakehouse.config import load_settings
    from lakehouse.engine import get_spark
    from lakehouse.lake import write_delta

    session = get_spark(load_settings(spark={"engine": "remote", "remote": spark_url}))

    def score(batches):
        for batch in batches:
            yield batch[["machine_id"]].assign(kwh=1.5)

    scored = (
        session.range(3)
        .selectExpr("concat('M', cast(id AS STRING)) AS machine_id")
        .mapInPandas(score, "machine_id string, kwh double")
        .withColumn("detail", F.struct(F.col("machine_id").alias("m"), F.array(F.col("machine_id")).alias("ids")))
    )
    path = str(tmp_path / "scores")
    write_delta(scored, path)
    write_delta(scored.where("machine_id = 'M1'"), path, replace_where="machine_id = 'M1'")
    table = DeltaTable(path)
    assert str(table.schema().fields[0].type) == 'PrimitiveType("string")'
    assert sorted(table.to_pandas()["machine_id"]) == ["M0", "M1", "M2"]
