"""Databricks' documented pipeline patterns, run as documented in pipeline projects
(a ``spark-pipeline.yml`` folder outside the repository): AUTO CDC from a temporary
view over a streaming read (SCD 1 and 2, also in the legacy ``dlt`` names and from the
command line), private datasets, ``once=True`` backfills, Delta sinks, Auto Loader
option names (Python and SQL ``read_files``), AUTO CDC from snapshots, and the clear
errors for what has no equivalent. Expected rows are derived by hand from the
documentation's description of each pattern (the derivation is in the comments)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lakehouse.lake import read_delta
from lakehouse.pipelines.project import load_project

from .conftest import write_project


def _project(folder: Path, files: dict[str, str], name: str = "p"):
    return load_project(write_project(folder, files, name))


def _land(folder: Path, name: str, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def _rows(spark, path: str, columns: list[str]) -> list[tuple]:
    return sorted(tuple(r) for r in read_delta(spark, path).select(*columns).collect())


# ----------------------------------------------------------------- AUTO CDC
# The example of Databricks' "AUTO CDC APIs" page: a feed of user changes, read as a
# stream through a temporary view, applied with keys=["userId"], sequence_by
# col("sequenceNum"), deletes where operation = 'DELETE', the operation and sequence
# columns not written.
CDC_BATCH_1 = [
    {"userId": 124, "name": "Raul", "city": "Oaxaca", "operation": "INSERT", "sequenceNum": 1},
    {"userId": 123, "name": "Isabel", "city": "Monterrey", "operation": "INSERT", "sequenceNum": 1},
    {"userId": 125, "name": "Mercedes", "city": "Tijuana", "operation": "INSERT", "sequenceNum": 2},
    {"userId": 126, "name": "Lily", "city": "Cancun", "operation": "INSERT", "sequenceNum": 2},
]
CDC_BATCH_2 = [
    {"userId": 123, "name": None, "city": None, "operation": "DELETE", "sequenceNum": 6},
    {"userId": 125, "name": "Mercedes", "city": "Guadalajara", "operation": "UPDATE", "sequenceNum": 6},
    {"userId": 125, "name": "Mercedes", "city": "Mexicali", "operation": "UPDATE", "sequenceNum": 5},
    {"userId": 123, "name": "Isabel", "city": "Chihuahua", "operation": "UPDATE", "sequenceNum": 5},
]
CDC_DEFINITIONS = """\
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import col, expr

    from lakehouse import pipelines as dp

    spark = SparkSession.active()


    @dp.table
    def users_feed():
        return dp.read_files("landing/users", format="json",
                             schema="userId INT, name STRING, city STRING, operation STRING, sequenceNum INT")


    @dp.temporary_view
    def users():
        return spark.readStream.table("users_feed")


    dp.create_streaming_table("target")

    dp.create_auto_cdc_flow(
        target="target",
        source="users",
        keys=["userId"],
        sequence_by=col("sequenceNum"),
        apply_as_deletes=expr("operation = 'DELETE'"),
        except_column_list=["operation", "sequenceNum"],
        stored_as_scd_type={scd},
    )
