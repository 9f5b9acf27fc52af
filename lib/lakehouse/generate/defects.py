"""Defects injected into the landing files, at documented rates, and where they went.

Rates are fractions of the records of an entity. Each defect type gets
``max(1, round(rate * records))`` records (none when there are no records), so even
a tiny run exercises every validation rule; at scale 1 the counts follow the rates.
A record carries at most one defect, so counts are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Order lines: rates of the distinct order lines (records minus duplicate copies).
# 'duplicate' counts the extra copies (the original is clean); 'late_record' lines sit
# in a file 1-5 days after their order date.
ORDER_LINE_DEFECT_RATES: dict[str, float] = {
    "duplicate": 0.01,
    "late_record": 0.02,
    "unknown_product": 0.005,
    "negative_quantity": 0.005,
    "ragged_row": 0.002,
    "impossible_date": 0.001,
}
STOCK_DEFECT_RATES: dict[str, float] = {"negative_quantity": 0.005}
JSON_LINES_DEFECT_RATES: dict[str, float] = {"malformed_json": 0.005}


@dataclass(frozen=True)
class DefectRecord:
    """One injected defect: the lake-relative file, its 1-based line (a CSV header is
    line 1) and the defect type."""

    file: str
    line_number: int
    defect: str


def defect_count(rate: float, records: int) -> int:
    """How many records get a defect of ``rate``: at least one when there are records."""
    return 0 if records <= 0 else min(records, max(1, round(rate * records)))


def truncate_json(rng: np.random.Generator, line: str) -> str:
    """A JSON object cut short, as when an export dies mid-write. Any strict prefix
    of an object lacks its closing brace, so it never parses."""
    return line[: int(rng.integers(max(1, len(line) // 3), len(line) - 1))]


def pick_malformed(
    rng: np.random.Generator, records: int, rate: float = JSON_LINES_DEFECT_RATES["malformed_json"]
) -> np.ndarray:
    """Sorted indexes of the ``rate`` of ``records`` lines to truncate; each is then cut
    by :func:`truncate_json` with the same ``rng``, in index order."""
    return np.sort(rng.choice(records, size=defect_count(rate, records), replace=False))
