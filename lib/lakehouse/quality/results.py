"""The quality results table ``<lake_root>/_system/quality_results``: one row per run x
suite x expectation, appended with delta-rs (no engine needed), read back for the
volume history, the gate and the summary.

Columns: run_id, run_date, validated_at, suite, layer, table_name, expectation (the
check's stable name), expectation_type (GX), column_name, severity, success,
observed_value (JSON), unexpected_count, unexpected_percent, sample (JSON list of
unexpected values), exception.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence

import pandas as pd
import pyarrow as pa

from lakehouse.lake import Lake, delta_exists
from lakehouse.quality.model import ROW_COUNT_CHECK, QualityRun

SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("run_date", pa.date32()),
        ("validated_at", pa.timestamp("us", tz="UTC")),
        ("suite", pa.string()),
        ("layer", pa.string()),
        ("table_name", pa.string()),
        ("expectation", pa.string()),
        ("expectation_type", pa.string()),
        ("column_name", pa.string()),
        ("severity", pa.string()),
        ("success", pa.bool_()),
        ("observed_value", pa.string()),
        ("unexpected_count", pa.int64()),
        ("unexpected_percent", pa.float64()),
        ("sample", pa.string()),
        ("exception", pa.string()),
        ("seconds", pa.float64()),
    ]
)


class QualityGateError(RuntimeError):
    """Critical expectations failed (or no quality run exists) for a run date."""


def results_path(lake: Lake, table: str = "quality_results") -> str:
    return lake.system(table)


def to_arrow(run: QualityRun) -> pa.Table:
    records = []
    for suite_run in run.suites:
        for result in suite_run.results:
            record = dataclasses.asdict(result)
            record["column_name"] = record.pop("column")
            records.append(
                {
                    **record,
                    "run_id": run.run_id,
                    "run_date": run.run_date,
                    "validated_at": run.validated_at,
                    "seconds": suite_run.seconds,
                }
            )
    return pa.Table.from_pylist(records, schema=SCHEMA)


def append_results(run: QualityRun, path: str) -> int:
    """Append the run's rows in one commit; return how many."""
    from deltalake import write_deltalake

    from lakehouse.maintenance import storage_options

    table = to_arrow(run)
    write_deltalake(path, table, mode="append", schema_mode="merge", storage_options=storage_options(path))
    return table.num_rows


def read_results(path: str, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """All results (empty frame with the schema's columns if the table does not exist)."""
    if not delta_exists(path):
        return SCHEMA.empty_table().to_pandas()
    from lakehouse.maintenance import open_table

    return open_table(path).to_pandas(columns=list(columns) if columns else None)


def latest_run_per_date(results: pd.DataFrame) -> pd.DataFrame:
    """Only the rows of the latest run (by ``validated_at``) of each run date."""
    if results.empty:
        return results
    latest = results.groupby("run_date")["validated_at"].transform("max")
    return results[results["validated_at"] == latest]


def row_count_history(results: pd.DataFrame, run_date: dt.date) -> dict[str, list[int]]:
    """Per suite, the row counts observed by the latest run of each earlier run date,
    newest first (the volume band's history)."""
    rows = latest_run_per_date(results[pd.to_datetime(results["run_date"]).dt.date < run_date])
    rows = rows[(rows["expectation"] == ROW_COUNT_CHECK) & rows["observed_value"].notna()]
    history: dict[str, list[int]] = {}
    for suite, group in rows.sort_values("run_date", ascending=False).groupby("suite", sort=False):
        history[str(suite)] = [int(json.loads(v)) for v in group["observed_value"]]
    return history


def failed_expectations(
    results: pd.DataFrame, run_date: dt.date, *, severities: Sequence[str] = ("critical",)
) -> pd.DataFrame:
    """Failed expectations of the given severities in the latest run of ``run_date``."""
    rows = results[pd.to_datetime(results["run_date"]).dt.date == run_date]
    rows = latest_run_per_date(rows)
    return rows[(~rows["success"].astype(bool)) & rows["severity"].isin(list(severities))]


def check_gate(
    path: str, run_date: dt.date, *, fail_on: str = "critical", require_run: bool = True
) -> pd.DataFrame:
    """Raise :class:`QualityGateError` naming each failed expectation (``suite:
    expectation``, unexpected count, sample) when the latest quality run of
    ``run_date`` failed one of severity ``fail_on`` (``critical``, or ``warning`` for
    any failure), or when there is no run and ``require_run``. Returns the latest
    run's rows otherwise."""
    severities = {"critical": ("critical",), "warning": ("critical", "warning")}.get(fail_on)
    if severities is None:
        raise ValueError(f"fail_on must be 'critical' or 'warning', not {fail_on!r}")
    results = read_results(path)
    of_date = latest_run_per_date(results[pd.to_datetime(results["run_date"]).dt.date == run_date])
    if of_date.empty:
        if require_run:
            raise QualityGateError(
                f"no quality run for {run_date} in {path}: run the pipeline_qualite job for this date first"
            )
        return of_date
    failed = failed_expectations(of_date, run_date, severities=severities)
    if not failed.empty:
        lines = [describe_failure(row) for row in failed.to_dict("records")]
        raise QualityGateError(
            f"quality run {of_date['run_id'].iloc[0]} of {run_date}: {len(lines)} failed "
            f"{'/'.join(severities)} expectation(s):\n" + "\n".join(lines)
        )
    return of_date


def describe_failure(row: Mapping[str, object]) -> str:
    """One indented line for a failed expectation: severity, suite, what failed and why."""
    text = f"  [{row['severity']}] {row['suite']}: {row['expectation']}"
    if row.get("unexpected_count") is not None and not pd.isna(row["unexpected_count"]):
        text += f" ({int(row['unexpected_count'])} unexpected"  # type: ignore[arg-type]
        text += f", e.g. {row['sample']})" if row.get("sample") else ")"
    elif row.get("observed_value"):
        text += f" (observed {row['observed_value']})"
    if row.get("exception"):
        text += f" error: {row['exception']}"
    return text