"""


@pytest.mark.parametrize("scd", [1, 2])
def test_auto_cdc_from_a_temporary_view_over_a_streaming_read(spark, outside, scd):
    project = _project(outside / "cdc", {"users.py": CDC_DEFINITIONS.format(scd=scd)})
    landing = outside / "cdc" / "storage-root" / "landing" / "users"
    storage = project.storage
    _land(landing, "1.json", CDC_BATCH_1)
    project.runner().run()
    _land(landing, "2.json", CDC_BATCH_2)
    second = project.runner().run()
    # the view read only the new commit of users_feed: the 4 events of the second file
    assert second.event("target").rows_read == 4
    third = project.runner().run()  # nothing new: the CDC flow is skipped
    assert third.event("target").status == "SKIPPED"
    target = f"{storage}/pipelines/p/target"
    if scd == 1:
        # SCD type 1, by the documentation's rules: the latest event per userId by
        # sequenceNum wins, whatever its arrival order; a DELETE removes the key.
        # 123: INSERT@1, UPDATE@5 (Chihuahua), DELETE@6 -> gone.
        # 124: INSERT@1 -> Raul, Oaxaca.
        # 125: INSERT@2, UPDATE@6 (Guadalajara) arrives before UPDATE@5 (Mexicali);
        #      6 > 5 -> Guadalajara.
        # 126: INSERT@2 -> Lily, Cancun.
        assert _rows(spark, target, ["userId", "name", "city"]) == [
            (124, "Raul", "Oaxaca"),
            (125, "Mercedes", "Guadalajara"),
            (126, "Lily", "Cancun"),
        ]
    else:
        # SCD type 2: one version per change, [__START_AT, __END_AT) in sequenceNum;
        # a DELETE closes the open version at its sequence, leaving no open one.
        # 123: Monterrey [1,5), Chihuahua [5,6) closed by the DELETE@6.
        # 124: Oaxaca [1, open).
        # 125: Tijuana [2,5), Mexicali [5,6) (the late event lands at its place),
        #      Guadalajara [6, open).
        # 126: Cancun [2, open).
        assert set(_rows(spark, target, ["userId", "name", "city", "__START_AT", "__END_AT"])) == set(
            [
                (123, "Isabel", "Monterrey", 1, 5),
                (123, "Isabel", "Chihuahua", 5, 6),
                (124, "Raul", "Oaxaca", 1, None),
                (125, "Mercedes", "Tijuana", 2, 5),
                (125, "Mercedes", "Mexicali", 5, 6),
                (125, "Mercedes", "Guadalajara", 6, None),
                (126, "Lily", "Cancun", 2, None),
            ]
        )


# ------------------------------------------------------------ private datasets
# Databricks: private=True "creates a table but does not publish it to the metastore:
# available to the pipeline, not accessible outside it, persisting for the lifetime of
# the pipeline". Here: computed and read by the pipeline's flows like any dataset,
# stored with the pipeline's internal state (_system/private/<pipeline>/<name>),
# never at the pipeline's table address (pipelines/<pipeline>/<name>).
PRIVATE_DEFINITIONS = """\
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from lakehouse import pipelines as dp

    spark = SparkSession.active()


    @dp.materialized_view(private=True)
    def order_lines():
        return spark.createDataFrame(
            [(1, "a", 2), (2, "a", 3), (3, "b", 5)], "id INT, product STRING, qty INT"
        )


    dp.create_streaming_table("line_log", private=True)


    @dp.append_flow(target="line_log")
    def log_lines():
        return spark.readStream.table("order_lines")


    @dp.materialized_view
    def product_totals():
        return spark.read.table("order_lines").groupBy("product").agg(F.sum("qty").cast("int").alias("qty"))
"""


def test_private_datasets_are_read_by_the_pipeline_and_not_published(spark, outside):
    from lakehouse.lake import delta_exists

    sql = """\
    CREATE OR REFRESH PRIVATE MATERIALIZED VIEW big_lines AS SELECT id, qty FROM order_lines WHERE qty > 2;
    CREATE MATERIALIZED VIEW big_line_count AS SELECT count(*) AS n FROM big_lines
    """
    project = _project(outside / "priv", {"orders.py": PRIVATE_DEFINITIONS, "big.sql": sql})
    project.runner().run()
    storage = project.storage
    # product_totals reads the private order_lines: a -> 2 + 3 = 5, b -> 5.
    assert _rows(spark, f"{storage}/pipelines/p/product_totals", ["product", "qty"]) == [("a", 5), ("b", 5)]
    # the SQL private view keeps qty > 2: ids 2 (3) and 3 (5); its public reader counts 2
    assert _rows(spark, f"{storage}/pipelines/p/big_line_count", ["n"]) == [(2,)]
    for private in ("order_lines", "line_log", "big_lines"):
        assert not delta_exists(f"{storage}/pipelines/p/{private}")  # not published
        assert delta_exists(f"{storage}/_system/private/p/{private}")  # kept with the pipeline's state
    assert read_delta(spark, f"{storage}/_system/private/p/line_log").count() == 3


def test_a_private_dataset_with_a_path_is_refused():
    from lakehouse import pipelines as dp
    from lakehouse.pipelines.graph import GraphError

    with dp.graph("g"), pytest.raises(GraphError, match="private=True and gives path="):

        @dp.materialized_view(private=True, path="gold/x")
        def x():
            return None


# ------------------------------------------------------------ once=True backfill
# Databricks' backfill pattern: one streaming table, an incremental flow over new
# files and @append_flow(target=..., once=True) reading historical data as a batch.
# "The flow runs one time; if the pipeline is fully refreshed it runs again."
BACKFILL_DEFINITIONS = """\
    from pyspark.sql import SparkSession

    from lakehouse import pipelines as dp

    spark = SparkSession.active()

    dp.create_streaming_table("orders")


    @dp.append_flow(target="orders")
    def incremental():
        return dp.read_files("landing/orders", format="json", schema="id INT, amount INT").transform(
            lambda df: df.select("id", "amount")
        )


    @dp.append_flow(target="orders", once=True)
    def backfill():
        root = dp.current().lake.root
        return spark.read.schema("id INT, amount INT").json(f"{root}/history")
