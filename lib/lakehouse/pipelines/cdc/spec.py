"""What a CDC flow is (``CdcSpec``), what one call did (``CdcResult``), and change
events as rows of the event algebra (``change_events``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

START_AT = "__START_AT"
END_AT = "__END_AT"
SEQUENCE = "__sequence"  # SCD1 applied sequence when sequence_by is not written; tombstones
TOMBSTONES_DIR = "_cdc_tombstones"
# Working columns of the event algebra.
SEQ, DELETE, TRUNCATE, PRIO, SIG = "__seq", "__is_delete", "__is_truncate", "__prio", "__sig"
PRIO_NEW, PRIO_CURRENT, PRIO_DELETE = 0, 1, 2
RESERVED = (START_AT, END_AT, SEQUENCE, SEQ, DELETE, TRUNCATE, PRIO, SIG)


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


def quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def column(name: str) -> Column:
    return F.col(quoted(name))


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
    reserved = sorted(set(columns) & set(RESERVED))
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
        *[column(c) for c in data],
        column(spec.sequence_by).alias(SEQ),
        delete.alias(DELETE),
        truncate.alias(TRUNCATE),
    )
