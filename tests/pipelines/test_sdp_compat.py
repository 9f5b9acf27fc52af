"""Spark Declarative Pipelines compatibility: inputs read by name
(``spark.read.table``, ``spark.readStream.table``, ``spark.table``, ``spark.sql``), SQL
files of ``CREATE MATERIALIZED VIEW / STREAMING TABLE / TEMPORARY VIEW``, and the
project ``spark-pipelines init`` writes, run with only its import line changed.
Hand-written inputs and expected rows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse import pipelines as dp
from lakehouse.cli import main
from lakehouse.lake import read_delta
from lakehouse.pipelines.graph import GraphError
from lakehouse.pipelines.project import SpecError, load_project
from lakehouse.pipelines.reads import plan_reads
from lakehouse.pipelines.sql import SqlError, parse_file, query_reads, split_statements, tokenize

from .conftest import write_project

# What `spark-pipelines init` writes, with `from pyspark import pipelines as dp`
# replaced by our import line; nothing else changed.
SDP_PYTHON_EXAMPLE = """\
from lakehouse import pipelines as dp
from pyspark.sql import DataFrame, SparkSession

spark = SparkSession.active()


@dp.materialized_view
def example_python_materialized_view() -> DataFrame:
    return spark.range(10)
"""
SDP_SQL_EXAMPLE = """\
CREATE MATERIALIZED VIEW example_sql_materialized_view AS
SELECT id FROM example_python_materialized_view
WHERE id % 2 = 0
"""



def _write_project(folder: Path, files: dict[str, str], name: str = "p") -> Path:
    write_project(folder, files, name)
    return folder


def _lakehouse(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", *args],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result, time.monotonic() - started


def _table(storage: Path, pipeline: str, dataset: str):
    return DeltaTable(str(storage / "pipelines" / pipeline / dataset)).to_pandas()


def test_the_sdp_init_template_runs_with_only_its_import_line_changed(outside):
    project = _write_project(
        outside / "my_pipeline",
        {
            "example_python_materialized_view.py": SDP_PYTHON_EXAMPLE,
            "example_sql_materialized_view.sql": SDP_SQL_EXAMPLE,
        },
        name="my_pipeline",
    )
    first, first_seconds = _lakehouse(
        "pipeline", "run", "--spec", str(project / "spark-pipeline.yml"), cwd=outside
    )
    assert first.returncode == 0, first.stdout + first.stderr
    again, again_seconds = _lakehouse("pipeline", "run", "--spec", str(project), cwd=outside)
    assert again.returncode == 0, again.stdout + again.stderr
    print(f"SDP init template: first run {first_seconds:.2f} s, re-run {again_seconds:.2f} s (whole process)")

    storage = project / "storage-root"
    python_view = _table(storage, "my_pipeline", "example_python_materialized_view")
    assert sorted(python_view["id"]) == list(range(10))
    sql_view = _table(storage, "my_pipeline", "example_sql_materialized_view")
    assert sorted(sql_view["id"]) == [0, 2, 4, 6, 8]

    log = DeltaTable(str(storage / "_system" / "event_log")).to_pandas().sort_values("started_at")
    runs = list(dict.fromkeys(log["run_id"]))
    assert len(runs) == 2 and len(log) == 4 and set(log["pipeline"]) == {"my_pipeline"}
    first_run = log[log["run_id"] == runs[0]].set_index("dataset")
    assert list(first_run.index) == ["example_python_materialized_view", "example_sql_materialized_view"]
    assert set(first_run["status"]) == {"COMPLETED"}
    assert first_run["rows_written"].to_dict() == {
        "example_python_materialized_view": 10,
        "example_sql_materialized_view": 5,
    }
    second_run = log[log["run_id"] == runs[1]].set_index("dataset")
    assert set(second_run["status"]) == {"SKIPPED"}
    # the Python view's plan and inputs are unchanged: not computed; the SQL view's text
    # is opaque to the fingerprint: computed, the same rows, nothing written
    assert second_run.loc["example_python_materialized_view", "details"].startswith("inputs and definition")
    assert second_run.loc["example_sql_materialized_view", "details"].startswith("result unchanged")

    lineage = CliRunner().invoke(main, ["pipeline", "lineage", "--spec", str(project)])
    assert lineage.exit_code == 0, lineage.output
    assert "example_python_materialized_view --> example_sql_materialized_view" in lineage.output


def test_python_definitions_read_their_inputs_by_name(spark, lake):
    box = {"rows": [(1, "a", 5), (2, "b", -1)]}

    with dp.graph("by_name", named_reads=True) as g:

        @dp.table
        def raw():
            return spark.createDataFrame(box["rows"], "id int, code string, qty int")

        @dp.materialized_view
        def codes():
            return spark.createDataFrame([("a", "apple"), ("b", "banana")], "code string, label string")

        @dp.table
        @dp.expect_or_drop("positive", "qty > 0")
        def clean():  # new rows of raw only, joined to the whole of codes
            active = SparkSession.active()
            new = active.readStream.table("raw")
            labels = active.read.table("codes")
            return new.join(labels, new["code"] == labels["code"]).select(new["id"], "label", "qty")

        @dp.temporary_view
        def big():
            return spark.table("clean").where("qty >= 5")

        @dp.materialized_view
        def summary():
            return spark.sql("SELECT label, sum(qty) AS qty FROM big GROUP BY label")

    assert {name: sorted(g.upstream(name)) for name in g.datasets} == {
        "raw": [],
        "codes": [],
        "clean": [],
        "big": [],
        "summary": [],
    }  # fmt: skip  (known only once a runner has the session)
    runner = dp.PipelineRunner(spark, g, lake)
    assert {name: sorted(g.upstream(name)) for name in g.datasets} == {
        "raw": [],
        "codes": [],
        "clean": ["codes", "raw"],
        "big": ["clean"],
        "summary": ["big"],
    }
    assert runner.dry_run().ok
    run = runner.run()
    assert run.event("clean").rows_dropped == 1
    box["rows"] = [(3, "a", 7), (4, "b", 9)]
    dp.PipelineRunner(spark, g, lake).run()  # bound again: the same inputs

    clean = read_delta(spark, runner.path("clean")).orderBy("id").collect()
    assert [tuple(r) for r in clean] == [(1, "apple", 5), (3, "apple", 7), (4, "banana", 9)]
    summary = read_delta(spark, runner.path("summary")).orderBy("label").collect()
    assert [tuple(r) for r in summary] == [("apple", 12), ("banana", 9)]
    raw = read_delta(spark, runner.path("raw")).count()
    assert raw == 4  # each run appended its two rows; clean read only the new ones


SQL_PIPELINE = """\
-- raw orders arrive through the Python source; everything else is SQL
CREATE STREAMING TABLE clean_orders (
  CONSTRAINT positive_qty EXPECT (qty > 0) ON VIOLATION DROP ROW,
  CONSTRAINT known_product EXPECT (product IS NOT NULL)
) COMMENT 'Orders with a positive quantity; it''s appended'
  PARTITIONED BY (product) TBLPROPERTIES ('owner' = 'sales')
