"""The pieces around the suites: volume band, history, freshness bound, orphan columns,
the gate and the summary, on hand-written rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from chispa import assert_df_equality

from lakehouse.quality.model import ExpectationResult, QualityRun, SuiteRun
from lakehouse.quality.report import latest_failures, pass_rates, summary_html
from lakehouse.quality.results import (
    QualityGateError,
    append_results,
    check_gate,
    read_results,
    row_count_history,
)
from lakehouse.quality.settings import QualitySettings
from lakehouse.quality.suites import SuiteInputs, freshness_check, volume_band, with_orphans

DAY = dt.date(2026, 11, 26)


def _result(
    expectation: str,
    *,
    success: bool,
    severity: str = "critical",
    suite: str = "gold.fact_ventes",
    observed: str | None = None,
    count: int | None = None,
    sample: str | None = None,
) -> ExpectationResult:
    return ExpectationResult(
        suite=suite,
        layer=suite.split(".")[0],
        table_name=suite.split(".")[1],
        expectation=expectation,
        expectation_type="expect_x",
        column=None,
        severity=severity,
        success=success,
        observed_value=observed,
        unexpected_count=count,
        unexpected_percent=None,
        sample=sample,
        exception=None,
    )


def _run(run_id: str, day: dt.date, hour: int, *results: ExpectationResult) -> QualityRun:
    at = dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)
    by_suite: dict[str, list[ExpectationResult]] = {}
    for r in results:
        by_suite.setdefault(r.suite, []).append(r)
    return QualityRun(run_id, day, at, [SuiteRun(s, 0.5, rs) for s, rs in by_suite.items()])


@pytest.mark.parametrize(
    ("history", "band"),
    [
        ([], (1, None)),  # no history: only "not empty"
        ([100, 90], (1, None)),  # 2 < volume_min_history = 3
        ([100, 90, 110], (50, 200)),  # median 100 -> [0.5 x 100, 2 x 100]
        ([10, 10, 10, 10, 10, 10, 10, 1000], (5, 20)),  # only the 7 newest count: median 10
        ([3, 1, 1], (1, 2)),  # median 1 -> low 0.5 rounds down to 0, floored at 1
    ],
)
def test_volume_band(history: list[int], band: tuple[int, int | None]) -> None:
    assert volume_band(history, QualitySettings()) == band


def test_row_count_history_takes_latest_run_of_each_earlier_date_newest_first(tmp_path: Path) -> None:
    path = str(tmp_path / "results")
    count = "row_count_within_band"
    append_results(_run("a", dt.date(2026, 11, 24), 5, _result(count, success=True, observed="100")), path)
    append_results(_run("b", dt.date(2026, 11, 25), 5, _result(count, success=True, observed="80")), path)
    # a re-run of the 25th later that day wins over run b
    append_results(_run("c", dt.date(2026, 11, 25), 9, _result(count, success=True, observed="90")), path)
    # the run date itself and later dates are not history
    append_results(_run("d", DAY, 5, _result(count, success=True, observed="5")), path)
    history = row_count_history(read_results(path), DAY)
    assert history == {"gold.fact_ventes": [90, 100]}


def test_freshness_bound_is_end_of_run_date_minus_hours(spark, lake) -> None:
    inputs = SuiteInputs(
        spark, lake, DAY, settings=QualitySettings(freshness_hours={"fact_consommation_energie": 30})
    )
    # end of 2026-11-26 = 2026-11-27 00:00; minus 6 h = 2026-11-26 18:00
    assert freshness_check("x", "hour_key", "%Y%m%d%H", 6, inputs).expectation.min_value == 2026112618
    # the setting overrides the suite's default: minus 30 h = 2026-11-25 18:00
    check = freshness_check("fact_consommation_energie", "hour_key", "%Y%m%d%H", 6, inputs)
    assert check.name == "fresh_within_30h" and check.expectation.min_value == 2026112518


def test_with_orphans_flags_keys_missing_from_the_dimension_not_nulls(spark) -> None:
    facts = spark.createDataFrame(
        [(1, "a"), (2, "b"), (None, "c"), (7, "d")], "product_sk BIGINT, label STRING"
    )
    dimension = spark.createDataFrame([(1,), (2,), (2,), (3,)], "product_sk BIGINT")  # a duplicated key
    expected = spark.createDataFrame(
        [(1, "a", None), (2, "b", None), (None, "c", None), (7, "d", 7)],
        "product_sk BIGINT, label STRING, _orphan_product_sk BIGINT",
    )
    actual = with_orphans(facts, {"product_sk": dimension})
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def _gate_results(tmp_path: Path) -> str:
    path = str(tmp_path / "results")
    # an earlier run of the day failed a critical check; the latest one only a warning
    append_results(
        _run("early", DAY, 5, _result("fresh_within_48h", success=False, observed="20261120")), path
    )
    append_results(
        _run(
            "late",
            DAY,
            7,
            _result("key_order_id_line_number_unique", success=True),
            _result(
                "sales_channel_allowed", success=False, severity="warning", count=2, sample='["fax", "fax"]'
            ),
        ),
        path,
    )
    return path


def test_gate_reads_only_the_latest_run_of_the_date(tmp_path: Path) -> None:
    path = _gate_results(tmp_path)
    latest = check_gate(path, DAY, fail_on="critical")
    assert set(latest["run_id"]) == {"late"} and len(latest) == 2
    with pytest.raises(QualityGateError) as failure:
        check_gate(path, DAY, fail_on="warning")
    message = str(failure.value)
    assert "quality run late of 2026-11-26: 1 failed critical/warning expectation(s)" in message
    assert '[warning] gold.fact_ventes: sales_channel_allowed (2 unexpected, e.g. ["fax", "fax"])' in message


def test_gate_fails_on_critical_and_names_it(tmp_path: Path) -> None:
    path = str(tmp_path / "results")
    append_results(
        _run(
            "r1",
            DAY,
            5,
            _result("product_sk_in_dim_produit", success=False, count=1, sample="[99]"),
            _result(
                "row_count_within_band", success=False, suite="gold.fact_consommation_energie", observed="12"
            ),
            _result(
                "kwh_mean_in_band", success=False, severity="warning", suite="gold.fact_consommation_energie"
            ),
        ),
        path,
    )
    with pytest.raises(QualityGateError) as failure:
        check_gate(path, DAY)
    lines = str(failure.value).splitlines()
    assert lines[0] == "quality run r1 of 2026-11-26: 2 failed critical expectation(s):"
    assert sorted(lines[1:]) == [
        "  [critical] gold.fact_consommation_energie: row_count_within_band (observed 12)",
        "  [critical] gold.fact_ventes: product_sk_in_dim_produit (1 unexpected, e.g. [99])",
    ]


def test_gate_without_a_run_of_the_date(tmp_path: Path) -> None:
    path = _gate_results(tmp_path)
    with pytest.raises(QualityGateError, match="no quality run for 2026-11-27 in .*pipeline_qualite"):
        check_gate(path, dt.date(2026, 11, 27))
    assert check_gate(str(tmp_path / "none"), DAY, require_run=False).empty
    with pytest.raises(ValueError, match="fail_on must be"):
        check_gate(path, DAY, fail_on="info")


def test_pass_rates_and_latest_failures(tmp_path: Path) -> None:
    path = _gate_results(tmp_path)
    append_results(
        _run("prev", dt.date(2026, 11, 25), 5, *[_result(f"c{i}", success=i < 3) for i in range(4)]), path
    )
    rates = pass_rates(read_results(path))
    # 25th: 3 of 4 passed, 1 critical failure; 26th (run late only): 1 of 2 passed, no critical failure
    assert rates[["suite", "checks", "passed", "failed_critical", "pass_rate"]].to_dict("records") == [
        {"suite": "gold.fact_ventes", "checks": 4, "passed": 3, "failed_critical": 1, "pass_rate": 0.75},
        {"suite": "gold.fact_ventes", "checks": 2, "passed": 1, "failed_critical": 0, "pass_rate": 0.5},
    ]
    failures = latest_failures(read_results(path))
    assert failures[["expectation", "severity", "unexpected_count"]].to_dict("records") == [
        {"expectation": "sales_channel_allowed", "severity": "warning", "unexpected_count": 2}
    ]
    page = summary_html(read_results(path))
    assert (
        "Latest failures (1)" in page
        and "sales_channel_allowed" in page
        and '<td>["fax", "fax"]</td>' in page
    )


def test_summary_without_results_says_so() -> None:
    page = summary_html(
        pd.DataFrame(columns=["run_date", "validated_at", "suite", "expectation", "severity", "success"])
    )
    assert page.count("No run.") == 2 and "Latest failures (0)" in page


def test_gate_command_exit_codes(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from lakehouse.cli import main
    from lakehouse.lake import Lake
    from lakehouse.quality.results import results_path

    lake = Lake(str(tmp_path / "lake"))
    append_results(
        _run("r1", DAY, 5, _result("fresh_within_48h", success=False, observed="20261120")),
        results_path(lake),
    )
    args = ["quality", "gate", "--lake-root", lake.root, "--run-date"]
    failed = CliRunner().invoke(main, [*args, "2026-11-26"])
    assert failed.exit_code == 1
    assert "[critical] gold.fact_ventes: fresh_within_48h (observed 20261120)" in failed.output
    assert CliRunner().invoke(main, [*args, "2026-11-26", "--fail-on", "critical"]).exit_code == 1
    missing = CliRunner().invoke(main, [*args, "2026-11-25"])
    assert missing.exit_code == 1 and "no quality run for 2026-11-25" in missing.output


def test_warning_alert_body_and_its_email(tmp_path) -> None:
    """Only failed *warnings* are alerted; the e-mail of an alert uses its summary and details."""
    from lakehouse.jobs.notify import email_message
    from lakehouse.quality.alerts import warning_alert

    def result(name: str, severity: str, success: bool) -> ExpectationResult:
        return ExpectationResult(
            suite="silver.order_lines", layer="silver", table_name="order_lines", expectation=name,
            expectation_type="expect_x", column=None, severity=severity, success=success,
            observed_value=None, unexpected_count=None if success else 2, unexpected_percent=None,
            sample=None if success else '["web"]', exception=None,
        )  # fmt: skip

    day = dt.date(2026, 11, 26)
    path = str(tmp_path / "quality_results")
    at = dt.datetime(2026, 11, 26, 7, tzinfo=dt.UTC)
    rows = [result("key_unique", "critical", False), result("channel_allowed", "warning", False), result("x", "warning", True)]
    append_results(QualityRun("q1", day, at, [SuiteRun("silver.order_lines", 0.1, rows)]), path)

    body = warning_alert(path, day, job="pipeline_qualite", run_id="r1")
    assert body is not None and body["details"] == [
        '[warning] silver.order_lines: channel_allowed (2 unexpected, e.g. ["web"])'
    ]
    assert warning_alert(path, day + dt.timedelta(days=1), job="j", run_id="r") is None  # no run that day
    message = email_message(body, sender="lakehouse@localhost", recipients=["dq@example.com"])
    assert message["Subject"] == "[lakehouse] job pipeline_qualite run r1: 1 failed warning expectation(s) on 2026-11-26"
    assert "channel_allowed (2 unexpected" in message.get_content()
