"""A batch of new files: ``read_new_files`` finds, records and reads it; the caller
writes its rows, then ``commit_batch`` records that the target holds them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakehouse.lake import write_json
from lakehouse.pipelines.autoloader.checkpoint import (
    BatchOffsets,
    CheckpointError,
    checked_absent,
    load_checkpoint,
    mark_committed,
)
from lakehouse.pipelines.autoloader.frames import batch_frame, empty_frame
from lakehouse.pipelines.autoloader.listing import list_source_files
from lakehouse.pipelines.autoloader.options import FileSource, Schema, text_format
from lakehouse.pipelines.autoloader.schema import batch_schema, explicit_schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class IncrementalBatch:
    """One batch of new files. Write ``df``, then ``commit_batch(checkpoint, batch)``."""

    batch_id: int
    files: list[str]  # read by this batch, sorted
    df: DataFrame
    schema_changes: list[str] = field(default_factory=list)  # columns added to the schema
    rewritten_files: list[str] = field(default_factory=list)  # seen before with another size/mtime
    replayed: bool = False  # a pending batch of a crashed run, read again
    schema: Schema = field(default_factory=list)  # data columns (without metadata)

    @property
    def is_empty(self) -> bool:
        return not self.files


def read_new_files(
    spark: SparkSession,
    source: FileSource,
    *,
    checkpoint: str,
    target_has_batch: Callable[[int], bool] | None = None,
    max_files: int | None = None,
    ingested_at: dt.datetime | None = None,
) -> IncrementalBatch:
    """The next batch of files under ``source.path`` not read by a committed batch.

    A pending batch (a crash between ``read_new_files`` and ``commit_batch``) is resolved
    first with ``target_has_batch`` (see ``delta_has_batch``; not needed right after
    ``recover``, which asked already): committed if the target has it, else returned
    again (``replayed=True``); with neither, a pending batch raises ``CheckpointError``. ``max_files`` caps the
    files of one batch (oldest modification time first). ``ingested_at`` (default: now,
    UTC) stamps ``_ingested_at``. With no new file the batch is empty (``is_empty``),
    nothing is recorded and ``commit_batch`` is a no-op.
    """
    if max_files is not None and max_files < 1:
        raise ValueError(f"read_new_files {source.path!r}: max_files={max_files}; expected >= 1 or None")
    fmt = text_format(source)
    state = load_checkpoint(checkpoint, source)
    pending = state.pending
    if pending is not None and target_has_batch is None and checked_absent(checkpoint, pending.batch_id):
        target_has_batch = _absent
    if pending is not None:
        if target_has_batch is None:
            raise CheckpointError(
                f"checkpoint {checkpoint}: batch {pending.batch_id} of {source.path} was recorded but "
                "never committed (a run stopped between reading and commit_batch). Pass "
                "target_has_batch= (e.g. delta_has_batch(spark, target)), or call recover() "
                "first, so it is resolved without duplicates or loss"
            )
        if target_has_batch(pending.batch_id):
            mark_committed(checkpoint, pending.batch_id)
        else:
            current = {f.path: f for f in list_source_files(source)}
            unchanged = [f for f in pending.files if current.get(f.path) == f]
            if unchanged:
                return IncrementalBatch(
                    batch_id=pending.batch_id,
                    files=sorted(f.path for f in unchanged),
                    df=batch_frame(
                        spark, source, fmt, unchanged, pending.schema, pending.batch_id, pending.ingested_at
                    ),
                    schema_changes=pending.schema_changes,
                    replayed=True,
                    schema=pending.schema,
                )
            mark_committed(checkpoint, pending.batch_id)  # nothing left to replay
        state = load_checkpoint(checkpoint, source)

    seen = state.seen()
    allow_overwrites = (source.option("allowOverwrites", "false") or "").lower() == "true"
    new = [
        f
        for f in list_source_files(source)
        if f.path not in seen or (allow_overwrites and seen[f.path] != (f.size, f.mtime_ns))
    ]
    new.sort(key=lambda f: (f.mtime_ns, f.path))
    new = sorted(new[:max_files] if max_files else new, key=lambda f: f.path)
    batch_id = state.next_batch_id
    stamp = _utc(ingested_at or dt.datetime.now(dt.UTC))
    if not new:
        schema = state.schema or explicit_schema(spark, source)
        return IncrementalBatch(batch_id, [], empty_frame(spark, source, schema), schema=schema)

    schema, changes = batch_schema(spark, source, fmt, state.schema, new)
    offsets = BatchOffsets(batch_id, new, schema, changes, stamp)
    if not state.offsets:
        write_json(f"{checkpoint}/metadata.json", {"path": source.path, "format": source.format})
    write_json(f"{checkpoint}/offsets/{batch_id}.json", offsets.to_json())
    return IncrementalBatch(
        batch_id=batch_id,
        files=[f.path for f in new],
        df=batch_frame(spark, source, fmt, new, schema, batch_id, stamp),
        schema_changes=changes,
        rewritten_files=[f.path for f in new if f.path in seen],
        schema=schema,
    )


def _absent(batch_id: int) -> bool:
    return False


def commit_batch(checkpoint: str, batch: IncrementalBatch) -> None:
    """Record that ``batch`` is in the target. Idempotent; a no-op for an empty batch."""
    if batch.is_empty:
        return
    state = load_checkpoint(checkpoint)
    if batch.batch_id not in state.offsets:
        raise CheckpointError(
            f"checkpoint {checkpoint} has no offsets for batch {batch.batch_id}; commit a batch "
            "returned by read_new_files with this same checkpoint"
        )
    mark_committed(checkpoint, batch.batch_id)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
