"""Evaluate a dataset's expectations on a DataFrame: counts, drops, failures.

A predicate that evaluates to NULL passes (Databricks semantics). Counts come from
one aggregate over the flagged rows (``compat.metrics_without_observe``: Sail has no
``observe()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.engine.compat import metrics_without_observe
from lakehouse.pipelines.graph import Action, Expectation

FAILED_RULES = "_failed_rules"  # array<string>: expectations the row failed
QUARANTINE_REASONS = "_rejection_reasons"  # the DROP rules that sent a row to quarantine
SAMPLE_ROWS = 5


@dataclass(frozen=True)
class ExpectationResult:
    name: str
    action: str
    passed: int
    failed: int


class ExpectationFailed(RuntimeError):
    """An ``expect_or_fail`` rule failed; the flow commits nothing."""

    def __init__(self, dataset: str, rule: Expectation, failed: int, sample: list[dict]) -> None:
        self.dataset, self.rule, self.failed, self.sample = dataset, rule, failed, sample
        rows = "\n".join(f"  {row}" for row in sample)
        super().__init__(
            f"expectation {rule.name!r} failed on {dataset!r}: {failed} row(s) violate "
            f"`{rule.predicate}`; nothing was written to {dataset!r}. First rows:\n{rows}"
        )


def flag(df: DataFrame, expectations: Sequence[Expectation]) -> DataFrame:
    """Add ``_failed_rules``: names of the expectations each row fails."""
    checks = [F.when(~F.coalesce(F.expr(e.predicate), F.lit(True)), F.lit(e.name)) for e in expectations]
    return df.withColumn(
        FAILED_RULES, F.array_compact(F.array(*checks)) if checks else F.array().cast("array<string>")
    )


@dataclass(frozen=True)
class Counts:
    """What one pass over the flagged rows counts: rows, per-expectation results, the
    rows :func:`split` drops (a row failing two DROP rules once), and on request the
    content digest or the kept rows' fingerprints per partition."""

    total: int
    results: list[ExpectationResult]
    dropped: int
    digest: str | None = None
    fingerprints: dict[str, str] | None = None


def count(flagged: DataFrame, expectations: Sequence[Expectation]) -> tuple[int, list[ExpectationResult]]:
    """Rows in ``flagged`` and, per expectation, how many passed and failed."""
    counts = tally(flagged, expectations)
    return counts.total, counts.results


def tally(
    flagged: DataFrame,
    expectations: Sequence[Expectation],
    *,
    digest: bool = False,
    partition: Column | None = None,
    kept_columns: Sequence[str] = (),
) -> Counts:
    """:class:`Counts` of ``flagged`` in one aggregate. ``digest``: the content digest
    of the flagged rows (:func:`content_digest`). ``partition``: the fingerprint
    ('rows:hash sum' of ``kept_columns``) of the rows :func:`split` keeps, per
    partition (those with kept rows): an incremental view's state, in the same pass."""
    if partition is not None:
        return _tally_by_partition(flagged, expectations, partition, kept_columns)
    aggregates = _count_columns(expectations)
    if digest:
        aggregates.append(F.sum(row_hash(flagged)).alias("__hash"))
    row = metrics_without_observe(flagged, *aggregates)
    total = row["__rows"]
    failed = [int(row[f"__e{i}"] or 0) for i in range(len(expectations))]
    return Counts(
        total,
        _results(expectations, total, failed),
        total - int(row["__kept"] or 0),
        digest=f"{total}:{row['__hash']}" if digest else None,
    )


def content_digest(df: DataFrame) -> str:
    """``'rows:hash sum'`` of ``df``'s rows: row order does not matter; a duplicated,
    changed or removed row changes it."""
    row = df.agg(F.count(F.lit(1)).alias("__rows"), F.sum(row_hash(df)).alias("__hash")).first()
    return f"{row['__rows']}:{row['__hash']}"


def row_hash(df: DataFrame) -> Column:
    """A hash of every column of a row, as DECIMAL so that sums of it cannot overflow."""
    return row_hash_of(df.columns)


