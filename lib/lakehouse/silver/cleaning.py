"""Helpers every silver domain uses: the bronze rows a run may read, and drop rules
applied outside a pipeline run (the ``(kept, quarantine)`` split the pipeline's
expectations make, for the silver functions called from notebooks and tests)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.bronze.sources import partition_date

# Tables refreshed by day group a key's versions under a day computed from the key;
# rows whose key gives no day (no id, an unparsable date) share NO_DAY, so a
# bad line never forces a full rebuild and still lands in silver or the quarantine.
NO_DAY = "DATE'1970-01-01'"


def or_no_day(day: str) -> str:
    """SQL: ``day``, or NO_DAY when it is NULL (a CASE: the engine cannot group by
    ``coalesce``)."""
    return f"CASE WHEN ({day}) IS NULL THEN {NO_DAY} ELSE ({day}) END"


def dropped_by_run_date(bronze: DataFrame) -> DataFrame:
    """The bronze rows dropped up to the run date: what a silver table is made of (a
    drop dated later counts once the run date reaches it). Inside a pipeline run.

    When every row has a drop date and none is after the run date (every daily run),
    the frame is returned unfiltered: its plan then does not change with the run date,
    and a view reading unchanged bronze is skipped unread instead of recomputed to the
    same rows."""
    from lakehouse import pipelines as dp

    run_date = F.lit(dp.current().parameters["run_date"])
    dropped = partition_date()
    # the engine compares, as the filter would: an undated row (NULL) is not counted
    by_run_date = F.count(F.lit(1)) == F.count(F.when(dropped <= run_date, 1))
    if bronze.select(by_run_date.alias("all")).first()["all"]:
        return bronze
    return bronze.where(dropped <= run_date)


def apply_drop_rules(
    prepared: DataFrame, rules: dict[str, str], columns: tuple[str, ...]
) -> tuple[DataFrame, DataFrame]:
    """``(kept, quarantine)`` of a prepared frame under drop rules (name -> predicate);
    ``kept`` has ``columns`` only, ``quarantine`` the rule names that dropped each row."""
    from lakehouse.pipelines import expectations as ex
    from lakehouse.pipelines.graph import Action, Expectation

    expectations = [Expectation(n, p, Action.DROP) for n, p in rules.items()]
    kept, dropped = ex.split(ex.flag(prepared, expectations), expectations)
    return kept.select(*columns), dropped
