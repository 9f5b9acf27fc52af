"""What a pipeline run keeps and gives back: the state/roll-back keeper of the runner.

- Before a target is first written in a run, its version is remembered; if the run
  fails, every target is put back to that version (tables the run created are
  removed, folders set aside for a full refresh are moved back).
- What a flow has read (input offsets of streaming tables, the fingerprints of a
  materialized view's last refresh, an incremental view's per-partition state) is
  committed only once the whole run succeeded, so a failed run leaves it as it was
  and the next run retries the same input.

Nothing here runs a query: it is files (JSON under ``_system/``) and Delta versions.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame

from lakehouse import maintenance
from lakehouse.lake import delta_exists, filesystem, write_json
from lakehouse.pipelines.event_log import FlowEvent
from lakehouse.pipelines.graph import Dataset, FlowKind

_log = logging.getLogger(__name__)
STALE_STAGING = dt.timedelta(days=1)


@dataclass
class RunState:
    """One run's working state: computed views, what to undo and what to commit."""

    ingested_at: dt.datetime
    staging: str = ""  # this run's folder of computed rows (``writer.staged``)
    views: dict[str, DataFrame] = field(default_factory=dict)
    versions_before: dict[str, int | None] = field(default_factory=dict)
    # Committed when the run succeeds: streaming offsets as (checkpoint, versions) ...
    offset_commits: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    # ... and everything else (refresh records, file batches, incremental state).
    checkpoint_commits: list[Callable[[], None]] = field(default_factory=list)
    pending_checkpoints: list[str] = field(default_factory=list)
    set_aside: list[tuple[str, str]] = field(default_factory=list)  # (path, moved-to) for full refresh


def delta_version(path: str) -> int | None:
    return maintenance.version(path) if delta_exists(path) else None


def remember_version(state: RunState, path: str) -> None:
    """The version of ``path`` before this run first writes it (None: no table yet)."""
    if path not in state.versions_before:
        state.versions_before[path] = delta_version(path)


def set_aside(state: RunState, uri: str) -> None:
    """Move a checkpoint or table out of the way for a full refresh: put back if
    the run fails, deleted once it succeeds."""
    from pyarrow.fs import FileType

    fs, path = filesystem(uri)
    if fs.get_file_info(path).type != FileType.Directory:
        return
    aside = f"{uri}.before-{uuid.uuid4().hex[:8]}"
    fs.move(path, filesystem(aside)[1])
    state.set_aside.append((uri, aside))
    state.checkpoint_commits.append(lambda: remove(aside))


def roll_back(state: RunState, events: Sequence[FlowEvent]) -> None:
    """Put every target written by this run back to its version before the run."""
    restored = set()
    for uri, aside in reversed(state.set_aside):
        try:
            remove(uri)
            fs, path = filesystem(aside)
            fs.move(path, filesystem(uri)[1])
            restored.add(uri)
        except Exception as exc:  # noqa: BLE001 - keep rolling back the others
            _log.error("could not put %s back from %s: %s", uri, aside, exc)
    for path, version in state.versions_before.items():
        if path in restored:
            continue
        try:
            if version is None:
                remove(path)
            elif delta_exists(path) and maintenance.version(path) != version:
                maintenance.open_table(path).restore(version)
        except Exception as exc:  # noqa: BLE001 - keep rolling back the others
            _log.error("could not roll back %s to version %s: %s", path, version, exc)
    for checkpoint in state.pending_checkpoints:
        save_offsets(checkpoint, pending=None)
    for event in events:
        if event.status == "COMPLETED" and event.flow_type != FlowKind.VIEW.value:
            event.status = "ROLLED_BACK"


# ------------------------------------------------------ streaming offsets
def offsets_file(checkpoint: str) -> str:
    return f"{checkpoint}/delta_offsets.json"


def load_offsets(checkpoint: str, target_version: int | None) -> dict[str, int]:
    """Committed upstream versions; a pending entry from a crashed run counts as
    committed if the target moved past the version it had before that write."""
    fs, path = filesystem(offsets_file(checkpoint))
    try:
        with fs.open_input_stream(path) as stream:
            state = json.loads(stream.read())
    except FileNotFoundError:
        return {}
    pending = state.get("pending")
    if pending:
        before = pending.get("target_version_before")
        landed = target_version is not None and (before is None or target_version > before)
        if landed:
            state["committed"] = {**state.get("committed", {}), **pending["offsets"]}
        state["pending"] = None
        write_json(offsets_file(checkpoint), state)
    return state.get("committed", {})


def save_offsets(checkpoint: str, *, committed: dict[str, int] | None = None, pending: Any = "keep") -> None:
    fs, path = filesystem(offsets_file(checkpoint))
    try:
        with fs.open_input_stream(path) as stream:
            state = json.loads(stream.read())
    except FileNotFoundError:
        state = {"committed": {}, "pending": None}
    if committed is not None:
        state["committed"] = {**state.get("committed", {}), **committed}
        state["pending"] = None
    if pending != "keep":
        state["pending"] = pending
    write_json(offsets_file(checkpoint), state)


def table_definition(dataset: Dataset) -> dict[str, Any]:
    """What decides a view's table besides its query: its expectations and storage."""
    return {
        "expectations": [[e.name, e.predicate, e.action.value] for e in dataset.expectations],
        "quarantine": dataset.quarantine,
        "partition_cols": list(dataset.partition_cols),
        "table_properties": dict(sorted(dataset.table_properties.items())),
        "schema": dataset.schema,
    }


# ---------------------------------------------------------------- staging
def remove_stale_staging(root: str) -> None:
    """Remove staging folders a crashed run left (older than ``STALE_STAGING``; the
    rows of a run still going, maybe another pipeline's, are younger)."""
    from pyarrow.fs import FileSelector, FileType

    fs, path = filesystem(root)
    if fs.get_file_info(path).type != FileType.Directory:
        return
    limit = dt.datetime.now(dt.UTC) - STALE_STAGING
    for info in fs.get_file_info(FileSelector(path)):
        mtime = info.mtime if info.mtime is None or info.mtime.tzinfo else info.mtime.replace(tzinfo=dt.UTC)
        if info.type == FileType.Directory and mtime is not None and mtime < limit:
            remove(f"{root}/{info.base_name}")


def remove(uri: str) -> None:
    from pyarrow.fs import FileType

    fs, path = filesystem(uri)
    if fs.get_file_info(path).type == FileType.Directory:
        if "://" in uri:
            fs.delete_dir(path)
        else:
            shutil.rmtree(path)
