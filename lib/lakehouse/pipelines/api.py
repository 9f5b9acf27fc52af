"""Definition API with the names of ``pyspark.pipelines`` (and Databricks' extras).

    from lakehouse import pipelines as dp

    @dp.materialized_view(comment="One row per order line.")
    @dp.expect_or_drop("positive_quantity", "quantity > 0")
    def silver_order_lines(bronze_order_lines):      # reads the dataset bronze_order_lines
        return bronze_order_lines.where(...)

Functions return a DataFrame (or ``read_files(...)`` for incremental file ingestion)
and perform no actions. Their parameter names are the datasets they read, so the
dependency graph is known without running anything. Decorators are usable bare or
with keyword-only options; arguments are checked when the decorator runs.

Definitions register into the graph opened by ``with graph("name") as g:`` or, at
module level, into a graph per module collected by :func:`load_graph`.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

from lakehouse.pipelines.autoloader.declaration import (  # noqa: F401 - dp.read_files; the runner's IncrementalFiles
    IncrementalFiles,
    read_files,
)
from lakehouse.pipelines.contracts import Contract, contract_problems
from lakehouse.pipelines.graph import (
    Action,
    Dataset,
    DatasetKind,
    Expectation,
    Flow,
    FlowKind,
    GraphError,
    PipelineGraph,
    function_inputs,
)

F = TypeVar("F", bound=Callable[..., Any])
_active_graph: ContextVar[PipelineGraph | None] = ContextVar("active_graph", default=None)
_module_graphs: dict[str, PipelineGraph] = {}
_PENDING = "__pipeline_expectations__"  # expectations stacked below @table
_DATASET = "__pipeline_dataset__"  # set on functions registered as datasets


@contextlib.contextmanager
def graph(name: str, *, named_reads: bool = False) -> Iterator[PipelineGraph]:
    """Collect the definitions made inside the block into a new graph. With
    ``named_reads``, definitions without parameters may read their inputs with
    ``spark.read.table("x")`` (see :mod:`lakehouse.pipelines.reads`)."""
    new = PipelineGraph(name, named_reads=named_reads)
    token = _active_graph.set(new)
    try:
        yield new
    finally:
        _active_graph.reset(token)


def load_graph(name: str, modules: Sequence[str]) -> PipelineGraph:
    """One graph from the module-level definitions of ``modules`` (imported here)."""
    merged = PipelineGraph(name)
    for module in modules:
        importlib.import_module(module)
        part = _module_graphs.get(module)
        if part is None:
            raise GraphError(f"module {module!r} defines no datasets")
        for dataset in part.datasets.values():
            merged.add_dataset(dataset)
        for flow in part.flows.values():
            merged.add_flow(flow)
    problems = contract_problems(merged)
    if problems:
        raise GraphError(f"pipeline {name!r}: " + "; ".join(problems))
    return merged


def _registry(module: str) -> PipelineGraph:
    active = _active_graph.get()
    if active is not None:
        return active
    return _module_graphs.setdefault(module, PipelineGraph(module))


def _check_name(value: str | None, what: str) -> None:
    if value is not None and (not isinstance(value, str) or not value.isidentifier()):
        raise GraphError(f"{what} must be an identifier-like string, got {value!r}")


def _dataset_decorator(kind: DatasetKind, function: F | None, **options: Any) -> Any:
    _check_name(options.get("name"), "name")

    def register(fn: F) -> F:
        if not callable(fn):
            raise GraphError(f"@{kind.value} decorates a function, got {fn!r}")
        name = options.get("name") or fn.__name__
        _check_private(name, options.get("private", False), options.get("path"))
        registry = _registry(fn.__module__)
        dataset = Dataset(
            name=name,
            kind=kind,
            comment=options.get("comment") or (fn.__doc__ or "").strip() or None,
            path=options.get("path"),
            partition_cols=tuple(options.get("partition_cols") or ()),
            table_properties=dict(options.get("table_properties") or {}),
            schema=options.get("schema"),
            expectations=list(getattr(fn, _PENDING, [])),
            quarantine=bool(options.get("quarantine", False)),
            stateful=bool(options.get("stateful", False)),
            private=bool(options.get("private", False)),
            contract=_contract(name, options.get("contract")),
            incremental=options.get("incremental"),
        )
        registry.add_dataset(dataset)
        flow_kind = {
            DatasetKind.STREAMING_TABLE: FlowKind.APPEND,
            DatasetKind.MATERIALIZED_VIEW: FlowKind.COMPLETE,
            DatasetKind.TEMPORARY_VIEW: FlowKind.VIEW,
        }[kind]
        registry.add_flow(
            Flow(name=name, target=name, kind=flow_kind, function=fn, inputs=function_inputs(fn))
        )
        setattr(fn, _DATASET, dataset)
        return fn

    return register(function) if function is not None else register


def table(
    function: F | None = None,
    *,
    name: str | None = None,
    comment: str | None = None,
    path: str | None = None,
    partition_cols: Sequence[str] | None = None,
    table_properties: Mapping[str, str] | None = None,
    schema: str | None = None,
    quarantine: bool = False,
    private: bool = False,
    contract: Contract | None = None,
) -> Any:
    """A streaming table: each run appends only what is new in its inputs (new files
    for ``read_files``, new commits of upstream tables). ``private=True``: read by the
    pipeline's own flows only, stored with its internal state, not at a table address."""
    return _dataset_decorator(
        DatasetKind.STREAMING_TABLE,
        function,
        name=name,
        comment=comment,
        path=path,
        partition_cols=partition_cols,
        table_properties=table_properties,
        schema=schema,
        quarantine=quarantine,
        private=private,
        contract=contract,
    )


