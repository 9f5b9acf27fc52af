"""``apply_changes``: change events folded into a Delta target in one commit (a MERGE
of the rows that change, or one overwrite), tombstones kept beside it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import Window
from pyspark.sql import functions as F

from lakehouse import maintenance
from lakehouse.lake import delta_exists, write_delta
from lakehouse.pipelines.cdc.scd import resolve_scd1, resolve_scd2, scd1_target, scd1_tombstones, signature
from lakehouse.pipelines.cdc.spec import (
    DELETE,
    END_AT,
    SEQ,
    SEQUENCE,
    SIG,
    START_AT,
    TOMBSTONES_DIR,
    TRUNCATE,
    CdcResult,
    CdcSpec,
    change_events,
    check_changes,
    column,
    quoted,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class _Counts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    closed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.deleted)


def _actions(old: DataFrame | None, new: DataFrame, match: Sequence[str]) -> DataFrame:
    """Rows of ``old`` and ``new`` (same columns) with ``__action``: ``insert``/``update``
    (new side), ``delete`` (old side) or NULL (unchanged), and ``__closed`` (an open
    SCD2 version, old side, that is closed or gone)."""
    columns = new.columns
    sides = new.withColumn("__old", F.lit(False))
    if old is not None:
        sides = sides.unionByName(old.withColumn("__old", F.lit(True)), allowMissingColumns=True)
    window = Window.partitionBy(*[column(c) for c in match])
    is_old, is_new = F.col("__old"), ~F.col("__old")
    sides = sides.withColumn(SIG, signature(columns)).withColumns(
        {
            "__n_old": F.sum(is_old.cast("int")).over(window),
            "__n_new": F.sum(is_new.cast("int")).over(window),
            "__old_sig": F.max(F.when(is_old, F.col(SIG))).over(window),
            "__new_sig": F.max(F.when(is_new, F.col(SIG))).over(window),
        }
    )
    action = (
        F.when(is_new & (F.col("__n_old") == 0), "insert")
        .when(is_new & (F.col("__old_sig") != F.col("__new_sig")), "update")
        .when(is_old & (F.col("__n_new") == 0), "delete")
    )
    closed = F.lit(False)
    if END_AT in columns:
        new_closed = F.max(F.when(is_new, F.col(END_AT).isNotNull())).over(window)
        closed = is_old & F.col(END_AT).isNull() & F.coalesce(new_closed, F.lit(True))
    return sides.withColumns({"__action": action, "__closed": closed})


def _count(actions: DataFrame) -> _Counts:
    row = actions.agg(
        *[F.sum((F.col("__action") == a).cast("int")).alias(a) for a in ("insert", "update", "delete")],
        F.sum(F.col("__closed").cast("int")).alias("closed"),
    ).first()
    return _Counts(*(int(row[name] or 0) for name in ("insert", "update", "delete", "closed")))


def _merge(
    spark: SparkSession, path: str, actions: DataFrame, match: Sequence[str], columns: Sequence[str]
) -> None:
    """One ``MERGE INTO`` applying the inserts, updates and deletes of ``actions``."""
    view = f"__cdc_changes_{uuid.uuid4().hex}"
    actions.where(F.col("__action").isNotNull()).select(
        *[column(c) for c in columns], "__action"
    ).createOrReplaceTempView(view)
    on = " AND ".join(f"t.{quoted(c)} <=> s.{quoted(c)}" for c in match)
    updates = ", ".join(f"{quoted(c)} = s.{quoted(c)}" for c in columns if c not in match)
    names = ", ".join(quoted(c) for c in columns)
    values = ", ".join(f"s.{quoted(c)}" for c in columns)
    update_clause = f"WHEN MATCHED AND s.__action = 'update' THEN UPDATE SET {updates} " if updates else ""
    location = path.replace("`", "``")
    try:
        spark.sql(
            f"MERGE INTO delta.`{location}` AS t USING {view} AS s ON {on} "
            "WHEN MATCHED AND s.__action = 'delete' THEN DELETE "
            f"{update_clause}"
            f"WHEN NOT MATCHED AND s.__action = 'insert' THEN INSERT ({names}) VALUES ({values})"
        ).collect()
    finally:
        spark.catalog.dropTempView(view)


def _sync(
    spark: SparkSession,
    path: str,
    *,
    old: DataFrame | None,
    new: DataFrame,
    match: Sequence[str],
    full: DataFrame | None,
) -> _Counts:
    """Make the rows of ``old`` (the current rows of the keys concerned) become ``new``
    in one commit: a MERGE, or an overwrite with ``full`` (the whole new table) when
    the table does not exist or its columns change. No commit when nothing changes."""
    counts = _count(_actions(old, new, match))
    if full is not None:
        write_delta(full, path, mode="overwrite")
    elif counts.changed:
        _merge(spark, path, _actions(old, new, match), match, new.columns)
    return counts


def _read_pinned(spark: SparkSession, path: str) -> tuple[DataFrame | None, int | None]:
    """The table at its current version (pinned: later reads of the plan see the same
    snapshot even after this call writes a new version)."""
    if not delta_exists(path):
        return None, None
    version = maintenance.version(path)
    return spark.read.format("delta").option("versionAsOf", version).load(path), version


def _validate(events: DataFrame, spec: CdcSpec, target: str) -> tuple[int, int, int]:
    """(events, deletes, truncates); raise on NULL keys or sequences, bad predicates."""
    null_key = F.lit(False)
    for key in spec.keys:
        null_key = null_key | column(key).isNull()
    null_key = null_key & ~F.col(TRUNCATE)  # a truncate concerns no key
    try:
        row = events.agg(
            F.count(F.lit(1)).alias("events"),
            F.sum(null_key.cast("int")).alias("null_keys"),
            F.sum(F.col(SEQ).isNull().cast("int")).alias("null_sequences"),
            F.sum(F.col(DELETE).cast("int")).alias("deletes"),
            F.sum(F.col(TRUNCATE).cast("int")).alias("truncates"),
        ).first()
    except Exception as exc:
        raise ValueError(
            f"apply_changes into {target}: the change events could not be evaluated (check "
            f"apply_as_deletes={spec.apply_as_deletes!r}, apply_as_truncates="
            f"{spec.apply_as_truncates!r}, sequence_by={spec.sequence_by!r}): "
            f"{str(exc).strip().splitlines()[0]}"
        ) from exc
    if row["null_keys"]:
        raise ValueError(
            f"apply_changes into {target}: {row['null_keys']} change event(s) have a NULL key "
            f"({list(spec.keys)}); filter or repair them upstream (e.g. an expectation)"
        )
    if row["null_sequences"]:
        raise ValueError(
            f"apply_changes into {target}: {row['null_sequences']} change event(s) have a NULL "
            f"sequence_by ({spec.sequence_by!r}); every event needs an ordering value"
        )
    return int(row["events"]), int(row["deletes"] or 0), int(row["truncates"] or 0)


def _check_target(current: DataFrame | None, spec: CdcSpec, target: str) -> None:
    if current is None:
        return
    columns = set(current.columns)
    if spec.stored_as_scd_type == 2 and not {START_AT, END_AT} <= columns:
        raise ValueError(
            f"apply_changes into {target}: the target has no {START_AT}/{END_AT} columns, so it is "
            "not an SCD2 table written by apply_changes; delete the target folder to rebuild it "
            "(full refresh) or use stored_as_scd_type=1"
        )
    if spec.stored_as_scd_type == 1 and (START_AT in columns or spec.scd1_sequence_column not in columns):
        raise ValueError(
            f"apply_changes into {target}: the target is not an SCD1 table written by apply_changes "
            f"with this spec (expected column {spec.scd1_sequence_column!r}, no {START_AT}); delete "
            "the target folder to rebuild it (full refresh)"
        )


def apply_changes(spark: SparkSession, *, target_path: str, changes: DataFrame, spec: CdcSpec) -> CdcResult:
    """Fold ``changes`` into the Delta table at ``target_path`` (created if missing)."""
    check_changes(changes.columns, spec, target=target_path)
    events = change_events(changes, spec)
    n_events, n_deletes, n_truncates = _validate(events, spec, target_path)
    current, version = _read_pinned(spark, target_path)
    _check_target(current, spec, target_path)
    tombstone_path = f"{target_path.rstrip('/')}/{TOMBSTONES_DIR}"
    tombstones, _ = _read_pinned(spark, tombstone_path)
    keys = list(spec.keys)

    def touched(df: DataFrame | None) -> DataFrame | None:
        if df is None or n_truncates:
            return df  # a truncate concerns every key
        return df.join(events.select(*[column(k) for k in keys]).distinct(), on=keys, how="left_semi")

    current_touched, tombstones_touched = touched(current), touched(tombstones)
    if spec.stored_as_scd_type == 1:
        winners, columns = resolve_scd1(events, current_touched, tombstones_touched, spec)
        new_rows, new_tombstones = scd1_target(winners, columns, spec), scd1_tombstones(winners, spec)
        match, tombstone_match = keys, keys
    else:
        new_rows, new_tombstones, columns = resolve_scd2(events, current_touched, tombstones_touched, spec)
        match, tombstone_match = [*keys, START_AT], [*keys, SEQUENCE]

    if n_deletes or n_truncates or tombstones is not None:
        full = new_tombstones if tombstones is None else None
        _sync(
            spark,
            tombstone_path,
            old=tombstones_touched,
            new=new_tombstones,
            match=tombstone_match,
            full=full,
        )

    if current is None:
        full = new_rows
    elif [c for c in new_rows.columns if c not in current.columns]:  # a new column: rewrite whole
        untouched = (
            current
            if n_truncates
            else current.join(current_touched.select(*keys).distinct(), keys, "left_anti")
        )
        full = untouched.unionByName(new_rows, allowMissingColumns=True).select(*new_rows.columns)
    else:
        full = None
        new_rows = new_rows.select(*current.columns)
    counts = _sync(spark, target_path, old=current_touched, new=new_rows, match=match, full=full)
    scd2 = spec.stored_as_scd_type == 2
    return CdcResult(
        target_path=target_path,
        events=n_events,
        rows_upserted=counts.inserted + counts.updated,
        rows_inserted=counts.inserted,
        rows_updated=counts.updated,
        rows_deleted=counts.deleted,
        versions_opened=counts.inserted if scd2 else 0,
        versions_closed=counts.closed if scd2 else 0,
        target_version=maintenance.version(target_path) if delta_exists(target_path) else version,
    )
