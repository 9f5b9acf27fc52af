"""Full snapshots as change events (``create_auto_cdc_from_snapshot_flow``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from lakehouse.lake import delta_exists, read_delta
from lakehouse.pipelines.cdc.spec import END_AT, SEQUENCE, START_AT, CdcSpec, column

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

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
            upserts = snapshot.subtract(current.select(*[column(c) for c in snapshot.columns]))
    events = upserts.withColumns(
        {SNAPSHOT_VERSION: F.lit(version).cast("long"), SNAPSHOT_DELETE: F.lit(False)}
    )
    if current is not None:
        gone = current.select(*[column(k) for k in keys]).join(
            snapshot.select(*[column(k) for k in keys]), on=keys, how="left_anti"
        )
        deletes = gone.withColumns(
            {SNAPSHOT_VERSION: F.lit(version).cast("long"), SNAPSHOT_DELETE: F.lit(True)}
        )
        events = events.unionByName(deletes, allowMissingColumns=True)
    return events