def materialized_view(
    function: F | None = None,
    *,
    name: str | None = None,
    comment: str | None = None,
    path: str | None = None,
    partition_cols: Sequence[str] | None = None,
    table_properties: Mapping[str, str] | None = None,
    schema: str | None = None,
    quarantine: bool = False,
    stateful: bool = False,
    private: bool = False,
    contract: Contract | None = None,
    incremental: Any = None,
) -> Any:
    """A table recomputed from its inputs and replaced in one commit. A run skips it
    when nothing it reads changed, and writes nothing when its rows come out the
    same; ``stateful=True`` (a definition keeping state about its own writes, e.g.
    an incremental one) computes and writes it on every run. ``contract``: its keys,
    grain, owner, foreign keys and PII tags (:class:`~lakehouse.pipelines.contracts.Contract`).
    ``incremental=dp.by_day(...)``, ``dp.by_month(...)`` or ``dp.by_key(...)``: only the days or keys whose
    source rows changed are recomputed (:mod:`lakehouse.pipelines.incremental`)."""
    return _dataset_decorator(
        DatasetKind.MATERIALIZED_VIEW,
        function,
        name=name,
        comment=comment,
        path=path,
        partition_cols=partition_cols,
        table_properties=table_properties,
        schema=schema,
        quarantine=quarantine,
        stateful=stateful,
        private=private,
        contract=contract,
        incremental=incremental,
    )


def temporary_view(function: F | None = None, *, name: str | None = None, comment: str | None = None) -> Any:
    """A named intermediate result, not stored; its readers inline it."""
    return _dataset_decorator(DatasetKind.TEMPORARY_VIEW, function, name=name, comment=comment)