def row_hash_of(columns: Sequence[str]) -> Column:
    """:func:`row_hash` over the ``columns`` named (of a frame with more)."""
    return F.xxhash64(*[F.col(f"`{c}`") for c in columns]).cast("decimal(38,0)")


def _tally_by_partition(
    flagged: DataFrame, expectations: Sequence[Expectation], partition: Column, kept_columns: Sequence[str]
) -> Counts:
    grouped = flagged.groupBy(partition.alias("__partition")).agg(
        *_count_columns(expectations),
        F.sum(F.when(_kept(expectations), row_hash_of(kept_columns))).alias("__hash"),
    )
    total, kept, failed, fingerprints = 0, 0, [0] * len(expectations), {}
    for row in grouped.collect():
        total, kept = total + row["__rows"], kept + (row["__kept"] or 0)
        failed = [f + int(row[f"__e{i}"] or 0) for i, f in enumerate(failed)]
        if row["__kept"]:
            fingerprints[str(row["__partition"])] = f"{row['__kept']}:{row['__hash']}"
    return Counts(total, _results(expectations, total, failed), total - kept, fingerprints=fingerprints)


def _count_columns(expectations: Sequence[Expectation]) -> list[Column]:
    return [
        F.count(F.lit(1)).alias("__rows"),
        F.sum(_kept(expectations).cast("long")).alias("__kept"),
        *(
            F.sum(F.array_contains(FAILED_RULES, e.name).cast("long")).alias(f"__e{i}")
            for i, e in enumerate(expectations)
        ),
    ]


def _kept(expectations: Sequence[Expectation]) -> Column:
    """Whether :func:`split` keeps a row: it failed no DROP rule."""
    reasons = _drop_reasons(expectations)
    return F.lit(True) if reasons is None else F.size(reasons) == 0


def _results(
    expectations: Sequence[Expectation], total: int, failed: Sequence[int]
) -> list[ExpectationResult]:
    return [
        ExpectationResult(e.name, e.action.value, total - f, f)
        for e, f in zip(expectations, failed, strict=True)
    ]


def raise_on_fail(
    dataset: str,
    flagged: DataFrame,
    expectations: Sequence[Expectation],
    results: Sequence[ExpectationResult],
) -> None:
    """Raise :class:`ExpectationFailed` for the first FAIL rule with failures."""
    for rule, result in zip(expectations, results, strict=True):
        if rule.action == Action.FAIL and result.failed:
            sample_rows = (
                flagged.where(F.array_contains(FAILED_RULES, rule.name))
                .drop(FAILED_RULES)
                .limit(SAMPLE_ROWS)
                .collect()
            )
            raise ExpectationFailed(dataset, rule, result.failed, [r.asDict() for r in sample_rows])


def split(flagged: DataFrame, expectations: Sequence[Expectation]) -> tuple[DataFrame, DataFrame]:
    """``(kept, dropped)``: dropped rows failed a DROP rule and carry their names in
    ``_rejection_reasons``; WARN failures stay in ``kept``."""
    reasons = _drop_reasons(expectations)
    if reasons is None:
        return flagged.drop(FAILED_RULES), flagged.limit(0).withColumn(
            QUARANTINE_REASONS, F.array().cast("array<string>")
        ).drop(FAILED_RULES)
    with_reasons = flagged.withColumn(QUARANTINE_REASONS, reasons)
    kept = with_reasons.where(F.size(QUARANTINE_REASONS) == 0).drop(QUARANTINE_REASONS, FAILED_RULES)
    dropped = with_reasons.where(F.size(QUARANTINE_REASONS) > 0).drop(FAILED_RULES)
    return kept, dropped


def _drop_reasons(expectations: Sequence[Expectation]) -> Column | None:
    """The DROP rules a row failed (None when there is no DROP rule): a row is kept
    when it failed none."""
    drop_rules = [F.lit(e.name) for e in expectations if e.action == Action.DROP]
    return F.array_intersect(F.col(FAILED_RULES), F.array(*drop_rules)) if drop_rules else None
