"""Run a pipeline graph: dry run, update in dependency order, event log, rollback.

- Materialized views are recomputed and replaced in one Delta commit.
- Streaming tables read only new input: new files (``read_files``) or the commits
  appended to upstream streaming tables since the last run; other inputs
  (materialized and temporary views) are read whole (stream-static join).
- Every target is written in one commit. If any flow fails, the targets this run
  wrote are restored to their versions from before the run (tables it created are
  removed) and input checkpoints are not advanced, so the next run retries the
  same input: nothing is lost and nothing is read twice.
- Each flow leaves a row in ``_system/event_log``; the same figures are returned.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from dataclasses import dataclass, field, replace
from graphlib import TopologicalSorter
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import maintenance
from lakehouse.lake import Lake, delta_exists, filesystem, read_delta, read_json, write_json
from lakehouse.pipelines import expectations as ex
from lakehouse.pipelines.api import IncrementalFiles
from lakehouse.pipelines.delta_source import read_appended
from lakehouse.pipelines.event_log import FlowEvent, append_events
from lakehouse.pipelines.fingerprint import fingerprint
from lakehouse.pipelines.graph import Dataset, DatasetKind, Flow, FlowKind, GraphError, PipelineGraph

_log = logging.getLogger(__name__)
QUARANTINE_SUFFIX = "_quarantine"
# Columns a definition adds only for its expectations (e.g. a lookup flag or the raw
# text of a parsed value): kept in quarantine rows, dropped from the target.
CHECK_PREFIX = "_check_"


@dataclass
class PipelineRun:
    """The outcome of one update, as returned to the caller and in the event log."""

    run_id: str
    pipeline: str
    status: str = "RUNNING"  # COMPLETED or FAILED
    events: list[FlowEvent] = field(default_factory=list)
    error: str | None = None

    def event(self, dataset: str) -> FlowEvent:
        matches = [e for e in self.events if e.dataset == dataset]
        if not matches:
            raise KeyError(
                f"no event for {dataset!r} in run {self.run_id}; datasets: {[e.dataset for e in self.events]}"
            )
        return matches[-1]

    def expectation_counts(self) -> dict[str, dict[str, tuple[int, int]]]:
        """dataset -> rule -> (passed, failed)."""
        return {
            e.dataset: {r.name: (r.passed, r.failed) for r in e.expectations}
            for e in self.events
            if e.expectations
        }


class PipelineFailed(RuntimeError):
    def __init__(self, run: PipelineRun) -> None:
        self.run = run
        super().__init__(run.error)


@dataclass
class DryRunReport:
    problems: list[str]
    schemas: dict[str, str]  # dataset -> simpleString of its analysed schema

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class PipelineContext:
    """What definitions may use while they run (DLT's ``spark`` and ``spark.conf``)."""

    spark: SparkSession
    lake: Lake
    parameters: dict[str, Any]


_current: ContextVar[PipelineContext | None] = ContextVar("pipeline_context", default=None)


def current() -> PipelineContext:
    """The running pipeline's session, lake and parameters (inside a definition)."""
    context = _current.get()
    if context is None:
        raise GraphError("current() is only available while a pipeline runs, previews or dry-runs")
    return context


class PipelineRunner:
    """Executes one graph against one lake. ``parameters`` reach definitions through
    :func:`current` (e.g. the run date); up to ``parallelism`` datasets whose inputs
    are ready are updated at once."""

    def __init__(
        self,
        spark: SparkSession,
        graph: PipelineGraph,
        lake: Lake,
        *,
        parameters: dict[str, Any] | None = None,
        parallelism: int = 1,
    ) -> None:
        self.spark, self.graph, self.lake = spark, graph, lake
        self.parallelism = max(1, parallelism)
        self.context = PipelineContext(spark, lake, dict(parameters or {}))
        if graph.named_reads:  # inputs read with spark.read.table("x"): found before anything runs
            from lakehouse.pipelines.reads import bind_named_reads

            with self._active():
                bind_named_reads(graph)
        problems = [p for p in graph.validate()] + self._unsupported()
        if problems:
            raise GraphError(f"pipeline {graph.name!r} is invalid:\n- " + "\n- ".join(problems))

    # ---------------------------------------------------------------- paths
    def path(self, dataset: str) -> str:
        declared = self.graph.datasets[dataset].path
        if self.graph.datasets[dataset].private:  # not published: kept with the pipeline's state
            return self.lake.system(f"private/{self.graph.name}/{dataset}")
        if declared is None:
            return f"{self.lake.root}/pipelines/{self.graph.name}/{dataset}"
        return declared if "://" in declared or declared.startswith("/") else f"{self.lake.root}/{declared}"

    def quarantine_path(self, dataset: str) -> str:
        return self.path(dataset) + QUARANTINE_SUFFIX

    def checkpoint(self, flow: str) -> str:
        return self.lake.system(f"checkpoints/{self.graph.name}/{flow}")

    def _unsupported(self) -> list[str]:
        return [
            f"temporary view {d.name!r} has expectations; put them on the tables that read it"
            for d in self.graph.datasets.values()
            if d.kind == DatasetKind.TEMPORARY_VIEW and d.expectations
        ]

    @contextmanager
    def _active(self) -> Iterator[None]:
        token = _current.set(self.context)
        try:
            yield
        finally:
            _current.reset(token)

    # -------------------------------------------------------------- dry run
    def dry_run(self, *, only: Sequence[str] | None = None) -> DryRunReport:
        """Analyse every dataset's schema without reading or writing data."""
        with self._active():
            return self._dry_run(only)

    def _dry_run(self, only: Sequence[str] | None) -> DryRunReport:
        problems: list[str] = []
        schemas: dict[str, str] = {}
        frames: dict[str, DataFrame] = {}
        for name in self.graph.order(only):
            dataset = self.graph.datasets[name]
            try:
                frame = self._analysis_frame(name, frames)
                if frame is None:
                    continue
                schema = frame.schema  # analysis on the engine, no execution
                for rule in dataset.expectations:
                    _ = frame.select(F.expr(rule.predicate)).schema  # a bad predicate fails here
                schemas[name] = schema.simpleString()
                check_columns = [c for c in frame.columns if c.startswith(CHECK_PREFIX)]
                frames[name] = frame.drop(*check_columns) if check_columns else frame
                if dataset.schema:
                    expected = self.spark.createDataFrame([], dataset.schema).schema
                    if [(f.name, f.dataType) for f in expected] != [(f.name, f.dataType) for f in schema]:
                        problems.append(
                            f"{name!r}: declared schema {expected.simpleString()} but the query "
                            f"gives {schema.simpleString()}"
                        )
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                problems.append(f"{name!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        return DryRunReport(problems, schemas)

    def _analysis_frame(self, name: str, frames: dict[str, DataFrame]) -> DataFrame | None:
        """The plan a flow would write (its function over the upstreams' plans); the
        stored table where no plan can be built (files not seen yet, CDC targets)."""
        stored = read_delta(self.spark, self.path(name)) if delta_exists(self.path(name)) else None
        for flow in self.graph.flows_into(name):
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
            return self.spark.createDataFrame([], schema) if schema else None
        return stored

    # ------------------------------------------------------------------ run
    def run(
        self,
        *,
        refresh: Sequence[str] | None = None,
        full_refresh: bool | Sequence[str] = False,
        run_id: str | None = None,
        ingested_at: dt.datetime | None = None,
        raise_on_failure: bool = True,
        include_upstreams: bool = True,
    ) -> PipelineRun:
        """Update ``refresh`` (default: all) and, with ``include_upstreams``, the
        datasets they need (otherwise those are read as stored; temporary views they
        need are always computed).

        ``full_refresh`` (True or names) recomputes streaming tables from all their
        input, forgetting what was read before.
        """
        with self._active():
            return self._run(refresh, full_refresh, run_id, ingested_at, raise_on_failure, include_upstreams)

    def _run(
        self,
        refresh: Sequence[str] | None,
        full_refresh: bool | Sequence[str],
        run_id: str | None,
        ingested_at: dt.datetime | None,
        raise_on_failure: bool,
        include_upstreams: bool,
    ) -> PipelineRun:
        run = PipelineRun(run_id or _new_run_id(), self.graph.name)
        order = self.graph.order(refresh)
        if refresh is not None and not include_upstreams:
            views = {n for n, d in self.graph.datasets.items() if d.kind == DatasetKind.TEMPORARY_VIEW}
            order = [n for n in order if n in set(refresh) | views]
        full = set(order) if full_refresh is True else set(full_refresh or ())
        ingested_at = ingested_at or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        _remove_stale_staging(self.lake.system("staging"))
        state = _RunState(ingested_at=ingested_at, staging=self.lake.system(f"staging/{run.run_id}"))
        try:
            self._update_in_order(order, run, state, full)
        except Exception as exc:  # noqa: BLE001 - recorded, rolled back, then raised
            failed = next((e for e in reversed(run.events) if e.status == "FAILED"), None)
            where = f"dataset {failed.dataset!r} (flow {failed.flow!r}) failed: " if failed else ""
            run.status, run.error = "FAILED", where + _describe(exc)
            self._roll_back(state, run)
        else:
            for commit in state.checkpoint_commits:
                commit()
            run.status = "COMPLETED"
        finally:
            _remove(state.staging)
        append_events(self.spark, self.lake.system("event_log"), run.events)
        if run.status == "FAILED" and raise_on_failure:
            raise PipelineFailed(run)
        return run

    def _update_in_order(self, order: list[str], run: PipelineRun, state: _RunState, full: set[str]) -> None:
        """Update ``order``'s datasets, each once every dataset it reads is done, up to
        ``parallelism`` at once. The first failure stops new starts; it is raised once
        the running ones have ended (so the roll-back sees every write)."""
        if self.parallelism == 1:
            for name in order:
                self._update(name, run, state, full_refresh=name in full)
            return
        wanted = set(order)
        sorter = TopologicalSorter({name: self.graph.upstream(name) & wanted for name in order})
        sorter.prepare()
        failure: BaseException | None = None
        running: dict[Future[None], str] = {}
        with ThreadPoolExecutor(self.parallelism, thread_name_prefix=f"pipeline-{self.graph.name}") as pool:
            while running or (failure is None and sorter.is_active()):
                if failure is None:
                    for name in sorter.get_ready():
                        task = copy_context().run  # definitions see current() in their thread
                        future = pool.submit(task, self._update, name, run, state, full_refresh=name in full)
                        running[future] = name
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

    def _update(self, name: str, run: PipelineRun, state: _RunState, *, full_refresh: bool) -> None:
        dataset = self.graph.datasets[name]
        for index, flow in enumerate(self.graph.flows_into(name)):
            event = FlowEvent(run.run_id, self.graph.name, name, flow.name, flow.kind.value, _now())
            run.events.append(event)
            started = time.monotonic()
            try:
                if flow.kind == FlowKind.VIEW:
                    state.views[name] = flow.function(**self._inputs(flow, state))
                    event.status = "COMPLETED"
                elif flow.kind == FlowKind.COMPLETE:
                    self._refresh_view(dataset, flow, event, state, full_refresh=full_refresh)
                elif flow.kind == FlowKind.AUTO_CDC:
                    self._run_cdc(dataset, flow, event, state, full_refresh=full_refresh)
                else:
                    self._run_append(dataset, flow, event, state, full_refresh=full_refresh, first=index == 0)
            except Exception as exc:
                event.status, event.error = "FAILED", _describe(exc)
                raise
            finally:
                event.ended_at = _now()
                event.duration_seconds = round(time.monotonic() - started, 3)

    def _refresh_view(
        self, dataset: Dataset, flow: Flow, event: FlowEvent, state: _RunState, *, full_refresh: bool
    ) -> None:
        """Recompute a materialized view and replace its table, unless nothing changed:
        its plan and every table it reads are what they were at its last refresh
        (``lakehouse.pipelines.fingerprint``: not even computed), or the rows computed
        are the ones written last time (computed, not written; the table keeps its
        version, so the views reading it can be skipped in turn)."""
        frame = flow.function(**self._inputs(flow, state))
        if dataset.stateful:
            self._write(dataset, frame, event, state, mode="overwrite")
            return
        planned = fingerprint(frame, self._delta_version)
        refresh_file = f"{self.checkpoint(flow.name)}/refresh.json"
        last = {} if full_refresh else read_json(refresh_file) or {}
        definition = _table_definition(dataset)
        if last.get("written") != self._written_versions(dataset) or last.get("definition") != definition:
            last = {}  # another writer, a restore, a roll-back, new expectations: recompute and rewrite
        if planned is not None and planned.reproducible and last.get("plan") == planned.to_json():
            event.status, event.rows_read, event.rows_written = "SKIPPED", 0, 0
            event.target_version = last["written"][self.path(dataset.name)]
            event.details = "inputs and definition unchanged since the last refresh"
            return
        digest = self._write(
            dataset, frame, event, state, mode="overwrite", unless_digest=last.get("content", "")
        )

        def remember() -> None:
            # A view reading its own table reads next time what it wrote now.
            written = self._written_versions(dataset)
            plan = None
            if planned is not None and planned.reproducible:
                tables = {path: written.get(path, version) for path, version in planned.tables.items()}
                plan = replace(planned, tables=tables).to_json()
            write_json(
                refresh_file, {"plan": plan, "content": digest, "written": written, "definition": definition}
            )

        state.checkpoint_commits.append(remember)

    def _written_versions(self, dataset: Dataset) -> dict[str, int | None]:
        """The versions of a view's table (and quarantine): another writer, a restore
        or a failed run's roll-back changes them, and the view is recomputed."""
        paths = [self.path(dataset.name)] + (
            [self.quarantine_path(dataset.name)] if dataset.quarantine else []
        )
        return {path: self._delta_version(path) for path in paths}

    @staticmethod
    def _delta_version(path: str) -> int | None:
        return maintenance.version(path) if delta_exists(path) else None

    def _inputs(self, flow: Flow, state: _RunState) -> dict[str, DataFrame]:
        """Every input read whole (temporary views from this run, tables from the lake)."""
        frames = {}
        for name in flow.inputs:
            if name in state.views:
                frames[name] = state.views[name]
            else:
                frames[name] = read_delta(self.spark, self.path(name))
        return frames

    def _run_append(
        self,
        dataset: Dataset,
        flow: Flow,
        event: FlowEvent,
        state: _RunState,
        *,
        full_refresh: bool,
        first: bool,
    ) -> None:
        checkpoint = self.checkpoint(flow.name)
        if full_refresh:
            self._set_aside(checkpoint, state)
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
                self._write(dataset, flow.function(**self._inputs(flow, state)), event, state, mode=mode)
                return
        if not flow.inputs:  # a source: new files, or a query appended on every run
            source = flow.function()
            if source is None:  # the source knows it has nothing new: no empty commit
                event.status, event.rows_read, event.rows_written = "SKIPPED", 0, 0
                event.details = "the source returned no new data"
                return
            if isinstance(source, DataFrame):
                self._write(dataset, source, event, state, mode=mode)
            elif isinstance(source, IncrementalFiles):
                self._run_file_source(dataset, source, checkpoint, event, state, mode=mode)
            else:
                raise GraphError(
                    f"{dataset.name!r} returned {type(source).__name__}; a streaming table's function "
                    "returns a DataFrame, dp.read_files(...) or None (nothing new)"
                )
            return
        frames, versions = {}, {}
        offsets = {} if full_refresh else _load_offsets(checkpoint, self._target_version(dataset.name))
        any_new = False
        for name in flow.inputs:
            upstream = self.graph.datasets[name]
            if name in state.views:
                frames[name] = state.views[name]
                continue
            if upstream.kind != DatasetKind.STREAMING_TABLE:  # stream-static join: read whole
                frames[name] = read_delta(self.spark, self.path(name))
                continue
            new_rows, version = read_appended(self.spark, self.path(name), since_version=offsets.get(name))
            versions[name] = version
            if new_rows is not None:
                any_new = True
                frames[name] = new_rows
            else:
                frames[name] = read_delta(self.spark, self.path(name)).limit(0)
        if versions and not any_new and mode == "append":
            event.status, event.rows_read, event.rows_written, event.details = "SKIPPED", 0, 0, "no new input"
            return
        before = self._target_version(dataset.name)
        _save_offsets(checkpoint, pending={"offsets": versions, "target_version_before": before})
        self._write(dataset, flow.function(**frames), event, state, mode=mode)
        state.checkpoint_commits.append(lambda: _save_offsets(checkpoint, committed=versions))
        state.pending_checkpoints.append(checkpoint)
        event.details = json.dumps({"upstream_versions": versions})

    def _run_file_source(
        self,
        dataset: Dataset,
        source: IncrementalFiles,
        checkpoint: str,
        event: FlowEvent,
        state: _RunState,
        *,
        mode: str,
    ) -> None:

        from lakehouse.pipelines import autoloader

        path = source.source.path
        if "://" not in path and not path.startswith("/"):
            path = f"{self.lake.root}/{path}"
        target = self.path(dataset.name)
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
        self._write(dataset, source.apply(batch.df), event, state, mode=mode, merge_schema=True)
        state.checkpoint_commits.append(lambda: autoloader.commit_batch(checkpoint, batch))
        event.details = json.dumps(
            {"files": len(batch.files), "batch_id": batch.batch_id, "schema_changes": batch.schema_changes}
        )

    def _has_batch(self, target: str, batch_id: int) -> bool:
        if not delta_exists(target):
            return False
        return bool(read_delta(self.spark, target).where(F.col("_batch_id") == batch_id).limit(1).count())

    def _run_cdc(
        self, dataset: Dataset, flow: Flow, event: FlowEvent, state: _RunState, *, full_refresh: bool
    ) -> None:
        from lakehouse.pipelines import cdc

        checkpoint = self.checkpoint(flow.name)
        target = self.path(dataset.name)
        if full_refresh:
            self._set_aside(checkpoint, state)
            self._set_aside(target, state)
        if flow.snapshot:
            self._run_snapshots(dataset, flow, event, state)
            return
        offsets = _load_offsets(checkpoint, self._target_version(dataset.name))
        changes, versions = self._change_events(flow, offsets, state)
        if changes is None:
            event.status, event.rows_read, event.rows_written, event.details = (
                "SKIPPED",
                0,
                0,
                "no new changes",
            )
            return
        self._remember_version(dataset.name, state)
        _save_offsets(
            checkpoint,
            pending={"offsets": versions, "target_version_before": self._target_version(dataset.name)},
        )
        result = cdc.apply_changes(self.spark, target_path=target, changes=changes, spec=flow.cdc)
        state.checkpoint_commits.append(lambda: _save_offsets(checkpoint, committed=versions))
        state.pending_checkpoints.append(checkpoint)
        event.status = "COMPLETED"
        event.rows_read = changes.count()
        event.target_version = maintenance.version(target)
        event.details = json.dumps(_plain(result))

    def _run_snapshots(self, dataset: Dataset, flow: Flow, event: FlowEvent, state: _RunState) -> None:
        """``create_auto_cdc_from_snapshot_flow``: each new snapshot, as the change events
        from the target's current state, in one commit per snapshot."""
        from lakehouse.pipelines import cdc

        target = self.path(dataset.name)
        marker = f"{self.checkpoint(flow.name)}/snapshot.json"
        last = (read_json(marker) or {}).get("version")
        snapshots = []
        if flow.source is not None:
            source = self.graph.datasets[flow.source]
            if source.name in state.views:  # a temporary view: a new snapshot on every run
                snapshots.append((state.views[source.name], (last or 0) + 1))
            else:
                version = self._target_version(source.name)
                if version is not None and version != last:
                    snapshots.append((read_delta(self.spark, self.path(source.name)), version))
        self._remember_version(dataset.name, state)
        applied, rows_read = [], 0
        while True:
            if flow.source is None:
                found = flow.function(last)
                if found is None:
                    break
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
            elif snapshots:
                frame, version = snapshots.pop()
            else:
                break
            changes = cdc.snapshot_changes(
                self.spark, target_path=target, snapshot=frame, version=version, spec=flow.cdc
            )
            rows_read += frame.count()
            cdc.apply_changes(self.spark, target_path=target, changes=changes, spec=flow.cdc)
            applied.append(version)
            last = version
        if not applied:
            event.status, event.rows_read, event.rows_written, event.details = (
                "SKIPPED",
                0,
                0,
                "no new snapshot",
            )
            return
        state.checkpoint_commits.append(lambda: write_json(marker, {"version": last}))
        event.status, event.rows_read = "COMPLETED", rows_read
        event.target_version = maintenance.version(target)
        event.details = json.dumps({"snapshot_versions": applied})

    def _change_events(
        self, flow: Flow, offsets: dict[str, int], state: _RunState
    ) -> tuple[DataFrame | None, dict[str, int]]:
        """The change events a CDC flow has not applied yet, and the upstream versions
        they go up to. A streaming table source gives its new commits; a temporary
        view is computed over the new commits of the streaming tables it reads (the
        other inputs read whole), like a streaming read of it; a materialized view
        is applied whole when its version changed (re-applied events are no-ops)."""
        source = self.graph.datasets[flow.source]
        if source.kind == DatasetKind.STREAMING_TABLE:
            changes, version = read_appended(
                self.spark, self.path(source.name), since_version=offsets.get(source.name)
            )
            return changes, {source.name: version}
        if source.kind == DatasetKind.MATERIALIZED_VIEW:
            version = self._target_version(source.name)
            if version is None or offsets.get(source.name) == version:
                return None, {}
            return read_delta(self.spark, self.path(source.name)), {source.name: version}
        (view_flow,) = self.graph.flows_into(source.name)
        frames, versions, any_new = {}, {}, False
        for name in view_flow.inputs:
            upstream = self.graph.datasets[name]
            if name in state.views:
                frames[name] = state.views[name]
            elif upstream.kind != DatasetKind.STREAMING_TABLE:
                frames[name] = read_delta(self.spark, self.path(name))
            else:
                new_rows, version = read_appended(
                    self.spark, self.path(name), since_version=offsets.get(name)
                )
                versions[name] = version
                any_new = any_new or new_rows is not None
                frames[name] = (
                    new_rows if new_rows is not None else read_delta(self.spark, self.path(name)).limit(0)
                )
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

    def _write(
        self,
        dataset: Dataset,
        frame: DataFrame,
        event: FlowEvent,
        state: _RunState,
        *,
        mode: str,
        merge_schema: bool = False,
        unless_digest: str | None = None,
    ) -> str | None:
        """Evaluate expectations, then write kept rows (and quarantined ones) in one
        commit each. With ``unless_digest``, return the flagged rows' content digest and
        write nothing if it equals ``unless_digest`` (a view whose result is unchanged)."""
        flagged = self._staged(ex.flag(frame, dataset.expectations), dataset, state)
        if unless_digest is None:
            (total, results), digest = ex.count(flagged, dataset.expectations), None
        else:
            total, results, digest = ex.count_and_digest(flagged, dataset.expectations)
        event.rows_read, event.expectations = total, results
        ex.raise_on_fail(dataset.name, flagged, dataset.expectations, results)
        if digest is not None and digest == unless_digest:
            event.status, event.rows_written = "SKIPPED", 0
            event.target_version = self._delta_version(self.path(dataset.name))
            event.details = "result unchanged since the last refresh: nothing written"
            return digest
        kept, dropped = ex.split(flagged, dataset.expectations)
        check_columns = [c for c in kept.columns if c.startswith(CHECK_PREFIX)]
        if check_columns:
            kept = kept.drop(*check_columns)
        drop_failures = any(r.failed for r in results if r.action == "drop")
        dropped_count = dropped.count() if drop_failures else 0
        self._remember_version(dataset.name, state)
        self._save(kept, self.path(dataset.name), dataset, mode=mode, merge_schema=merge_schema)
        if dataset.quarantine and (dropped_count or mode == "overwrite"):
            self._remember_version(
                dataset.name + QUARANTINE_SUFFIX, state, path=self.quarantine_path(dataset.name)
            )
            self._save(dropped, self.quarantine_path(dataset.name), dataset, mode=mode, merge_schema=True)
        event.rows_dropped = dropped_count
        event.rows_quarantined = dropped_count if dataset.quarantine else 0
        event.rows_written = total - dropped_count
        event.target_version = maintenance.version(self.path(dataset.name))
        event.status = "COMPLETED"
        return digest

    def _staged(self, flagged: DataFrame, dataset: Dataset, state: _RunState) -> DataFrame:
        """The flagged rows computed once into a Parquet file of this run and read
        back: the counts, the kept rows and the quarantine then read that file instead
        of computing the definition three times (the engine has no cache). Removed at
        the end of the run."""
        uri = f"{state.staging}/{dataset.name}"
        flagged.write.mode("overwrite").parquet(uri)
        return self.spark.read.schema(flagged.schema).parquet(uri)

    def _save(self, frame: DataFrame, path: str, dataset: Dataset, *, mode: str, merge_schema: bool) -> None:
        writer = frame.write.format("delta").mode(mode)
        if dataset.partition_cols:
            writer = writer.partitionBy(*dataset.partition_cols)
        for key, value in dataset.table_properties.items():
            writer = writer.option(key, value)
        if mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        elif merge_schema:
            writer = writer.option("mergeSchema", "true")
        writer.save(path)

    def _target_version(self, dataset: str) -> int | None:
        path = self.path(dataset)
        return maintenance.version(path) if delta_exists(path) else None

    def _remember_version(self, key: str, state: _RunState, *, path: str | None = None) -> None:
        path = path or self.path(key)
        if path not in state.versions_before:
            state.versions_before[path] = maintenance.version(path) if delta_exists(path) else None

    def _set_aside(self, uri: str, state: _RunState) -> None:
        """Move a checkpoint or table out of the way for a full refresh: put back if
        the run fails, deleted once it succeeds."""
        fs, path = filesystem(uri)
        from pyarrow.fs import FileType

        if fs.get_file_info(path).type != FileType.Directory:
            return
        aside = f"{uri}.before-{uuid.uuid4().hex[:8]}"
        fs.move(path, filesystem(aside)[1])
        state.set_aside.append((uri, aside))
        state.checkpoint_commits.append(lambda: _remove(aside))

    def _roll_back(self, state: _RunState, run: PipelineRun) -> None:
        """Put every target written by this run back to its version before the run."""
        restored = set()
        for uri, aside in reversed(state.set_aside):
            try:
                _remove(uri)
                fs, path = filesystem(aside)
                fs.move(path, filesystem(uri)[1])
                restored.add(uri)
            except Exception as exc:  # noqa: BLE001 - keep rolling back the others
                _log.error("could not put %s back from %s: %s", uri, aside, exc)
        for path, version in state.versions_before.items():
            if path in restored:
                continue
            try:
                if version is None:
                    _remove(path)
                elif delta_exists(path) and maintenance.version(path) != version:
                    maintenance.open_table(path).restore(version)
            except Exception as exc:  # noqa: BLE001 - keep rolling back the others
                _log.error("could not roll back %s to version %s: %s", path, version, exc)
        for checkpoint in state.pending_checkpoints:
            _save_offsets(checkpoint, pending=None)
        for event in run.events:
            if event.status == "COMPLETED" and event.flow_type != FlowKind.VIEW.value:
                event.status = "ROLLED_BACK"

    # -------------------------------------------------------------- preview
    def preview(self, dataset: str, *, limit: int = 20) -> tuple[Any, list[ex.ExpectationResult]]:
        """Compute one dataset from its stored inputs without writing anything: a
        pandas sample and its expectation counts (for notebook development)."""
        with self._active():
            return self._preview(dataset, limit)

    def _preview(self, dataset: str, limit: int) -> tuple[Any, list[ex.ExpectationResult]]:
        state = _RunState(ingested_at=_now())
        flow = self.graph.flows_into(dataset)[0]
        for name in self.graph.order([dataset]):
            upstream = self.graph.datasets[name]
            not_stored = upstream.kind == DatasetKind.MATERIALIZED_VIEW and not delta_exists(self.path(name))
            if name != dataset and (upstream.kind == DatasetKind.TEMPORARY_VIEW or not_stored):
                # computed in memory: views, and materialized views not built yet
                upstream_flow = self.graph.flows_into(name)[0]
                state.views[name] = upstream_flow.function(**self._inputs(upstream_flow, state))
        if flow.kind == FlowKind.AUTO_CDC:
            raise GraphError(
                f"{dataset!r} is written by a CDC flow; preview its source {flow.source!r} instead"
            )
        frame = flow.function(**self._inputs(flow, state))
        if frame is None:
            raise GraphError(f"{dataset!r}: its source has no new data to preview (it returned None)")
        expectations = self.graph.datasets[dataset].expectations
        flagged = ex.flag(frame, expectations)
        _, results = ex.count(flagged, expectations)
        return flagged.limit(limit).toPandas(), results


@dataclass
class _RunState:
    ingested_at: dt.datetime
    staging: str = ""  # this run's folder of computed rows (``_staged``)
    views: dict[str, DataFrame] = field(default_factory=dict)
    versions_before: dict[str, int | None] = field(default_factory=dict)
    checkpoint_commits: list[Any] = field(default_factory=list)
    pending_checkpoints: list[str] = field(default_factory=list)
    set_aside: list[tuple[str, str]] = field(default_factory=list)  # (path, moved-to) for full refresh


def _offsets_file(checkpoint: str) -> str:
    return f"{checkpoint}/delta_offsets.json"


def _load_offsets(checkpoint: str, target_version: int | None) -> dict[str, int]:
    """Committed upstream versions; a pending entry from a crashed run counts as
    committed if the target moved past the version it had before that write."""
    fs, path = filesystem(_offsets_file(checkpoint))
    try:
        with fs.open_input_stream(path) as stream:
            state = json.loads(stream.read())
    except FileNotFoundError:
        return {}
    pending = state.get("pending")
    if pending:
        before = pending.get("target_version_before")
        landed = target_version is not None and (before is None or target_version > before)
        if landed:
            state["committed"] = {**state.get("committed", {}), **pending["offsets"]}
        state["pending"] = None
        write_json(_offsets_file(checkpoint), state)
    return state.get("committed", {})


def _save_offsets(checkpoint: str, *, committed: dict[str, int] | None = None, pending: Any = "keep") -> None:
    fs, path = filesystem(_offsets_file(checkpoint))
    try:
        with fs.open_input_stream(path) as stream:
            state = json.loads(stream.read())
    except FileNotFoundError:
        state = {"committed": {}, "pending": None}
    if committed is not None:
        state["committed"] = {**state.get("committed", {}), **committed}
        state["pending"] = None
    if pending != "keep":
        state["pending"] = pending
    write_json(_offsets_file(checkpoint), state)


def _table_definition(dataset: Dataset) -> dict[str, Any]:
    """What decides a view's table besides its query: its expectations and storage."""
    return {
        "expectations": [[e.name, e.predicate, e.action.value] for e in dataset.expectations],
        "quarantine": dataset.quarantine,
        "partition_cols": list(dataset.partition_cols),
        "table_properties": dict(sorted(dataset.table_properties.items())),
        "schema": dataset.schema,
    }


STALE_STAGING = dt.timedelta(days=1)


def _remove_stale_staging(root: str) -> None:
    """Remove staging folders a crashed run left (older than ``STALE_STAGING``; the
    rows of a run still going, maybe another pipeline's, are younger)."""
    from pyarrow.fs import FileSelector, FileType

    fs, path = filesystem(root)
    if fs.get_file_info(path).type != FileType.Directory:
        return
    limit = dt.datetime.now(dt.UTC) - STALE_STAGING
    for info in fs.get_file_info(FileSelector(path)):
        mtime = info.mtime if info.mtime is None or info.mtime.tzinfo else info.mtime.replace(tzinfo=dt.UTC)
        if info.type == FileType.Directory and mtime is not None and mtime < limit:
            _remove(f"{root}/{info.base_name}")


def _remove(uri: str) -> None:
    fs, path = filesystem(uri)
    from pyarrow.fs import FileType

    if fs.get_file_info(path).type == FileType.Directory:
        if "://" in uri:
            fs.delete_dir(path)
        else:
            shutil.rmtree(path)


def _plain(value: Any) -> Any:
    from dataclasses import asdict, is_dataclass

    return asdict(value) if is_dataclass(value) else value


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _new_run_id() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
