"""The medallion pipeline: bronze, silver and gold of both domains (pharma and
energy) as one graph.

Notebooks run one layer at a time (``run_layer``); the graph, its lineage and the
event log cover all of them. The pipeline was called ``pharma`` until it was named for
what it holds: its state kept under that name (file checkpoints, private datasets,
incremental state) is adopted on first use, so nothing is read twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pyarrow.fs import FileSelector, FileSystem, FileType, LocalFileSystem

from lakehouse import pipelines as dp
from lakehouse.context import RunContext
from lakehouse.lake import Lake, filesystem

_log = logging.getLogger(__name__)
PIPELINE = "medallion"
FORMER_NAME = "pharma"
STATE_KINDS = ("checkpoints", "private", "incremental")  # _system/<kind>/<pipeline>/...
MODULES = (
    "lakehouse.bronze.tables",
    "lakehouse.silver.pharma_tables",
    "lakehouse.silver.customers",
    "lakehouse.gold.pharma_tables",
    "lakehouse.silver.energy_tables",
    "lakehouse.gold.energy_tables",
)
LAYERS = ("bronze", "silver", "gold")


def medallion_graph() -> dp.PipelineGraph:
    return dp.load_graph(PIPELINE, MODULES)


def adopt_former_state(lake: Lake) -> list[str]:
    """Move the state kept under the pipeline's former name to its name, where the
    former exists and the new one does not yet; returns the folders moved."""
    moved = []
    for kind in STATE_KINDS:
        fs, former = filesystem(lake.system(f"{kind}/{FORMER_NAME}"))
        _, current = filesystem(lake.system(f"{kind}/{PIPELINE}"))
        if (
            fs.get_file_info(former).type == FileType.Directory
            and fs.get_file_info(current).type == FileType.NotFound
        ):
            _move_folder(fs, former, current)
            moved.append(lake.system(f"{kind}/{PIPELINE}"))
            _log.warning("pipeline state %s moved to %s (the pipeline's former name)", former, current)
    return moved


def _move_folder(fs: FileSystem, source: str, target: str) -> None:
    if isinstance(fs, LocalFileSystem):
        fs.move(source, target)
        return
    # An object store renames single objects only (and has no real folders): copy, then delete.
    for info in fs.get_file_info(FileSelector(source, recursive=True)):
        if info.type == FileType.File:
            fs.copy_file(info.path, target + info.path[len(source) :])
    fs.delete_dir(source)


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
    adopt_former_state(context.lake)
    parameters = {"run_date": context.run_date, "settings": context.settings}
    return dp.PipelineRunner(
        context.spark,
        medallion_graph(),
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
