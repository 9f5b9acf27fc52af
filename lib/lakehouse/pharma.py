"""The pharma pipeline: bronze, silver and gold definitions as one graph.

Notebooks run one layer at a time (``run_layer``); the graph, its lineage and the
event log cover all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from lakehouse import pipelines as dp
from lakehouse.context import RunContext

PIPELINE = "pharma"
MODULES = (
    "lakehouse.bronze.tables",
    "lakehouse.silver.tables",
    "lakehouse.silver.customers",
    "lakehouse.gold.tables",
    "lakehouse.silver.energy_tables",
    "lakehouse.gold.energy_tables",
)
LAYERS = ("bronze", "silver", "gold")


def pharma_graph() -> dp.PipelineGraph:
    return dp.load_graph(PIPELINE, MODULES)


def layer_datasets(graph: dp.PipelineGraph, layer: str, *, under: str = "") -> list[str]:
    """Datasets stored under ``<layer>/<under>`` in the lake, in dependency order
    (e.g. ``layer_datasets(g, "bronze", under="source=referential")``)."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; use one of {LAYERS}")
    prefix = f"{layer}/{under}".rstrip("/") + "/"
    names = [name for name in graph.order() if (graph.datasets[name].path or "").startswith(prefix)]
    if not names:
        raise ValueError(f"no dataset of pipeline {graph.name!r} is stored under {prefix!r}")
    return names


def runner(context: RunContext) -> dp.PipelineRunner:
    parameters = {"run_date": context.run_date, "settings": context.settings}
    return dp.PipelineRunner(
        context.spark,
        pharma_graph(),
        context.lake,
        parameters=parameters,
        parallelism=context.settings.pipelines.parallel_flows,
    )


def run_layer(
    context: RunContext, layer: str, *, under: str = "", full_refresh: bool | Sequence[str] = False
) -> dp.PipelineRun:
    """Update the datasets of one layer (upstream layers are read as stored)."""
    pipeline = runner(context)
    return pipeline.run(
        refresh=layer_datasets(pipeline.graph, layer, under=under),
        include_upstreams=False,
        full_refresh=full_refresh,
        run_id=context.batch_id,
        ingested_at=context.started_at,
    )