"""


def test_a_once_flow_backfills_once_and_again_on_full_refresh(spark, outside):
    project = _project(outside / "bf", {"orders.py": BACKFILL_DEFINITIONS})
    root = outside / "bf" / "storage-root"
    _land(root / "history", "old.json", [{"id": 1, "amount": 10}, {"id": 2, "amount": 20}])
    _land(root / "landing" / "orders", "1.json", [{"id": 3, "amount": 30}])
    target = f"{project.storage}/pipelines/p/orders"
    first = project.runner().run()
    # run 1: the backfill's 2 historical rows + the 1 row of the first file
    assert _rows(spark, target, ["id", "amount"]) == [(1, 10), (2, 20), (3, 30)]
    assert [e.status for e in first.events if e.flow == "backfill"] == ["COMPLETED"]
    _land(root / "landing" / "orders", "2.json", [{"id": 4, "amount": 40}])
    second = project.runner().run()
    # run 2: only the new file; the backfill does not run again (no duplicates of 1, 2)
    assert _rows(spark, target, ["id", "amount"]) == [(1, 10), (2, 20), (3, 30), (4, 40)]
    assert [e.status for e in second.events if e.flow == "backfill"] == ["SKIPPED"]
    project.runner().run(full_refresh=True)
    # full refresh: the table is rebuilt from all files (3, 4) and the backfill (1, 2) once
    assert _rows(spark, target, ["id", "amount"]) == [(1, 10), (2, 20), (3, 30), (4, 40)]


# ------------------------------------------------------------------- sinks
# Databricks: dp.create_sink(name, format="delta", options={"path": ...}) and
# @append_flow(target=sink). A sink is written by append flows only, is not read by
# the pipeline, and "a full refresh does not clean up the sink: reprocessed data is
# appended to it, existing data is not altered".
SINK_DEFINITIONS = """\
    from pyspark.sql import SparkSession

    from lakehouse import pipelines as dp

    spark = SparkSession.active()


    @dp.table
    def orders():
        return dp.read_files("landing/orders", format="json", schema="id INT, amount INT")


    dp.create_sink("export", format="delta", options={"path": "exports/orders"})


    @dp.append_flow(target="export")
    def to_export():
        return spark.readStream.table("orders").select("id", "amount")
"""


def test_a_delta_sink_gets_each_new_row_once_and_keeps_its_rows_on_full_refresh(spark, outside):
    project = _project(outside / "sink", {"orders.py": SINK_DEFINITIONS})
    root = outside / "sink" / "storage-root"
    sink = f"{project.storage}/exports/orders"
    _land(root / "landing" / "orders", "1.json", [{"id": 1, "amount": 10}])
    project.runner().run()
    _land(root / "landing" / "orders", "2.json", [{"id": 2, "amount": 20}])
    project.runner().run()
    # two runs, each appending the new rows of orders: 1 then 2, nothing twice
    assert _rows(spark, sink, ["id", "amount"]) == [(1, 10), (2, 20)]
    project.runner().run(full_refresh=True)
    # full refresh: orders rebuilt from both files, and both rows appended to the sink
    # again; the sink's earlier rows are not removed
    assert _rows(spark, sink, ["id", "amount"]) == [(1, 10), (1, 10), (2, 20), (2, 20)]


EMPTY_FILE_DEFINITIONS = """\
    from lakehouse import pipelines as dp


    @dp.table
    def orders():
        return dp.read_files("landing/orders", format="json", schema="id INT, amount INT")


    @dp.materialized_view
    def total(orders):
        return orders.selectExpr("sum(amount) AS total")
