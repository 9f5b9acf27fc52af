"""The runner's planner: what a run updates, in what order, and what it can skip.

- ``datasets_to_update``: the datasets of a ``run(refresh=..., include_upstreams=...)``
  in dependency order, and the ones fully refreshed.
- ``update_in_order``: each dataset once every dataset it reads is done, up to
  ``parallelism`` at once, the longest chain first (``critical_paths`` of the last
  run's durations); the first failure starts nothing new.
- ``last_refresh`` / ``unchanged``: a materialized view whose plan and input
  versions are those of its last refresh is not computed
  (``lakehouse.pipelines.fingerprint``).
- ``analyse``: the dry run, the engine's analysis only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextvars import copy_context
from graphlib import TopologicalSorter
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.lake import delta_exists, read_delta, read_json
from lakehouse.pipelines.fingerprint import PlanFingerprint
from lakehouse.pipelines.graph import Dataset, DatasetKind, FlowKind, PipelineGraph
from lakehouse.pipelines.state import table_definition

if TYPE_CHECKING:
    from lakehouse.pipelines.runner import PipelineRunner

# Columns a definition adds only for its expectations (e.g. a lookup flag or the raw
# text of a parsed value): kept in quarantine rows, dropped from the target.
CHECK_PREFIX = "_check_"


def datasets_to_update(
    graph: PipelineGraph,
    refresh: Sequence[str] | None,
    full_refresh: bool | Sequence[str],
    *,
    include_upstreams: bool,
) -> tuple[list[str], set[str]]:
    """``(order, fully refreshed)``: ``refresh`` (default: all) and what they need;
    without ``include_upstreams`` only ``refresh``, the temporary views it needs and
    the private datasets only the pipeline reads on the way to it (its internals)."""
    order = graph.order(refresh)
    if refresh is not None and not include_upstreams:
        views = {n for n, d in graph.datasets.items() if d.kind == DatasetKind.TEMPORARY_VIEW}
        order = [n for n in order if n in set(refresh) | views | _private_upstreams(graph, refresh)]
    full = set(order) if full_refresh is True else set(full_refresh or ())
    return order, full


def _private_upstreams(graph: PipelineGraph, names: Sequence[str]) -> set[str]:
    """Private datasets read by ``names`` directly or through temporary views and
    other private datasets."""
    found: set[str] = set()
    todo = list(names)
    while todo:
        for upstream in graph.upstream(todo.pop()) & set(graph.datasets):
            dataset = graph.datasets[upstream]
            internal = dataset.private or dataset.kind == DatasetKind.TEMPORARY_VIEW
            if internal and upstream not in found:
                found.add(upstream)
                todo.append(upstream)
    return {name for name in found if graph.datasets[name].private}


def update_in_order(
    graph: PipelineGraph,
    order: list[str],
    parallelism: int,
    update: Callable[[str], None],
    durations: Mapping[str, float] | None = None,
) -> None:
    """``update(name)`` for each of ``order``, each once every dataset it reads is
    done, up to ``parallelism`` at once: of the datasets ready, the one heading the
    longest chain of ``durations`` (seconds, the last run's) first, so the slow
    chains do not start last. The first failure stops new starts; it is raised once
    the running ones have ended (so the roll-back sees every write)."""
    if parallelism == 1:
        for name in order:
            update(name)
        return
    wanted = set(order)
    upstream = {name: graph.upstream(name) & wanted for name in order}
    rank = critical_paths(upstream, durations or {})
    sorter = TopologicalSorter(upstream)
    sorter.prepare()
    failure: BaseException | None = None
    running: dict[Future[None], str] = {}
    ready: list[str] = []
    with ThreadPoolExecutor(parallelism, thread_name_prefix=f"pipeline-{graph.name}") as pool:
        while running or (failure is None and sorter.is_active()):
            if failure is None:
                ready = sorted([*ready, *sorter.get_ready()], key=lambda n: -rank[n])  # stable
                while ready and len(running) < parallelism:
                    name = ready.pop(0)
                    task = copy_context().run  # definitions see current() in their thread
                    running[pool.submit(task, update, name)] = name
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                if future.exception() is None:
                    sorter.done(name)
                elif failure is None:
                    failure = future.exception()
    if failure is not None:
        raise failure


def critical_paths(upstream: Mapping[str, set[str]], durations: Mapping[str, float]) -> dict[str, float]:
    """Each dataset's duration plus the longest chain of durations after it (0 for a
    dataset without a recorded duration)."""
    downstream: dict[str, set[str]] = {name: set() for name in upstream}
    for name, reads in upstream.items():
        for read in reads:
            downstream[read].add(name)
    rank: dict[str, float] = {}
    for name in reversed(list(TopologicalSorter(upstream).static_order())):
        rank[name] = durations.get(name, 0.0) + max((rank[d] for d in downstream[name]), default=0.0)
    return rank


def last_refresh(
    record_file: str, dataset: Dataset, written: dict[str, int | None], *, full_refresh: bool
) -> dict[str, Any]:
    """The record of a view's last refresh, or ``{}`` when it no longer describes the
    table: a full refresh, another writer, a restore or a roll-back (the versions
    differ), new expectations or storage options."""
    record = {} if full_refresh else read_json(record_file) or {}
    if record.get("written") != written or record.get("definition") != table_definition(dataset):
        return {}
    return record


def unchanged(planned: PlanFingerprint | None, record: dict[str, Any]) -> bool:
    """True if the view's plan and the versions it reads are those of its last refresh."""
    return planned is not None and planned.reproducible and record.get("plan") == planned.to_json()


