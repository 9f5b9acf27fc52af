"""Where tables live in the lake, and the few I/O helpers every layer shares.

Layout::

    landing/source=<src>/<entity>/<YYYY-MM-DD>/...        raw drops
    bronze/source=<src>/table=<entity>/year=/month=/day=  raw records + ingestion metadata
    silver/domain=<pharma|energy>/table=<name>/           cleaned, conformed
    gold/domain=<d>/model=<star|kpi|prediction>/table=<name>/
    _system/<name>/                                        event log, runs, quality, audit

The root is a local folder or ``s3://bucket/prefix``; listing goes through
``pyarrow.fs`` so both work the same way.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pyarrow.fs as pafs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

Domain = Literal["pharma", "energy"]
GoldModel = Literal["star", "kpi", "prediction"]


@dataclass(frozen=True)
class Lake:
    """Paths of one lake. ``root`` is an absolute local path or an ``s3://`` URI."""

    root: str

    def landing(self, source: str, entity: str) -> str:
        return f"{self.root}/landing/source={source}/{entity}"

    def bronze(self, source: str, table: str) -> str:
        return f"{self.root}/bronze/source={source}/table={table}"

    def silver(self, domain: Domain, table: str) -> str:
        return f"{self.root}/silver/domain={domain}/table={table}"

    def gold(self, domain: Domain, model: GoldModel, table: str) -> str:
        return f"{self.root}/gold/domain={domain}/model={model}/table={table}"

    def system(self, name: str) -> str:
        return f"{self.root}/_system/{name}"

    def relative(self, path: str) -> str:
        """Path relative to the lake root, as recorded in ``_source_file`` columns."""
        marker = "/landing/"
        index = path.find(marker)
        return path[index + 1 :] if index >= 0 else path.removeprefix(self.root).lstrip("/")


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of a local path or URI, and the path within it."""
    if scheme(uri):
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), uri.removeprefix("file://")


def scheme(uri: str) -> str:
    """'s3://' for 's3://bucket/x'; '' for local paths (pyarrow drops it from listings)."""
    if "://" in uri and not uri.startswith("file://"):
        return uri[: uri.find("://") + 3]
    return ""


def write_json(uri: str, data: Any) -> None:
    """Write a small JSON file (checkpoints, incremental state) so a reader never sees
    half of it: local temp file + rename; on object stores one PUT, which is atomic."""
    fs, target = filesystem(uri)
    payload = json.dumps(data, indent=1, sort_keys=True).encode()
    folder = target.rsplit("/", 1)[0]
    fs.create_dir(folder, recursive=True)
    if isinstance(fs, pafs.LocalFileSystem):
        temporary = f"{folder}/.{uuid.uuid4().hex}.tmp"
        with fs.open_output_stream(temporary) as out:
            out.write(payload)
        fs.move(temporary, target)
    else:
        with fs.open_output_stream(target) as out:
            out.write(payload)


def read_json(uri: str) -> Any:
    """The JSON value of a file written by :func:`write_json`; ``None`` if it is absent."""
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as stream:
        return json.loads(stream.read())


def delta_exists(path: str) -> bool:
    """True if ``path`` holds a Delta table (has a ``_delta_log`` folder)."""
    fs, base = filesystem(path)
    return fs.get_file_info(f"{base}/_delta_log").type == pafs.FileType.Directory


def read_delta(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.format("delta").load(path)


def write_delta(
    df: DataFrame,
    path: str,
    *,
    mode: Literal["overwrite", "append"] = "overwrite",
    partition_by: Sequence[str] = (),
    replace_where: str | None = None,
) -> None:
    """Write ``df`` as Delta. ``replace_where`` overwrites only the matching rows
    (used to make a re-run of one day idempotent)."""
    from lakehouse.engine.compat import strip_collations

    writer = strip_collations(df).write.format("delta").mode(mode)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if replace_where is not None:
        writer = writer.option("replaceWhere", replace_where)
    if mode == "overwrite":
        writer = writer.option("overwriteSchema", "true" if replace_where is None else "false")
    writer.save(path)
