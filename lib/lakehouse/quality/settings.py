"""``quality:`` of lakehouse.yaml: where quality results go and the thresholds of the
history-based and freshness expectations (lakehouse.quality)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class QualitySettings(BaseModel):
    """Defaults work on a laptop: results in ``<lake>/_system/quality_results``, Data Docs
    and the summary page under ``<runs_dir>/quality/``."""

    results_table: str = "quality_results"  # under <lake_root>/_system/
    docs_dir: Path = Path("quality")  # relative to runs_dir: <run_id>/data_docs/, summary.html
    sample_size: int = Field(5, ge=0)  # unexpected values kept per failed expectation
    volume_history_runs: int = Field(7, ge=1)  # previous run dates the row-count band is built from
    volume_min_history: int = Field(3, ge=1)  # fewer previous runs: only "not empty" is checked
    volume_min_ratio: float = Field(0.5, gt=0, le=1)  # band = [min_ratio, max_ratio] x median
    volume_max_ratio: float = Field(2.0, ge=1)
    freshness_hours: dict[str, float] = {}  # table -> max age of its latest key; overrides the suite's
    require_run: bool = True  # the gate fails when no quality run exists for the run date
