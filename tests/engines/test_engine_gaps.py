"""Gap probes: each engine gap of ``lakehouse.engine.compat.GAPS`` still exists.

A probe passes while its gap is open. The day an engine upgrade closes one, the probe
fails with "gap closed" and names the workaround that can go. Sail probes run on the
embedded engine; Spark probes (marker ``spark``) on Apache Spark 4 with Delta, with
``LAKEHOUSE_TEST_SPARK=1`` (``make test-spark``). The registry checks below keep
``GAPS``, the code calling the workarounds and docs/spark.md in step.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import maintenance
from lakehouse.engine import compat, is_sail

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LIBRARY = PROJECT_ROOT / "lib" / "lakehouse"


def assert_gap_open(name: str, still_open: bool, seen: str) -> None:
    """Fail with what to remove when the gap ``name`` no longer shows."""
    gap = compat.gap(name)
    assert still_open, (
        f"gap closed: {gap.name} (measured on {gap.engine}: {gap.gap}) no longer shows: {seen}. "
        f"The workaround compat.{gap.workaround} can be removed from {', '.join(gap.used_in)} "
        f"({gap.removable_when})"
    )


def error_of(action) -> str | None:  # noqa: ANN001 - a callable running engine work
    """The first line of the error ``action`` raises, None when it runs."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - any engine error is the answer
        return str(exc).strip().splitlines()[0]
    return None


@pytest.fixture
def sail(spark):
    if not is_sail(spark):
        pytest.skip("Sail probe: the tests run on another engine (LAKEHOUSE_TEST_SPARK_REMOTE)")
    return spark


def logged_fields(path: str) -> dict[str, tuple[str, bool]]:
    """Column -> (type, nullable) as the table's Delta log records them (delta-rs)."""
    schema = json.loads(maintenance.open_table(path).schema().to_json())
    return {f["name"]: (json.dumps(f["type"]), f["nullable"]) for f in schema["fields"]}


# --------------------------------------------------------------------------- Sail probes


def test_observe_still_raises_on_sail(sail):
    from pyspark.sql import Observation

    observation = Observation("rows")
    error = error_of(lambda: sail.range(3).observe(observation, F.count(F.lit(1)).alias("n")).collect())
    assert_gap_open("observe", error is not None, "observe() runs")


def test_merge_schema_still_drops_columns_next_to_a_not_null_column_on_sail(sail, tmp_path):
    path = str(tmp_path / "t")
    sail.range(2).select("id", F.lit(1).alias("batch")).write.format("delta").save(path)
    assert logged_fields(path)["batch"][1] is False  # the literal made a NOT NULL column
    added = sail.range(2).select("id", F.lit(1).alias("batch"), F.lit("x").alias("added"))
    added.write.format("delta").mode("append").option("mergeSchema", "true").save(path)
    columns = sail.read.format("delta").load(path).columns
    assert_gap_open("not_null_blocks_schema_merge", columns == ["id", "batch"], f"columns {columns}")


def test_when_true_is_still_written_not_null_on_sail(sail, tmp_path):
    path = str(tmp_path / "t")
    frame = sail.range(2).select("id", F.when(F.lit(True), F.lit(1)).alias("batch"))
    frame.write.format("delta").save(path)
    nullable = logged_fields(path)["batch"][1]
    assert_gap_open("when_true_folded_to_not_null", nullable is False, "written nullable")
    nullable_ids = sail.createDataFrame([(0,), (1,)], "id bigint")
    anchored = nullable_ids.select("id", compat.nullable_literal(F.lit(1), F.col("id")).alias("batch"))
    anchored.write.format("delta").save(str(tmp_path / "anchored"))
    assert logged_fields(str(tmp_path / "anchored"))["batch"] == ('"integer"', True)  # the workaround holds