def create_streaming_table(
    name: str,
    *,
    comment: str | None = None,
    path: str | None = None,
    partition_cols: Sequence[str] | None = None,
    table_properties: Mapping[str, str] | None = None,
    schema: str | None = None,
    expect_all: Mapping[str, str] | None = None,
    expect_all_or_drop: Mapping[str, str] | None = None,
    expect_all_or_fail: Mapping[str, str] | None = None,
    quarantine: bool = False,
    private: bool = False,
    contract: Contract | None = None,
    module: str | None = None,
) -> None:
    """Declare a streaming table written by ``@append_flow`` or ``create_auto_cdc_flow``."""
    _check_name(name, "name")
    _check_private(name, private, path)
    expectations = [
        *(Expectation(n, p, Action.WARN) for n, p in (expect_all or {}).items()),
        *(Expectation(n, p, Action.DROP) for n, p in (expect_all_or_drop or {}).items()),
        *(Expectation(n, p, Action.FAIL) for n, p in (expect_all_or_fail or {}).items()),
    ]
    _registry(module or _caller_module()).add_dataset(
        Dataset(
            name=name,
            kind=DatasetKind.STREAMING_TABLE,
            comment=comment,
            path=path,
            partition_cols=tuple(partition_cols or ()),
            table_properties=dict(table_properties or {}),
            schema=schema,
            expectations=expectations,
            quarantine=quarantine,
            private=private,
            contract=_contract(name, contract),
        )
    )


def create_sink(
    name: str, format: str, options: Mapping[str, str] | None = None, *, module: str | None = None
) -> None:
    """A sink written by ``@append_flow(target=name)``: here a Delta table at
    ``options["path"]`` (relative to the lake root, or absolute), appended to exactly
    once per input commit, never read by the pipeline and never overwritten."""
    _check_name(name, "name")
    options = dict(options or {})
    if format != "delta":
        raise GraphError(
            f"sink {name!r}: format {format!r} is not supported; only format='delta' sinks are "
            "(a Delta table at options={'path': ...}). For Kafka or another system, read the "
            "streaming table from a job of your own"
        )
    if "tableName" in options:
        raise GraphError(
            f"sink {name!r}: options tableName={options['tableName']!r} needs a catalog, and the "
            "pipeline has none; give options={'path': '<folder>'} (relative to the storage, or absolute)"
        )
    unknown = sorted(set(options) - {"path"})
    if unknown or not options.get("path"):
        raise GraphError(
            f"sink {name!r}: a delta sink takes options={{'path': '<folder>'}} only"
            + (f"; unknown option(s) {unknown}" if unknown else "; path is missing")
        )
    _registry(module or _caller_module()).add_dataset(
        Dataset(name=name, kind=DatasetKind.STREAMING_TABLE, path=options["path"], sink=True)
    )


def _contract(name: str, contract: Any) -> Contract | None:
    if contract is not None and not isinstance(contract, Contract):
        raise GraphError(
            f"dataset {name!r}: contract= takes dp.Contract(keys=..., grain=..., owner=...), got {contract!r}"
        )
    return contract


def _check_private(name: str, private: bool, path: str | None) -> None:
    if private and path is not None:
        raise GraphError(
            f"dataset {name!r} is private=True and gives path={path!r}: a private dataset is "
            "not published, so it has no table address; drop path= (it is stored under "
            "_system/private/<pipeline>/) or drop private=True to publish it at that path"
        )


def append_flow(
    function: F | None = None, *, target: str, name: str | None = None, once: bool = False
) -> Any:
    """One of possibly several flows appending into the streaming table ``target``.
    ``once=True``: a backfill, its inputs read whole; it runs in the first run only,
    and again when ``target`` is fully refreshed."""
    _check_name(target, "target")
    _check_name(name, "name")

    def register(fn: F) -> F:
        _registry(fn.__module__).add_flow(
            Flow(
                name=name or fn.__name__,
                target=target,
                kind=FlowKind.APPEND,
                function=fn,
                inputs=function_inputs(fn),
                once=bool(once),
            )
        )
        return fn

    return register(function) if function is not None else register