AS SELECT id, product, qty FROM STREAM(raw_orders);

CREATE TEMPORARY VIEW priced AS
SELECT o.id, o.product, o.qty * p.price AS amount
FROM clean_orders o JOIN prices p ON o.product = p.product;

CREATE MATERIALIZED VIEW revenue (
  CONSTRAINT has_amount EXPECT (amount IS NOT NULL) ON VIOLATION FAIL UPDATE
) AS
WITH per_product AS (SELECT product, sum(amount) AS amount FROM priced GROUP BY product)
SELECT product, amount FROM per_product WHERE product <> ';not a statement end'
"""
SQL_SOURCES = """\
from pyspark.sql import SparkSession

from lakehouse import pipelines as dp

spark = SparkSession.active()


@dp.table
def raw_orders():
    rows = [(1, "aspirin", 2), (2, "aspirin", 0), (3, "ibuprofen", 1), (4, None, 3)]
    return spark.createDataFrame(rows, "id int, product string, qty int")


@dp.materialized_view
def prices():
    return spark.createDataFrame([("aspirin", 2.5), ("ibuprofen", 4.0)], "product string, price double")
"""


def test_sql_files_define_tables_views_and_expectations(spark, outside):
    project = _write_project(outside / "shop", {"orders.sql": SQL_PIPELINE, "sources.py": SQL_SOURCES})
    runner = load_project(project).runner()
    graph = runner.graph
    assert {name: sorted(graph.upstream(name)) for name in graph.datasets} == {
        "clean_orders": ["raw_orders"],
        "priced": ["clean_orders", "prices"],
        "revenue": ["priced"],
        "raw_orders": [],
        "prices": [],
    }
    clean = graph.datasets["clean_orders"]
    assert (
        clean.kind.value == "streaming_table"
        and clean.comment == "Orders with a positive quantity; it's appended"
    )
    assert [(e.name, e.predicate, e.action.value) for e in clean.expectations] == [
        ("positive_qty", "qty > 0", "drop"),
        ("known_product", "product IS NOT NULL", "warn"),
    ]
    assert clean.partition_cols == ("product",) and clean.table_properties == {"owner": "sales"}
    assert runner.dry_run().ok
    run = runner.run()
    event = run.event("clean_orders")
    assert (event.rows_read, event.rows_written, event.rows_dropped) == (4, 3, 1)
    assert {(r.name, r.failed) for r in event.expectations} == {("positive_qty", 1), ("known_product", 1)}
    storage = project / "storage-root"
    assert sorted(_table(storage, "p", "clean_orders")["id"]) == [1, 3, 4]
    assert DeltaTable(str(storage / "pipelines" / "p" / "clean_orders")).metadata().partition_columns == [
        "product"
    ]
    revenue = _table(storage, "p", "revenue")
    # aspirin 2 x 2.5 = 5.0; ibuprofen 1 x 4.0 = 4.0; the order without a product has no price
    assert dict(zip(revenue["product"], revenue["amount"], strict=True)) == {"aspirin": 5.0, "ibuprofen": 4.0}

    # a second run: the source appends its 4 rows again, the streaming table reads only them
    load_project(project).runner().run()
    assert sorted(_table(storage, "p", "clean_orders")["id"]) == [1, 1, 3, 3, 4, 4]
    revenue = _table(storage, "p", "revenue")
    assert dict(zip(revenue["product"], revenue["amount"], strict=True)) == {
        "aspirin": 10.0,
        "ibuprofen": 8.0,
    }


def test_an_unsupported_statement_names_the_file_the_line_and_what_to_write(outside):
    sql = outside / "flows.sql"
    sql.write_text(
        "CREATE MATERIALIZED VIEW a AS SELECT 1 AS n;\n\n-- a flow\nCREATE FLOW f AS INSERT INTO a BY NAME SELECT 2;\n"
    )
    with pytest.raises(SqlError) as error:
        parse_file(sql)
    assert str(error.value) == (
        f"{sql}:4: CREATE FLOW is not supported; write the flow in a Python file with "
        "@dp.append_flow(target=...)"
    )

    sql.write_text("SET pipelines.x = 1;\n")
    with pytest.raises(
        SqlError, match=rf"{sql}:1: SET statements are not supported; put the value under configuration"
    ):
        parse_file(sql)
    sql.write_text("CREATE MATERIALIZED VIEW a (id INT, CONSTRAINT c EXPECT (id > 0)) AS SELECT 1 AS id")
    with pytest.raises(SqlError, match="column definitions are not supported"):
        parse_file(sql)
    sql.write_text("CREATE MATERIALIZED VIEW a AS\nSELECT * FROM STREAM(b)")
    with pytest.raises(SqlError, match=r":1: a reads STREAM\(...\), which only a STREAMING TABLE can do"):
        parse_file(sql)

    # through the command line, in a project
    project = _write_project(outside / "q", {"bad.sql": "CREATE VIEW v AS SELECT 1"})
    result = CliRunner().invoke(main, ["pipeline", "dry-run", "--spec", str(project)])
    assert result.exit_code != 0
    assert (
        f"{project / 'transformations' / 'bad.sql'}:1: CREATE VIEW is not supported; use CREATE TEMPORARY VIEW"
        in result.output
    )


def test_the_dry_run_names_a_read_of_an_unknown_dataset(spark, outside):
    project = _write_project(
        outside / "r",
        {
            "a.py": "from lakehouse import pipelines as dp\nfrom pyspark.sql import SparkSession\n\n"
            "@dp.materialized_view\ndef a():\n    return SparkSession.active().read.table('nowhere')\n",
            "b.sql": "CREATE MATERIALIZED VIEW b AS SELECT * FROM a JOIN elsewhere USING (id)",
        },
    )
    result = CliRunner().invoke(main, ["pipeline", "dry-run", "--spec", str(project)])
    assert result.exit_code != 0
    assert "'a' reads 'nowhere', which is not a dataset of pipeline 'p' (known: ['a', 'b'])" in result.output
    assert "'b' reads 'elsewhere', which is not a dataset of pipeline 'p'" in result.output

    # a definition that asks the engine about its input while building its query
    (project / "transformations" / "a.py").write_text(
        "from lakehouse import pipelines as dp\nfrom pyspark.sql import SparkSession\n\n"
        "@dp.materialized_view\ndef a():\n    df = SparkSession.active().read.table('b')\n"
        "    return df.select(*df.columns)\n"
    )
    with pytest.raises(GraphError, match="'a': calling its definition to see which datasets it reads failed"):
        load_project(project).runner()


def test_statements_split_outside_quotes_and_comments_and_reads_come_from_table_positions():
    text = 'SELECT \';\' AS a -- ; here\n;/* ; */ SELECT `x;y` FROM t;\n\n  ;SELECT "a\\";b"'
    statements = split_statements(text)
    assert [(s.text, s.line) for s in statements] == [
        ("SELECT ';' AS a", 1),
        ("SELECT `x;y` FROM t", 2),
        ('SELECT "a\\";b"', 4),
    ]
    with pytest.raises(SqlError, match=r"<sql>:2: a string opened with ' is not closed"):
        tokenize("SELECT 1\nFROM t WHERE a = 'x")
    query = (
        "WITH c AS (SELECT * FROM STREAM(raw) r JOIN `dim` d ON r.k = d.k) "
        "SELECT extract(year FROM ts), trim(BOTH ' ' FROM s) FROM c, other o, range(10) "
        "LEFT JOIN cat.sch.t USING (k) WHERE x IN (SELECT y FROM sub)"
    )
    assert query_reads(tokenize(query)).names == ["raw", "dim", "other", "cat.sch.t", "sub"]


def test_plan_reads_walk_the_spark_connect_plan(spark):
    frame = (
        spark.read.table("a")
        .join(spark.table("`b`"), "id")
        .union(spark.sql("SELECT id FROM c"))
        .withColumn("n", F.lit(1))
    )
    assert plan_reads(frame) == ["a", "b", "c"]


def test_sql_file_errors_surface_as_spec_errors(outside):
    project = _write_project(
        outside / "s", {"a.sql": "CREATE MATERIALIZED VIEW x AS SELECT 1 AS n; DROP TABLE x"}
    )
    with pytest.raises(SpecError, match=r"a.sql:1: DROP statements are not supported"):
        load_project(project).load_graph()