"""


def test_new_files_without_a_row_are_checkpointed_without_a_table_version(spark, outside):
    """A file holding no row (a day without recalls) is read once and recorded, but
    commits no version: the readers of the table have nothing to recompute."""
    from lakehouse import maintenance

    project = _project(outside / "empty", {"orders.py": EMPTY_FILE_DEFINITIONS})
    landing = outside / "empty" / "storage-root" / "landing" / "orders"
    orders = project.runner().path("orders")
    _land(landing, "1.json", [{"id": 1, "amount": 10}])
    project.runner().run()
    version = maintenance.version(orders)

    _land(landing, "2.json", [])
    run = project.runner().run()
    event = run.event("orders")
    assert (event.status, event.rows_read, event.rows_written) == ("COMPLETED", 0, 0)
    assert json.loads(event.details)["files"] == 1
    assert maintenance.version(orders) == version == event.target_version
    assert run.event("total").status == "SKIPPED"

    again = project.runner().run()
    assert (again.event("orders").status, again.event("orders").details) == ("SKIPPED", "no new files")
    _land(landing, "3.json", [{"id": 3, "amount": 30}])
    project.runner().run()
    assert _rows(spark, orders, ["id", "amount"]) == [(1, 10), (3, 30)]
    assert _rows(spark, project.runner().path("total"), ["total"]) == [(40,)]


def test_unsupported_sinks_and_reads_of_a_sink_are_refused_with_what_to_do(tmp_path):
    from lakehouse import pipelines as dp
    from lakehouse.pipelines.graph import GraphError

    with dp.graph("g"):
        with pytest.raises(GraphError, match="format 'kafka' is not supported"):
            dp.create_sink("k", format="kafka", options={"kafka.bootstrap.servers": "h:9092"})
        with pytest.raises(GraphError, match="tableName='main.s.t' needs a catalog"):
            dp.create_sink("t", format="delta", options={"tableName": "main.s.t"})
    with dp.graph("g") as g:
        dp.create_sink("out", format="delta", options={"path": "exports/x"})

        @dp.materialized_view
        def reader(out):
            return out

    assert any("'out', a sink" in p for p in g.validate())


# ------------------------------------------------- Auto Loader option names
# Databricks' Auto Loader options: cloudFiles.format (the file format),
# cloudFiles.schemaHints (types of named columns, the others inferred: CSV columns
# are strings), rescuedDataColumn (the column collecting values that do not fit their
# type, as JSON keyed by column name), cloudFiles.schemaLocation (where the schema is
# tracked: the pipeline manages it).
AUTO_LOADER_DEFINITIONS = """\
    from lakehouse import pipelines as dp


    @dp.table
    def raw_orders():
        return dp.read_files(
            "landing/orders",
            **{
                "cloudFiles.format": "csv",
                "cloudFiles.schemaHints": "qty INT",
                "cloudFiles.schemaLocation": "/somewhere/schemas",
                "rescuedDataColumn": "_rescued",
                "header": "true",
            },
        )
