"""The one write path of every flow that writes rows: stage, expectations, quarantine,
one Delta commit per table.

The rows a flow computes (with their expectation flags) are written once into a
Parquet file of the run (``_system/staging/<run_id>/<dataset>``) and read back, so
the counts, the kept rows and the quarantine do not compute the definition three
times (the engine has no cache). Before a table is written its version is
remembered (``state.remember_version``), so a failed run puts it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame

from lakehouse import maintenance
from lakehouse.lake import delta_exists
from lakehouse.pipelines import expectations as ex
from lakehouse.pipelines.event_log import FlowEvent
from lakehouse.pipelines.graph import Dataset
from lakehouse.pipelines.planner import CHECK_PREFIX
from lakehouse.pipelines.state import RunState, delta_version, remember_version

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

    from lakehouse.pipelines.runner import PipelineRunner


@dataclass(frozen=True)
class Written:
    """What :func:`write` computed: the flagged rows' content digest (with
    ``unless_digest``), the rows kept for the target (staged, readable until the
    run ends; None when nothing was written) and, with ``fingerprint_by``, the kept
    rows' fingerprints per partition."""

    digest: str | None
    kept: DataFrame | None
    fingerprints: dict[str, str] | None = None


def write(
    runner: PipelineRunner,
    dataset: Dataset,
    frame: DataFrame,
    event: FlowEvent,
    state: RunState,
    *,
    mode: str,
    merge_schema: bool = False,
    unless_digest: str | None = None,
    replace_where: str | None = None,
    fingerprint_by: Column | None = None,
    schema: StructType | None = None,
    nothing_to_replace: bool = False,
    skip_empty_append: bool = False,
) -> Written:
    """Evaluate expectations, then write kept rows (and quarantined ones) in one
    commit each. With ``unless_digest``, write nothing if the flagged rows' content
    digest equals it (a view whose result is unchanged). With ``replace_where`` (a
    SQL predicate), replace only the rows it selects, in the target and quarantine.
    With ``fingerprint_by`` (a partition column), the kept rows' fingerprints per
    partition come with the counts (an incremental view's state). ``schema``: the
    flagged rows' schema when known, else analysed. ``nothing_to_replace``: the target
    holds no row ``replace_where`` selects, so the kept rows are appended (the
    quarantine is still replaced: rows dropped by an earlier run may be there).
    ``skip_empty_append``: appending no row to an existing table commits nothing (a
    new version would make every reader of the table recompute)."""
    flagged, columns = staged(runner, ex.flag(frame, dataset.expectations), dataset, state, schema)
    check_columns = [c for c in columns if c.startswith(CHECK_PREFIX)]
    kept_columns = [c for c in columns if c != ex.FAILED_RULES and c not in check_columns]
    counts = ex.tally(
        flagged,
        dataset.expectations,
        digest=unless_digest is not None,
        partition=fingerprint_by,
        kept_columns=kept_columns,
    )
    event.rows_read, event.expectations = counts.total, counts.results
    ex.raise_on_fail(dataset.name, flagged, dataset.expectations, counts.results)
    path = runner.path(dataset.name)
    if counts.digest is not None and counts.digest == unless_digest:
        event.status, event.rows_written = "SKIPPED", 0
        event.target_version = delta_version(path)
        event.details = "result unchanged since the last refresh: nothing written"
        return Written(counts.digest, None)
    if skip_empty_append and mode == "append" and counts.total == 0 and delta_exists(path):
        event.status, event.rows_written = "COMPLETED", 0
        event.target_version = delta_version(path)
        return Written(None, None)
    kept, dropped = ex.split(flagged, dataset.expectations)
    if check_columns:
        kept = kept.drop(*check_columns)
    dropped_count = counts.dropped
    remember_version(state, path)
    if replace_where is not None and nothing_to_replace:
        save(kept, path, dataset, mode="append", merge_schema=False)
    else:
        save(kept, path, dataset, mode=mode, merge_schema=merge_schema, replace_where=replace_where)
    quarantine = runner.quarantine_path(dataset.name)
    if dataset.quarantine and (dropped_count or mode == "overwrite"):
        remember_version(state, quarantine)
        where = replace_where if delta_exists(quarantine) else None
        save(dropped, quarantine, dataset, mode=mode, merge_schema=True, replace_where=where)
    event.rows_dropped = dropped_count
    event.rows_quarantined = dropped_count if dataset.quarantine else 0
    event.rows_written = counts.total - dropped_count
    event.target_version = maintenance.version(path)
    event.status = "COMPLETED"
    return Written(counts.digest, kept, counts.fingerprints)


def staged(
    runner: PipelineRunner,
    flagged: DataFrame,
    dataset: Dataset,
    state: RunState,
    schema: StructType | None = None,
) -> tuple[DataFrame, list[str]]:
    """The flagged rows computed once into a Parquet file of this run and read back
    (with their column names): the counts, the kept rows and the quarantine then
    read that file instead of computing the definition three times. Removed at the
    end of the run."""
    uri = f"{state.staging}/{dataset.name}"
    # snappy: the file lives for one run; Sail's default (zstd) took twice the time to write
    flagged.write.mode("overwrite").option("compression", "snappy").parquet(uri)
    schema = schema or flagged.schema
    return runner.spark.read.schema(schema).parquet(uri), schema.names


def save(
    frame: DataFrame,
    path: str,
    dataset: Dataset,
    *,
    mode: str,
    merge_schema: bool,
    replace_where: str | None = None,
) -> None:
    writer = frame.write.format("delta").mode(mode)
    if dataset.partition_cols:
        writer = writer.partitionBy(*dataset.partition_cols)
    for key, value in dataset.table_properties.items():
        writer = writer.option(key, value)
    if replace_where is not None:  # the schema stays: only some rows are replaced
        writer = writer.option("replaceWhere", replace_where)
    elif mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    elif merge_schema:
        writer = writer.option("mergeSchema", "true")
    writer.save(path)
