"""One quality run: read the history, validate the suites, append the results, write
the Data Docs and the summary page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lakehouse.lake import Lake
from lakehouse.quality.model import QualityRun, SuiteRun
from lakehouse.quality.report import write_summary_html
from lakehouse.quality.results import append_results, read_results, results_path, row_count_history
from lakehouse.quality.settings import QualitySettings
from lakehouse.quality.suites import SuiteInputs, select_suites
from lakehouse.quality.validate import validate_suites

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def run_quality(
    spark: SparkSession,
    lake: Lake,
    run_date: dt.date,
    *,
    run_id: str,
    settings: QualitySettings | None = None,
    runs_dir: Path | None = None,
    suites: Sequence[str] | None = None,
    layers: Sequence[str] | None = None,
    validated_at: dt.datetime | None = None,
    on_suite: Callable[[SuiteRun], None] | None = None,
) -> QualityRun:
    """Validate the suites (all by default) for ``run_date`` and append the results to
    ``_system/<settings.results_table>``. With ``runs_dir``, the Data Docs go to
    ``<runs_dir>/<docs_dir>/<run_id>/data_docs/`` and the summary page to
    ``<runs_dir>/<docs_dir>/summary.html``. Expectation failures do not raise: the
    gate (:func:`lakehouse.quality.results.check_gate`) decides."""
    settings = settings or QualitySettings()
    path = results_path(lake, settings.results_table)
    history = row_count_history(read_results(path, columns=_HISTORY_COLUMNS), run_date)
    inputs = SuiteInputs(spark, lake, run_date, settings=settings, row_count_history=history)
    quality_dir = runs_dir / settings.docs_dir if runs_dir is not None else None
    run = validate_suites(
        select_suites(suites, layers=layers),
        inputs,
        run_id=run_id,
        validated_at=validated_at or dt.datetime.now(dt.UTC).replace(microsecond=0),
        docs_dir=quality_dir / run_id / "data_docs" if quality_dir is not None else None,
        on_suite=on_suite,
    )
    append_results(run, path)
    if quality_dir is not None:
        write_summary_html(read_results(path), quality_dir / "summary.html", docs_index=run.docs_index)
    return run


_HISTORY_COLUMNS = ("run_date", "validated_at", "suite", "expectation", "observed_value")