"""


def test_auto_loader_option_names_map_to_the_file_source(spark, outside):
    project = _project(outside / "al", {"orders.py": AUTO_LOADER_DEFINITIONS})
    landing = outside / "al" / "storage-root" / "landing" / "orders"
    landing.mkdir(parents=True)
    (landing / "1.csv").write_text("id,product,qty\n1,a,2\n2,b,abc\n")
    project.runner().run()
    frame = read_delta(spark, f"{project.storage}/pipelines/p/raw_orders")
    # id and product inferred as strings (CSV), qty an int by the hint; 'abc' does not
    # fit: qty NULL and the value kept in _rescued as {"qty": "abc"}
    types = dict(frame.dtypes)
    assert (types["id"], types["product"], types["qty"]) == ("string", "string", "int")
    rows = sorted(frame.select("id", "product", "qty", "_rescued").collect())
    assert [tuple(r)[:3] for r in rows] == [("1", "a", 2), ("2", "b", None)]
    assert rows[0]["_rescued"] is None and json.loads(rows[1]["_rescued"]) == {"qty": "abc"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cloudFiles.useNotifications": "true"}, "new files are found by listing the folder"),
        ({"cloudFiles.schemaEvolutionMode": "failOnNewColumns"}, "new columns are added"),
        ({"cloudFiles.inferColumnTypes": "true"}, "CSV columns are strings"),
        (
            {"cloudFiles.partitionColumns": "day"},
            "Auto Loader option 'cloudFiles.partitionColumns' is not supported",
        ),
        ({"badOption": "1"}, r"option\(s\) \['badoption'\] are not supported for format 'csv'"),
    ],
)
def test_auto_loader_options_without_an_equivalent_are_refused_clearly(options, message):
    from lakehouse import pipelines as dp
    from lakehouse.pipelines.graph import GraphError

    with pytest.raises(GraphError, match=message):
        dp.read_files("landing/orders", **{"cloudFiles.format": "csv", **options})


def test_spark_read_stream_cloud_files_is_refused_with_the_read_files_call_to_write(spark, outside):
    from lakehouse.pipelines.graph import GraphError

    project = _project(
        outside / "cf",
        {
            "raw.py": """\
            from pyspark.sql import SparkSession
            from lakehouse import pipelines as dp

            spark = SparkSession.active()


            @dp.table
            def raw():
                return spark.readStream.format("cloudFiles").option("cloudFiles.format", "json").load("landing/raw")
            """
        },
    )
    with pytest.raises(
        GraphError, match=r"return dp.read_files\('landing/raw', \*\*\{'cloudFiles.format': 'json'\}\)"
    ):
        project.runner()


# ------------------------------------------------------------ AUTO CDC from snapshots
# Databricks' create_auto_cdc_from_snapshot_flow: each snapshot is compared with the
# previous one; keys new or changed are upserted, keys missing are deleted. With a
# function source, it is called with the latest version processed (None at first)
# and returns (snapshot, version) or None, and every pending snapshot is processed.
# Snapshot 1: (1, a1), (2, a2); snapshot 2: (2, b2), (3, a3).
SNAPSHOT_FUNCTION_DEFINITIONS = """\
    from pyspark.sql import SparkSession

    from lakehouse import pipelines as dp

    spark = SparkSession.active()
    SNAPSHOTS = {{1: [(1, "a1"), (2, "a2")], 2: [(2, "b2"), (3, "a3")]}}


    def next_snapshot_and_version(latest_snapshot_version):
        version = 1 if latest_snapshot_version is None else latest_snapshot_version + 1
        if version not in SNAPSHOTS:
            return None
        return spark.createDataFrame(SNAPSHOTS[version], "key INT, value STRING"), version


    dp.create_streaming_table("target")
    dp.create_auto_cdc_from_snapshot_flow(
        target="target", source=next_snapshot_and_version, keys=["key"], stored_as_scd_type={scd}
    )
"""


@pytest.mark.parametrize("scd", [1, 2])
def test_auto_cdc_from_snapshots_of_a_function(spark, outside, scd):
    project = _project(outside / "snap", {"snap.py": SNAPSHOT_FUNCTION_DEFINITIONS.format(scd=scd)})
    first = project.runner().run()
    assert json.loads(first.event("target").details) == {"snapshot_versions": [1, 2]}
    target = f"{project.storage}/pipelines/p/target"
    if scd == 1:
        # SCD1 holds the latest snapshot: key 1 deleted (absent from 2), 2 -> b2, 3 new
        assert _rows(spark, target, ["key", "value"]) == [(2, "b2"), (3, "a3")]
    else:
        # SCD2: versions as __START_AT/__END_AT; key 1 closed at 2 (deleted), 2's a2
        # closed at 2 by b2, 3 opened at 2
        assert set(_rows(spark, target, ["key", "value", "__START_AT", "__END_AT"])) == {
            (1, "a1", 1, 2),
            (2, "a2", 1, 2),
            (2, "b2", 2, None),
            (3, "a3", 2, None),
        }
    assert project.runner().run().event("target").status == "SKIPPED"  # no snapshot 3


SNAPSHOT_TABLE_DEFINITIONS = """\
    from pyspark.sql import SparkSession

    from lakehouse import pipelines as dp

    spark = SparkSession.active()


    @dp.materialized_view
    def customers_snapshot():
        root = dp.current().lake.root
        return spark.read.schema("key INT, value STRING").json(f"{root}/exports/customers")


    dp.create_streaming_table("customers")
    dp.create_auto_cdc_from_snapshot_flow(target="customers", source="customers_snapshot", keys=["key"])