def test_binary_file_still_returns_a_file_twice_on_sail(sail, tmp_path):
    """Ten files of 60 to 150 kB: the sizes that made Sail 0.7.2 return one twice."""
    paths = []
    for index in range(10):
        path = tmp_path / f"file_{index}.bin"
        path.write_bytes(b"x" * (60_000 + 10_000 * index))
        paths.append(str(path))
    rows = sail.read.format("binaryFile").load(paths).select("path").collect()
    assert len({row.path for row in rows}) == 10
    assert_gap_open("binary_file_split_duplicates", len(rows) > 10, f"{len(rows)} rows for 10 files")

    def size(path, content):
        return pa.table({"path": [path], "bytes": [len(content)]})  # int64: cast to the schema's int

    schema = T.StructType([T.StructField("path", T.StringType()), T.StructField("bytes", T.IntegerType())])
    parsed = compat.parse_binary_files(sail, paths, size, schema).collect()
    assert sorted(row.bytes for row in parsed) == [
        60_000 + 10_000 * index for index in range(10)
    ]  # each file once


def test_csv_and_json_readers_still_fail_on_a_bad_row_on_sail(sail, tmp_path):
    csv_file, json_file = tmp_path / "a.csv", tmp_path / "a.json"
    csv_file.write_text("id,x\n1,2\n3\n4,5\n")
    json_file.write_text('{"id": 1}\nnot json\n{"id": 2}\n')
    permissive = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"}
    csv_error = error_of(
        lambda: (
            sail.read.options(header="true", **permissive)
            .schema("id int, x int, _corrupt_record string")
            .csv(str(csv_file))
            .collect()
        )
    )
    json_error = error_of(
        lambda: (
            sail.read.options(**permissive)
            .schema("id bigint, _corrupt_record string")
            .json(str(json_file))
            .collect()
        )
    )
    assert_gap_open(
        "no_permissive_text_readers",
        csv_error is not None or json_error is not None,
        "both readers keep the bad rows",
    )


def test_file_metadata_is_still_missing_on_sail(sail, tmp_path):
    path = str(tmp_path / "p")
    sail.range(3).write.parquet(path)
    metadata = error_of(lambda: sail.read.parquet(path).select("_metadata.file_path").collect())
    file_name = error_of(lambda: sail.read.parquet(path).select(F.input_file_name()).collect())
    assert_gap_open(
        "no_file_metadata_column",
        metadata is not None and file_name is not None,
        f"_metadata: {metadata or 'works'}; input_file_name(): {file_name or 'works'}",
    )


def test_delta_maintenance_sql_is_still_missing_on_sail(sail, tmp_path):
    path = str(tmp_path / "t")
    sail.range(3).write.format("delta").save(path)
    sail.range(3).write.format("delta").mode("append").save(path)
    statements = {
        "DESCRIBE HISTORY": f"DESCRIBE HISTORY delta.`{path}`",
        "VACUUM": f"VACUUM delta.`{path}` RETAIN 168 HOURS DRY RUN",
        "OPTIMIZE": f"OPTIMIZE delta.`{path}`",
        "RESTORE": f"RESTORE TABLE delta.`{path}` TO VERSION AS OF 0",
    }
    working = [
        name for name, sql in statements.items() if error_of(lambda sql=sql: sail.sql(sql).collect()) is None
    ]
    assert_gap_open("no_delta_maintenance_sql", len(working) < len(statements), f"{working} all run")


def test_jdbc_format_is_still_unregistered_on_a_new_sail_session(sail):
    """A session of the embedded server that ``get_spark`` did not make."""
    from pyspark.sql import SparkSession

    from lakehouse.engine import session as engine_session

    fresh = SparkSession.builder.remote(engine_session._sail_url(engine_session._sail_server)).create()
    try:
        reader = fresh.read.format("jdbc").options(url="jdbc:postgresql://127.0.0.1:1/none", dbtable="t")
        error = error_of(lambda: reader.load().collect())
    finally:
        fresh.stop()
    assert_gap_open(
        "jdbc_source_not_built_in",
        error is not None and "No data source found for: jdbc" in error,
        f"the jdbc format is found ({error})",
    )


def test_private_plan_api_still_gives_the_plan(spark):
    """Not a gap that closes by itself: this fails first if PySpark changes the private
    API, and then ``compat.connect_plan`` needs the new one (or a public one)."""
    plan = compat.connect_plan(spark.range(3).where("id > 1"))
    assert plan is not None and plan.DESCRIPTOR.full_name == "spark.connect.Plan"
    assert plan.root.filter.condition is not None


