"""Incremental refresh of a materialized view: recompute only the partitions (days, or
keys) whose input changed, and replace only those rows of its table.

    @dp.materialized_view(incremental=dp.by_day(source="silver_order_lines",
                                                source_day="order_date", target_day="order_date"))
    def fact_ventes(silver_order_lines, dim_produit): ...

    @dp.materialized_view(incremental=dp.by_key(source="silver_orders", keys=["order_id"]))
    def orders_enriched(silver_orders, customers): ...

The view reads one ``source`` input split into partitions: a row's day (``by_day``)
or its key (``by_key``). The target holds the rows of a partition under the same day
(``target_day``) or key. Each run, the runner fingerprints every partition of the
source as the definition reads it (row count and sum of row hashes: a new, late,
corrected or removed row changes its partition's fingerprint), calls the definition
with the source restricted to the changed partitions, and replaces those rows of the
table and of its quarantine in one commit (``replaceWhere``), through the runner's
one write path (staging, expectations, quarantine, roll-back, event log).

The whole view is recomputed instead when there is no state, on ``full_refresh``,
when the definition gives another schema, when its expectations or storage options
changed, when another input (a dimension) is at another version (content, for
temporary views), or when a source row has no partition (a NULL day). Tables read by
path outside the pipeline (``extra_day_inputs``) add their day's fingerprint to the
source's. A change of the definition's code that keeps its schema is not seen: run a
full refresh after one.

The state (partition fingerprints of the source and of the table, other inputs, the
table's version) is kept in ``_system/incremental/<pipeline>/<dataset>.json`` and
committed only when the whole run succeeds. If the table's version is not the one
recorded (another writer such as a ``MERGE`` of scores, a restore, a crash between
the table's commit and the state's), its partitions are fingerprinted and those that
differ from the record are recomputed too: the result is always what a full rebuild
gives.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.lake import delta_exists, read_delta, read_json, write_json
from lakehouse.pipelines import expectations as ex
from lakehouse.pipelines import writer
from lakehouse.pipelines.event_log import FlowEvent
from lakehouse.pipelines.graph import Dataset, DatasetKind, Flow, GraphError
from lakehouse.pipelines.state import RunState, delta_version, table_definition

if TYPE_CHECKING:
    from lakehouse.pipelines.executor import FlowExecutor

STATE_FORMAT = 1


@dataclass(frozen=True)
class ByDay:
    """Partitions are days: ``source_day`` (SQL, a DATE or TIMESTAMP) of a source row,
    ``target_day`` (a DATE or TIMESTAMP column of the target, or SQL over its columns)
    of the rows built from it. ``extra_day_inputs``: ``{lake-relative path: SQL day}``
    of tables outside the pipeline that the definition reads by day."""

    source: str
    source_day: str
    target_day: str
    extra_day_inputs: Mapping[str, str] = field(default_factory=dict)
    unit = "days"

    # Days as DATE (str() gives 'YYYY-MM-DD'): a cast costs half of date_format, and
    # rows are selected by day ranges, which the engine filters far faster than labels.
    def source_partition(self) -> Column:
        return F.expr(self.source_day).cast("date")

    def target_partition(self) -> Column:
        return F.expr(self._target_day()).cast("date")

    def source_condition(self, partitions: Sequence[str], source: DataFrame) -> Column:
        day = f"({self.source_day})"
        return F.expr(days_predicate(day, partitions, is_timestamp=_is_timestamp(source.select(F.expr(day)))))

    def replace_condition(self, partitions: Sequence[str], target: DataFrame) -> str:
        day = self._target_day()
        return days_predicate(day, partitions, is_timestamp=_is_timestamp(target.select(F.expr(day))))

    def _target_day(self) -> str:
        """``target_day`` as SQL: a column name as is, an expression in parentheses."""
        return self.target_day if self.target_day.isidentifier() else f"({self.target_day})"


@dataclass(frozen=True)
class ByKey:
    """Partitions are keys: the ``keys`` columns, in the source and in the target (dbt's
    ``unique_key``); the target's rows of a changed key are replaced by what the
    definition gives for it (none when the key is gone)."""

    source: str
    keys: tuple[str, ...]
    unit = "keys"
    extra_day_inputs: Mapping[str, str] = field(default_factory=dict)  # none: by day only

    def source_partition(self) -> Column:
        return self._label()

    def target_partition(self) -> Column:
        return self._label()

    def source_condition(self, partitions: Sequence[str], source: DataFrame) -> Column:
        return self._label().isin(list(partitions))

    def replace_condition(self, partitions: Sequence[str], target: DataFrame) -> str:
        quoted = ", ".join("'" + p.replace("\\", "\\\\").replace("'", "\\'") + "'" for p in partitions)
        fields = ", ".join(f"'{k}', `{k}`" for k in self.keys)
        return f"to_json(named_struct({fields})) IN ({quoted})"

    def _label(self) -> Column:
        return F.to_json(F.struct(*[F.col(f"`{k}`") for k in self.keys]))


def by_day(
    *,
    source: str,
    source_day: str,
    target_day: str | None = None,
    extra_day_inputs: Mapping[str, str] | None = None,
) -> ByDay:
    """Refresh by day (dbt's ``insert_overwrite`` by partition): only the days whose
    ``source`` rows changed are recomputed and replaced. ``target_day`` defaults to
    ``source_day`` (a column, or SQL valid over both). A day computed from a key
    (e.g. the date an order id starts with) groups every version of that key, so a
    view that keeps the latest version per key stays exact."""
    return ByDay(source, source_day, target_day or source_day, dict(extra_day_inputs or {}))


def by_key(*, source: str, keys: Sequence[str]) -> ByKey:
    """Refresh by key (dbt's ``unique_key`` merge): only the keys whose ``source`` rows
    changed are recomputed; their rows in the table are replaced."""
    if isinstance(keys, str) or not keys:
        raise GraphError(f"by_key(source={source!r}): keys is a list of column names, got {keys!r}")
    return ByKey(source, tuple(keys))


def problems(dataset: Dataset, inputs: Sequence[str]) -> list[str]:
    """Why the runner cannot honour ``dataset``'s ``incremental=`` (empty if it can)."""
    spec, where = dataset.incremental, f"{dataset.name!r}: incremental="
    if not isinstance(spec, (ByDay, ByKey)):
        return [f"{where} takes dp.by_day(...) or dp.by_key(...), got {spec!r}"]
    found = []
    if dataset.kind != DatasetKind.MATERIALIZED_VIEW:
        found.append(f"{where} is an option of materialized views")
    if dataset.stateful:
        found.append(f"{where} and stateful=True exclude each other; drop stateful=True")
    if spec.source not in inputs:
        found.append(
            f"{where} reads the source {spec.source!r}, which is not one of its inputs {list(inputs)}"
        )
    return found


@dataclass(frozen=True)
class IncrementalPlan:
    """What the next refresh recomputes: ``partitions`` (sorted) or everything (None)."""

    partitions: list[str] | None
    reason: str
    snapshot: dict[str, Any] = field(repr=False, default_factory=dict)  # the state once written


# ------------------------------------------------------------------ planning
def state_file(executor: FlowExecutor, dataset: Dataset) -> str:
    runner = executor.runner
    return runner.lake.system(f"incremental/{runner.graph.name}/{dataset.name}.json")


def plan(
    executor: FlowExecutor,
    dataset: Dataset,
    inputs: Mapping[str, DataFrame],
    whole: DataFrame,
    *,
    full_refresh: bool,
) -> IncrementalPlan:
    """The partitions to recompute, from the recorded state and the inputs as stored."""
    spec, target = dataset.incremental, executor.runner.path(dataset.name)
    snapshot = {
        "format": STATE_FORMAT,
        "by": spec.unit,
        "source": _source_partitions(executor, spec, inputs[spec.source]),
        "inputs": {n: _identity(executor, n, df) for n, df in sorted(inputs.items()) if n != spec.source},
        "schema": whole.schema.simpleString(),
        "definition": table_definition(dataset),
    }
    before = read_json(state_file(executor, dataset)) or {}

    def everything(reason: str) -> IncrementalPlan:
        return IncrementalPlan(None, reason, snapshot)

    if full_refresh:
        return everything("full refresh")
    if not before or not delta_exists(target) or before.get("format") != STATE_FORMAT:
        return everything("no previous incremental state")
    if before.get("by") != spec.unit:
        return everything(f"refreshed by {before.get('by')} before, by {spec.unit} now")
    if before["schema"] != snapshot["schema"]:
        return everything("the definition gives another schema")
    if before["definition"] != snapshot["definition"]:
        return everything("expectations or storage options changed")
    moved = sorted(n for n in snapshot["inputs"] if before["inputs"].get(n) != snapshot["inputs"][n])
    if moved or set(before["inputs"]) != set(snapshot["inputs"]):
        return everything(f"other inputs changed: {', '.join(moved) or 'the input list'}")
    changed = set(changed_partitions(snapshot["source"], before["source"]))
    reasons = [f"source {spec.unit} changed"] if changed else []
    if delta_version(target) != before["target_version"]:
        stored = partition_fingerprints(read_delta(executor.spark, target), spec.target_partition())
        rewritten = set(changed_partitions(stored, before["target"]))
        if rewritten:
            changed |= rewritten
            reasons.append(f"the table's {spec.unit} changed since the last refresh")
    if None in changed or "None" in changed:
        return everything(f"rows without a partition ({spec.unit})")
    return IncrementalPlan(sorted(changed), "; ".join(reasons) or "nothing changed", snapshot)


def _source_partitions(executor: FlowExecutor, spec: ByDay | ByKey, source: DataFrame) -> dict[str, str]:
    """Partition fingerprints of the source, each followed by the same day's fingerprint
    in the ``extra_day_inputs`` that exist (only the source's days: a day without
    source rows has no rows in the view, whatever else was stored for it)."""
    partitions = partition_fingerprints(source, spec.source_partition())
    for path, day_expr in spec.extra_day_inputs.items():
        uri = f"{executor.runner.lake.root}/{path}"
        if not delta_exists(uri):
            continue
        extra = partition_fingerprints(read_delta(executor.spark, uri), F.expr(day_expr).cast("date"))
        partitions = {p: f"{fp}|{extra[p]}" if p in extra else fp for p, fp in partitions.items()}
    return partitions


def _identity(executor: FlowExecutor, name: str, frame: DataFrame) -> str:
    """What identifies another input's content: its Delta version, or the content
    digest of a temporary view (computed)."""
    if executor.graph.datasets[name].kind == DatasetKind.TEMPORARY_VIEW:
        return f"content {ex.content_digest(frame)}"
    return f"version {delta_version(executor.runner.path(name))}"


def _is_timestamp(one_column: DataFrame) -> bool:
    return one_column.dtypes[0][1] in ("timestamp", "timestamp_ntz")


def partition_fingerprints(df: DataFrame, partition: Column) -> dict[str, str]:
    """``{partition: 'rows:hash sum'}`` of ``df`` (row order does not matter; a
    duplicated, changed or removed row changes its partition's fingerprint)."""
    rows = df.groupBy(partition.alias("__partition")).agg(
        F.count(F.lit(1)).alias("rows"), F.sum(ex.row_hash(df)).alias("hash")
    )
    return {str(r["__partition"]): f"{r['rows']}:{r['hash']}" for r in rows.collect()}


def changed_partitions(now: Mapping[str, str], before: Mapping[str, str]) -> list[str]:
    """Partitions new, changed or gone between two fingerprint maps, sorted."""
    return sorted(p for p in set(now) | set(before) if now.get(p) != before.get(p))


def day_ranges(days: Sequence[str]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days merged into inclusive ``(first, last)`` ranges."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(dt.date.fromisoformat(d) for d in days):
        if ranges and day - ranges[-1][1] == dt.timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def days_predicate(column: str, days: Sequence[str], *, is_timestamp: bool) -> str:
    """SQL predicate selecting the rows of ``days`` by ``column`` (a DATE, or a
    TIMESTAMP compared by half-open day ranges)."""
    if not days:
        raise ValueError(f"days_predicate on {column!r}: no day given")
    parts = []
    for first, last in day_ranges(days):
        if is_timestamp:
            end = last + dt.timedelta(days=1)
            parts.append(
                f"({column} >= TIMESTAMP'{first} 00:00:00' AND {column} < TIMESTAMP'{end} 00:00:00')"
            )
        else:
            parts.append(f"({column} BETWEEN DATE'{first}' AND DATE'{last}')")
    return " OR ".join(parts)


# ------------------------------------------------------------------- refresh
def refresh_incremental(
    executor: FlowExecutor,
    dataset: Dataset,
    flow: Flow,
    event: FlowEvent,
    state: RunState,
    *,
    full_refresh: bool,
) -> None:
    """Recompute the changed partitions of ``dataset`` (all of them when the plan says
    so) and replace their rows in one commit; the state is committed with the run."""
    spec, runner = dataset.incremental, executor.runner
    inputs = executor.inputs(flow, state)
    whole = flow.function(**inputs)
    planned = plan(executor, dataset, inputs, whole, full_refresh=full_refresh)
    before = read_json(state_file(executor, dataset)) or {}
    target = runner.path(dataset.name)
    if planned.partitions is None:
        written = writer.write(runner, dataset, whole, event, state, mode="overwrite")
        table = partition_fingerprints(written.kept, spec.target_partition())
        mode = "full"
    elif not planned.partitions:
        event.status, event.rows_read, event.rows_written = "SKIPPED", 0, 0
        event.target_version = delta_version(target)
        table, mode = before["target"], "unchanged"
    else:
        source = inputs[spec.source]
        changed = source.where(spec.source_condition(planned.partitions, source))
        frame = flow.function(**{**inputs, spec.source: changed})
        condition = spec.replace_condition(planned.partitions, read_delta(executor.spark, target))
        written = writer.write(
            runner, dataset, frame, event, state, mode="overwrite", replace_where=condition
        )
        untouched = {p: fp for p, fp in before["target"].items() if p not in set(planned.partitions)}
        table = {**untouched, **partition_fingerprints(written.kept, spec.target_partition())}
        mode = spec.unit
    rebuilt_partitions = planned.partitions if mode == spec.unit else []
    event.details = json.dumps({"mode": mode, spec.unit: rebuilt_partitions, "reason": planned.reason})
    record = {**planned.snapshot, "target": table, "target_version": delta_version(target)}
    uri = state_file(executor, dataset)
    state.checkpoint_commits.append(lambda: write_json(uri, record))
