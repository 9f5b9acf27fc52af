"""Change data capture into a Delta table: ``create_auto_cdc_flow`` (``apply_changes``).

``apply_changes`` folds a DataFrame of change events (inserts/updates, deletes,
truncates) into a Delta target, as SCD type 1 (latest state per key) or type 2 (full
history with ``__START_AT``/``__END_AT``). ``build_scd1``/``build_scd2`` are the same
logic as pure DataFrame functions.

Ordering
    Events are ordered per key by ``sequence_by`` (any orderable column; NULL is an
    error), never by arrival: a late event older than the state already applied does
    not overwrite it (SCD1), and lands at its place in history (SCD2).

Ties (same key and same ``sequence_by``)
    A delete wins over an upsert; an upsert already applied to the target wins over a
    new one (re-delivered events are no-ops); between new upserts that differ, the one
    whose values compare greatest as JSON text is kept (deterministic, arbitrary:
    give ``sequence_by`` a tie-breaker if it matters). Identical duplicates count once.

Deletes and tombstones
    ``apply_as_deletes`` (a SQL predicate over the change columns, NULL = not a delete)
    removes the key (SCD1) or closes its open version at the delete's sequence (SCD2).
    A delete older than the key's state is ignored. Deletes are remembered as
    tombstones ``(keys, __sequence)`` in a Delta table inside the target folder,
    ``<target>/_cdc_tombstones`` (vacuum and Delta readers skip ``_`` folders), so a
    late upsert older than the delete does not bring the key back. SCD2 keeps only the
    deletes its history cannot show (those that closed no version). Tombstones are
    kept forever (no TTL); deleting the target folder (full refresh) drops them too.

Truncates (SCD1 only)
    ``apply_as_truncates`` marks events that empty the table: every key whose state is
    not newer than the latest truncate is deleted (and tombstoned at its sequence).

SCD2
    ``__START_AT``/``__END_AT`` have the type of ``sequence_by``; ``__END_AT`` is NULL
    for the open version. Tracked columns: ``track_history_column_list``, else every
    column but the keys, ``sequence_by`` and ``track_history_except_column_list``. An
    event changing tracked columns opens a version; one changing only untracked
    columns (e.g. ``sequence_by``) updates its version in place; one with identical
    values changes nothing. Known limit: after an in-place update, the version keeps
    only the latest untracked values, so a late event inserted *inside* that version
    splits it with those latest values on both sides.

Columns
    ``except_column_list`` columns are not written (they can still be used in
    ``apply_as_deletes``). SCD1 keeps the ``sequence_by`` column as the key's applied
    sequence; if it is excepted, a ``__sequence`` column holds it. A column new in the
    changes is added to the target (earlier rows NULL); a target column missing from
    the changes is NULL in rows the new events write.

Atomicity
    The target changes in one Delta commit per call: a single ``MERGE INTO`` of the
    rows that change (or one overwrite when the table is created or gains a column).
    Events are validated first, so a bad predicate or key fails before anything is
    written. The tombstone table is merged just before the target; it is idempotent,
    so a retry after a crash between the two converges. Re-applying the same events
    changes nothing and makes no commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pyspark.sql import Window
from pyspark.sql import functions as F

from lakehouse import maintenance
from lakehouse.lake import delta_exists, read_delta, write_delta

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

START_AT = "__START_AT"
END_AT = "__END_AT"
SEQUENCE = "__sequence"  # SCD1 applied sequence when sequence_by is not written; tombstones
TOMBSTONES_DIR = "_cdc_tombstones"
# Working columns of the event algebra.
_SEQ, _DELETE, _TRUNCATE, _PRIO, _SIG = "__seq", "__is_delete", "__is_truncate", "__prio", "__sig"
_PRIO_NEW, _PRIO_CURRENT, _PRIO_DELETE = 0, 1, 2
_RESERVED = (START_AT, END_AT, SEQUENCE, _SEQ, _DELETE, _TRUNCATE, _PRIO, _SIG)


@dataclass(frozen=True)
class CdcSpec:
    """How change events map to the target (Databricks ``create_auto_cdc_flow`` options)."""

    keys: Sequence[str]
    sequence_by: str
    apply_as_deletes: str | None = None
    apply_as_truncates: str | None = None
    except_column_list: Sequence[str] = ()
    stored_as_scd_type: Literal[1, 2] = 1
    track_history_column_list: Sequence[str] | None = None
    track_history_except_column_list: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.keys, str) or not self.keys:
            raise ValueError(f"CdcSpec.keys={self.keys!r}: give a non-empty list of key columns, e.g. ['id']")
        if self.stored_as_scd_type not in (1, 2):
            raise ValueError(f"CdcSpec.stored_as_scd_type={self.stored_as_scd_type!r}; expected 1 or 2")
        if self.apply_as_truncates and self.stored_as_scd_type != 1:
            raise ValueError("CdcSpec.apply_as_truncates is supported for stored_as_scd_type=1 only")
        tracking = (self.track_history_column_list, self.track_history_except_column_list)
        if all(t is not None for t in tracking):
            raise ValueError(
                "CdcSpec: give track_history_column_list or track_history_except_column_list, not both"
            )
        if any(t is not None for t in tracking) and self.stored_as_scd_type != 2:
            raise ValueError("CdcSpec: track_history_* options need stored_as_scd_type=2")
        excepted_keys = sorted(set(self.keys) & set(self.except_column_list))
        if excepted_keys:
            raise ValueError(f"CdcSpec: key column(s) {excepted_keys} cannot be in except_column_list")

    @property
    def scd1_sequence_column(self) -> str:
        """The SCD1 target column holding the applied sequence of each key."""
        return SEQUENCE if self.sequence_by in self.except_column_list else self.sequence_by


@dataclass(frozen=True)
class CdcResult:
    """What one ``apply_changes`` did. SCD1 counts keys; SCD2 counts version rows
    (``rows_inserted = versions_opened``; ``rows_updated``: versions closed or changed in
    place; ``rows_deleted``: versions merged away by late events)."""

    target_path: str
    events: int
    rows_upserted: int  # rows_inserted + rows_updated
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    versions_opened: int
    versions_closed: int
    target_version: int | None  # Delta version after the call (unchanged if nothing changed)

    def __str__(self) -> str:
        return (
            f"{self.target_path}: {self.events} events -> {self.rows_inserted} inserted, "
            f"{self.rows_updated} updated, {self.rows_deleted} deleted, {self.versions_opened} "
            f"versions opened, {self.versions_closed} closed (version {self.target_version})"
        )


# --------------------------------------------------------------------------- helpers


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _col(name: str) -> Column:
    return F.col(_q(name))


def _flag(predicate: str | None) -> Column:
    return F.coalesce(F.expr(predicate), F.lit(False)) if predicate else F.lit(False)


def check_changes(columns: Sequence[str], spec: CdcSpec, *, target: str = "the target") -> None:
    """Raise if the spec names columns the change events do not have."""
    available = set(columns)
    named = {
        "keys": list(spec.keys),
        "sequence_by": [spec.sequence_by],
        "except_column_list": list(spec.except_column_list),
        "track_history_column_list": list(spec.track_history_column_list or ()),
        "track_history_except_column_list": list(spec.track_history_except_column_list or ()),
    }
    for option, names in named.items():
        missing = [n for n in names if n not in available]
        if missing:
            raise ValueError(
                f"apply_changes into {target}: {option} names column(s) {missing} that the change "
                f"events do not have; their columns are {list(columns)}"
            )
    reserved = sorted(set(columns) & set(_RESERVED))
    if reserved:
        raise ValueError(
            f"apply_changes into {target}: change events have reserved column(s) {reserved}; "
            "rename or drop them (e.g. read the source's change feed without the SCD columns)"
        )


def change_events(changes: DataFrame, spec: CdcSpec) -> DataFrame:
    """Written columns of ``changes`` plus ``__seq``, ``__is_delete``, ``__is_truncate``."""
    excepted = set(spec.except_column_list)
    data = [c for c in changes.columns if c not in excepted]
    truncate = _flag(spec.apply_as_truncates)
    delete = _flag(spec.apply_as_deletes) & ~truncate
    return changes.select(
        *[_col(c) for c in data],
        _col(spec.sequence_by).alias(_SEQ),
        delete.alias(_DELETE),
        truncate.alias(_TRUNCATE),
    )


def _data_columns(events: DataFrame, current: DataFrame | None) -> list[str]:
    """Target data columns: the current target's (without SCD columns), then new ones."""
    reserved = set(_RESERVED)
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
        events.where(~F.col(_TRUNCATE))
        .drop(_TRUNCATE)
        .withColumn(_PRIO, F.when(F.col(_DELETE), _PRIO_DELETE).otherwise(_PRIO_NEW))
    ]
    if current is not None:
        parts.append(
            current.withColumn(_SEQ, _col(current_seq))
            .drop(*[c for c in (START_AT, END_AT, SEQUENCE) if c in current.columns])
            .withColumns({_DELETE: F.lit(False), _PRIO: F.lit(_PRIO_CURRENT)})
        )
    if tombstones is not None:
        parts.append(
            tombstones.select(
                *[_col(k) for k in spec.keys],
                F.col(SEQUENCE).alias(_SEQ),
                F.lit(True).alias(_DELETE),
                F.lit(_PRIO_DELETE).alias(_PRIO),
            )
        )
    result = parts[0]
    for part in parts[1:]:
        result = result.unionByName(part, allowMissingColumns=True)
    return result