# --------------------------------------------------------------------------- Apache Spark probes

on_apache_spark = pytest.mark.skipif(
    os.environ.get("LAKEHOUSE_TEST_SPARK") != "1",
    reason="Apache Spark engine probe: set LAKEHOUSE_TEST_SPARK=1 (make test-spark)",
)


@pytest.fixture(scope="module")
def apache_spark():
    """A session on the local Apache Spark Connect server: the running one (never
    stopped here), else one started for these probes and stopped after them."""
    from lakehouse import spark_server
    from lakehouse.config import load_settings
    from lakehouse.engine import get_spark

    settings = load_settings()
    running = spark_server.read_state(settings)
    started = not (running is not None and running.alive and spark_server._port_answers(running.port))
    if started:
        began = time.monotonic()
        running = spark_server.start(settings, port=0, cores="2", driver_memory="3g")
        print(f"Spark Connect server started in {time.monotonic() - began:.1f} s", file=sys.stderr)
    session = get_spark(
        load_settings(spark={"engine": "remote", "remote": running.url}), app_name="gap-probes"
    )
    try:
        yield session
    finally:
        session.stop()
        if started:
            spark_server.stop(settings)


@pytest.mark.spark
@on_apache_spark
@pytest.mark.parametrize("strip", [False, True], ids=["as_given", "stripped"])
def test_ddl_schema_strings_are_still_logged_with_a_collation_on_spark(apache_spark, tmp_path, strip):
    def machines(batches):
        for batch in batches:
            yield batch.assign(machine_id="m-" + batch["id"].astype(str))[["machine_id"]]

    frame = apache_spark.range(2).mapInPandas(machines, "machine_id string")
    path = str(tmp_path / "t")
    (compat.strip_collations(frame) if strip else frame).write.format("delta").save(path)
    log = (Path(path) / "_delta_log" / "00000000000000000000.json").read_text()
    collated = "collat" in log.lower()
    if strip:
        assert not collated and logged_fields(path)["machine_id"] == (
            '"string"',
            True,
        )  # the workaround holds
    else:
        assert_gap_open("explicit_string_collations", collated, "the log holds a plain string")


# --------------------------------------------------------------------------- the registry


def test_every_gap_names_its_workaround_and_where_it_is_used():
    for gap in compat.GAPS:
        if "." in gap.workaround:
            importlib.import_module(gap.workaround)
        else:
            assert callable(getattr(compat, gap.workaround)), gap.name
        short = gap.workaround.rsplit(".", 1)[-1]
        for module in gap.used_in:
            source = inspect.getsource(importlib.import_module(module))
            assert short in source, f"{module} does not use {gap.workaround} (gap {gap.name})"


def test_every_workaround_of_compat_covers_a_registered_gap():
    registered = {gap.workaround for gap in compat.GAPS}
    workarounds = {
        name
        for name, value in vars(compat).items()
        if inspect.isfunction(value) and value.__module__ == compat.__name__ and not name.startswith("_")
    }
    assert workarounds - registered == {"gap", "gaps_markdown"}  # the registry's own functions
    assert len({gap.name for gap in compat.GAPS}) == len(compat.GAPS)


def test_every_probe_named_by_a_gap_is_in_this_file():
    probes = {name for name in globals() if name.startswith("test_")}
    for gap in compat.GAPS:
        assert gap.probe is None or gap.probe in probes, gap.name
        assert gap.probe is not None or "no probe" in gap.removable_when, gap.name


def test_docs_show_the_registry_as_it_is():
    docs = (PROJECT_ROOT / "docs" / "spark.md").read_text()
    assert compat.gaps_markdown() in docs, "docs/spark.md: paste the output of python -m lakehouse.engine"


def test_no_module_outside_the_engine_asks_which_engine_it_runs_on():
    askers = []
    for path in sorted(LIBRARY.rglob("*.py")):
        if path.parent.name == "engine" and path.parent.parent == LIBRARY:
            continue
        tree = ast.parse(path.read_text())
        names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        names |= {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names
        }
        if "is_sail" in names:
            askers.append(str(path.relative_to(LIBRARY)))
    assert askers == []
