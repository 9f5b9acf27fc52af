"""Row rules and deduplication that split a DataFrame into kept and quarantined rows.

A rule is a name and a SQL predicate. As in Databricks expectations, a predicate
that evaluates to NULL does not reject the row: write ``x IS NOT NULL AND ...`` when
NULL must fail. Rejected rows keep every column and gain ``_rejection_reasons``
(the names of all the rules they failed), so nothing is silently lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

REASONS = "_rejection_reasons"
DUPLICATE = "duplicate"


def split_by_rules(df: DataFrame, rules: Mapping[str, str]) -> tuple[DataFrame, DataFrame]:
    """Return ``(passed, rejected)``; ``rejected`` has ``_rejection_reasons`` array<string>."""
    if not rules:
        raise ValueError("split_by_rules needs at least one rule")
    failed = [
        F.when(~F.coalesce(F.expr(predicate), F.lit(True)), F.lit(name)) for name, predicate in rules.items()
    ]
    flagged = df.withColumn(REASONS, F.array_compact(F.array(*failed)))
    passed = flagged.where(F.size(REASONS) == 0).drop(REASONS)
    rejected = flagged.where(F.size(REASONS) > 0)
    return passed, rejected


def split_duplicates(
    df: DataFrame, *, keys: Sequence[str], latest_first: Sequence[str]
) -> tuple[DataFrame, DataFrame]:
    """Keep one row per ``keys``: the first by ``latest_first`` (descending).

    Return ``(kept, duplicates)``; duplicates carry ``_rejection_reasons = ['duplicate']``.
    """
    order = [F.col(c).desc_nulls_last() for c in latest_first]
    ranked = df.withColumn("_rank", F.row_number().over(Window.partitionBy(*keys).orderBy(*order)))
    kept = ranked.where(F.col("_rank") == 1).drop("_rank")
    duplicates = ranked.where(F.col("_rank") > 1).drop("_rank").withColumn(REASONS, F.array(F.lit(DUPLICATE)))
    return kept, duplicates
