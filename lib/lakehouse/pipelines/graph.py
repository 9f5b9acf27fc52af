"""The dataflow graph: datasets, the flows that write them, and their validation.

Definitions only: nothing here touches an engine, so a graph can be built and
validated in a unit test without Spark (the ``pyspark.pipelines`` habit of keeping the
registry apart from execution).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from graphlib import CycleError, TopologicalSorter
from typing import Any

from lakehouse.pipelines.contracts import Contract, contract_problems


class DatasetKind(str, Enum):
    STREAMING_TABLE = "streaming_table"  # appended incrementally; only new input is read
    MATERIALIZED_VIEW = "materialized_view"  # recomputed from its inputs on every run
    TEMPORARY_VIEW = "temporary_view"  # not stored; inlined into its readers


class FlowKind(str, Enum):
    APPEND = "append"  # new input rows appended to a streaming table
    COMPLETE = "complete"  # materialized view: recompute and replace
    VIEW = "view"  # temporary view: nothing written
    AUTO_CDC = "auto_cdc"  # change events applied to a target (SCD 1 or 2)


class Action(str, Enum):
    WARN = "warn"  # count and keep
    DROP = "drop"  # count and drop (to quarantine when the dataset has one)
    FAIL = "fail"  # fail the flow; nothing is committed


@dataclass(frozen=True)
class Expectation:
    name: str
    predicate: str  # SQL; NULL counts as passing (Databricks semantics)
    action: Action


@dataclass
class Dataset:
    name: str
    kind: DatasetKind
    comment: str | None = None
    path: str | None = None  # lake-relative or absolute; default from the pipeline
    partition_cols: tuple[str, ...] = ()
    table_properties: Mapping[str, str] = field(default_factory=dict)
    schema: str | None = None  # DDL the output must have (checked at dry run)
    expectations: list[Expectation] = field(default_factory=list)
    quarantine: bool = False  # rows dropped by expectations go to <name>_quarantine
    # A materialized view keeping state about its own writes (an incremental one):
    # computed and written on every run, never skipped as unchanged.
    stateful: bool = False
    # Computed and read by the pipeline's own flows only: stored with the pipeline's
    # internal state (_system/private/<pipeline>/<name>), never at a table address.
    private: bool = False
    # A sink (create_sink): a Delta path written by append flows only; never read by
    # the pipeline, never overwritten (a full refresh appends what it re-reads).
    sink: bool = False
    # Keys, grain, foreign keys, owner and PII tags (lakehouse.pipelines.contracts).
    contract: Contract | None = None
    # A materialized view refreshed by partition (dp.by_day(...)): only the partitions
    # whose input changed are recomputed (lakehouse.pipelines.incremental).
    incremental: Any = None


@dataclass
class Flow:
    name: str
    target: str
    kind: FlowKind
    function: Callable[..., Any] | None = None  # returns a DataFrame or a file source
    inputs: tuple[str, ...] = ()  # datasets read, from the function's parameter names
    cdc: Any = None  # CdcSpec for AUTO_CDC flows
    source: str | None = None  # AUTO_CDC: the dataset holding change events
    once: bool = False  # APPEND: a backfill run once, again only on a full refresh
    # AUTO_CDC from snapshots: ``source`` names a dataset read whole as the next
    # snapshot, or ``function(latest_version)`` returns (DataFrame, version) or None.
    snapshot: bool = False


class GraphError(ValueError):
    """The pipeline definition is invalid; the message names the dataset and the fix."""


def function_inputs(function: Callable[..., Any]) -> tuple[str, ...]:
    """Inputs are the function's parameter names: ``def silver(bronze_orders): ...``
    reads the dataset ``bronze_orders`` (so the graph is known without running)."""
    params = inspect.signature(function).parameters.values()
    bad = [p.name for p in params if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if bad:
        raise GraphError(
            f"{function.__name__}: *args/**kwargs cannot name input datasets ({bad}); "
            "give each input dataset its own parameter"
        )
    return tuple(p.name for p in params)


@dataclass
class PipelineGraph:
    """Datasets and flows of one pipeline."""

    name: str
    datasets: dict[str, Dataset] = field(default_factory=dict)
    flows: dict[str, Flow] = field(default_factory=dict)
    # Definitions without parameters may read their inputs by name
    # (spark.read.table("x")): a runner calls them once to find those reads
    # (lakehouse.pipelines.reads). Pipeline projects have it; module graphs, whose
    # sources may act when called (a database read), do not.
    named_reads: bool = False

    def add_dataset(self, dataset: Dataset) -> None:
        if dataset.name in self.datasets:
            raise GraphError(
                f"pipeline {self.name!r}: dataset {dataset.name!r} is defined twice; "
                "dataset names must be unique"
            )
        self.datasets[dataset.name] = dataset

    def add_flow(self, flow: Flow) -> None:
        if flow.name in self.flows:
            raise GraphError(f"pipeline {self.name!r}: flow {flow.name!r} is defined twice")
        self.flows[flow.name] = flow

    def flows_into(self, dataset: str) -> list[Flow]:
        return [f for f in self.flows.values() if f.target == dataset]

    def upstream(self, dataset: str) -> set[str]:
        """Datasets read by the flows writing ``dataset``."""
        reads: set[str] = set()
        for flow in self.flows_into(dataset):
            reads.update(flow.inputs)
            if flow.source:
                reads.add(flow.source)
        return reads

    def validate(self) -> list[str]:
        """Every problem in the definitions (empty when valid): missing inputs, flows
        into unknown or non-streaming targets, datasets without a flow, cycles, contracts
        naming unknown columns or foreign keys to unknown keys."""
        problems = []
        for flow in self.flows.values():
            target = self.datasets.get(flow.target)
            if target is None:
                problems.append(
                    f"flow {flow.name!r} writes {flow.target!r}, which is not defined; "
                    "declare it with create_streaming_table()"
                )
            elif (
                flow.kind in (FlowKind.APPEND, FlowKind.AUTO_CDC)
                and target.kind != DatasetKind.STREAMING_TABLE
            ):
                problems.append(
                    f"flow {flow.name!r} appends to {flow.target!r}, a {target.kind.value}; "
                    "only streaming tables take append or CDC flows"
                )
            if target is not None and target.sink and flow.kind != FlowKind.APPEND:
                problems.append(
                    f"flow {flow.name!r} writes the sink {flow.target!r}; sinks take @append_flow "
                    "only: apply the changes into a streaming table and append that table to the sink"
                )
            for name in (*flow.inputs, *([flow.source] if flow.source else [])):
                if name in self.datasets and self.datasets[name].sink:
                    problems.append(
                        f"{flow.target!r} reads {name!r}, a sink: sinks are written by the pipeline, "
                        "never read by it; read the dataset the sink's flow reads instead"
                    )
                if name not in self.datasets:
                    problems.append(
                        f"{flow.target!r} reads {name!r}, which is not a dataset of pipeline "
                        f"{self.name!r} (known: {sorted(self.datasets)})"
                    )
        for name in self.datasets:
            if not self.flows_into(name):
                problems.append(f"dataset {name!r} has no flow writing it; add @append_flow(target={name!r})")
        try:
            self.order()
        except GraphError as exc:
            problems.append(str(exc))
        problems += contract_problems(self)
        return problems

    def order(self, only: Sequence[str] | None = None) -> list[str]:
        """Datasets in dependency order; ``only`` keeps those and what they need."""
        graph = {name: self.upstream(name) & set(self.datasets) for name in self.datasets}
        if only is not None:
            graph = {name: graph[name] for name in self._with_upstreams(only)}
        try:
            return list(TopologicalSorter(graph).static_order())
        except CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise GraphError(f"pipeline {self.name!r} has a cycle: {cycle}") from None

    def _with_upstreams(self, names: Sequence[str]) -> set[str]:
        unknown = sorted(set(names) - set(self.datasets))
        if unknown:
            raise GraphError(f"unknown datasets {unknown}; known: {sorted(self.datasets)}")
        needed, todo = set(), list(names)
        while todo:
            name = todo.pop()
            if name not in needed:
                needed.add(name)
                todo.extend(self.upstream(name) & set(self.datasets))
        return needed

    def to_mermaid(self) -> str:
        """Lineage as a Mermaid flowchart (renders in GitHub, JupyterLab, mkdocs)."""
        shapes = {
            DatasetKind.STREAMING_TABLE: ("[[", "]]"),
            DatasetKind.MATERIALIZED_VIEW: ("[(", ")]"),
            DatasetKind.TEMPORARY_VIEW: ("(", ")"),
        }
        lines = ["flowchart LR"]
        for name, dataset in sorted(self.datasets.items()):
            left, right = shapes[dataset.kind]
            lines.append(f"    {name}{left}{name}{right}")
        for name in sorted(self.datasets):
            for upstream in sorted(self.upstream(name)):
                lines.append(f"    {upstream} --> {name}")
        return "\n".join(lines)


def lineage_svg(graph: PipelineGraph) -> str:
    """Lineage as a standalone SVG: one column per dependency depth, left to right.
    Written by hand (no Graphviz, no JavaScript) so it opens anywhere, offline."""
    from html import escape

    depth: dict[str, int] = {}
    for name in graph.order():
        upstream = graph.upstream(name) & set(graph.datasets)
        depth[name] = 1 + max((depth[u] for u in upstream), default=-1)
    columns: dict[int, list[str]] = {}
    for name in sorted(depth, key=lambda n: (depth[n], n)):
        columns.setdefault(depth[name], []).append(name)
    box_w, box_h, gap_x, gap_y, margin = 210, 34, 70, 18, 20
    position = {
        name: (margin + d * (box_w + gap_x), margin + row * (box_h + gap_y))
        for d, names in columns.items()
        for row, name in enumerate(names)
    }
    width = margin * 2 + len(columns) * (box_w + gap_x) - gap_x
    height = margin * 2 + max(len(n) for n in columns.values()) * (box_h + gap_y) - gap_y
    fills = {
        DatasetKind.STREAMING_TABLE: "#dbeafe",
        DatasetKind.MATERIALIZED_VIEW: "#dcfce7",
        DatasetKind.TEMPORARY_VIEW: "#f3f4f6",
    }
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12"><title>{escape(graph.name)} lineage</title>'
    ]
    for name in depth:
        for upstream in sorted(graph.upstream(name) & set(graph.datasets)):
            (x1, y1), (x2, y2) = position[upstream], position[name]
            parts.append(
                f'<line x1="{x1 + box_w}" y1="{y1 + box_h / 2}" x2="{x2}" y2="{y2 + box_h / 2}" '
                'stroke="#6b7280" stroke-width="1.2"/>'
            )
    for name, (x, y) in position.items():
        dataset = graph.datasets[name]
        parts.append(
            f"<g><title>{escape(dataset.kind.value)}: {escape(dataset.comment or name)}</title>"
            f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="6" fill="{fills[dataset.kind]}" '
            'stroke="#374151"/>'
            f'<text x="{x + 10}" y="{y + 21}">{escape(name)}</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