def _signature(columns: Sequence[str]) -> Column:
    return F.to_json(F.struct(*[_col(c) for c in columns])) if columns else F.lit("")


# --------------------------------------------------------------------------- SCD 1


def _resolve_scd1(
    events: DataFrame, current: DataFrame | None, tombstones: DataFrame | None, spec: CdcSpec
) -> tuple[DataFrame, list[str]]:
    """The winning state per key (``__is_delete`` marks deleted keys) and the data columns."""
    columns = _data_columns(events, current)
    seq_column = spec.scd1_sequence_column
    candidates = _candidates(events, current, tombstones, seq_column, spec)
    if spec.apply_as_truncates:
        latest = events.where(F.col(_TRUNCATE)).agg(F.max(_SEQ).alias("__truncate_at"))
        truncated = (
            candidates.select(*[_col(k) for k in spec.keys])
            .distinct()
            .crossJoin(latest)
            .where(F.col("__truncate_at").isNotNull())
            .select(
                *[_col(k) for k in spec.keys],
                F.col("__truncate_at").alias(_SEQ),
                F.lit(True).alias(_DELETE),
                F.lit(_PRIO_DELETE).alias(_PRIO),
            )
        )
        candidates = candidates.unionByName(truncated, allowMissingColumns=True)
    order = Window.partitionBy(*[_col(k) for k in spec.keys]).orderBy(
        F.col(_SEQ).desc(), F.col(_PRIO).desc(), F.col(_SIG).desc()
    )
    winners = (
        candidates.withColumn(_SIG, _signature(columns))
        .withColumn("__rank", F.row_number().over(order))
        .where(F.col("__rank") == 1)
        .drop("__rank", _SIG, _PRIO)
    )
    return winners, columns