# ---------------------------------------------------------------- dry run
def analyse(runner: PipelineRunner, only: Sequence[str] | None) -> tuple[list[str], dict[str, str]]:
    """``(problems, schemas)``: every dataset's schema analysed, without reading or
    writing data."""
    problems: list[str] = []
    schemas: dict[str, str] = {}
    frames: dict[str, DataFrame] = {}
    for name in runner.graph.order(only):
        dataset = runner.graph.datasets[name]
        try:
            frame = _analysis_frame(runner, name, frames)
            if frame is None:
                continue
            schema = frame.schema  # analysis on the engine, no execution
            for rule in dataset.expectations:
                _ = frame.select(F.expr(rule.predicate)).schema  # a bad predicate fails here
            schemas[name] = schema.simpleString()
            check_columns = [c for c in frame.columns if c.startswith(CHECK_PREFIX)]
            frames[name] = frame.drop(*check_columns) if check_columns else frame
            if dataset.schema:
                expected = runner.spark.createDataFrame([], dataset.schema).schema
                if [(f.name, f.dataType) for f in expected] != [(f.name, f.dataType) for f in schema]:
                    problems.append(
                        f"{name!r}: declared schema {expected.simpleString()} but the query "
                        f"gives {schema.simpleString()}"
                    )
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            problems.append(f"{name!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    return problems, schemas


def _analysis_frame(runner: PipelineRunner, name: str, frames: dict[str, DataFrame]) -> DataFrame | None:
    """The plan a flow would write (its function over the upstreams' plans); the
    stored table where no plan can be built (files not seen yet, CDC targets)."""
    path = runner.path(name)
    stored = read_delta(runner.spark, path) if delta_exists(path) else None
    for flow in runner.graph.flows_into(name):
        if flow.kind == FlowKind.AUTO_CDC:
            return stored if stored is not None else frames.get(flow.source)
        if any(input_name not in frames for input_name in flow.inputs):
            return stored  # an upstream could not be analysed
        result = flow.function(**{input_name: frames[input_name] for input_name in flow.inputs})
        if isinstance(result, DataFrame):
            return result
        if stored is not None:  # a file source: the table has its metadata columns
            return stored
        schema = getattr(result, "schema", None)  # a file source with a declared schema
        return runner.spark.createDataFrame([], schema) if schema else None
    return stored
