"""Engine compatibility: every workaround for a gap of one engine, in one place.

Pipeline code is plain PySpark over Spark Connect and runs on Sail (embedded) and on
Apache Spark 4 with Delta. Where an engine lacks something or behaves differently, the
pipeline calls one of the small functions below, named for the gap it covers, and no
other module asks which engine it runs on. ``GAPS`` records each gap: the engine and
version it was measured on, the workaround, where it is used, and what would let us
remove it. ``tests/engines/test_engine_gaps.py`` probes each gap on the engine, so the
day an upgrade closes one, its probe fails and names the workaround to remove.
``python -m lakehouse.engine`` prints the table (also in docs/spark.md, checked by a test).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema

from lakehouse.engine.session import is_sail

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, Row, SparkSession
    from pyspark.sql.types import StructType


# --------------------------------------------------------------------------- Sail


def metrics_without_observe(frame: DataFrame, *metrics: Column) -> Row:
    """``metrics`` (aggregate columns) of ``frame``, computed by one aggregate.

    Gap ``observe``, Sail 0.7.2: ``DataFrame.observe`` raises ("collect metrics"), so
    counts cannot be collected while the rows are written; they cost one more pass.
    Removable when Sail runs ``observe()``: the write then gives the counts."""
    return frame.agg(*metrics).first()


def nullable_literal(value: Column, anchor: Column) -> Column:
    """``value`` (a literal) as a nullable column.

    Gaps ``not_null_blocks_schema_merge`` and ``when_true_folded_to_not_null``, Sail
    0.7.2: a literal is NOT NULL, and a ``mergeSchema`` append to a Delta table holding
    a NOT NULL column silently drops the new columns. ``when(lit(True), value)`` and
    ``nullif`` are folded back to NOT NULL when written, so the condition tests a real
    column (``anchor``), which the optimizer cannot fold. The anchor must be nullable:
    over a NOT NULL column the condition folds to true again. Removable when Sail
    merges the new columns; the anchor alone when ``when(lit(True), ...)`` stays nullable."""
    return F.when(anchor.isNull() | anchor.isNotNull(), value)


def parse_binary_files(
    spark: SparkSession,
    paths: Sequence[str],
    parse_one: Callable[[str, bytes], pa.Table],
    schema: StructType,
) -> DataFrame:
    """``parse_one(path, content)`` applied to each file exactly once, in Python on the
    workers (``mapInArrow``: Arrow tables in and out, no pandas conversion of the
    strings); ``schema``: of the tables it returns, to which they are cast.

    Gap ``binary_file_split_duplicates``, Sail 0.7.2: a file whose byte range straddles
    a split boundary comes back twice (ten files of 60 to 150 kB). One cheap query asks
    which paths come back twice (only paths: the engine reads no content); the parser
    skips them in the big read and they are read again on their own, deduplicated.
    Neither a ``dropDuplicates`` nor a filter may sit between the big read and the
    parser: either makes the engine buffer the read ahead of the slower Python parser
    (scale 20, 93 IoT files of 21 MB: 7.2-8.3 GiB peak against 1.4 GiB). Removable when
    Sail returns each file once: one read, no extra query.

    Also the entry of gap ``no_permissive_text_readers``: CSV, JSON and text files are
    read as bytes and parsed in Python (``lakehouse.pipelines.autoloader.parsing``),
    since Sail's CSV and JSON readers fail the whole read on one malformed row."""
    files = spark.read.format("binaryFile").load(list(paths))
    twice = {row.path for row in files.groupBy("path").count().where("count > 1").select("path").collect()}

    arrow_schema = to_arrow_schema(schema)

    def parse(batches: Iterator[pa.RecordBatch], skip: frozenset[str]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            paths, contents = batch.column("path"), batch.column("content")
            for index in range(batch.num_rows):  # one file's bytes in Python at a time
                path = paths[index].as_py()
                if path not in skip:
                    yield from parse_one(path, contents[index].as_py()).cast(arrow_schema).to_batches()

    parsed = files.select("path", "content").mapInArrow(partial(parse, skip=frozenset(twice)), schema)
    if not twice:
        return parsed
    returned_twice = {_bare(path) for path in twice}
    again = [path for path in paths if _bare(path) in returned_twice]
    if len(again) != len(twice):  # never drop a file the parser skipped
        raise RuntimeError(
            f"binaryFile returned {sorted(twice)} twice; none of the listed paths matches some of them"
        )
    once = _read_binary_files_once(spark, again).select("path", "content")
    return parsed.unionByName(once.mapInArrow(partial(parse, skip=frozenset()), schema))


def _bare(path: str) -> str:
    """A path as engines spell it differently (``file:/x``, ``/x``, ``x``, URL-encoded)."""
    return unquote(re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", "", path).lstrip("/"))


def _read_binary_files_once(spark: SparkSession, paths: Sequence[str]) -> DataFrame:
    """``binaryFile`` rows (path, content...), exactly one per file, for a few files:
    the deduplication holds every file's content in memory (``parse_binary_files``
    reads many)."""
    return spark.read.format("binaryFile").load(list(paths)).dropDuplicates(["path"])


def parquet_files_one_by_one(spark: SparkSession, paths: Sequence[str]) -> Iterator[tuple[str, DataFrame]]:
    """Each Parquet file as its own read, with its path, so its rows can carry it.

    Gap ``no_file_metadata_column``, Sail 0.7.2: neither the ``_metadata`` column nor
    ``input_file_name()`` exists, so one read of every file cannot say which file a
    row came from; the plan grows with the files (bound it with ``max_files``).
    Removable when Sail has ``_metadata.file_path``: one read of all the files."""
    for path in paths:
        yield path, spark.read.parquet(path)


def register_jdbc_source(session: SparkSession) -> None:
    """Make the ``jdbc`` format readable on a Sail session.

    Gap ``jdbc_source_not_built_in``, Sail 0.7.2: no built-in ``jdbc`` format ("No data
    source found for: jdbc"); pysail ships a Python data source (connectorx) that each
    session must register. Removable when Sail registers it by itself."""
    from pysail.spark.datasource.jdbc import JdbcDataSource

    session.dataSource.register(JdbcDataSource)


def score_without_spark_udf(frame: DataFrame, score: Callable[..., Any], schema: str) -> DataFrame:
    """``score`` (pandas batches in, pandas frames out; the model shipped inside it)
    applied with ``mapInPandas``, not ``mlflow.pyfunc.spark_udf``.

    Gap ``spark_udf_struct_result``, Sail 0.7.2 with MLflow 3.17: ``spark_udf`` with a
    struct result (score and flag) failed inside its pandas batch iterator when scoring,
    and it loads the model in every Python worker, where MLflow's one module-level slot
    for models from code races ("ensure the model is set", several days scored at once).
    Removable when both are fixed; no probe (the failure is intermittent)."""
    return frame.mapInPandas(score, schema)


# --------------------------------------------------------------------------- Apache Spark


def jdbc_options(session: SparkSession, endpoint) -> dict[str, str]:  # noqa: ANN001 - PostgresEndpoint
    """The ``url`` (and ``driver``) options of the ``jdbc`` format reading ``endpoint``
    on the engine behind ``session``.

    Gap ``jdbc_driver_setup``, Apache Spark 4.2:

    - a driver from ``--packages`` is not visible to ``DriverManager`` ("No suitable
      driver"): naming its class makes Spark register it;
    - the embedded PostgreSQL listens on a unix socket only. Sail's JDBC source
      (connectorx) takes the socket folder as host; the PostgreSQL JDBC driver reaches
      a socket only through junixsocket's socket factory (a jar of ``lakehouse spark
      serve``). TCP endpoints get the same URL on every engine.

    Removable: the ``driver`` option when Spark finds drivers of ``--packages``; the
    socket URL never (a JDBC driver speaks TCP)."""
    from urllib.parse import quote

    if is_sail(session):
        return {"url": endpoint.jdbc_url}
    options = {"url": endpoint.jdbc_url, "driver": "org.postgresql.Driver"}
    if endpoint.host.startswith("/"):
        socket_file = f"{endpoint.host.rstrip('/')}/.s.PGSQL.{endpoint.port}"
        options["url"] = (
            f"jdbc:postgresql://localhost:{endpoint.port}/{endpoint.database}"
            "?socketFactory=org.newsclub.net.unix.AFUNIXSocketFactory$FactoryArg"
            f"&socketFactoryArg={quote(socket_file)}&sslmode=disable"
        )
    return options


def strip_collations(df: DataFrame) -> DataFrame:
    """``df`` with its string columns of the plain ``string`` type, on JVM Spark.

    Gap ``explicit_string_collations``, Apache Spark 4.2 with Delta-Spark 4.4: Spark
    Connect gives the columns of a DDL schema string (e.g. the output of
    ``mapInPandas(f, "machine_id string, ...")``) an explicit ``UTF8_BINARY`` collation,
    which Delta-Spark writes to the log as ``string collate UTF8_BINARY``: delta-rs 1.6
    (maintenance, BI exports, the catalog) then cannot read the table. A cast to the
    type's DDL text, parsed by the server's SQL parser (not to a ``DataType``, which the
    client sends with its collation), writes ``string``. Sail has no collations.
    Removable when Delta-Spark writes the default collation as ``string`` or delta-rs
    reads collated strings."""
    if is_sail(df.sparkSession):
        return df
    fields = df.schema.fields
    if not any("string" in field.dataType.simpleString() for field in fields):
        return df
    return df.select(
        *[
            F.col(f"`{f.name}`").cast(f.dataType.simpleString()).alias(f.name)
            if "string" in f.dataType.simpleString()
            else F.col(f"`{f.name}`")
            for f in fields
        ]
    )


# --------------------------------------------------------------------------- Spark Connect client


def connect_plan(frame: DataFrame) -> Any | None:
    """The Spark Connect plan (protobuf ``Plan``) of ``frame``; None for a DataFrame
    that is not Spark Connect's.

    Gap ``no_public_plan_api``, PySpark 4.2 Connect client: no public call returns a
    DataFrame's plan, so this reads the private ``DataFrame._plan``. Removable when
    PySpark has a public one; the probe fails first if an upgrade changes the private
    one."""
    plan_of = getattr(frame, "_plan", None)
    session = getattr(frame, "sparkSession", None)
    if plan_of is None or session is None or not hasattr(session, "client"):
        return None
    return plan_of.to_proto(session.client)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Gap:
    """One engine gap and its workaround."""

    name: str
    engine: str  # the engine, with the version the gap was measured on
    gap: str  # what is missing or different
    workaround: str  # the function of this module (or module) covering it
    used_in: tuple[str, ...]  # modules calling the workaround
    removable_when: str
    probe: str | None  # its test in tests/engines/test_engine_gaps.py; None: why in removable_when


GAPS: tuple[Gap, ...] = (
    Gap(
        "observe",
        "Sail 0.7.2",
        "`DataFrame.observe` raises (collect metrics)",
        "metrics_without_observe",
        ("lakehouse.pipelines.expectations",),
        "Sail runs observe(): expectation counts come from the write itself",
        "test_observe_still_raises_on_sail",
    ),
    Gap(
        "not_null_blocks_schema_merge",
        "Sail 0.7.2",
        "a mergeSchema append to a Delta table with a NOT NULL column drops the new columns, silently",
        "nullable_literal",
        ("lakehouse.pipelines.autoloader.frames",),
        "the append keeps the new columns: literals may stay NOT NULL",
        "test_merge_schema_still_drops_columns_next_to_a_not_null_column_on_sail",
    ),
    Gap(
        "when_true_folded_to_not_null",
        "Sail 0.7.2",
        "`when(lit(True), x)` (and `nullif`) is written NOT NULL",
        "nullable_literal",
        ("lakehouse.pipelines.autoloader.frames",),
        "it is written nullable: `nullable_literal` needs no anchor column",
        "test_when_true_is_still_written_not_null_on_sail",
    ),
    Gap(
        "binary_file_split_duplicates",
        "Sail 0.7.2",
        "`binaryFile` returns a file twice when its byte range straddles a split boundary",
        "parse_binary_files",
        ("lakehouse.pipelines.autoloader.frames", "lakehouse.pipelines.autoloader.schema"),
        "each file comes back once: no query for the paths returned twice, no second read",
        "test_binary_file_still_returns_a_file_twice_on_sail",
    ),
    Gap(
        "no_permissive_text_readers",
        "Sail 0.7.2",
        "the CSV and JSON readers fail the whole read on one malformed row (no PERMISSIVE mode)",
        "parse_binary_files",
        ("lakehouse.pipelines.autoloader.frames",),
        "bad rows land in a corrupt-record column; the Python parser also decodes any codec "
        "and rescues values, so weigh that first",
        "test_csv_and_json_readers_still_fail_on_a_bad_row_on_sail",
    ),
    Gap(
        "no_file_metadata_column",
        "Sail 0.7.2",
        "neither `_metadata.file_path` nor `input_file_name()`",
        "parquet_files_one_by_one",
        ("lakehouse.pipelines.autoloader.frames",),
        "`_metadata.file_path` works: one read of all the Parquet files",
        "test_file_metadata_is_still_missing_on_sail",
    ),
    Gap(
        "no_delta_maintenance_sql",
        "Sail 0.7.2",
        "no DESCRIBE HISTORY, VACUUM, OPTIMIZE or RESTORE; `delta.tables.DeltaTable` needs a JVM",
        "lakehouse.maintenance",
        ("lakehouse.maintenance",),
        "never on this engine pair: delta-rs serves both engines with the same code",
        "test_delta_maintenance_sql_is_still_missing_on_sail",
    ),
    Gap(
        "jdbc_source_not_built_in",
        "Sail 0.7.2",
        "no built-in `jdbc` format: pysail's Python source (connectorx) is registered per session",
        "register_jdbc_source",
        ("lakehouse.engine.session",),
        "Sail registers it by itself",
        "test_jdbc_format_is_still_unregistered_on_a_new_sail_session",
    ),
    Gap(
        "spark_udf_struct_result",
        "Sail 0.7.2, MLflow 3.17",
        "`mlflow.pyfunc.spark_udf` with a struct result failed in its pandas batch iterator; "
        "models from code race when every worker loads them",
        "score_without_spark_udf",
        ("lakehouse.ml.scoring",),
        "both fixed; no probe: the failure is intermittent (a minimal model ran 6 times out of 6)",
        None,
    ),
    Gap(
        "jdbc_driver_setup",
        "Apache Spark 4.2",
        "a driver from --packages is not found without `driver`; a unix socket needs junixsocket",
        "jdbc_options",
        ("lakehouse.bronze.referential", "lakehouse.bronze.sources"),
        "Spark finds drivers of --packages; no probe: it needs PostgreSQL (the cross-engine test reads through it)",
        None,
    ),
    Gap(
        "explicit_string_collations",
        "Apache Spark 4.2, Delta-Spark 4.4",
        "strings of a DDL schema are logged `string collate UTF8_BINARY`, which delta-rs 1.6 refuses",
        "strip_collations",
        ("lakehouse.lake",),
        "Delta-Spark logs plain `string`, or delta-rs reads collations",
        "test_ddl_schema_strings_are_still_logged_with_a_collation_on_spark",
    ),
    Gap(
        "no_public_plan_api",
        "PySpark 4.2 Connect client",
        "no public call returns a DataFrame's plan: the private `DataFrame._plan` is read",
        "connect_plan",
        ("lakehouse.pipelines.fingerprint",),
        "PySpark has a public plan accessor",
        "test_private_plan_api_still_gives_the_plan",
    ),
)


def gap(name: str) -> Gap:
    """The registered gap called ``name``."""
    for known in GAPS:
        if known.name == name:
            return known
    raise KeyError(f"no engine gap named {name!r}; known: {[g.name for g in GAPS]}")


def gaps_markdown() -> str:
    """``GAPS`` as the Markdown table of docs/spark.md."""
    lines = [
        "| gap | engine (measured on) | what | workaround | used in | removable when | probe |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in GAPS:
        used = ", ".join(f"`{module}`" for module in g.used_in)
        probe = f"`{g.probe}`" if g.probe else "none"
        lines.append(
            f"| `{g.name}` | {g.engine} | {g.gap} | `{g.workaround}` | {used} | {g.removable_when} | {probe} |"
        )
    return "\n".join(lines) + "\n"