"""


def test_auto_cdc_from_snapshots_of_a_table(spark, outside):
    project = _project(outside / "snapt", {"snap.py": SNAPSHOT_TABLE_DEFINITIONS})
    exports = outside / "snapt" / "storage-root" / "exports" / "customers"
    target = f"{project.storage}/pipelines/p/customers"
    _land(exports, "full.json", [{"key": 1, "value": "a1"}, {"key": 2, "value": "a2"}])
    project.runner().run()
    assert _rows(spark, target, ["key", "value"]) == [(1, "a1"), (2, "a2")]
    _land(exports, "full.json", [{"key": 2, "value": "b2"}, {"key": 3, "value": "a3"}])
    project.runner().run()
    # the new snapshot: 1 deleted, 2 updated, 3 inserted
    assert _rows(spark, target, ["key", "value"]) == [(2, "b2"), (3, "a3")]
    again = project.runner().run()  # the snapshot table did not change: nothing applied
    assert again.event("customers").status == "SKIPPED"


# The same example in the legacy `dlt` names (`import dlt` becoming the import line
# below): @dlt.view, dlt.read_stream, dlt.apply_changes, stored_as_scd_type = "2".
LEGACY_CDC_DEFINITIONS = """\
    from pyspark.sql.functions import col, expr

    from lakehouse import pipelines as dlt


    @dlt.table
    def users_feed():
        return dlt.read_files("landing/users", format="json",
                              schema="userId INT, name STRING, city STRING, operation STRING, sequenceNum INT")


    @dlt.view
    def users():
        return dlt.read_stream("users_feed")


    dlt.create_streaming_table("target")

    dlt.apply_changes(
        target="target",
        source="users",
        keys=["userId"],
        sequence_by=col("sequenceNum"),
        apply_as_deletes=expr("operation = 'DELETE'"),
        except_column_list=["operation", "sequenceNum"],
        stored_as_scd_type="2",
    )