def create_auto_cdc_flow(
    *,
    target: str,
    source: str,
    keys: Sequence[Any],
    sequence_by: Any,
    apply_as_deletes: Any = None,
    apply_as_truncates: Any = None,
    except_column_list: Sequence[str] = (),
    stored_as_scd_type: int | str = 1,
    track_history_column_list: Sequence[str] | None = None,
    track_history_except_column_list: Sequence[str] | None = None,
    name: str | None = None,
    module: str | None = None,
) -> None:
    """Apply the change events of ``source`` to ``target`` (SCD type 1 or 2)."""
    from lakehouse.pipelines.cdc import CdcSpec

    where = f"create_auto_cdc_flow into {target!r}"
    stored_as_scd_type = _scd_type(stored_as_scd_type, where)
    keys = _keys(keys, where)
    sequence_by = _column_name(sequence_by, f"{where}: sequence_by")
    apply_as_deletes = _sql_text(apply_as_deletes, f"{where}: apply_as_deletes")
    apply_as_truncates = _sql_text(apply_as_truncates, f"{where}: apply_as_truncates")
    except_column_list = [_column_name(c, f"{where}: except_column_list") for c in except_column_list]
    if track_history_column_list is not None:
        track_history_column_list = [
            _column_name(c, f"{where}: track_history_column_list") for c in track_history_column_list
        ]
    if track_history_except_column_list is not None:
        track_history_except_column_list = [
            _column_name(c, f"{where}: track_history_except_column_list")
            for c in track_history_except_column_list
        ]
    spec = CdcSpec(
        keys=tuple(keys),
        sequence_by=sequence_by,
        apply_as_deletes=apply_as_deletes,
        apply_as_truncates=apply_as_truncates,
        except_column_list=tuple(except_column_list),
        stored_as_scd_type=stored_as_scd_type,
        track_history_column_list=track_history_column_list,
        track_history_except_column_list=track_history_except_column_list,
    )
    _registry(module or _caller_module()).add_flow(
        Flow(name=name or f"{target}_cdc", target=target, kind=FlowKind.AUTO_CDC, cdc=spec, source=source)
    )


def create_auto_cdc_from_snapshot_flow(
    *,
    target: str,
    source: str | Callable[[Any], Any],
    keys: Sequence[Any],
    stored_as_scd_type: int | str = 1,
    track_history_column_list: Sequence[str] | None = None,
    track_history_except_column_list: Sequence[str] | None = None,
    name: str | None = None,
    module: str | None = None,
) -> None:
    """Apply full snapshots to ``target``: keys new or changed since the previous
    snapshot are upserted, keys it no longer has are deleted (SCD type 1 or 2, the
    snapshot versions as ``__START_AT``/``__END_AT``). ``source`` is a dataset of the
    pipeline (read whole when its Delta version changed; a temporary view on every
    run) or a function ``(latest_version) -> (DataFrame, version) | None``, called until
    it returns None, versions increasing."""
    from lakehouse.pipelines.cdc import snapshot_spec

    where = f"create_auto_cdc_from_snapshot_flow into {target!r}"
    stored_as_scd_type = _scd_type(stored_as_scd_type, where)
    keys = _keys(keys, where)
    if not isinstance(source, str) and not callable(source):
        raise GraphError(f"{where}: source is a dataset name or a function (latest_version) -> (df, version)")
    try:
        spec = snapshot_spec(
            keys,
            stored_as_scd_type,
            track_history_column_list=track_history_column_list,
            track_history_except_column_list=track_history_except_column_list,
        )
    except ValueError as exc:
        raise GraphError(f"{where}: {exc}") from None
    _registry(module or _caller_module()).add_flow(
        Flow(
            name=name or f"{target}_snapshot_cdc",
            target=target,
            kind=FlowKind.AUTO_CDC,
            cdc=spec,
            source=source if isinstance(source, str) else None,
            function=None if isinstance(source, str) else source,
            snapshot=True,
        )
    )


def _keys(keys: Sequence[Any], where: str) -> list[str]:
    """The key columns' names (strings or ``col(...)``); at least one."""
    names = [_column_name(k, f"{where}: keys") for k in keys]
    if not names:
        raise GraphError(f"{where}: keys must name at least one column")
    return names


