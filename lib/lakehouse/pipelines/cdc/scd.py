"""SCD type 1 and type 2 as pure DataFrame functions: every known state, tombstone and
event of a key ranked in sequence order (``build_scd1``, ``build_scd2``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pyspark.sql import Window
from pyspark.sql import functions as F

from lakehouse.pipelines.cdc.spec import (
    DELETE,
    END_AT,
    PRIO,
    PRIO_CURRENT,
    PRIO_DELETE,
    PRIO_NEW,
    RESERVED,
    SEQ,
    SEQUENCE,
    SIG,
    START_AT,
    TRUNCATE,
    CdcSpec,
    change_events,
    check_changes,
    column,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def _data_columns(events: DataFrame, current: DataFrame | None) -> list[str]:
    """Target data columns: the current target's (without SCD columns), then new ones."""
    reserved = set(RESERVED)
    existing = [c for c in (current.columns if current is not None else []) if c not in reserved]
    return existing + [c for c in events.columns if c not in reserved and c not in existing]


def _candidates(
    events: DataFrame,
    current: DataFrame | None,
    tombstones: DataFrame | None,
    current_seq: str,
    spec: CdcSpec,
) -> DataFrame:
    """Every known state and event as rows ``columns + __seq, __is_delete, __prio``."""
    parts = [
        events.where(~F.col(TRUNCATE))
        .drop(TRUNCATE)
        .withColumn(PRIO, F.when(F.col(DELETE), PRIO_DELETE).otherwise(PRIO_NEW))
    ]
    if current is not None:
        parts.append(
            current.withColumn(SEQ, column(current_seq))
            .drop(*[c for c in (START_AT, END_AT, SEQUENCE) if c in current.columns])
            .withColumns({DELETE: F.lit(False), PRIO: F.lit(PRIO_CURRENT)})
        )
    if tombstones is not None:
        parts.append(
            tombstones.select(
                *[column(k) for k in spec.keys],
                F.col(SEQUENCE).alias(SEQ),
                F.lit(True).alias(DELETE),
                F.lit(PRIO_DELETE).alias(PRIO),
            )
        )
    result = parts[0]
    for part in parts[1:]:
        result = result.unionByName(part, allowMissingColumns=True)
    return result


def signature(columns: Sequence[str]) -> Column:
    return F.to_json(F.struct(*[column(c) for c in columns])) if columns else F.lit("")


# --------------------------------------------------------------------------- SCD 1


def resolve_scd1(
    events: DataFrame, current: DataFrame | None, tombstones: DataFrame | None, spec: CdcSpec
) -> tuple[DataFrame, list[str]]:
    """The winning state per key (``__is_delete`` marks deleted keys) and the data columns."""
    columns = _data_columns(events, current)
    seq_column = spec.scd1_sequence_column
    candidates = _candidates(events, current, tombstones, seq_column, spec)
    if spec.apply_as_truncates:
        latest = events.where(F.col(TRUNCATE)).agg(F.max(SEQ).alias("__truncate_at"))
        truncated = (
            candidates.select(*[column(k) for k in spec.keys])
            .distinct()
            .crossJoin(latest)
            .where(F.col("__truncate_at").isNotNull())
            .select(
                *[column(k) for k in spec.keys],
                F.col("__truncate_at").alias(SEQ),
                F.lit(True).alias(DELETE),
                F.lit(PRIO_DELETE).alias(PRIO),
            )
        )
        candidates = candidates.unionByName(truncated, allowMissingColumns=True)
    order = Window.partitionBy(*[column(k) for k in spec.keys]).orderBy(
        F.col(SEQ).desc(), F.col(PRIO).desc(), F.col(SIG).desc()
    )
    winners = (
        candidates.withColumn(SIG, signature(columns))
        .withColumn("__rank", F.row_number().over(order))
        .where(F.col("__rank") == 1)
        .drop("__rank", SIG, PRIO)
    )
    return winners, columns


def scd1_target(winners: DataFrame, columns: Sequence[str], spec: CdcSpec) -> DataFrame:
    extra = [F.col(SEQ).alias(SEQUENCE)] if spec.scd1_sequence_column == SEQUENCE else []
    return winners.where(~F.col(DELETE)).select(*[column(c) for c in columns], *extra)


def scd1_tombstones(winners: DataFrame, spec: CdcSpec) -> DataFrame:
    return winners.where(F.col(DELETE)).select(*[column(k) for k in spec.keys], F.col(SEQ).alias(SEQUENCE))


