"""Read only what was appended to a Delta table since a version (streaming input).

The new rows of an append-only table are the data files its later commits added;
if a file that was read is no longer in the table, it was rewritten and the reader
needs a full refresh. (A restore to the version read is not a rewrite.)
delta-rs lists them from the transaction log; the engine reads them as Parquet
(partition values come from the log, as Delta stores them outside the files), so
this works on every engine, including a cluster reading ``s3://``.
"""

from __future__ import annotations

from collections import defaultdict

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import maintenance
from lakehouse.lake import read_delta


class UpstreamRewritten(RuntimeError):
    """An upstream of a streaming table removed data since it was last read."""


def _added_files(path: str, version: int) -> dict[str, dict[str, str | None]]:
    """Data files of ``version`` -> their partition values."""
    table = maintenance.open_table(path)
    table.load_as_version(version)
    import pyarrow as pa

    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    return {
        a["path"]: {k.removeprefix("partition."): v for k, v in a.items() if k.startswith("partition.")}
        for a in actions
    }


def read_appended(
    spark: SparkSession, path: str, *, since_version: int | None
) -> tuple[DataFrame | None, int]:
    """Rows added after ``since_version`` (all rows when None) and the version read up to.

    Returns ``(None, version)`` when nothing is new.
    """
    current = maintenance.version(path)
    if since_version is None:
        return read_delta(spark, path).where(F.lit(True)), current
    if since_version >= current:
        return None, current
    before = _added_files(path, since_version)
    now = _added_files(path, current)
    removed = sorted(set(before) - set(now))
    if removed:  # data that was read is gone: overwritten, deleted or compacted
        raise UpstreamRewritten(
            f"{path} no longer holds {len(removed)} data file(s) of version {since_version}, which "
            f"was read last (e.g. {removed[0]}): it was rewritten since; run the reading table "
            "with a full refresh"
        )
    new = {file: parts for file, parts in now.items() if file not in before}
    if not new:
        return None, current
    schema = read_delta(spark, path).schema
    by_partition: dict[tuple, list[str]] = defaultdict(list)
    for file, parts in new.items():
        by_partition[tuple(sorted(parts.items()))].append(file)
    frames = []
    data_columns = [f for f in schema.fields]
    for parts, files in sorted(by_partition.items()):
        values = dict(parts)
        frame = spark.read.parquet(*[_absolute(path, f) for f in files])
        if values:
            frame = frame.withColumns({k: F.lit(v) for k, v in values.items()})
        frames.append(frame.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in data_columns]))
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result, current


def _absolute(table_path: str, file: str) -> str:
    if "://" in file or file.startswith("/"):
        return file
    from urllib.parse import unquote

    return f"{table_path.rstrip('/')}/{unquote(file)}"
