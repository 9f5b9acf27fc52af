"""Every suite on a clean dataset (all pass) and on injected problems (exactly the
expected expectations fail), through Great Expectations on the embedded engine."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path

import pytest

from lakehouse.lake import Lake
from lakehouse.quality.model import ExpectationResult, QualityRun, SuiteRun
from lakehouse.quality.results import append_results, read_results, results_path
from lakehouse.quality.run import run_quality
from lakehouse.quality.settings import QualitySettings
from lakehouse.quality.suites import SUITES
from tests.quality.dataset import RUN_DATE

VALIDATED_AT = dt.datetime(2026, 11, 27, 5, 0, tzinfo=dt.UTC)


def test_clean_dataset_passes_every_suite(
    spark, clean_lake: Lake, settings: QualitySettings, runs_dir: Path
) -> None:
    run = run_quality(
        spark,
        clean_lake,
        RUN_DATE,
        run_id="clean-1",
        settings=settings,
        runs_dir=runs_dir,
        validated_at=VALIDATED_AT,
    )
    assert [(r.suite, r.expectation, r.exception) for r in run.failed()] == []
    assert [s.suite for s in run.suites] == [s.name for s in SUITES]
    # every suite checked its schema and key; the first run has no volume history: band [1, inf)
    for suite in run.suites:
        names = {r.expectation for r in suite.results}
        assert "columns_present" in names and any(n.startswith("key_") for n in names), suite.suite
    by_name = {(r.suite, r.expectation): r for r in run.results}
    assert by_name[("gold.fact_ventes", "row_count_within_band")].observed_value == "6"
    assert by_name[("gold.fact_consommation_energie", "row_count_within_band")].observed_value == "48"
    # kWh 5..28 over 24 hours for two machines: mean (5 + 28) / 2 = 16.5
    assert json.loads(by_name[("gold.fact_consommation_energie", "kwh_mean_in_band")].observed_value) == 16.5
    assert json.loads(by_name[("gold.fact_ventes", "fresh_within_48h")].observed_value) == 20261126

    stored = read_results(results_path(clean_lake, settings.results_table))
    assert len(stored) == len(run.results) and set(stored["run_id"]) == {"clean-1"}
    assert stored["success"].all() and set(stored["severity"]) == {"critical", "warning"}
    docs = runs_dir / "quality" / "clean-1" / "data_docs"
    assert run.docs_index == docs / "index.html" and run.docs_index.is_file()
    assert len(list((docs / "validations").rglob("*.html"))) == len(SUITES)
    summary = (runs_dir / "quality" / "summary.html").read_text()
    assert (
        "gold.fact_ventes" in summary
        and "Latest failures (0)" in summary
        and "data:image/png;base64," in summary
        and "<a href='clean-1/data_docs/index.html'>" in summary
    )


def _history_run(run_date: dt.date, rows: int) -> QualityRun:
    """A previous run that observed ``rows`` rows in fact_consommation_energie."""
    result = ExpectationResult(
        suite="gold.fact_consommation_energie",
        layer="gold",
        table_name="fact_consommation_energie",
        expectation="row_count_within_band",
        expectation_type="expect_table_row_count_to_be_between",
        column=None,
        severity="critical",
        success=True,
        observed_value=str(rows),
        unexpected_count=None,
        unexpected_percent=None,
        sample=None,
        exception=None,
    )
    validated = dt.datetime.combine(run_date + dt.timedelta(days=1), dt.time(5), tzinfo=dt.UTC)
    return QualityRun(f"hist-{run_date}", run_date, validated, [SuiteRun(result.suite, 0.1, [result])])


def test_injected_problems_fail_exactly_the_expected_expectations(
    spark, dirty_lake: Lake, settings: QualitySettings
) -> None:
    path = results_path(dirty_lake, settings.results_table)
    for day in (23, 24, 25):  # history: 48 rows a day -> band [0.5 x 48, 2 x 48] = [24, 96]
        append_results(_history_run(dt.date(2026, 11, day), 48), path)

    run = run_quality(
        spark, dirty_lake, RUN_DATE, run_id="dirty-1", settings=settings, validated_at=VALIDATED_AT
    )

    failed = {(r.suite, r.expectation, r.severity) for r in run.failed()}
    assert failed == {
        ("gold.fact_ventes", "key_order_id_line_number_unique", "critical"),
        ("gold.fact_ventes", "product_sk_in_dim_produit", "critical"),
        ("gold.fact_ventes", "fresh_within_48h", "critical"),
        ("gold.fact_consommation_energie", "row_count_within_band", "critical"),
        ("gold.fact_consommation_energie", "kwh_in_range", "critical"),
        ("gold.fact_consommation_energie", "temperature_c_in_range", "warning"),
        ("gold.fact_consommation_energie", "machine_sk_mostly_known", "warning"),
    }
    by_name = {(r.suite, r.expectation): r for r in run.failed()}
    duplicate = by_name[("gold.fact_ventes", "key_order_id_line_number_unique")]
    assert duplicate.unexpected_count == 2  # both copies of (O1, 1)
    orphan = by_name[("gold.fact_ventes", "product_sk_in_dim_produit")]
    assert orphan.unexpected_count == 1 and json.loads(orphan.sample) == [99]
    # latest sale 2026-11-23; the end of the run date minus 48 h is 2026-11-25
    assert by_name[("gold.fact_ventes", "fresh_within_48h")].observed_value == "20261123"
    assert by_name[("gold.fact_consommation_energie", "row_count_within_band")].observed_value == "12"
    assert json.loads(by_name[("gold.fact_consommation_energie", "kwh_in_range")].sample) == [-3.0]
    assert json.loads(by_name[("gold.fact_consommation_energie", "temperature_c_in_range")].sample) == [130.0]
    assert by_name[("gold.fact_consommation_energie", "machine_sk_mostly_known")].unexpected_count == 1
    # the same rows are in the results table, after the history
    stored = read_results(path)
    stored_failed = stored[(stored["run_id"] == "dirty-1") & ~stored["success"]]
    assert set(zip(stored_failed["suite"], stored_failed["expectation"], strict=True)) == {
        (s, e) for s, e, _ in failed
    }


def test_missing_table_is_a_failed_critical_row_and_other_suites_still_run(
    spark, tmp_path: Path, settings: QualitySettings
) -> None:
    empty = Lake(str(tmp_path / "empty_lake"))
    run = run_quality(
        spark, empty, RUN_DATE, run_id="missing-1", settings=settings, suites=["dim_site", "dim_machine"]
    )
    assert [(r.suite, r.expectation, r.severity, r.success) for r in run.results] == [
        ("gold.dim_site", "suite_runs", "critical", False),
        ("gold.dim_machine", "suite_runs", "critical", False),
    ]
    assert "dim_site" in run.results[0].exception


def test_added_columns_are_tolerated(
    spark, tmp_path: Path, clean_lake: Lake, settings: QualitySettings
) -> None:
    from pyspark.sql import functions as F

    from lakehouse.lake import read_delta, write_delta

    lake = Lake(str(tmp_path / "lake"))
    widened = read_delta(spark, clean_lake.gold("energy", "star", "dim_machine")).withColumn(
        "commissioned_on", F.lit(None).cast("date")
    )
    write_delta(widened, lake.gold("energy", "star", "dim_machine"))
    run = run_quality(spark, lake, RUN_DATE, run_id="wide-1", settings=settings, suites=["dim_machine"])
    assert run.failed() == [] and len(run.results) == 7


def test_unknown_suite_name_lists_known_ones(spark, clean_lake: Lake) -> None:
    with pytest.raises(KeyError, match="unknown quality suite.*fact_ventas.*gold.fact_ventes"):
        run_quality(
            spark, clean_lake, RUN_DATE, run_id="x", suites=["fact_ventas"], settings=QualitySettings()
        )


def _page_text(page: Path) -> str:
    """A Data Docs page as its visible text: tags dropped, whitespace collapsed."""
    text = re.sub(r"<[^>]+>", " ", page.read_text())
    return re.sub(r"\s+", " ", html.unescape(text))


def test_counts_and_samples_of_passing_and_failing_expectations_in_rows_and_data_docs(
    spark, dirty_lake: Lake, settings: QualitySettings, runs_dir: Path
) -> None:
    """What the results table and the Data Docs show for each kind of expectation: a
    passing column-map expectation keeps its counts (0 unexpected, no sample), a failing
    one its counts and sample, aggregates their observed value. Any cheaper way to
    validate must keep these values."""
    run = run_quality(
        spark,
        dirty_lake,
        RUN_DATE,
        run_id="shown-1",
        settings=settings,
        runs_dir=runs_dir,
        suites=["fact_ventes"],
        validated_at=VALIDATED_AT,
    )
    shown = {
        r.expectation: (r.success, r.observed_value, r.unexpected_count, r.unexpected_percent, r.sample)
        for r in run.results
    }
    assert len(shown) == 26
    # 4 sales: (O1, 1) twice, product 99 missing from dim_produit, latest sale 2026-11-23
    assert shown["key_order_id_line_number_unique"] == (
        False,
        None,
        2,
        50.0,
        '[{"order_id": "O1", "line_number": 1}, {"order_id": "O1", "line_number": 1}]',
    )
    assert shown["product_sk_in_dim_produit"] == (False, None, 1, 25.0, "[99]")
    assert shown["fresh_within_48h"] == (False, "20261123", None, None, None)
    assert shown["row_count_within_band"] == (True, "4", None, None, None)
    assert shown["product_sk_not_null"] == (True, None, 0, 0.0, None)
    assert shown["product_sk_mostly_known"] == (True, None, 0, 0.0, None)
    assert shown["quantity_in_range"] == (True, None, 0, 0.0, None)
    assert shown["quantity_is_IntegerType"] == (True, '"IntegerType"', None, None, None)
    stored = read_results(results_path(dirty_lake, settings.results_table))
    assert sorted(stored["expectation"]) == sorted(shown)
    assert not stored["success"].all() and stored["unexpected_count"].notna().sum() == 15

    pages = list((runs_dir / "quality" / "shown-1" / "data_docs" / "validations").rglob("*.html"))
    assert len(pages) == 1
    page = _page_text(pages[0])
    assert "2 unexpected values found. 50% of 4 total rows. Unexpected Value Count O1 1 2" in page
    assert "1 unexpected values found. 25% of 4 total rows. Unexpected Value Count 99 1" in page
    assert "values must never be null. 100% not null" in page
    assert "20261123" in page