def build_scd1(
    current: DataFrame | None, changes: DataFrame, spec: CdcSpec, *, tombstones: DataFrame | None = None
) -> DataFrame:
    """The whole SCD1 target after applying ``changes`` to ``current`` (pure)."""
    check_changes(changes.columns, spec)
    winners, columns = resolve_scd1(change_events(changes, spec), current, tombstones, spec)
    return scd1_target(winners, columns, spec)


# --------------------------------------------------------------------------- SCD 2


def tracked_columns(columns: Sequence[str], spec: CdcSpec) -> list[str]:
    """Columns whose change opens a new SCD2 version."""
    if spec.track_history_column_list is not None:
        return list(spec.track_history_column_list)
    excluded = {*spec.keys, spec.sequence_by, *(spec.track_history_except_column_list or ())}
    return [c for c in columns if c not in excluded]


def _history_events(current: DataFrame, spec: CdcSpec) -> tuple[DataFrame, DataFrame]:
    """History as events: each version an upsert at ``__START_AT``; each close not
    followed by a version (a delete) a delete at ``__END_AT``."""
    keys = [column(k) for k in spec.keys]
    following = F.lead(START_AT).over(Window.partitionBy(*keys).orderBy(F.col(START_AT)))
    closes = (
        current.withColumn("__next", following)
        .where(F.col(END_AT).isNotNull() & (F.col("__next").isNull() | (F.col("__next") != F.col(END_AT))))
        .select(*keys, F.col(END_AT).alias(SEQUENCE))
    )
    return current.drop(END_AT), closes


def resolve_scd2(
    events: DataFrame, current: DataFrame | None, tombstones: DataFrame | None, spec: CdcSpec
) -> tuple[DataFrame, DataFrame, list[str]]:
    """(versions, unapplied deletes as tombstones, data columns) after replaying history,
    tombstones and events in sequence order per key."""
    columns = _data_columns(events, current)
    if current is not None:
        versions, closes = _history_events(current, spec)
        tombstones = closes if tombstones is None else tombstones.select(*closes.columns).unionByName(closes)
    else:
        versions = None
    candidates = _candidates(events, versions, tombstones, START_AT, spec).withColumn(SIG, signature(columns))
    keys = [column(k) for k in spec.keys]
    same_event = Window.partitionBy(*keys, F.col(SEQ)).orderBy(F.col(PRIO).desc(), F.col(SIG).desc())
    by_sequence = Window.partitionBy(*keys).orderBy(F.col(SEQ))
    tracked = signature(tracked_columns(columns, spec))
    previous_delete = F.lag(DELETE).over(by_sequence)
    starts = ~F.col(DELETE) & (
        previous_delete.isNull()
        | previous_delete
        | (F.lag("__tracked").over(by_sequence) != F.col("__tracked"))
    )
    replay = (
        candidates.withColumn("__rank", F.row_number().over(same_event))
        .where(F.col("__rank") == 1)
        .withColumn("__tracked", tracked)
        .withColumn("__boundary", (starts | F.col(DELETE)).cast("int"))
        .withColumn(
            "__group",
            F.sum("__boundary").over(by_sequence.rowsBetween(Window.unboundedPreceding, Window.currentRow)),
        )
    )
    group = Window.partitionBy(*keys, F.col("__group"))
    groups = (
        replay.withColumn("__group_start", F.min(SEQ).over(group))
        .withColumn("__last", F.row_number().over(group.orderBy(F.col(SEQ).desc())))
        .where(F.col("__last") == 1)
    )
    by_start = Window.partitionBy(*keys).orderBy(F.col("__group_start"))
    groups = groups.withColumns(
        {
            "__next_start": F.lead("__group_start").over(by_start),
            "__previous_delete": F.lag(DELETE).over(by_start),
        }
    )
    history = groups.where(~F.col(DELETE)).select(
        *[column(c) for c in columns],
        F.col("__group_start").alias(START_AT),
        F.col("__next_start").alias(END_AT),
    )
    unapplied = groups.where(
        F.col(DELETE) & (F.col("__previous_delete").isNull() | F.col("__previous_delete"))
    ).select(*keys, F.col("__group_start").alias(SEQUENCE))
    return history, unapplied, columns


def build_scd2(
    current: DataFrame | None, changes: DataFrame, spec: CdcSpec, *, tombstones: DataFrame | None = None
) -> DataFrame:
    """The whole SCD2 history after applying ``changes`` to ``current`` (pure)."""
    check_changes(changes.columns, spec)
    history, _, _ = resolve_scd2(change_events(changes, spec), current, tombstones, spec)
    return history
