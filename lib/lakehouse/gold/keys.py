"""Surrogate keys and the explicit "unknown" member of every dimension.

Every dimension holds one row with surrogate key ``UNKNOWN_SK`` (-1). A fact row whose
natural key matches no dimension row (an unknown product, a date outside the
calendar, a reading before the machine's first version) points to it instead of
carrying a NULL key, so every fact foreign key joins; the facts' ``*_resolved``
expectations count how many rows went to the unknown member at each run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

UNKNOWN_SK = -1
UNKNOWN_ID = "UNKNOWN"
UNKNOWN_LABEL = "Inconnu"


def with_unknown_member(dimension: DataFrame, values: Mapping[str, Any]) -> DataFrame:
    """``dimension`` plus one unknown row: ``values`` for the named columns, NULL for
    the others, each cast to the dimension's column type."""
    missing = set(values) - set(dimension.columns)
    if missing:
        raise ValueError(
            f"unknown member: columns {sorted(missing)} are not in the dimension {dimension.columns}"
        )
    row = dimension.sparkSession.range(1).select(
        *[F.lit(values.get(field.name)).cast(field.dataType).alias(field.name) for field in dimension.schema]
    )
    return dimension.unionByName(row)


def resolved(sk: str | Column) -> Column:
    """The surrogate key, or ``UNKNOWN_SK`` when the lookup found no dimension row."""
    column = F.col(sk) if isinstance(sk, str) else sk
    return F.coalesce(column, F.lit(UNKNOWN_SK).cast("long"))
