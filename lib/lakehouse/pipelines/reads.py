"""Inputs read by name, the ``pyspark.pipelines`` way: ``spark.read.table("x")``,
``spark.readStream.table("x")``, ``spark.table("x")`` or ``spark.sql("... FROM x")``.

On Spark Connect these calls build a plan on the client and ask nothing of the
engine: ``spark.read.table("x")`` is a ``read.named_table`` relation with the text
``x``, unresolved until the plan is executed. So:

- **Before anything runs**, a definition without parameters is called once (with the
  pipeline's session and ``dp.current()`` available) and the names its plan reads
  are its inputs (:func:`plan_reads`; the table names of SQL text relations are
  found by :func:`lakehouse.pipelines.sql.query_reads`). A name of another dataset
  makes an edge of the graph; any other simple name is reported as a missing input.
  Qualified names (``catalog.schema.table``) are left to the engine.
- **At run time**, the function is called again and every such read in the plan it
  returns is replaced by the plan of the upstream the runner chose (the Delta table,
  its new rows for a streaming table, or a temporary view's DataFrame):
  :func:`resolve_reads`. No temporary view is registered in the session, so flows
  running side by side cannot see each other's inputs, and the fingerprint of a
  materialized view sees the Delta tables it reads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from pyspark.sql import DataFrame

from lakehouse.pipelines.graph import GraphError, PipelineGraph


def _relation(frame: DataFrame) -> Any:
    """The Spark Connect relation (protobuf) of a DataFrame."""
    return frame._plan.plan(frame.sparkSession.client)  # noqa: SLF001 - the plan is the API here


def _frame(session: Any, relation: Any) -> DataFrame:
    from pyspark.sql.connect.dataframe import DataFrame as ConnectDataFrame
    from pyspark.sql.connect.plan import CachedRelation

    return ConnectDataFrame(CachedRelation(relation), session)


def _identifier(text: str) -> str:
    return ".".join(part.strip("`") for part in text.split("."))


def _relations(message: Any) -> Any:
    """Every ``Relation`` message under ``message`` (itself included), parents first."""
    from google.protobuf.descriptor import FieldDescriptor

    if message.DESCRIPTOR.name == "Relation":
        yield message
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE or (
            field.is_repeated and field.message_type.GetOptions().map_entry
        ):
            continue
        for item in value if field.is_repeated else [value]:
            yield from _relations(item)


def plan_reads(frame: DataFrame) -> list[str]:
    """The tables a DataFrame's plan reads by name, in order of appearance."""
    from lakehouse.pipelines.sql import query_reads, tokenize

    names: list[str] = []
    for relation in _relations(_relation(frame)):
        kind = relation.WhichOneof("rel_type")
        if kind == "read" and relation.read.WhichOneof("read_type") == "named_table":
            found = [_identifier(relation.read.named_table.unparsed_identifier)]
        elif kind == "sql":
            found = query_reads(tokenize(relation.sql.query)).names
        else:
            continue
        names.extend(name for name in found if name not in names)
    return names


def sql_frame(session: Any, query: str, frames: Mapping[str, DataFrame]) -> DataFrame:
    """``session.sql(query)`` with each name of ``frames`` bound to that DataFrame,
    built on the client (nothing is sent to the engine until it is used)."""
    from pyspark.sql.connect.plan import LogicalPlan
    from pyspark.sql.connect.proto import Relation

    relation = Relation()
    relation.common.plan_id = LogicalPlan._fresh_plan_id()  # noqa: SLF001
    relation.sql.query = query
    return _frame(session, _with_references(relation, frames))


def _with_references(root: Any, frames: Mapping[str, DataFrame]) -> Any:
    if not frames:
        return root
    from pyspark.sql.connect.plan import LogicalPlan
    from pyspark.sql.connect.proto import Relation

    fresh = LogicalPlan._fresh_plan_id  # noqa: SLF001 - the client's plan id counter
    wrapped = Relation()
    wrapped.common.plan_id = fresh()
    wrapped.with_relations.root.CopyFrom(root)
    if not root.common.HasField("plan_id"):
        wrapped.with_relations.root.common.plan_id = fresh()
    for name, frame in frames.items():
        reference = wrapped.with_relations.references.add()
        reference.common.plan_id = fresh()
        reference.subquery_alias.input.CopyFrom(_relation(frame))
        reference.subquery_alias.alias = name
    return wrapped


