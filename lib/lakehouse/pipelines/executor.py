"""The runner's flow executor: compute each flow of a dataset and write it.

- Temporary views are computed and kept for their readers in this run.
- Materialized views are recomputed and replaced in one commit, unless the planner
  finds them unchanged; with ``incremental=``, only the partitions whose input
  changed are recomputed (``lakehouse.pipelines.incremental``).
- Streaming tables read new files (``read_files``) or the commits appended to their
  upstream streaming tables since the last run; other inputs are read whole.
- CDC flows apply change events or snapshots (``lakehouse.pipelines.cdc_flows``).

Every row write goes through ``lakehouse.pipelines.writer``; what a flow read is
committed by the state keeper once the run succeeds.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.lake import delta_exists, read_delta, read_json, write_json
from lakehouse.pipelines import planner, writer
from lakehouse.pipelines.api import IncrementalFiles
from lakehouse.pipelines.delta_source import read_appended
from lakehouse.pipelines.event_log import FlowEvent
from lakehouse.pipelines.fingerprint import fingerprint
from lakehouse.pipelines.graph import Dataset, DatasetKind, Flow, FlowKind, GraphError
from lakehouse.pipelines.state import (
    RunState,
    delta_version,
    load_offsets,
    save_offsets,
    set_aside,
    table_definition,
)

if TYPE_CHECKING:
    from lakehouse.pipelines.runner import PipelineRun, PipelineRunner


class FlowExecutor:
    """Runs the flows of one runner's graph (paths and session from the runner)."""

    def __init__(self, runner: PipelineRunner) -> None:
        self.runner = runner
        self.spark, self.graph = runner.spark, runner.graph

    def update(self, name: str, run: PipelineRun, state: RunState, *, full_refresh: bool) -> None:
        """Every flow into ``name``, each leaving one event in ``run``."""
        dataset = self.graph.datasets[name]
        for index, flow in enumerate(self.graph.flows_into(name)):
            event = FlowEvent(run.run_id, self.graph.name, name, flow.name, flow.kind.value, now())
            run.events.append(event)
            started = time.monotonic()
            try:
                if flow.kind == FlowKind.VIEW:
                    state.views[name] = flow.function(**self.inputs(flow, state))
                    event.status = "COMPLETED"
                elif flow.kind == FlowKind.COMPLETE and dataset.incremental is not None:
                    from lakehouse.pipelines.incremental import refresh_incremental

                    refresh_incremental(self, dataset, flow, event, state, full_refresh=full_refresh)
                elif flow.kind == FlowKind.COMPLETE:
                    self.refresh_view(dataset, flow, event, state, full_refresh=full_refresh)
                elif flow.kind == FlowKind.AUTO_CDC:
                    from lakehouse.pipelines.cdc_flows import run_cdc

                    run_cdc(self, dataset, flow, event, state, full_refresh=full_refresh)
                else:
                    self.run_append(dataset, flow, event, state, full_refresh=full_refresh, first=index == 0)
            except Exception as exc:
                event.status, event.error = "FAILED", describe(exc)
                raise
            finally:
                event.ended_at = now()
                event.duration_seconds = round(time.monotonic() - started, 3)

    def inputs(self, flow: Flow, state: RunState) -> dict[str, DataFrame]:
        """Every input read whole (temporary views from this run, tables from the lake);
        an incremental source: the rows the view reads (``source_where``, arrived up to
        the run date)."""
        frames = {name: self.read(name, state) for name in flow.inputs}
        spec = self.graph.datasets[flow.target].incremental
        if hasattr(spec, "read_rows") and spec.source in frames:
            run_date = self.runner.context.parameters.get("run_date")
            frames[spec.source] = spec.read_rows(frames[spec.source], run_date)
        return frames

    def read(self, name: str, state: RunState) -> DataFrame:
        return state.views[name] if name in state.views else read_delta(self.spark, self.runner.path(name))

    def written_versions(self, dataset: Dataset) -> dict[str, int | None]:
        """The versions of a view's table (and quarantine): another writer, a restore
        or a failed run's roll-back changes them, and the view is recomputed."""
        paths = [self.runner.path(dataset.name)]
        if dataset.quarantine:
            paths.append(self.runner.quarantine_path(dataset.name))
        return {path: delta_version(path) for path in paths}

    # ------------------------------------------------------ materialized views
    def refresh_view(
        self, dataset: Dataset, flow: Flow, event: FlowEvent, state: RunState, *, full_refresh: bool
    ) -> None:
        """Recompute a materialized view and replace its table, unless nothing changed:
        its plan and every table it reads are what they were at its last refresh
        (not even computed), or the rows computed are the ones written last time
        (computed, not written; the table keeps its version, so the views reading it
        can be skipped in turn)."""
        frame = flow.function(**self.inputs(flow, state))
        if dataset.stateful:
            writer.write(self.runner, dataset, frame, event, state, mode="overwrite")
            return
        planned = fingerprint(frame, delta_version)
        record_file = f"{self.runner.checkpoint(flow.name)}/refresh.json"
        last = planner.last_refresh(
            record_file, dataset, self.written_versions(dataset), full_refresh=full_refresh
        )
        if planner.unchanged(planned, last):
            event.status, event.rows_read, event.rows_written = "SKIPPED", 0, 0
            event.target_version = last["written"][self.runner.path(dataset.name)]
            event.details = "inputs and definition unchanged since the last refresh"
            return
        written = writer.write(
            self.runner, dataset, frame, event, state, mode="overwrite", unless_digest=last.get("content", "")
        )

        def remember() -> None:
            # A view reading its own table reads next time what it wrote now.
            versions = self.written_versions(dataset)
            plan = None
            if planned is not None and planned.reproducible:
                tables = {path: versions.get(path, version) for path, version in planned.tables.items()}
                plan = replace(planned, tables=tables).to_json()
            record = {
                "plan": plan,
                "content": written.digest,
                "written": versions,
                "definition": table_definition(dataset),
            }
            write_json(record_file, record)

        state.checkpoint_commits.append(remember)

    # --------------------------------------------------------- streaming tables
    def run_append(
        self,
        dataset: Dataset,
        flow: Flow,
        event: FlowEvent,
        state: RunState,
        *,
        full_refresh: bool,
        first: bool,
    ) -> None:
        checkpoint = self.runner.checkpoint(flow.name)
        if full_refresh:
            set_aside(state, checkpoint)
        mode = "overwrite" if full_refresh and first and not dataset.sink else "append"
        if flow.once:  # a backfill: runs once, again only on a full refresh of its target
            marker = f"{checkpoint}/once.json"
            ran = read_json(marker)
            if ran:
                event.status, event.rows_read, event.rows_written = "SKIPPED", 0, 0
                event.details = f"once=True: ran in run {ran['run_id']}; it runs again on a full refresh"
                return
            run_id = event.run_id
            state.checkpoint_commits.append(lambda: write_json(marker, {"run_id": run_id}))
            if flow.inputs:  # its inputs read whole, as a batch
                frame = flow.function(**self.inputs(flow, state))
                writer.write(self.runner, dataset, frame, event, state, mode=mode)
                return
        if not flow.inputs:  # a source: new files, or a query appended on every run
            self._run_source(dataset, flow, checkpoint, event, state, mode=mode)
            return
        offsets = (
            {} if full_refresh else load_offsets(checkpoint, delta_version(self.runner.path(dataset.name)))
        )
        frames, versions, any_new = {}, {}, False
        for name in flow.inputs:
            upstream = self.graph.datasets[name]
            if name in state.views or upstream.kind != DatasetKind.STREAMING_TABLE:
                frames[name] = self.read(name, state)  # stream-static join: read whole
                continue
            path = self.runner.path(name)
            new_rows, version = read_appended(self.spark, path, since_version=offsets.get(name))
            versions[name] = version
            any_new = any_new or new_rows is not None
            frames[name] = new_rows if new_rows is not None else read_delta(self.spark, path).limit(0)
        if versions and not any_new and mode == "append":
            event.status, event.rows_read, event.rows_written, event.details = "SKIPPED", 0, 0, "no new input"
            return
        before = delta_version(self.runner.path(dataset.name))
        save_offsets(checkpoint, pending={"offsets": versions, "target_version_before": before})
        writer.write(self.runner, dataset, flow.function(**frames), event, state, mode=mode)
        state.offset_commits.append((checkpoint, versions))
        state.pending_checkpoints.append(checkpoint)
        event.details = json.dumps({"upstream_versions": versions})

    def _run_source(
        self, dataset: Dataset, flow: Flow, checkpoint: str, event: FlowEvent, state: RunState, *, mode: str
    ) -> None:
        source = flow.function()
        if source is None:  # the source knows it has nothing new: no empty commit
            event.status, event.rows_read, event.rows_written = "SKIPPED", 0, 0
            event.details = "the source returned no new data"
        elif isinstance(source, DataFrame):
            writer.write(self.runner, dataset, source, event, state, mode=mode)
        elif isinstance(source, IncrementalFiles):
            self._run_file_source(dataset, source, checkpoint, event, state, mode=mode)
        else:
            raise GraphError(
                f"{dataset.name!r} returned {type(source).__name__}; a streaming table's function "
                "returns a DataFrame, dp.read_files(...) or None (nothing new)"
            )

    def _run_file_source(
        self,
        dataset: Dataset,
        source: IncrementalFiles,
        checkpoint: str,
        event: FlowEvent,
        state: RunState,
        *,
        mode: str,
    ) -> None:
        from lakehouse.pipelines import autoloader

        lake = self.runner.lake
        path = source.source.path
        if "://" not in path and not path.startswith("/"):
            path = f"{lake.root}/{path}"
        target = self.runner.path(dataset.name)
        autoloader.recover(checkpoint, target_has_batch=lambda batch_id: self._has_batch(target, batch_id))
        batch = autoloader.read_new_files(
            self.spark,
            replace(source.source, path=path),
            checkpoint=checkpoint,
            ingested_at=state.ingested_at,
        )
        if not batch.files:
            event.status, event.rows_read, event.rows_written, event.details = "SKIPPED", 0, 0, "no new files"
            return
        frame = source.apply(batch.df)
        # files holding no row and adding no column: their checkpoint, no table version
        writer.write(
            self.runner,
            dataset,
            frame,
            event,
            state,
            mode=mode,
            merge_schema=True,
            skip_empty_append=not batch.schema_changes,
        )
        state.checkpoint_commits.append(lambda: autoloader.commit_batch(checkpoint, batch))
        event.details = json.dumps(
            {"files": len(batch.files), "batch_id": batch.batch_id, "schema_changes": batch.schema_changes}
        )

    def _has_batch(self, target: str, batch_id: int) -> bool:
        if not delta_exists(target):
            return False
        return bool(read_delta(self.spark, target).where(F.col("_batch_id") == batch_id).limit(1).count())


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
