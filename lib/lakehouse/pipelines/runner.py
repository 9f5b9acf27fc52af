"""Run a pipeline graph: dry run, update in dependency order, event log, rollback.

- Materialized views are recomputed and replaced in one Delta commit (with
  ``incremental=``, only the partitions whose input changed).
- Streaming tables read only new input: new files (``read_files``) or the commits
  appended to upstream streaming tables since the last run; other inputs
  (materialized and temporary views) are read whole (stream-static join).
- Every target is written in one commit. If any flow fails, the targets this run
  wrote are restored to their versions from before the run (tables it created are
  removed) and input checkpoints are not advanced, so the next run retries the
  same input: nothing is lost and nothing is read twice.
- Each flow leaves a row in ``_system/event_log``; the same figures are returned.

``PipelineRunner`` is the facade over three parts: the planner (what to run, in
what order, what is unchanged: ``planner``), the flow executor (compute, stage,
expectations, quarantine, write: ``executor``, ``cdc_flows``, ``incremental``,
``writer``) and the state keeper (versions before, roll-back, what was read:
``state``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import SparkSession

from lakehouse.lake import Lake, delta_exists, read_json, write_json
from lakehouse.pipelines import expectations as ex
from lakehouse.pipelines import incremental, planner
from lakehouse.pipelines.event_log import FlowEvent, append_events
from lakehouse.pipelines.executor import FlowExecutor, describe, now
from lakehouse.pipelines.graph import DatasetKind, FlowKind, GraphError, PipelineGraph
from lakehouse.pipelines.state import (
    RunState,
    remove,
    remove_stale_staging,
    roll_back,
)
from lakehouse.pipelines.state import save_offsets as _save_offsets

QUARANTINE_SUFFIX = "_quarantine"


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
    runner: PipelineRunner | None = field(default=None, repr=False, compare=False)

    def checkpoint(self, flow: str) -> str:
        """Where ``flow`` of the running pipeline keeps its state; a full refresh of the
        flow's dataset resets it."""
        if self.runner is None:
            raise GraphError("checkpoint() needs a running pipeline")
        return self.runner.checkpoint(flow)


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
        self.context = PipelineContext(spark, lake, dict(parameters or {}), self)
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
        found = [
            f"temporary view {d.name!r} has expectations; put them on the tables that read it"
            for d in self.graph.datasets.values()
            if d.kind == DatasetKind.TEMPORARY_VIEW and d.expectations
        ]
        kinds = {name: d.kind for name, d in self.graph.datasets.items()}
        for dataset in self.graph.datasets.values():
            if dataset.incremental is not None:
                inputs = [i for flow in self.graph.flows_into(dataset.name) for i in flow.inputs]
                found += incremental.problems(dataset, inputs, kinds)
        return found

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
            return DryRunReport(*planner.analyse(self, only))

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
        input, forgetting what was read before, and incremental views from all their
        partitions.
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
        order, full = planner.datasets_to_update(
            self.graph, refresh, full_refresh, include_upstreams=include_upstreams
        )
        ingested_at = ingested_at or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        remove_stale_staging(self.lake.system("staging"))
        state = RunState(ingested_at=ingested_at, staging=self.lake.system(f"staging/{run.run_id}"))
        executor = FlowExecutor(self)
        durations_file = self.lake.system(f"durations/{self.graph.name}.json")
        durations = read_json(durations_file) or {}
        try:
            planner.update_in_order(
                self.graph,
                order,
                self.parallelism,
                lambda name: executor.update(name, run, state, full_refresh=name in full),
                durations,
            )
        except Exception as exc:  # noqa: BLE001 - recorded, rolled back, then raised
            failed = next((e for e in reversed(run.events) if e.status == "FAILED"), None)
            where = f"dataset {failed.dataset!r} (flow {failed.flow!r}) failed: " if failed else ""
            run.status, run.error = "FAILED", where + describe(exc)
            roll_back(state, run.events)
        else:
            _commit(state)
            run.status = "COMPLETED"
        finally:
            remove(state.staging)
        append_events(self.spark, self.lake.system("event_log"), run.events)
        write_json(durations_file, {**durations, **_durations(run.events)})
        if run.status == "FAILED" and raise_on_failure:
            raise PipelineFailed(run)
        return run

    # ---------------------------------------------------------- incremental
    def incremental_plan(self, dataset: str) -> incremental.IncrementalPlan:
        """What the next run would recompute of an ``incremental=`` view, from its
        inputs as stored (temporary views computed): its changed partitions, or
        everything (``partitions`` None), with the reason. Nothing is written."""
        with self._active():
            executor, state = FlowExecutor(self), RunState(ingested_at=now())
            self._compute_views(executor, state, dataset)
            (flow,) = self.graph.flows_into(dataset)
            inputs = executor.inputs(flow, state)
            target = self.graph.datasets[dataset]
            flagged = ex.flag(flow.function(**inputs), target.expectations)
            return incremental.plan(executor, target, inputs, flagged, full_refresh=False)

    # -------------------------------------------------------------- preview
    def preview(self, dataset: str, *, limit: int = 20) -> tuple[Any, list[ex.ExpectationResult]]:
        """Compute one dataset from its stored inputs without writing anything: a
        pandas sample and its expectation counts (for notebook development)."""
        with self._active():
            return self._preview(dataset, limit)

    def _preview(self, dataset: str, limit: int) -> tuple[Any, list[ex.ExpectationResult]]:
        state = RunState(ingested_at=now())
        executor = FlowExecutor(self)
        flow = self.graph.flows_into(dataset)[0]
        self._compute_views(executor, state, dataset)
        if flow.kind == FlowKind.AUTO_CDC:
            raise GraphError(
                f"{dataset!r} is written by a CDC flow; preview its source {flow.source!r} instead"
            )
        frame = flow.function(**executor.inputs(flow, state))
        if frame is None:
            raise GraphError(f"{dataset!r}: its source has no new data to preview (it returned None)")
        expectations = self.graph.datasets[dataset].expectations
        flagged = ex.flag(frame, expectations)
        _, results = ex.count(flagged, expectations)
        return flagged.limit(limit).toPandas(), results

    def _compute_views(self, executor: FlowExecutor, state: RunState, dataset: str) -> None:
        """In memory, the upstreams of ``dataset`` that are not stored: temporary views
        and materialized views not built yet."""
        for name in self.graph.order([dataset]):
            upstream = self.graph.datasets[name]
            not_stored = upstream.kind == DatasetKind.MATERIALIZED_VIEW and not delta_exists(self.path(name))
            if name != dataset and (upstream.kind == DatasetKind.TEMPORARY_VIEW or not_stored):
                upstream_flow = self.graph.flows_into(name)[0]
                state.views[name] = upstream_flow.function(**executor.inputs(upstream_flow, state))


def _commit(state: RunState) -> None:
    """The run succeeded: input offsets move on, then the other state it read."""
    for checkpoint, versions in state.offset_commits:
        _save_offsets(checkpoint, committed=versions)
    for commit in state.checkpoint_commits:
        commit()


def _durations(events: Sequence[FlowEvent]) -> dict[str, float]:
    """Seconds per dataset of a run (its flows summed): the next run starts the
    datasets heading the longest chains first."""
    seconds: dict[str, float] = {}
    for event in events:
        if event.duration_seconds is not None:
            seconds[event.dataset] = round(seconds.get(event.dataset, 0.0) + event.duration_seconds, 3)
    return seconds


def _new_run_id() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
