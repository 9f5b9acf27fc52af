"""Drop rules applied outside a pipeline run: the ``(kept, quarantine)`` split the
pipeline's expectations make, for the silver functions called from notebooks and tests."""

from __future__ import annotations

from pyspark.sql import DataFrame


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
