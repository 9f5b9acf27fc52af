"""Folding the model's verdict into the fact's anomaly class; future hours to forecast."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from lakehouse.ml.scoring import with_future_hours, with_model_anomaly_class

H0, H1, H2, H3 = (dt.datetime(2026, 11, 26, h) for h in range(4))


def test_a_flag_raises_normal_to_warning_and_keeps_critical(spark):
    fact = spark.createDataFrame(
        [("M1", H0, "normal"), ("M1", H1, "critical"), ("M1", H2, None), ("M1", H3, "normal"), ("M2", H0, "warning")],
        "machine_id string, hour_ts timestamp, anomaly_class string",
    )
    scores = spark.createDataFrame(
        [("M1", H0, 0.9, True), ("M1", H1, 0.8, True), ("M1", H2, 0.7, True), ("M1", H3, 0.1, False)],
        "machine_id string, hour_ts timestamp, anomaly_score double, is_anomaly boolean",
    )
    expected = spark.createDataFrame(
        [
            ("M1", H0, "warning", 0.9),  # flagged normal hour -> warning
            ("M1", H1, "critical", 0.8),  # the rule's critical stays
            ("M1", H2, "warning", 0.7),  # unknown by the rules, flagged by the model
            ("M1", H3, "normal", 0.1),  # not flagged: the rule's class
            ("M2", H0, "warning", None),  # not scored: the rule's class, no score
        ],
        "machine_id string, hour_ts timestamp, anomaly_class string, model_anomaly_score double",
    )
    result = with_model_anomaly_class(fact, scores)
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_future_hours_take_the_plan_of_the_same_hour_a_week_before(spark):
    week_before = H1 - dt.timedelta(days=7)
    hourly = spark.createDataFrame(
        [("M1", week_before, 5.0, 45.0), ("M1", H0, 4.0, 0.0)],
        "machine_id string, hour_ts timestamp, kwh double, production_minutes double",
    )
    extended = with_future_hours(hourly, H1, hours=2)
    expected = spark.createDataFrame(
        [
            ("M1", week_before, 5.0, 45.0),
            ("M1", H0, 4.0, 0.0),
            ("M1", H1, None, 45.0),  # readings unknown; planned like a week before
            ("M1", H2, None, 0.0),  # no plan a week before: nothing planned
        ],
        "machine_id string, hour_ts timestamp, kwh double, production_minutes double",
    )
    assert_df_equality(extended, expected, ignore_row_order=True, ignore_nullable=True)


def test_cli_score_without_a_champion_fails_with_the_fix(spark, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from lakehouse.cli import main

    monkeypatch.setenv("LAKEHOUSE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("LAKEHOUSE_LAKE_ROOT", str(tmp_path / "lake"))
    result = CliRunner().invoke(main, ["ml", "score", "--run-date", "2026-11-26"])
    assert result.exit_code == 1
    assert "has no 'champion' version: run `lakehouse ml train` first" in result.output
    assert (tmp_path / "var" / "mlflow" / "mlflow.db").is_file()
