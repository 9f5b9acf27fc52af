"""The records of a quality run (no Great Expectations import: the gate and the summary
read results without it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

ROW_COUNT_CHECK = "row_count_within_band"  # the check whose observed values make the volume history
SUITE_ERROR = "suite_runs"  # the row recorded when a table cannot be read or validated


@dataclass(frozen=True)
class ExpectationResult:
    """One row of the results table."""

    suite: str
    layer: str
    table_name: str
    expectation: str
    expectation_type: str
    column: str | None
    severity: str
    success: bool
    observed_value: str | None
    unexpected_count: int | None
    unexpected_percent: float | None
    sample: str | None
    exception: str | None


@dataclass
class SuiteRun:
    suite: str
    seconds: float
    results: list[ExpectationResult] = field(default_factory=list)


@dataclass
class QualityRun:
    """Results of one validation run of several suites."""

    run_id: str
    run_date: dt.date
    validated_at: dt.datetime
    suites: list[SuiteRun] = field(default_factory=list)
    docs_index: Path | None = None

    @property
    def results(self) -> list[ExpectationResult]:
        return [r for s in self.suites for r in s.results]

    def failed(self, severity: str | None = None) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success and (severity is None or r.severity == severity)]

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.suites)
