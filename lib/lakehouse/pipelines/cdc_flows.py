"""The flow executor's CDC flows: change events (``create_auto_cdc_flow``) and
snapshots (``create_auto_cdc_from_snapshot_flow``) applied to a streaming table.
The SCD logic itself is ``lakehouse.pipelines.cdc``."""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame

from lakehouse import maintenance
from lakehouse.lake import read_delta, read_json, write_json
from lakehouse.pipelines.delta_source import read_appended
from lakehouse.pipelines.event_log import FlowEvent
from lakehouse.pipelines.graph import Dataset, DatasetKind, Flow, GraphError
from lakehouse.pipelines.state import (
    RunState,
    delta_version,
    load_offsets,
    remember_version,
    save_offsets,
    set_aside,
)

if TYPE_CHECKING:
    from lakehouse.pipelines.executor import FlowExecutor


def run_cdc(
    executor: FlowExecutor,
    dataset: Dataset,
    flow: Flow,
    event: FlowEvent,
    state: RunState,
    *,
    full_refresh: bool,
) -> None:
    from lakehouse.pipelines import cdc

    runner = executor.runner
    checkpoint = runner.checkpoint(flow.name)
    target = runner.path(dataset.name)
    if full_refresh:
        set_aside(state, checkpoint)
        set_aside(state, target)
    if flow.snapshot:
        _run_snapshots(executor, dataset, flow, event, state)
        return
    offsets = load_offsets(checkpoint, delta_version(target))
    changes, versions = _change_events(executor, flow, offsets, state)
    if changes is None:
        event.status, event.rows_read, event.rows_written, event.details = "SKIPPED", 0, 0, "no new changes"
        return
    remember_version(state, target)
    save_offsets(checkpoint, pending={"offsets": versions, "target_version_before": delta_version(target)})
    result = cdc.apply_changes(executor.spark, target_path=target, changes=changes, spec=flow.cdc)
    state.offset_commits.append((checkpoint, versions))
    state.pending_checkpoints.append(checkpoint)
    event.status = "COMPLETED"
    event.rows_read = changes.count()
    event.target_version = maintenance.version(target)
    event.details = json.dumps(_plain(result))


def _run_snapshots(
    executor: FlowExecutor, dataset: Dataset, flow: Flow, event: FlowEvent, state: RunState
) -> None:
    """``create_auto_cdc_from_snapshot_flow``: each new snapshot, as the change events
    from the target's current state, in one commit per snapshot."""
    from lakehouse.pipelines import cdc

    runner, spark = executor.runner, executor.spark
    target = runner.path(dataset.name)
    marker = f"{runner.checkpoint(flow.name)}/snapshot.json"
    last = (read_json(marker) or {}).get("version")
    snapshots = []
    if flow.source is not None:
        source = executor.graph.datasets[flow.source]
        if source.name in state.views:  # a temporary view: a new snapshot on every run
            snapshots.append((state.views[source.name], (last or 0) + 1))
        else:
            version = delta_version(runner.path(source.name))
            if version is not None and version != last:
                snapshots.append((read_delta(spark, runner.path(source.name)), version))
    remember_version(state, target)
    applied, rows_read = [], 0
    while True:
        if flow.source is None:
            found = flow.function(last)
            if found is None:
                break
            frame, version = _next_snapshot(dataset, found, last)
        elif snapshots:
            frame, version = snapshots.pop()
        else:
            break
        changes = cdc.snapshot_changes(
            spark, target_path=target, snapshot=frame, version=version, spec=flow.cdc
        )
        rows_read += frame.count()
        cdc.apply_changes(spark, target_path=target, changes=changes, spec=flow.cdc)
        applied.append(version)
        last = version
    if not applied:
        event.status, event.rows_read, event.rows_written, event.details = "SKIPPED", 0, 0, "no new snapshot"
        return
    state.checkpoint_commits.append(lambda: write_json(marker, {"version": last}))
    event.status, event.rows_read = "COMPLETED", rows_read
    event.target_version = maintenance.version(target)
    event.details = json.dumps({"snapshot_versions": applied})


def _next_snapshot(dataset: Dataset, found: Any, last: Any) -> tuple[DataFrame, Any]:
    """What a snapshot function returned, checked: ``(DataFrame, version)`` after ``last``."""
    if not (isinstance(found, tuple) and len(found) == 2 and isinstance(found[0], DataFrame)):
        raise GraphError(
            f"{dataset.name!r}: the snapshot function returned {type(found).__name__}; it "
            "returns (DataFrame, version) for the next snapshot, or None when there is none"
        )
    frame, version = found
    if last is not None and not version > last:
        raise GraphError(
            f"{dataset.name!r}: the snapshot function returned version {version!r} after "
            f"{last!r}; versions must increase (it is called with the latest version applied)"
        )
    return frame, version


def _change_events(
    executor: FlowExecutor, flow: Flow, offsets: dict[str, int], state: RunState
) -> tuple[DataFrame | None, dict[str, int]]:
    """The change events a CDC flow has not applied yet, and the upstream versions
    they go up to. A streaming table source gives its new commits; a temporary
    view is computed over the new commits of the streaming tables it reads (the
    other inputs read whole), like a streaming read of it; a materialized view
    is applied whole when its version changed (re-applied events are no-ops)."""
    runner, spark = executor.runner, executor.spark
    source = executor.graph.datasets[flow.source]
    if source.kind == DatasetKind.STREAMING_TABLE:
        changes, version = read_appended(
            spark, runner.path(source.name), since_version=offsets.get(source.name)
        )
        return changes, {source.name: version}
    if source.kind == DatasetKind.MATERIALIZED_VIEW:
        version = delta_version(runner.path(source.name))
        if version is None or offsets.get(source.name) == version:
            return None, {}
        return read_delta(spark, runner.path(source.name)), {source.name: version}
    (view_flow,) = executor.graph.flows_into(source.name)
    frames, versions, any_new = {}, {}, False
    for name in view_flow.inputs:
        upstream = executor.graph.datasets[name]
        if name in state.views or upstream.kind != DatasetKind.STREAMING_TABLE:
            frames[name] = executor.read(name, state)
            continue
        path = runner.path(name)
        new_rows, version = read_appended(spark, path, since_version=offsets.get(name))
        versions[name] = version
        any_new = any_new or new_rows is not None
        frames[name] = new_rows if new_rows is not None else read_delta(spark, path).limit(0)
    if versions and not any_new:
        return None, versions
    changes = view_flow.function(**frames)
    if not isinstance(changes, DataFrame):
        raise GraphError(
            f"the CDC flow {flow.name!r} reads the temporary view {source.name!r}, which returned "
            f"{type(changes).__name__}; a CDC source view returns a DataFrame (read files into a "
            "streaming table with dp.read_files and have the view read that table)"
        )
    return changes, versions


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) else value
