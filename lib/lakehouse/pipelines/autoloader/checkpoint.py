"""The checkpoint of a file source: which files each batch read, with which schema,
and which batches are in the target (see the package's docstring for the protocol)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow.fs as pafs
from pyspark.sql import functions as F

from lakehouse.lake import delta_exists, filesystem, read_delta, write_json
from lakehouse.pipelines.autoloader.listing import SourceFile
from lakehouse.pipelines.autoloader.options import BATCH_ID, FileSource, Schema

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class CheckpointError(RuntimeError):
    """The checkpoint is inconsistent, belongs to another source, or needs a decision."""


@dataclass(frozen=True)
class BatchOffsets:
    """What ``offsets/<N>.json`` records about batch N."""

    batch_id: int
    files: list[SourceFile]
    schema: Schema
    schema_changes: list[str]
    ingested_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "ingested_at": self.ingested_at.isoformat(),
            "schema": [list(column) for column in self.schema],
            "schema_changes": self.schema_changes,
            "files": [f.to_json() for f in self.files],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchOffsets:
        return cls(
            batch_id=int(data["batch_id"]),
            files=[SourceFile.from_json(f) for f in data["files"]],
            schema=[(str(n), str(t)) for n, t in data["schema"]],
            schema_changes=list(data.get("schema_changes", [])),
            ingested_at=dt.datetime.fromisoformat(data["ingested_at"]),
        )


@dataclass(frozen=True)
class CheckpointState:
    offsets: dict[int, BatchOffsets]
    committed: set[int]

    @property
    def pending(self) -> BatchOffsets | None:
        uncommitted = sorted(set(self.offsets) - self.committed)
        return self.offsets[uncommitted[-1]] if uncommitted else None

    @property
    def next_batch_id(self) -> int:
        return max(self.offsets, default=-1) + 1

    @property
    def schema(self) -> Schema:
        return self.offsets[max(self.offsets)].schema if self.offsets else []

    def seen(self) -> dict[str, tuple[int, int]]:
        """Path -> (size, mtime_ns) as last read."""
        seen: dict[str, tuple[int, int]] = {}
        for batch_id in sorted(self.offsets):
            for f in self.offsets[batch_id].files:
                seen[f.path] = (f.size, f.mtime_ns)
        return seen


def _read_json(fs: pafs.FileSystem, path: str) -> dict[str, Any]:
    with fs.open_input_stream(path) as stream:
        return json.loads(stream.read())


def _json_files(fs: pafs.FileSystem, folder: str) -> dict[int, str]:
    if fs.get_file_info(folder).type != pafs.FileType.Directory:
        return {}
    found = {}
    for info in fs.get_file_info(pafs.FileSelector(folder)):
        stem = info.base_name.removesuffix(".json")
        if info.type == pafs.FileType.File and info.base_name.endswith(".json") and stem.isdigit():
            found[int(stem)] = info.path
    return found


def load_checkpoint(checkpoint: str, source: FileSource | None = None) -> CheckpointState:
    """Read the checkpoint; with ``source``, check it belongs to that source."""
    fs, base = filesystem(checkpoint)
    metadata_path = f"{base}/metadata.json"
    if source is not None and fs.get_file_info(metadata_path).type == pafs.FileType.File:
        metadata = _read_json(fs, metadata_path)
        if (metadata.get("path"), metadata.get("format")) != (source.path, source.format):
            raise CheckpointError(
                f"checkpoint {checkpoint} belongs to source {metadata.get('path')!r} "
                f"(format {metadata.get('format')!r}), not {source.path!r} ({source.format!r}); "
                "give each source its own checkpoint, or delete the checkpoint (and the target) "
                "to re-ingest everything"
            )
    offsets = {
        batch_id: BatchOffsets.from_json(_read_json(fs, path))
        for batch_id, path in _json_files(fs, f"{base}/offsets").items()
    }
    committed = set(_json_files(fs, f"{base}/commits"))
    if committed - set(offsets):
        raise CheckpointError(
            f"checkpoint {checkpoint} has commits for batches {sorted(committed - set(offsets))} "
            "without offsets; it was edited by hand or copied partially. Restore it or start a "
            "new checkpoint (and rebuild the target)"
        )
    state = CheckpointState(offsets, committed)
    uncommitted = sorted(set(offsets) - committed)
    if len(uncommitted) > 1 or (uncommitted and uncommitted[0] != max(offsets)):
        raise CheckpointError(
            f"checkpoint {checkpoint} has uncommitted batches {uncommitted}; only the last batch "
            "can be pending. Was it shared by two concurrent runs? Restore it or start a new one"
        )
    return state


def mark_committed(checkpoint: str, batch_id: int) -> None:
    fs, base = filesystem(checkpoint)
    path = f"{base}/commits/{batch_id}.json"
    if fs.get_file_info(path).type == pafs.FileType.File:
        return  # idempotent
    write_json(
        f"{checkpoint}/commits/{batch_id}.json",
        {"batch_id": batch_id, "committed_at": dt.datetime.now(dt.UTC).isoformat()},
    )


# (checkpoint, batch id) of pending batches ``recover`` found absent from the target in
# this process: the next ``read_new_files`` may replay each once without a callback.
_CHECKED_ABSENT: set[tuple[str, int]] = set()


def recover(checkpoint: str, *, target_has_batch: Callable[[int], bool]) -> BatchOffsets | None:
    """Resolve a pending batch left by a crash.

    If the target already holds it (``target_has_batch(N)``) it is marked committed and
    ``None`` is returned. Otherwise its offsets are returned, and the next
    ``read_new_files`` call on this checkpoint (in this process) reads it again, even
    without a ``target_has_batch`` argument.
    """
    pending = load_checkpoint(checkpoint).pending
    if pending is None:
        return None
    if target_has_batch(pending.batch_id):
        mark_committed(checkpoint, pending.batch_id)
        return None
    _CHECKED_ABSENT.add((checkpoint, pending.batch_id))
    return pending


def checked_absent(checkpoint: str, batch_id: int) -> bool:
    """Whether ``recover`` found this pending batch absent from the target (answered
    once: the replay that follows consumes it)."""
    key = (checkpoint, batch_id)
    if key not in _CHECKED_ABSENT:
        return False
    _CHECKED_ABSENT.discard(key)
    return True


def delta_has_batch(spark: SparkSession, target_path: str) -> Callable[[int], bool]:
    """A ``target_has_batch`` callback for a Delta target carrying ``_batch_id``."""

    def has_batch(batch_id: int) -> bool:
        if not delta_exists(target_path):
            return False
        rows = read_delta(spark, target_path).where(F.col(BATCH_ID) == batch_id).limit(1)
        return rows.count() > 0

    return has_batch