def _scd_type(value: Any, where: str) -> int:
    """1 or 2; Databricks' examples also write them as strings ("2")."""
    if str(value).strip() in ("1", "2"):
        return int(str(value).strip())
    raise GraphError(f"{where}: stored_as_scd_type must be 1 or 2, got {value!r}")


def _column_name(value: Any, option: str) -> str:
    """A column given as a name or as ``col("name")`` (Databricks takes both)."""
    if isinstance(value, str):
        return value
    expression = getattr(value, "_expr", None)  # a Spark Connect Column
    name = getattr(expression, "_unparsed_identifier", None)
    if isinstance(name, str):
        return name
    raise GraphError(
        f"{option} takes column names or col('name'), got {value!r}; a computed ordering "
        "(struct(...), an expression) is not supported: add it as a column of the source "
        "(a temporary view) and name that column"
    )


def _sql_text(value: Any, option: str) -> str | None:
    """A predicate given as SQL text or as ``expr("...")`` (Databricks takes both)."""
    if value is None or isinstance(value, str):
        return value
    expression = getattr(value, "_expr", None)
    text = getattr(expression, "_expr", None)  # SQLExpression: the text given to expr()
    if isinstance(text, str):
        return text
    raise GraphError(
        f"{option} takes a SQL predicate as a string or expr('...'), got {value!r}; "
        "write the condition as SQL text, e.g. \"operation = 'DELETE'\""
    )


def _caller_module() -> str:
    import inspect

    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None and frame.f_back.f_back is not None
    return frame.f_back.f_back.f_globals.get("__name__", "__main__")


def _expectation_decorator(rules: Mapping[str, str], action: Action) -> Callable[[F], F]:
    for rule, predicate in rules.items():
        if not isinstance(predicate, str) or not predicate.strip():
            raise GraphError(f"expectation {rule!r}: the predicate must be a SQL string, got {predicate!r}")

    def attach(fn: F) -> F:
        new = [Expectation(rule, predicate, action) for rule, predicate in rules.items()]
        dataset = getattr(fn, _DATASET, None)
        if dataset is not None:  # decorator written above @table
            dataset.expectations.extend(new)
        else:  # below @table: picked up when the table registers
            setattr(fn, _PENDING, [*new, *getattr(fn, _PENDING, [])])
        return fn

    return attach


def expect(name: str, predicate: str) -> Callable[[F], F]:
    """Count rows failing ``predicate``; keep them."""
    return _expectation_decorator({name: predicate}, Action.WARN)


def expect_or_drop(name: str, predicate: str) -> Callable[[F], F]:
    """Drop rows failing ``predicate`` (to the quarantine table if the dataset has one)."""
    return _expectation_decorator({name: predicate}, Action.DROP)


def expect_or_fail(name: str, predicate: str) -> Callable[[F], F]:
    """Fail the flow if any row fails ``predicate``; nothing is committed."""
    return _expectation_decorator({name: predicate}, Action.FAIL)


def expect_all(rules: Mapping[str, str]) -> Callable[[F], F]:
    return _expectation_decorator(rules, Action.WARN)


def expect_all_or_drop(rules: Mapping[str, str]) -> Callable[[F], F]:
    return _expectation_decorator(rules, Action.DROP)


def expect_all_or_fail(rules: Mapping[str, str]) -> Callable[[F], F]:
    return _expectation_decorator(rules, Action.FAIL)


# Names of the legacy ``dlt`` module, for definitions written against it.
view = temporary_view
apply_changes = create_auto_cdc_flow
apply_changes_from_snapshot = create_auto_cdc_from_snapshot_flow


def read(name: str) -> Any:
    """``dlt.read("x")``: the dataset ``x`` of the pipeline, read whole (a named read,
    resolved like ``spark.read.table("x")``)."""
    from lakehouse.pipelines.runner import current

    return current().spark.read.table(name)


def read_stream(name: str) -> Any:
    """``dlt.read_stream("x")``: the new rows of ``x`` (``spark.readStream.table("x")``)."""
    from lakehouse.pipelines.runner import current

    return current().spark.readStream.table(name)
