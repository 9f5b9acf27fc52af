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

A source that is only appended to (a bronze table) can say when each row arrived
(``arrival_day``, e.g. its drop date): the definition then sees the rows arrived up to
the run date (the pipeline's ``run_date`` parameter), and the source's fingerprints
are kept per arrival day and day, so a run fingerprints only the files appended since
the last refresh (from the Delta log) instead of the whole source; another run date
only sums other arrival days. A source rewritten since (overwrite, delete,
compaction) is fingerprinted whole again. The changed days are then read from the
arrival days that hold them only (``arrival_where``: by partition columns, so the
engine opens those days' files alone): a late row of an old day costs the reading
of its own arrival day and that day's, not of the whole history.

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
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from lakehouse.lake import delta_exists, read_delta, read_json, write_json
from lakehouse.pipelines import expectations as ex
from lakehouse.pipelines import writer
from lakehouse.pipelines.event_log import FlowEvent
from lakehouse.pipelines.fingerprint import fingerprint as plan_fingerprint
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
    of tables outside the pipeline that the definition reads by day.
    ``lookback_days``: a target day's rows read the source of that day and of that
    many days before it (a rolling window). ``latest_per``: source columns whose
    latest row the view marks or keeps (``is_latest``, the site's latest snapshot).
    ``arrival_day``: SQL (a DATE) of the day a row of the append-only ``source``
    arrived; rows count once it is on or before the run date. ``arrival_where``: SQL
    selecting the rows arrived on some days ('YYYY-MM-DD') in a form the engine skips
    the files of other days with (partition columns compared to literals).
    ``source_where``: SQL selecting the source rows the view reads (the others are
    not fingerprinted)."""

    source: str
    source_day: str
    target_day: str
    extra_day_inputs: Mapping[str, str] = field(default_factory=dict)
    lookback_days: int = 0
    latest_per: tuple[str, ...] = ()
    arrival_day: str | None = None
    source_where: str | None = None
    arrival_where: Callable[[Sequence[str]], str] | None = None
    unit = "days"

    # Days as DATE (str() gives 'YYYY-MM-DD'): a cast costs half of date_format, and
    # rows are selected by day ranges, which the engine filters far faster than labels.
    def partition_of(self, day: str) -> Column:
        """The partition label of the SQL ``day`` (a DATE or TIMESTAMP)."""
        return F.expr(day).cast("date")

    def source_partition(self) -> Column:
        return self.partition_of(self.source_day)

    def read_rows(self, source: DataFrame, run_date: Any) -> DataFrame:
        """The ``source`` rows the view reads: those of ``source_where``, arrived up to
        ``run_date`` (with an ``arrival_day``)."""
        if self.source_where is not None:
            source = source.where(F.expr(self.source_where))
        if self.arrival_day is None:
            return source
        return source.where(F.expr(self.arrival_day).cast("date") <= F.lit(_as_date(self.source, run_date)))

    def arrived_on(self, days: Sequence[str]) -> Column:
        """The source rows that arrived on ``days`` (none when there is no day)."""
        if not days:
            return F.lit(False)
        if self.arrival_where is not None:
            return F.expr(self.arrival_where(days))
        return F.expr(days_predicate(f"CAST(({self.arrival_day}) AS DATE)", days, is_timestamp=False))

    def target_partition(self) -> Column:
        return self.partition_of(self._target_day())

    def source_condition(self, partitions: Sequence[str], source: DataFrame) -> Column:
        return F.expr(self._condition(self.source_day, partitions, source))

    def replace_condition(self, partitions: Sequence[str], target: DataFrame) -> str:
        return self._condition(self.target_day, partitions, target)

    def _condition(self, day: str, partitions: Sequence[str], frame: DataFrame) -> str:
        """The rows of ``partitions`` by ``day`` over ``frame``: a column compared as its
        type is (the engine skips the files of other days), an expression by its
        partition label, a DATE (no type to ask the engine for: nothing to skip)."""
        if day.isidentifier():
            return self._predicate(day, partitions, _is_timestamp(frame, day))
        return self._predicate(f"CAST(({day}) AS DATE)", partitions, False)

    def window(self) -> dict[str, Any] | None:
        """The options that widen a change beyond its own day (None: none set)."""
        if not self.lookback_days and not self.latest_per:
            return None
        return {"lookback_days": self.lookback_days, "latest_per": list(self.latest_per)}

    def following(self, days: set[str], known: set[str]) -> set[str]:
        """``days`` and the ``lookback_days`` days after each whose windows cover it,
        those among ``known`` (days with source or target rows)."""
        if not self.lookback_days:
            return set(days)
        after = {_shift(d, k) for d in days for k in range(1, self.lookback_days + 1)}
        return set(days) | (after & known)

    def read_partitions(self, days: Sequence[str]) -> list[str]:
        """The source days the definition reads to recompute ``days``: each with the
        ``lookback_days`` days before it."""
        if not self.lookback_days:
            return sorted(days)
        return sorted({_shift(d, -k) for d in days for k in range(self.lookback_days + 1)})

    def latest_partitions(self, source: DataFrame) -> list[str]:
        """The days holding the latest source row of each ``latest_per`` key."""
        if not self.latest_per:
            return []
        latest = source.groupBy(*[F.col(f"`{c}`") for c in self.latest_per]).agg(
            F.max(F.expr(self.source_day)).alias("__latest")
        )
        rows = latest.select(self.partition_of("__latest").alias("__day")).distinct().collect()
        return sorted(str(r["__day"]) for r in rows)

    def _predicate(self, day: str, partitions: Sequence[str], is_timestamp: bool) -> str:
        return days_predicate(day, partitions, is_timestamp=is_timestamp)

    def _target_day(self) -> str:
        """``target_day`` as SQL: a column name as is, an expression in parentheses."""
        return self.target_day if self.target_day.isidentifier() else f"({self.target_day})"


@dataclass(frozen=True)
class ByMonth(ByDay):
    """Partitions are calendar months ('YYYY-MM') of ``source_day`` and ``target_day``:
    a changed day recomputes every day of its month."""

    unit = "months"

    def partition_of(self, day: str) -> Column:
        return F.date_format(F.expr(day), "yyyy-MM")

    def _predicate(self, day: str, partitions: Sequence[str], is_timestamp: bool) -> str:
        return days_predicate(day, month_days(partitions), is_timestamp=is_timestamp)


@dataclass(frozen=True)
class ByKey:
    """Partitions are keys: the ``keys`` columns, in the source and in the target (dbt's
    ``unique_key``); the target's rows of a changed key are replaced by what the
    definition gives for it (none when the key is gone)."""

    source: str
    keys: tuple[str, ...]
    unit = "keys"
    extra_day_inputs: Mapping[str, str] = field(default_factory=dict)  # none: by day only
    arrival_day = source_where = None  # by day only

    def read_rows(self, source: DataFrame, run_date: Any) -> DataFrame:
        return source

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

    def window(self) -> None:
        return None

    def following(self, keys: set[str], known: set[str]) -> set[str]:
        return set(keys)

    def read_partitions(self, keys: Sequence[str]) -> list[str]:
        return sorted(keys)

    def latest_partitions(self, source: DataFrame) -> list[str]:
        return []

    def _label(self) -> Column:
        return F.to_json(F.struct(*[F.col(f"`{k}`") for k in self.keys]))


def by_day(
    *,
    source: str,
    source_day: str,
    target_day: str | None = None,
    extra_day_inputs: Mapping[str, str] | None = None,
    lookback_days: int = 0,
    latest_per: Sequence[str] = (),
    arrival_day: str | None = None,
    source_where: str | None = None,
    arrival_where: Callable[[Sequence[str]], str] | None = None,
) -> ByDay:
    """Refresh by day (dbt's ``insert_overwrite`` by partition): only the days whose
    ``source`` rows changed are recomputed and replaced. ``target_day`` defaults to
    ``source_day`` (a column, or SQL valid over both). A day computed from a key
    (e.g. the date an order id starts with) groups every version of that key, so a
    view that keeps the latest version per key stays exact.

    ``lookback_days``: a target day's rows also read the source of that many days
    before it (a rolling 24 h window: 1). A changed day then recomputes the days
    after it whose windows cover it, the definition reads each recomputed day's
    preceding days, and only the recomputed days' rows are kept.
    ``latest_per``: source columns (e.g. ``["machine_id"]``) whose latest row the view
    marks or keeps: when a day changed, the days holding each key's latest row, at
    the last refresh and now, are recomputed too (a key that stopped reporting long
    ago keeps its old latest day in every such refresh).
    ``arrival_day``: for a ``source`` table that is only appended to (bronze), SQL over
    its columns giving the DATE a row arrived (its drop date). The definition sees the
    rows arrived up to the pipeline's ``run_date`` parameter, and a run fingerprints
    only the rows appended since the last refresh instead of the whole source; the
    changed days are read from the arrival days holding rows of them only.
    ``arrival_where`` (with ``arrival_day``): a function of arrival days ('YYYY-MM-DD')
    giving SQL that selects the rows arrived on them by partition columns compared to
    literals (the engine skips files on those, not on an expression of them such as a
    drop date built from year, month and day).
    ``source_where``: SQL selecting the source rows the view reads (e.g. the
    well-formed ones, with a day): the definition sees only those and the others are
    not fingerprinted, so a bad row arriving recomputes nothing. A plain column as
    ``source_day`` lets the engine skip the files of other days."""
    for option, value in (("arrival_day", arrival_day), ("source_where", source_where)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise GraphError(f"by_day(source={source!r}): {option} is SQL, got {value!r}")
    if isinstance(lookback_days, bool) or not isinstance(lookback_days, int) or lookback_days < 0:
        raise GraphError(
            f"by_day(source={source!r}): lookback_days is a whole number >= 0, got {lookback_days!r}"
        )
    if isinstance(latest_per, str):
        raise GraphError(
            f"by_day(source={source!r}): latest_per is a list of column names, got {latest_per!r}"
        )
    if arrival_where is not None and (arrival_day is None or not callable(arrival_where)):
        raise GraphError(
            f"by_day(source={source!r}): arrival_where is a function of arrival days "
            f"and needs arrival_day, got {arrival_where!r}"
        )
    return ByDay(
        source,
        source_day,
        target_day or source_day,
        dict(extra_day_inputs or {}),
        lookback_days,
        tuple(latest_per),
        arrival_day,
        source_where,
        arrival_where,
    )


def by_month(*, source: str, source_day: str, target_day: str | None = None) -> ByMonth:
    """Refresh by calendar month: a view with one row per month (and other keys)
    recomputes and replaces the whole months in which a ``source`` row changed.
    ``source_day`` and ``target_day`` are days (DATE or TIMESTAMP, SQL) as in
    ``by_day``; the target's may be the month's first day."""
    return ByMonth(source, source_day, target_day or source_day)


def by_key(*, source: str, keys: Sequence[str]) -> ByKey:
    """Refresh by key (dbt's ``unique_key`` merge): only the keys whose ``source`` rows
    changed are recomputed; their rows in the table are replaced."""
    if isinstance(keys, str) or not keys:
        raise GraphError(f"by_key(source={source!r}): keys is a list of column names, got {keys!r}")
    return ByKey(source, tuple(keys))


def problems(
    dataset: Dataset, inputs: Sequence[str], kinds: Mapping[str, DatasetKind] | None = None
) -> list[str]:
    """Why the runner cannot honour ``dataset``'s ``incremental=`` (empty if it can);
    ``kinds``: the graph's dataset kinds."""
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
    if spec.arrival_day is not None and (kinds or {}).get(spec.source) == DatasetKind.TEMPORARY_VIEW:
        found.append(
            f"{where} arrival_day needs a stored source table (it reads the files appended to it); "
            f"{spec.source!r} is a temporary view: read its table and filter in the definition"
        )
    return found


@dataclass(frozen=True)
class IncrementalPlan:
    """What the next refresh recomputes: ``partitions`` (sorted) or everything (None)."""

    partitions: list[str] | None
    reason: str
    snapshot: dict[str, Any] = field(repr=False, default_factory=dict)  # the state once written
    present: set[str] = field(repr=False, default_factory=set)  # the partitions the table holds rows of


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
    state: RunState | None = None,
) -> IncrementalPlan:
    """The partitions to recompute, from the recorded state and the inputs as stored
    (``state``: the run's, whose tables written so far are known by their versions).
    ``whole``: the definition's rows flagged by the expectations (``ex.flag``)."""
    spec, target = dataset.incremental, executor.runner.path(dataset.name)
    before = read_json(state_file(executor, dataset)) or {}
    arrivals = None
    if spec.arrival_day is not None:  # fingerprints follow the appended files
        arrivals = arrival_fingerprints(executor, spec, before.get("arrivals") or {})
        arrived = arrived_partitions(arrivals, run_date_of(executor, spec))
        versions, source = None, _with_extra_days(executor, spec, arrived)
    else:
        versions = _source_versions(executor, spec, inputs[spec.source])
        source = _recorded_source(executor, spec, versions, before, state)
    snapshot = {
        "format": STATE_FORMAT,
        "by": spec.unit,
        "source": source if source is not None else _source_partitions(executor, spec, inputs[spec.source]),
        "inputs": {n: _identity(executor, n, df) for n, df in sorted(inputs.items()) if n != spec.source},
        "schema": StructType([f for f in whole.schema.fields if f.name != ex.FAILED_RULES]).simpleString(),
        "definition": table_definition(dataset),
    }
    if versions is not None:
        snapshot["source_versions"] = versions
    if arrivals is not None:
        snapshot["arrivals"] = arrivals
    if spec.window() is not None:
        snapshot["window"] = spec.window()
        same = before.get("window") == spec.window() and before.get("source") == snapshot["source"]
        latest = before.get("latest") if same else None  # the same rows have the same latest days
        snapshot["latest"] = latest if latest is not None else spec.latest_partitions(inputs[spec.source])

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
    if before.get("window") != snapshot.get("window"):
        return everything("lookback_days or latest_per changed")
    moved = sorted(n for n in snapshot["inputs"] if before["inputs"].get(n) != snapshot["inputs"][n])
    if moved or set(before["inputs"]) != set(snapshot["inputs"]):
        return everything(f"other inputs changed: {', '.join(moved) or 'the input list'}")
    changed = set(changed_partitions(snapshot["source"], before["source"]))
    reasons = [f"source {spec.unit} changed"] if changed else []
    present = set(before["target"])
    if delta_version(target) != before["target_version"]:
        stored = partition_fingerprints(read_delta(executor.spark, target), spec.target_partition())
        present = set(stored)
        rewritten = set(changed_partitions(stored, before["target"]))
        if rewritten:
            changed |= rewritten
            reasons.append(f"the table's {spec.unit} changed since the last refresh")
    if None in changed or "None" in changed:
        return everything(f"rows without a partition ({spec.unit})")
    if changed:
        widened = spec.following(changed, set(snapshot["source"]) | set(before["target"]))
        if widened != changed:
            reasons.append(f"the {spec.lookback_days} day(s) after them read them")
        latest = set(before.get("latest", [])) | set(snapshot.get("latest", []))
        if latest - widened:
            reasons.append(f"the latest day per {', '.join(spec.latest_per)} before and now")
        changed = widened | latest
    return IncrementalPlan(sorted(changed), "; ".join(reasons) or "nothing changed", snapshot, present)


def _source_partitions(executor: FlowExecutor, spec: ByDay | ByKey, source: DataFrame) -> dict[str, str]:
    """Partition fingerprints of the source, each followed by the same day's fingerprint
    in the ``extra_day_inputs`` that exist (only the source's days: a day without
    source rows has no rows in the view, whatever else was stored for it)."""
    return _with_extra_days(executor, spec, partition_fingerprints(source, spec.source_partition()))


def _with_extra_days(
    executor: FlowExecutor, spec: ByDay | ByKey, partitions: dict[str, str]
) -> dict[str, str]:
    for path, day_expr in spec.extra_day_inputs.items():
        uri = f"{executor.runner.lake.root}/{path}"
        if not delta_exists(uri):
            continue
        extra = partition_fingerprints(read_delta(executor.spark, uri), F.expr(day_expr).cast("date"))
        partitions = {p: f"{fp}|{extra[p]}" if p in extra else fp for p, fp in partitions.items()}
    return partitions


def arrival_fingerprints(executor: FlowExecutor, spec: ByDay, recorded: Mapping[str, Any]) -> dict[str, Any]:
    """``{"partitioning", "version", "days": {arrival day: {partition: fingerprint}}}`` of
    the whole source table (every arrival day, the run date's later ones too): the
    recorded ones plus the rows of the files appended since the recorded version, or
    computed whole when there is no record, the days are defined otherwise, or the
    table was rewritten since (a file read before is gone)."""
    from lakehouse.pipelines.delta_source import UpstreamRewritten, read_appended

    path, spark = executor.runner.path(spec.source), executor.spark
    partitioning = [spec.source_day, spec.arrival_day, spec.source_where]
    version, since = delta_version(path), recorded.get("version")
    if recorded.get("partitioning") == partitioning and since is not None and version is not None:
        if version == since:
            return dict(recorded)
        if version > since:  # an older one (a restore) holds fewer rows: computed whole
            try:
                appended, version = read_appended(spark, path, since_version=since)
            except UpstreamRewritten:  # a file read before is gone: computed whole
                pass
            else:
                days = recorded["days"]
                if appended is not None:
                    days = added_fingerprints(days, _by_arrival(spec, appended))
                return {"partitioning": partitioning, "version": version, "days": days}
    whole = _by_arrival(spec, read_delta(spark, path))
    return {"partitioning": partitioning, "version": version, "days": whole}


def _by_arrival(spec: ByDay, rows: DataFrame) -> dict[str, dict[str, str]]:
    if spec.source_where is not None:
        rows = rows.where(F.expr(spec.source_where))
    arrival = F.expr(spec.arrival_day).cast("date").alias("__arrival")
    grouped = rows.groupBy(arrival, spec.source_partition().alias("__partition")).agg(
        F.count(F.lit(1)).alias("rows"), F.sum(ex.row_hash(rows)).alias("hash")
    )
    days: dict[str, dict[str, str]] = {}
    for r in grouped.collect():
        days.setdefault(str(r["__arrival"]), {})[str(r["__partition"])] = f"{r['rows']}:{r['hash']}"
    return days


def added_fingerprints(
    before: Mapping[str, Mapping[str, str]], added: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, str]]:
    """Fingerprints ('rows:hash sum') of rows appended to those of ``before``: summed per
    arrival day and partition (rows and hash sums add up)."""
    result = {arrival: dict(parts) for arrival, parts in before.items()}
    for arrival, parts in added.items():
        into = result.setdefault(arrival, {})
        for partition, fingerprint in parts.items():
            into[partition] = (
                _sum_fingerprints([into[partition], fingerprint]) if partition in into else fingerprint
            )
    return result


def run_date_of(executor: FlowExecutor, spec: ByDay) -> dt.date:
    return _as_date(spec.source, executor.runner.context.parameters.get("run_date"))


def arrival_days(arrivals: Mapping[str, Any], partitions: Sequence[str]) -> list[str]:
    """The arrival days holding rows of ``partitions`` (the recorded fingerprints cover
    every row of the source; rows of a NULL arrival day are never read)."""
    wanted = set(partitions)
    return sorted(day for day, parts in arrivals["days"].items() if day != "None" and wanted & set(parts))


def arrived_partitions(arrivals: Mapping[str, Any], run_date: dt.date) -> dict[str, str]:
    """The source's partition fingerprints counting the arrival days up to ``run_date``
    (rows of a NULL arrival day never count: the definition's filter drops them)."""
    last = str(run_date)
    per_partition: dict[str, list[str]] = {}
    for arrival, parts in arrivals["days"].items():
        if arrival != "None" and arrival <= last:
            for partition, fingerprint in parts.items():
                per_partition.setdefault(partition, []).append(fingerprint)
    return {partition: _sum_fingerprints(fps) for partition, fps in per_partition.items()}


def _sum_fingerprints(fingerprints: Sequence[str]) -> str:
    rows = digest = 0
    for fingerprint in fingerprints:
        count, total = fingerprint.split(":")
        rows, digest = rows + int(count), digest + int(total)
    return f"{rows}:{digest}"


def _as_date(source: str, run_date: Any) -> dt.date:
    """The pipeline's ``run_date`` parameter as a date (what ``arrival_day`` is compared with)."""
    if isinstance(run_date, dt.datetime):
        return run_date.date()
    if isinstance(run_date, dt.date):
        return run_date
    try:
        return dt.date.fromisoformat(str(run_date))
    except ValueError:
        raise GraphError(
            f"incremental source {source!r} has an arrival_day: the pipeline needs a run_date "
            f"parameter (YYYY-MM-DD), got {run_date!r}"
        ) from None


def _source_versions(executor: FlowExecutor, spec: ByDay | ByKey, source: DataFrame) -> dict[str, Any] | None:
    """The Delta versions of the source and of the ``extra_day_inputs``, with how they
    are partitioned. A temporary view has no version: its plan (run date and other
    literals included) and the versions of the tables it reads stand for it, or None
    when its result can change with the same inputs (``fingerprint.reproducible``)."""
    if executor.graph.datasets[spec.source].kind == DatasetKind.TEMPORARY_VIEW:
        planned = plan_fingerprint(source, delta_version)
        if planned is None or not planned.reproducible:
            return None
        version: Any = planned.to_json()
    else:
        version = delta_version(executor.runner.path(spec.source))
    root = executor.runner.lake.root
    partitioning = spec.keys if isinstance(spec, ByKey) else [spec.source_day, dict(spec.extra_day_inputs)]
    return {
        "partitioning": json.loads(json.dumps(partitioning)),
        "source": version,
        "extra": {path: delta_version(f"{root}/{path}") for path in sorted(spec.extra_day_inputs)},
    }


def _recorded_source(
    executor: FlowExecutor,
    spec: ByDay | ByKey,
    versions: dict[str, Any] | None,
    before: Mapping[str, Any],
    state: RunState | None,
) -> dict[str, str] | None:
    """The source's partition fingerprints without reading it, where they are known:
    the source (a table) is at the version of the last refresh, or it is itself a view
    refreshed by the same day whose table is at the version it recorded (this run's
    write, or its state). None: compute them."""
    if versions is None or versions["source"] is None:
        return None
    if before.get("by") == spec.unit and before.get("source_versions") == versions and "source" in before:
        return dict(before["source"])
    if not isinstance(versions["source"], int):  # a temporary view: its plan or inputs moved
        return None
    upstream = executor.graph.datasets[spec.source].incremental
    if (
        not isinstance(upstream, ByDay)
        or upstream.unit != "days"
        or isinstance(spec, ByKey)
        or spec.extra_day_inputs
        or upstream._target_day() != spec.source_day
    ):
        return None
    path = executor.runner.path(spec.source)
    with _WRITTEN_LOCK:
        known = _WRITTEN.get((state.staging, path)) if state is not None else None
    if known is None:
        recorded = read_json(state_file(executor, executor.graph.datasets[spec.source])) or {}
        known = (recorded.get("target_version"), recorded.get("target"))
    version, days = known
    if version is None or version != versions["source"] or days is None:
        return None
    return dict(days) if spec.unit == "days" else combined_by_month(days)


# The table fingerprints each incremental view wrote, by (run staging folder, table):
# within a run a view reading another finds them without reading that table again.
# (Flows run side by side in threads.)
_WRITTEN: dict[tuple[str, str], tuple[int | None, dict[str, str]]] = {}
_WRITTEN_LOCK = threading.Lock()


def _remember_written(state: RunState, path: str, version: int | None, table: dict[str, str]) -> None:
    with _WRITTEN_LOCK:
        if any(run != state.staging for run, _ in _WRITTEN):
            _WRITTEN.clear()  # another run's: kept for the current run only
        _WRITTEN[(state.staging, path)] = (version, table)


def combined_by_month(days: Mapping[str, str]) -> dict[str, str]:
    """Day fingerprints ('YYYY-MM-DD': 'rows:hash sum') summed into month ones ('YYYY-MM')."""
    months: dict[str, list[str]] = {}
    for day, fingerprint in days.items():
        months.setdefault(day[:7] if day != "None" else day, []).append(fingerprint)
    return {month: _sum_fingerprints(fingerprints) for month, fingerprints in months.items()}


def _identity(executor: FlowExecutor, name: str, frame: DataFrame) -> str:
    """What identifies another input's content: its Delta version, or the content
    digest of a temporary view (computed)."""
    if executor.graph.datasets[name].kind == DatasetKind.TEMPORARY_VIEW:
        return f"content {ex.content_digest(frame)}"
    return f"version {delta_version(executor.runner.path(name))}"


def _is_timestamp(frame: DataFrame, column: str) -> bool:
    """Whether ``column`` of ``frame`` is a TIMESTAMP: from the frame's schema (known
    once asked), else (another spelling of the name) by asking the engine."""
    kind = dict(frame.dtypes).get(column) or frame.select(F.col(column)).dtypes[0][1]
    return kind in ("timestamp", "timestamp_ntz")


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


def _shift(day: str, days: int) -> str:
    return str(dt.date.fromisoformat(day) + dt.timedelta(days=days))


def month_days(months: Sequence[str]) -> list[str]:
    """Every day of the ``months`` ('YYYY-MM'), as 'YYYY-MM-DD'."""
    days = []
    for month in months:
        first = dt.date.fromisoformat(f"{month}-01")
        following = (first + dt.timedelta(days=31)).replace(day=1)
        days += [str(first + dt.timedelta(days=n)) for n in range((following - first).days)]
    return days


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
    flagged = ex.flag(whole, dataset.expectations)  # its schema, analysed once, serves the plan and the write
    planned = plan(executor, dataset, inputs, flagged, full_refresh=full_refresh, state=state)
    before = read_json(state_file(executor, dataset)) or {}
    target = runner.path(dataset.name)
    if planned.partitions is None:
        written = writer.write(
            runner,
            dataset,
            whole,
            event,
            state,
            mode="overwrite",
            fingerprint_by=spec.target_partition(),
            schema=flagged.schema,
        )
        table = written.fingerprints or {}
        mode = "full"
    elif not planned.partitions:
        event.status, event.rows_read, event.rows_written = "SKIPPED", 0, 0
        event.target_version = delta_version(target)
        table, mode = before["target"], "unchanged"
    else:
        source = inputs[spec.source]
        read = spec.read_partitions(planned.partitions)
        changed = source.where(spec.source_condition(read, source))
        if "arrivals" in planned.snapshot:  # only the arrival days holding rows of them
            changed = changed.where(spec.arrived_on(arrival_days(planned.snapshot["arrivals"], read)))
        frame = flow.function(**{**inputs, spec.source: changed})
        # the table has the view's schema (or the plan rebuilt it whole)
        condition = spec.replace_condition(planned.partitions, flagged)
        if read != planned.partitions:  # rows of the days only read for their windows left out
            frame = frame.where(F.expr(condition))
        written = writer.write(
            runner,
            dataset,
            frame,
            event,
            state,
            mode="overwrite",
            replace_where=condition,
            fingerprint_by=spec.target_partition(),
            schema=flagged.schema,  # the same columns; a subset's nullability can only be narrower
            # partitions the table has no row of (a new day): appended, where a replaceWhere
            # would read the table and rewrite its files that hold other days
            nothing_to_replace=not set(planned.partitions) & planned.present,
        )
        untouched = {p: fp for p, fp in before["target"].items() if p not in set(planned.partitions)}
        table = {**untouched, **(written.fingerprints or {})}
        mode = spec.unit
    rebuilt_partitions = planned.partitions if mode == spec.unit else []
    event.details = json.dumps({"mode": mode, spec.unit: rebuilt_partitions, "reason": planned.reason})
    version = delta_version(target)
    record = {**planned.snapshot, "target": table, "target_version": version}
    _remember_written(state, target, version, table)
    uri = state_file(executor, dataset)
    state.checkpoint_commits.append(lambda: write_json(uri, record))