def _scd1_target(winners: DataFrame, columns: Sequence[str], spec: CdcSpec) -> DataFrame:
    extra = [F.col(_SEQ).alias(SEQUENCE)] if spec.scd1_sequence_column == SEQUENCE else []
    return winners.where(~F.col(_DELETE)).select(*[_col(c) for c in columns], *extra)


def _scd1_tombstones(winners: DataFrame, spec: CdcSpec) -> DataFrame:
    return winners.where(F.col(_DELETE)).select(*[_col(k) for k in spec.keys], F.col(_SEQ).alias(SEQUENCE))


def build_scd1(
    current: DataFrame | None, changes: DataFrame, spec: CdcSpec, *, tombstones: DataFrame | None = None
) -> DataFrame:
    """The whole SCD1 target after applying ``changes`` to ``current`` (pure)."""
    check_changes(changes.columns, spec)
    winners, columns = _resolve_scd1(change_events(changes, spec), current, tombstones, spec)
    return _scd1_target(winners, columns, spec)


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
    keys = [_col(k) for k in spec.keys]
    following = F.lead(START_AT).over(Window.partitionBy(*keys).orderBy(F.col(START_AT)))
    closes = (
        current.withColumn("__next", following)
        .where(F.col(END_AT).isNotNull() & (F.col("__next").isNull() | (F.col("__next") != F.col(END_AT))))
        .select(*keys, F.col(END_AT).alias(SEQUENCE))
    )
    return current.drop(END_AT), closes


