"""Incremental refresh of the gold facts: rebuild only the days whose silver rows changed.

A fact built row by row from one silver table (``fact_ventes`` from the order lines,
``fact_consommation_energie`` from the hourly readings) is refreshed day by day. Each
day of the silver table has a fingerprint (its row count and the sum of its rows'
hashes) kept in ``_system/incremental/<fact>.json``; the days whose fingerprint
differs from the last refresh (new days, late or corrected rows, removed rows) are
rebuilt with the fact's own pipeline definition and replace that day's fact rows in
one commit (``replaceWhere``). Without a previous state, or when a dimension the fact
reads changed (a new product price period, a machine version, another calendar
year), the whole fact is rebuilt: the result is always what a full rebuild gives.
A table outside the pipeline that the fact's definition reads by day (the anomaly
model's scores for ``fact_consommation_energie``) adds its own day fingerprint to the
source's, so a day scored since the last refresh is rebuilt with its scores too.

The KPIs read the gold facts, not silver, so the domain's other gold datasets are
recomputed by the pipeline as usual (``refresh_gold``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.context import RunContext
from lakehouse.gold.energy import ANOMALY_SCORES_PATH
from lakehouse.lake import delta_exists, read_delta, read_json, write_json
from lakehouse.pipelines import PipelineRunner
from lakehouse.pipelines import expectations as ex
from lakehouse.pipelines.event_log import FlowEvent, append_events

DAY_FORMAT = "yyyy-MM-dd"
NO_DAY = "None"  # the key of source rows whose day is NULL


@dataclass(frozen=True)
class IncrementalFact:
    """A fact refreshed by day: ``source`` is the silver input whose days drive the
    refresh (``source_day`` a SQL expression of a row's day) and ``fact_day`` the fact
    column (DATE or TIMESTAMP, UTC) whose day identifies the same rows in the fact."""

    name: str
    source: str
    source_day: str
    fact_day: str
    # (path relative to the lake root, SQL day of a row): tables outside the pipeline
    # graph that the definition reads; their days count as the source's days.
    day_inputs: tuple[tuple[str, str], ...] = ()


INCREMENTAL_FACTS = {
    "pharma": (IncrementalFact("fact_ventes", "silver_order_lines", "order_date", "order_date"),),
    "energy": (
        IncrementalFact(
            "fact_consommation_energie",
            "silver_iot_readings_hourly",
            "to_date(hour_ts)",
            "hour_ts",
            day_inputs=((ANOMALY_SCORES_PATH, "to_date(hour_ts)"),),
        ),
    ),
}


@dataclass
class FactRefresh:
    """What one incremental refresh of one fact did."""

    fact: str
    mode: str  # "full", "days" or "unchanged"
    days: list[str]
    rows_written: int
    seconds: float
    reason: str


def day_fingerprints(df: DataFrame, day_expr: str) -> dict[str, str]:
    """``{day 'YYYY-MM-DD': 'rows:hash sum'}`` of ``df`` (row order does not matter; a
    duplicated, changed or removed row changes its day's fingerprint)."""
    days = df.groupBy(F.date_format(F.expr(day_expr), DAY_FORMAT).alias("day")).agg(
        F.count(F.lit(1)).alias("rows"), F.sum(ex.row_hash(df)).alias("hash")
    )
    return {str(r["day"]): f"{r['rows']}:{r['hash']}" for r in days.collect()}


def table_fingerprint(df: DataFrame) -> str:
    """``'rows:hash sum'`` of a whole table (a dimension)."""
    return ex.content_digest(df)


def changed_days(now: Mapping[str, str], before: Mapping[str, str]) -> list[str]:
    """Days new, changed or gone between two fingerprint maps, sorted."""
    return sorted(day for day in set(now) | set(before) if now.get(day) != before.get(day))


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
    """SQL predicate selecting the rows of ``days`` by ``column`` (a DATE, or a UTC
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


def _state_uri(pipeline: PipelineRunner, fact: str) -> str:
    return pipeline.lake.system(f"incremental/{pipeline.graph.name}/{fact}.json")


def load_state(uri: str) -> dict | None:
    return read_json(uri)


def save_state(uri: str, state: dict) -> None:
    """Written whole or not at all: a crash leaves the previous state (the next run then
    rebuilds the same days again: replacing a day is idempotent)."""
    write_json(uri, state)


def _write_fact(
    pipeline: PipelineRunner,
    spec: IncrementalFact,
    frame: DataFrame,
    event: FlowEvent,
    replace_where: str | None,
) -> None:
    """Expectations of the fact's definition (fail rules raise, warn rules counted),
    then one Delta commit: the whole table, or only the days of ``replace_where``."""
    dataset = pipeline.graph.datasets[spec.name]
    flagged = ex.flag(frame, dataset.expectations)
    total, results = ex.count(flagged, dataset.expectations)
    ex.raise_on_fail(spec.name, flagged, dataset.expectations, results)
    kept, _ = ex.split(flagged, dataset.expectations)
    writer = kept.write.format("delta").mode("overwrite")
    if replace_where is None:
        writer = writer.option("overwriteSchema", "true")
    else:
        writer = writer.option("replaceWhere", replace_where)
    writer.save(pipeline.path(spec.name))
    event.rows_read, event.rows_written, event.expectations = total, total, results


def refresh_fact(pipeline: PipelineRunner, spec: IncrementalFact, event: FlowEvent) -> FactRefresh:
    """Bring one fact up to date with its inputs as stored, rebuilding only the
    changed days when it can (see the module docstring)."""
    started = time.monotonic()
    flow = pipeline.graph.flows_into(spec.name)[0]
    inputs = {name: read_delta(pipeline.spark, pipeline.path(name)) for name in flow.inputs}
    state = _current_state(pipeline, spec, inputs)
    days_now, dimensions = state["days"], state["dimensions"]
    state_uri = _state_uri(pipeline, spec.name)
    before = load_state(state_uri)
    target_exists = delta_exists(pipeline.path(spec.name))
    if before is None or not target_exists:
        mode, days, reason = "full", sorted(days_now), "no previous incremental state"
    elif before.get("schema") != state["schema"]:
        mode, days, reason = "full", sorted(days_now), "the fact's definition gives another schema"
    elif before.get("dimensions") != dimensions:
        changed = sorted(n for n in dimensions if before.get("dimensions", {}).get(n) != dimensions[n])
        mode, days, reason = "full", sorted(days_now), f"dimensions changed: {', '.join(changed)}"
    else:
        days = changed_days(days_now, before.get("days", {}))
        mode, reason = ("days", "source days changed") if days else ("unchanged", "no source day changed")
        if NO_DAY in days:  # rows without a day cannot be replaced by day
            mode, reason = "full", "source rows without a day"
    if mode == "unchanged":
        event.rows_read = event.rows_written = 0
    elif mode == "full":
        _write_fact(pipeline, spec, _define(pipeline, spec, inputs), event, None)
    else:
        day_of_row = F.date_format(F.expr(spec.source_day), DAY_FORMAT)
        inputs[spec.source] = inputs[spec.source].where(day_of_row.isin(days))
        stored = read_delta(pipeline.spark, pipeline.path(spec.name))
        is_timestamp = dict(stored.dtypes).get(spec.fact_day) in ("timestamp", "timestamp_ntz")
        predicate = days_predicate(spec.fact_day, days, is_timestamp=is_timestamp)
        _write_fact(pipeline, spec, _define(pipeline, spec, inputs), event, predicate)
    save_state(state_uri, state)
    return FactRefresh(
        spec.name,
        mode,
        days if mode == "days" else [],
        event.rows_written or 0,
        time.monotonic() - started,
        reason,
    )


def refresh_facts(pipeline: PipelineRunner, domain: str, *, run_id: str) -> list[FactRefresh]:
    """Refresh the domain's incremental facts; one event-log row each (flow type
    ``incremental``, the days rebuilt in ``details``)."""
    if domain not in INCREMENTAL_FACTS:
        raise ValueError(f"no incremental fact for domain {domain!r}; domains: {sorted(INCREMENTAL_FACTS)}")
    refreshes, events = [], []
    try:
        for spec in INCREMENTAL_FACTS[domain]:
            event = FlowEvent(run_id, pipeline.graph.name, spec.name, spec.name, "incremental", _now())
            events.append(event)
            try:
                refresh = refresh_fact(pipeline, spec, event)
            except Exception as exc:
                event.status, event.error = "FAILED", f"{type(exc).__name__}: {exc}"
                raise
            finally:
                event.ended_at = _now()
            event.status = "SKIPPED" if refresh.mode == "unchanged" else "COMPLETED"
            event.duration_seconds = round(refresh.seconds, 3)
            event.details = json.dumps({"mode": refresh.mode, "days": refresh.days, "reason": refresh.reason})
            refreshes.append(refresh)
    finally:
        append_events(pipeline.spark, pipeline.lake.system("event_log"), events)
    return refreshes


def refresh_gold(context: RunContext, domain: str, *, incremental: bool = True) -> dict[str, object]:
    """Update the gold datasets of ``domain``: dimensions, then the incremental facts
    (only their changed days), then every other gold dataset (KPIs...). With
    ``incremental=False``: a full rebuild, after which the day fingerprints are taken
    so the next incremental run starts from there."""
    from lakehouse.pharma import layer_datasets, run_layer, runner

    pipeline = runner(context)
    if not incremental:
        run = run_layer(context, "gold", under=f"domain={domain}")
        for spec in INCREMENTAL_FACTS.get(domain, ()):
            _remember_state(pipeline, spec)
        return {"runs": [run], "facts": []}
    names = layer_datasets(pipeline.graph, "gold", under=f"domain={domain}")
    facts = {spec.name for spec in INCREMENTAL_FACTS.get(domain, ())}
    dimensions = [n for n in names if "/model=star/table=dim_" in (pipeline.graph.datasets[n].path or "")]
    others = [n for n in names if n not in facts and n not in dimensions]
    runs = [_run(pipeline, dimensions, context)]
    refreshed = refresh_facts(pipeline, domain, run_id=context.batch_id)
    if others:
        runs.append(_run(runner(context), others, context))
    return {"runs": runs, "facts": refreshed}


def _run(pipeline: PipelineRunner, names: list[str], context: RunContext):
    return pipeline.run(
        refresh=names, include_upstreams=False, run_id=context.batch_id, ingested_at=context.started_at
    )


def _define(pipeline: PipelineRunner, spec: IncrementalFact, inputs: dict[str, DataFrame]) -> DataFrame:
    """The fact's definition on ``inputs``, with the pipeline's context active (the
    definition may read ``dp.current()``, as it does in a pipeline run)."""
    flow = pipeline.graph.flows_into(spec.name)[0]
    with pipeline._active():
        return flow.function(**inputs)


def _source_days(pipeline: PipelineRunner, spec: IncrementalFact, source: DataFrame) -> dict[str, str]:
    """Day fingerprints of the source, each followed by the same day's fingerprint in
    the ``day_inputs`` that exist (only the source's days: a day without source rows
    has no fact rows whatever else was stored for it)."""
    days = day_fingerprints(source, spec.source_day)
    for path, day_expr in spec.day_inputs:
        uri = f"{pipeline.lake.root}/{path}"
        if not delta_exists(uri):
            continue
        extra = day_fingerprints(read_delta(pipeline.spark, uri), day_expr)
        days = {day: f"{fp}|{extra[day]}" if day in extra else fp for day, fp in days.items()}
    return days


def _current_state(pipeline: PipelineRunner, spec: IncrementalFact, inputs: dict[str, DataFrame]) -> dict:
    """Day fingerprints of the source (and day inputs), fingerprints of the other
    inputs (dimensions), and the schema the fact's definition gives (analysis only,
    nothing is computed)."""
    return {
        "days": _source_days(pipeline, spec, inputs[spec.source]),
        "dimensions": {n: table_fingerprint(df) for n, df in sorted(inputs.items()) if n != spec.source},
        "schema": _define(pipeline, spec, inputs).schema.simpleString(),
    }


def _remember_state(pipeline: PipelineRunner, spec: IncrementalFact) -> None:
    flow = pipeline.graph.flows_into(spec.name)[0]
    inputs = {name: read_delta(pipeline.spark, pipeline.path(name)) for name in flow.inputs}
    save_state(_state_uri(pipeline, spec.name), _current_state(pipeline, spec, inputs))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
