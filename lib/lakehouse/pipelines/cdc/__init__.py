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

from lakehouse.pipelines.cdc.apply import apply_changes
from lakehouse.pipelines.cdc.scd import build_scd1, build_scd2, tracked_columns
from lakehouse.pipelines.cdc.snapshots import (
    SNAPSHOT_DELETE,
    SNAPSHOT_VERSION,
    snapshot_changes,
    snapshot_spec,
)
from lakehouse.pipelines.cdc.spec import (
    END_AT,
    SEQUENCE,
    START_AT,
    TOMBSTONES_DIR,
    CdcResult,
    CdcSpec,
    change_events,
    check_changes,
)

__all__ = [
    "END_AT",
    "SEQUENCE",
    "SNAPSHOT_DELETE",
    "SNAPSHOT_VERSION",
    "START_AT",
    "TOMBSTONES_DIR",
    "CdcResult",
    "CdcSpec",
    "apply_changes",
    "build_scd1",
    "build_scd2",
    "change_events",
    "check_changes",
    "snapshot_changes",
    "snapshot_spec",
    "tracked_columns",
]