def _resolve_scd2(
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
    candidates = _candidates(events, versions, tombstones, START_AT, spec).withColumn(
        _SIG, _signature(columns)
    )
    keys = [_col(k) for k in spec.keys]
    same_event = Window.partitionBy(*keys, F.col(_SEQ)).orderBy(F.col(_PRIO).desc(), F.col(_SIG).desc())
    by_sequence = Window.partitionBy(*keys).orderBy(F.col(_SEQ))
    tracked = _signature(tracked_columns(columns, spec))
    previous_delete = F.lag(_DELETE).over(by_sequence)
    starts = ~F.col(_DELETE) & (
        previous_delete.isNull()
        | previous_delete
        | (F.lag("__tracked").over(by_sequence) != F.col("__tracked"))
    )
    replay = (
        candidates.withColumn("__rank", F.row_number().over(same_event))
        .where(F.col("__rank") == 1)
        .withColumn("__tracked", tracked)
        .withColumn("__boundary", (starts | F.col(_DELETE)).cast("int"))
        .withColumn(
            "__group",
            F.sum("__boundary").over(by_sequence.rowsBetween(Window.unboundedPreceding, Window.currentRow)),
        )
    )
    group = Window.partitionBy(*keys, F.col("__group"))
    groups = (
        replay.withColumn("__group_start", F.min(_SEQ).over(group))
        .withColumn("__last", F.row_number().over(group.orderBy(F.col(_SEQ).desc())))
        .where(F.col("__last") == 1)
    )
    by_start = Window.partitionBy(*keys).orderBy(F.col("__group_start"))
    groups = groups.withColumns(
        {
            "__next_start": F.lead("__group_start").over(by_start),
            "__previous_delete": F.lag(_DELETE).over(by_start),
        }
    )
    history = groups.where(~F.col(_DELETE)).select(
        *[_col(c) for c in columns],
        F.col("__group_start").alias(START_AT),
        F.col("__next_start").alias(END_AT),
    )
    unapplied = groups.where(
        F.col(_DELETE) & (F.col("__previous_delete").isNull() | F.col("__previous_delete"))
    ).select(*keys, F.col("__group_start").alias(SEQUENCE))
    return history, unapplied, columns


def build_scd2(
    current: DataFrame | None, changes: DataFrame, spec: CdcSpec, *, tombstones: DataFrame | None = None
) -> DataFrame:
    """The whole SCD2 history after applying ``changes`` to ``current`` (pure)."""
    check_changes(changes.columns, spec)
    history, _, _ = _resolve_scd2(change_events(changes, spec), current, tombstones, spec)
    return history


# --------------------------------------------------------------------------- writing


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
    window = Window.partitionBy(*[_col(c) for c in match])
    is_old, is_new = F.col("__old"), ~F.col("__old")
    sides = sides.withColumn(_SIG, _signature(columns)).withColumns(
        {
            "__n_old": F.sum(is_old.cast("int")).over(window),
            "__n_new": F.sum(is_new.cast("int")).over(window),
            "__old_sig": F.max(F.when(is_old, F.col(_SIG))).over(window),
            "__new_sig": F.max(F.when(is_new, F.col(_SIG))).over(window),
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
        *[_col(c) for c in columns], "__action"
    ).createOrReplaceTempView(view)
    on = " AND ".join(f"t.{_q(c)} <=> s.{_q(c)}" for c in match)
    updates = ", ".join(f"{_q(c)} = s.{_q(c)}" for c in columns if c not in match)
    names = ", ".join(_q(c) for c in columns)
    values = ", ".join(f"s.{_q(c)}" for c in columns)
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
        null_key = null_key | _col(key).isNull()
    null_key = null_key & ~F.col(_TRUNCATE)  # a truncate concerns no key
    try:
        row = events.agg(
            F.count(F.lit(1)).alias("events"),
            F.sum(null_key.cast("int")).alias("null_keys"),
            F.sum(F.col(_SEQ).isNull().cast("int")).alias("null_sequences"),
            F.sum(F.col(_DELETE).cast("int")).alias("deletes"),
            F.sum(F.col(_TRUNCATE).cast("int")).alias("truncates"),
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
        return df.join(events.select(*[_col(k) for k in keys]).distinct(), on=keys, how="left_semi")

    current_touched, tombstones_touched = touched(current), touched(tombstones)
    if spec.stored_as_scd_type == 1:
        winners, columns = _resolve_scd1(events, current_touched, tombstones_touched, spec)
        new_rows, new_tombstones = _scd1_target(winners, columns, spec), _scd1_tombstones(winners, spec)
        match, tombstone_match = keys, keys
    else:
        new_rows, new_tombstones, columns = _resolve_scd2(events, current_touched, tombstones_touched, spec)
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


# --------------------------------------------------------------------------- snapshots

SNAPSHOT_VERSION = "__snapshot_version"
SNAPSHOT_DELETE = "__snapshot_delete"


def snapshot_spec(keys: Sequence[str], stored_as_scd_type: int, **tracking: Sequence[str] | None) -> CdcSpec:
    """The ``CdcSpec`` applying :func:`snapshot_changes`: ordered by the snapshot's
    version (``__START_AT``/``__END_AT`` hold versions in SCD2), key deleted when a
    snapshot no longer has it."""
    return CdcSpec(
        keys=tuple(keys),
        sequence_by=SNAPSHOT_VERSION,
        apply_as_deletes=SNAPSHOT_DELETE,
        except_column_list=(SNAPSHOT_VERSION, SNAPSHOT_DELETE),
        stored_as_scd_type=stored_as_scd_type,  # type: ignore[arg-type]
        **tracking,
    )


def snapshot_changes(
    spark: SparkSession, *, target_path: str, snapshot: DataFrame, version: int, spec: CdcSpec
) -> DataFrame:
    """A full snapshot as change events against the target's current state: an upsert
    for each row that is new or differs, a delete for each key the snapshot lacks, all
    at sequence ``version``."""
    keys = list(spec.keys)
    missing = [k for k in keys if k not in snapshot.columns]
    if missing:
        raise ValueError(
            f"snapshot into {target_path}: keys {missing} are not columns of the snapshot {snapshot.columns}"
        )
    upserts = snapshot
    current = None
    if delta_exists(target_path):
        current = read_delta(spark, target_path)
        if END_AT in current.columns:
            current = current.where(F.col(END_AT).isNull())
        current = current.drop(*[c for c in (START_AT, END_AT, SEQUENCE) if c in current.columns])
        if set(snapshot.columns) <= set(current.columns):  # rows already there, as they are: no event
            upserts = snapshot.subtract(current.select(*[_col(c) for c in snapshot.columns]))
    events = upserts.withColumns(
        {SNAPSHOT_VERSION: F.lit(version).cast("long"), SNAPSHOT_DELETE: F.lit(False)}
    )
    if current is not None:
        gone = current.select(*[_col(k) for k in keys]).join(
            snapshot.select(*[_col(k) for k in keys]), on=keys, how="left_anti"
        )
        deletes = gone.withColumns(
            {SNAPSHOT_VERSION: F.lit(version).cast("long"), SNAPSHOT_DELETE: F.lit(True)}
        )
        events = events.unionByName(deletes, allowMissingColumns=True)
    return events
