"""Delta table maintenance (history, vacuum, version, row count) over delta-rs.

Sail does not run ``DESCRIBE HISTORY``, ``VACUUM`` or ``OPTIMIZE``, and the
``delta.tables.DeltaTable`` API needs a JVM, so maintenance goes through this one
adapter on every engine. delta-rs reads and writes the same tables Sail writes.
"""

from __future__ import annotations

import os
from typing import Any

from deltalake import DeltaTable


def storage_options(path: str) -> dict[str, str] | None:
    """S3 endpoint settings for delta-rs, from the same variables Sail uses."""
    if not path.startswith("s3://"):
        return None
    options = {
        key.lower(): os.environ[key]
        for key in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        if key in os.environ
    }
    if os.environ.get("AWS_ENDPOINT"):
        options["aws_endpoint_url"] = os.environ["AWS_ENDPOINT"]
    if os.environ.get("AWS_ALLOW_HTTP"):
        options["aws_allow_http"] = os.environ["AWS_ALLOW_HTTP"]
    return options


def open_table(path: str) -> DeltaTable:
    return DeltaTable(path, storage_options=storage_options(path))


def history(path: str, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Commits of the table, newest first (version, timestamp, operation, metrics)."""
    return open_table(path).history(limit)


def version(path: str) -> int:
    """The table's current version: its latest commit file in ``_delta_log`` (one
    listing; opening the table replays its log and lists its data files, 5-10 ms
    each of the ~170 times a daily run asks)."""
    from pyarrow import fs as pafs

    from lakehouse.lake import filesystem

    filesystem_, base = filesystem(path)
    try:
        listed = filesystem_.get_file_info(pafs.FileSelector(f"{base}/_delta_log"))
    except OSError:  # no log folder (a missing table): delta-rs says why below
        listed = []
    commits = [int(stem) for info in listed if (stem := info.base_name.removesuffix(".json")).isdigit()]
    return max(commits) if commits else open_table(path).version()


def row_count(path: str) -> int:
    """Rows in the current version (from Parquet footers: no data is read)."""
    return open_table(path).to_pyarrow_dataset().count_rows()


def vacuum(path: str, *, retention_hours: int = 168, dry_run: bool = True) -> list[str]:
    """Files no longer referenced and older than the retention; deleted unless dry_run."""
    return open_table(path).vacuum(
        retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=False
    )