"""


def test_the_legacy_dlt_names_run_the_same_cdc_example(spark, outside):
    project = _project(outside / "dlt", {"users.py": LEGACY_CDC_DEFINITIONS})
    landing = outside / "dlt" / "storage-root" / "landing" / "users"
    _land(landing, "1.json", CDC_BATCH_1 + CDC_BATCH_2)  # all events in one batch
    assert project.runner().dry_run().problems == []
    project.runner().run()
    # the same SCD2 history as above (derivation there): arrival order does not matter
    assert set(
        _rows(spark, f"{project.storage}/pipelines/p/target", ["userId", "city", "__START_AT", "__END_AT"])
    ) == {
        (123, "Monterrey", 1, 5),
        (123, "Chihuahua", 5, 6),
        (124, "Oaxaca", 1, None),
        (125, "Tijuana", 2, 5),
        (125, "Mexicali", 5, 6),
        (125, "Guadalajara", 6, None),
        (126, "Cancun", 2, None),
    }


def test_unsupported_cdc_arguments_are_refused_with_what_to_do():
    from pyspark.sql.functions import col, struct

    from lakehouse import pipelines as dp
    from lakehouse.pipelines.graph import GraphError

    with dp.graph("g"):
        with pytest.raises(GraphError, match=r"sequence_by .* add it as a column of the source"):
            dp.create_auto_cdc_flow(
                target="t", source="s", keys=["id"], sequence_by=struct(col("a"), col("b"))
            )
        with pytest.raises(GraphError, match="apply_as_deletes takes a SQL predicate"):
            dp.create_auto_cdc_flow(
                target="t", source="s", keys=["id"], sequence_by="seq", apply_as_deletes=col("op") == "D"
            )
        with pytest.raises(GraphError, match="stored_as_scd_type must be 1 or 2"):
            dp.create_auto_cdc_flow(
                target="t", source="s", keys=["id"], sequence_by="seq", stored_as_scd_type=3
            )
    with dp.graph("g") as g:
        dp.create_sink("out", format="delta", options={"path": "exports/x"})
        dp.create_auto_cdc_flow(target="out", source="s", keys=["id"], sequence_by="seq")
    assert any("sinks take @append_flow only" in p for p in g.validate())


@pytest.mark.parametrize(
    "definitions",
    [
        CDC_DEFINITIONS.format(scd=2),
        PRIVATE_DEFINITIONS,
        BACKFILL_DEFINITIONS,
        SINK_DEFINITIONS,
        AUTO_LOADER_DEFINITIONS,
        SNAPSHOT_FUNCTION_DEFINITIONS.format(scd=1),
        SNAPSHOT_TABLE_DEFINITIONS,
    ],
    ids=["cdc_view", "private", "once", "sink", "auto_loader", "snapshot_function", "snapshot_table"],
)
def test_each_pattern_passes_the_dry_run_before_any_data(spark, outside, definitions):
    project = _project(outside / "dry", {"defs.py": definitions})
    assert project.runner().dry_run().problems == []


# Databricks SQL: CREATE OR REFRESH STREAMING TABLE ... AS SELECT ... FROM STREAM
# read_files('<folder>', format => 'csv', ...): each update reads the files not read
# before; the query's other clauses apply to their rows.
READ_FILES_SQL = """\
CREATE OR REFRESH STREAMING TABLE raw_orders
COMMENT 'Orders as they land'
AS SELECT id, upper(product) AS product, qty
FROM STREAM read_files('landing/orders', format => 'csv', header => true, schemaHints => 'qty INT')
WHERE qty > 0
"""


def test_sql_read_files_in_a_streaming_table_reads_new_files_once(spark, outside):
    project = _project(outside / "sqlrf", {"orders.sql": READ_FILES_SQL})
    landing = outside / "sqlrf" / "storage-root" / "landing" / "orders"
    landing.mkdir(parents=True)
    (landing / "1.csv").write_text("id,product,qty\n1,a,2\n2,b,0\n")
    project.runner().run()
    (landing / "2.csv").write_text("id,product,qty\n3,c,4\n")
    project.runner().run()
    # file 1: id 1 kept, id 2 dropped by qty > 0; file 2, read in the second run: id 3.
    # Products upper-cased; qty an int by the hint, id a string (CSV, no hint).
    target = f"{project.storage}/pipelines/p/raw_orders"
    assert _rows(spark, target, ["id", "product", "qty"]) == [("1", "A", 2), ("3", "C", 4)]
    assert project.runner().run().event("raw_orders").status == "SKIPPED"  # no new file


def test_sql_read_files_outside_a_streaming_table_is_refused(outside):
    from lakehouse.pipelines.project import SpecError

    with pytest.raises(SpecError, match="files are read incrementally, by a streaming table"):
        _project(
            outside / "sqlmv",
            {"mv.sql": "CREATE MATERIALIZED VIEW m AS SELECT * FROM read_files('x', format => 'csv')"},
        ).load_graph()


def test_the_reported_cdc_project_runs_from_the_command_line(outside):
    """The user report: `lakehouse pipeline run` on a project whose AUTO CDC source is a
    temporary view stopped with TableNotFoundError on pipelines/<name>/<view>."""
    import subprocess
    import sys

    from deltalake import DeltaTable

    folder = outside / "report"
    _project(folder, {"users.py": CDC_DEFINITIONS.format(scd=1)})
    _land(folder / "storage-root" / "landing" / "users", "1.json", CDC_BATCH_1 + CDC_BATCH_2)
    result = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "pipeline", "run"],
        cwd=folder,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = DeltaTable(str(folder / "storage-root" / "pipelines" / "p" / "target")).to_pandas()
    # all eight events at once give the SCD1 state derived above
    assert sorted(zip(rows["userId"], rows["city"], strict=True)) == [
        (124, "Oaxaca"),
        (125, "Guadalajara"),
        (126, "Cancun"),
    ]
