"""Run the suites with Great Expectations 1.x and turn the results into rows.

GX's Spark data source accepts the Spark Connect DataFrames of our engine as they are
(a connect ``DataFrame`` is a ``pyspark.sql.DataFrame``), so suites validate the
tables in the engine, not pandas copies. GX bundles the aggregate metrics of a suite
(null and unexpected counts, min/max/mean/stdev, row count) into a few queries; the
``SUMMARY`` result format adds one query per column-map expectation for its sample of
unexpected values. Each table is one ``ValidationDefinition`` run by a ``Checkpoint``;
the Data Docs of the run are built once at the end.

One ephemeral context per run holds the run's suites, definitions and checkpoints:
it starts empty, so each is added once (``add``), without the store read and compare
of ``add_or_update``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lakehouse.quality.gx import gx
from lakehouse.quality.model import SUITE_ERROR, ExpectationResult, QualityRun, SuiteRun
from lakehouse.quality.offline_docs import make_offline
from lakehouse.quality.suites import Check, SuiteInputs, TableSuite

log = logging.getLogger(__name__)
DATA_SOURCE = "lakehouse"
DOCS_SITE = "quality_docs"


def quality_context(docs_dir: Path | None = None) -> Any:
    """An ephemeral GX context (suites live in code), with a Data Docs site in
    ``docs_dir`` when given, and no progress bars (they flood notebook outputs)."""
    # GX's own modules are imported after lakehouse.quality.gx, never before it
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            site_name=DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def gx_suite(name: str, checks: Sequence[Check]) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name=name)
    seen: set[str] = set()
    for check in checks:
        if check.name in seen:  # e.g. a key column that is also a foreign key: checked once
            continue
        seen.add(check.name)
        # suites build fresh expectation objects on each call, so tagging them is safe
        check.expectation.meta = {
            **(check.expectation.meta or {}),
            "name": check.name,
            "severity": check.severity,
        }
        suite.add_expectation(check.expectation)
    return suite


def validate_suites(
    suites: Sequence[TableSuite],
    inputs: SuiteInputs,
    *,
    run_id: str,
    validated_at: dt.datetime,
    docs_dir: Path | None = None,
    on_suite: Callable[[SuiteRun], None] | None = None,
) -> QualityRun:
    """Validate each suite's table; a table that cannot be read or validated gives one
    failed critical row ``suite_runs`` with the error, and the other suites still run.
    A suite named twice is validated once."""
    context = quality_context(docs_dir)
    source = context.data_sources.add_spark(DATA_SOURCE)
    suites = list({suite.name: suite for suite in suites}.values())
    run = QualityRun(run_id=run_id, run_date=inputs.run_date, validated_at=validated_at)
    for suite in suites:
        started = time.perf_counter()
        try:
            results = _validate_one(context, source, suite, inputs, sample_size=inputs.settings.sample_size)
        except Exception as exc:  # recorded as a failed critical check; never hides the others
            log.warning("quality suite %s could not run: %s", suite.name, exc)
            results = [_error_row(suite, exc)]
        suite_run = SuiteRun(suite.name, round(time.perf_counter() - started, 3), results)
        run.suites.append(suite_run)
        if on_suite is not None:
            on_suite(suite_run)
    if docs_dir is not None:
        context.build_data_docs(site_names=[DOCS_SITE])
        make_offline(docs_dir)  # CDN assets copied beside the pages: styled without internet
        run.docs_index = docs_dir / "index.html"
    return run


def _validate_one(
    context: Any, source: Any, suite: TableSuite, inputs: SuiteInputs, *, sample_size: int
) -> list[ExpectationResult]:
    frame = suite.load(inputs)
    checks = suite.checks(inputs)
    asset = source.add_dataframe_asset(name=suite.name)
    batch = asset.add_batch_definition_whole_dataframe(f"{suite.name}_whole")
    # the run's context is new: each object is added once (add_or_update reads and compares)
    expectation_suite = context.suites.add(gx_suite(suite.name, checks))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=expectation_suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{suite.name}_checkpoint",
            validation_definitions=[definition],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": sample_size},
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    validation = next(iter(result.run_results.values()))
    return [_row(suite, r) for r in validation.results]


def _row(suite: TableSuite, result: Any) -> ExpectationResult:
    config = result.expectation_config
    details = result.result or {}
    exception = None
    if result.exception_info and result.exception_info.get("raised_exception"):
        exception = str(result.exception_info.get("exception_message"))[:2000]
    sample = details.get("partial_unexpected_list")
    return ExpectationResult(
        suite=suite.name,
        layer=suite.layer,
        table_name=suite.table,
        expectation=config.meta["name"],
        expectation_type=config.type,
        column=config.kwargs.get("column") or ",".join(config.kwargs.get("column_list") or []) or None,
        severity=config.meta["severity"],
        success=bool(result.success),
        observed_value=_json(details["observed_value"]) if "observed_value" in details else None,
        unexpected_count=details.get("unexpected_count"),
        unexpected_percent=details.get("unexpected_percent"),
        sample=_json(sample) if sample else None,
        exception=exception,
    )


def _error_row(suite: TableSuite, exc: Exception) -> ExpectationResult:
    return ExpectationResult(
        suite=suite.name,
        layer=suite.layer,
        table_name=suite.table,
        expectation=SUITE_ERROR,
        expectation_type="suite_error",
        column=None,
        severity="critical",
        success=False,
        observed_value=None,
        unexpected_count=None,
        unexpected_percent=None,
        sample=None,
        exception=f"{type(exc).__name__}: {exc}"[:2000],
    )


def _json(value: Any) -> str:
    return json.dumps(value, default=str)
