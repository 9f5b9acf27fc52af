"""Column parsers for the defects of French exports, NULL instead of an error.

They use the ``try_`` functions so one bad value never fails a whole job; the NULL
they return is then caught by a validation rule that names the column.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def _column(col: Column | str) -> Column:
    return F.col(col) if isinstance(col, str) else col


def parse_decimal_fr(col: Column | str, *, precision: int = 12, scale: int = 4) -> Column:
    """'1 234,50' -> 1234.5000 as DECIMAL; NULL when not a number."""
    cleaned = F.regexp_replace(F.regexp_replace(F.trim(_column(col)), r"[\s\u00a0]", ""), ",", ".")
    return cleaned.try_cast(f"decimal({precision},{scale})")


def parse_int(col: Column | str) -> Column:
    """'12' -> 12; NULL when not an integer."""
    return F.trim(_column(col)).try_cast("int")


def parse_date_fr(col: Column | str) -> Column:
    """'31/12/2026' -> DATE; NULL for malformed or impossible dates ('31/02/2026')."""
    return F.try_to_timestamp(F.trim(_column(col)), F.lit("dd/MM/yyyy")).cast("date")