def resolve_reads(frame: DataFrame, frames: Mapping[str, DataFrame]) -> DataFrame:
    """``frame`` with its reads of the names of ``frames`` replaced by their plans."""
    by_name = {name.lower(): upstream for name, upstream in frames.items()}
    root = _relation(frame)
    root = type(root).FromString(root.SerializeToString())  # a copy: the DataFrame keeps its own
    has_sql = False
    for relation in list(_relations(root)):
        kind = relation.WhichOneof("rel_type")
        has_sql = has_sql or kind == "sql"
        if kind != "read" or relation.read.WhichOneof("read_type") != "named_table":
            continue
        upstream = by_name.get(_identifier(relation.read.named_table.unparsed_identifier).lower())
        if upstream is not None:
            plan_id = relation.common.plan_id  # columns of the read (df["id"]) refer to it
            relation.CopyFrom(_relation(upstream))
            relation.common.plan_id = plan_id
    if has_sql:  # SQL text reads the names through relations sent with the plan
        root = _with_references(root, frames)
    return _frame(frame.sparkSession, root)


class ReadsByName:
    """A definition reading its inputs by name: called with the runner's frames as
    keyword arguments, it calls the definition and resolves its reads."""

    def __init__(self, function: Callable[..., Any], reads: tuple[str, ...]) -> None:
        functools.update_wrapper(self, function)
        self.function, self.reads = function, reads

    def __call__(self, **frames: DataFrame) -> Any:
        result = self.function()
        if isinstance(result, DataFrame):
            return resolve_reads(result, frames)
        return result


def bind_named_reads(graph: PipelineGraph) -> None:
    """Call each definition without parameters once and make the datasets its plan
    reads by name its inputs (idempotent). Runs with ``dp.current()`` available."""
    from lakehouse.pipelines.sql import SqlQuery

    names = {name.lower(): name for name in graph.datasets}
    for flow in graph.flows.values():
        function = flow.function
        if isinstance(function, ReadsByName):  # bound before: find its reads again
            function, flow.function, flow.inputs = function.function, function.function, ()
        if function is None or isinstance(function, SqlQuery) or flow.inputs or flow.snapshot:
            continue
        try:
            result = function()
        except Exception as exc:
            raise GraphError(
                f"{flow.target!r}: calling its definition to see which datasets it reads failed "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); a definition "
                "that needs its input's columns while building its query takes the input as a "
                "parameter: def my_view(upstream): ..."
            ) from exc
        if not isinstance(result, DataFrame) or not hasattr(result, "_plan"):
            continue
        _refuse_cloud_files(flow.target, result)
        reads = tuple(names.get(name.lower(), name) for name in plan_reads(result) if "." not in name)
        if reads:
            flow.function = ReadsByName(function, reads)
            flow.inputs = reads


def _refuse_cloud_files(dataset: str, frame: DataFrame) -> None:
    """``spark.readStream.format("cloudFiles")`` (Auto Loader) has no data source here:
    say so before anything runs, with what to write instead."""
    for relation in _relations(_relation(frame)):
        if (
            relation.WhichOneof("rel_type") != "read"
            or relation.read.WhichOneof("read_type") != "data_source"
        ):
            continue
        source = relation.read.data_source
        if source.format.lower() == "cloudfiles":
            options = {
                "cloudFiles.format" if k.lower() == "cloudfiles.format" else k: v
                for k, v in source.options.items()
            }
            paths = list(source.paths) or ["<folder>"]
            raise GraphError(
                f"{dataset!r}: spark.readStream.format('cloudFiles') (Auto Loader) is not a data source "
                f"of this engine; return dp.read_files({paths[0]!r}, **{options!r}) instead (the same "
                "options; chain transformations with .transform(lambda df: ...))"
            )
