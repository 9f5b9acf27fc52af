"""Folding the model's verdict into the fact's anomaly class; future hours to forecast."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality

from lakehouse.gold.energy_star import build_dim_machine, build_fact_consommation_energie
from lakehouse.lake import read_delta, write_delta
from lakehouse.ml.scoring import (
    ANOMALY_TABLE,
    FACT_TABLE,
    apply_scores_to_fact,
    with_future_hours,
    with_model_anomaly_class,
)

H0, H1, H2, H3 = (dt.datetime(2026, 11, 26, h) for h in range(4))


def test_a_flag_raises_normal_to_warning_and_keeps_critical(spark):
    fact = spark.createDataFrame(
        [
            ("M1", H0, "normal"),
            ("M1", H1, "critical"),
            ("M1", H2, None),
            ("M1", H3, "normal"),
            ("M2", H0, "warning"),
        ],
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
    # The store of the settings was asked, and only read: no empty store left behind.
    assert (tmp_path / "var" / "mlflow").is_dir()
    assert not (tmp_path / "var" / "mlflow" / "mlflow.db").exists()


HOURLY_SCHEMA = (
    "machine_id string, hour_ts timestamp, kwh double, mean_kw double, peak_kw double, "
    "mean_temperature_c double, max_vibration_mm_s double, minutes_observed long, production_minutes double"
)
SCORES_SCHEMA = (
    "machine_id string, hour_ts timestamp, anomaly_score double, is_anomaly boolean, "
    "model_name string, model_version string, model_run_id string, scored_at timestamp"
)
SCORED_AT = dt.datetime(2026, 11, 27, 6)


def _star_inputs(spark):
    """M001 rated 40 kW at 10 kW (load factor 0.25 never decides); vibration 1.0 ->
    'normal' (H1), 3.0 -> 'warning' (H2), 8.0 -> 'critical' (H3)."""
    machines = spark.createDataFrame(
        [("M001", "S01", "tablet_press", 40.0, dt.date(2020, 1, 1))],
        "machine_id string, site_id string, machine_type string, rated_power_kw double, commissioned_on date",
    )
    hourly = spark.createDataFrame(
        [("M001", h, 10.0, 10.0, 12.0, 40.0, v, 60, 0.0) for h, v in ((H1, 1.0), (H2, 3.0), (H3, 8.0))],
        HOURLY_SCHEMA,
    )
    return hourly, build_dim_machine(machines)


def _scores(spark, rows, version="3", scored_at=SCORED_AT):
    return spark.createDataFrame(
        [(m, h, score, flag, "energy_anomaly", version, "run-1", scored_at) for m, h, score, flag in rows],
        SCORES_SCHEMA,
    )


def _classes(df):
    return df.select("hour_ts", "rule_anomaly_class", "model_anomaly_score", "anomaly_class")


CLASSES_SCHEMA = (
    "hour_ts timestamp, rule_anomaly_class string, model_anomaly_score double, anomaly_class string"
)


def test_scores_update_exactly_the_scored_fact_rows_as_a_rebuild_would(spark, lake):
    hourly, dim = _star_inputs(spark)
    fact_path = lake.gold("energy", "star", FACT_TABLE)
    write_delta(build_fact_consommation_energie(hourly, dim), fact_path)  # built before the scoring
    before = read_delta(spark, fact_path).toPandas().set_index("hour_ts").sort_index()
    scores = _scores(spark, [("M001", H1, 0.91, True), ("M001", H3, 0.97, True), ("M001", H0, 0.99, True)])
    write_delta(scores, lake.gold("energy", "prediction", ANOMALY_TABLE))

    assert apply_scores_to_fact(spark, lake, scores) == 2  # H1 and H3; H0 has no fact row

    after = read_delta(spark, fact_path)
    expected = spark.createDataFrame(
        [
            (H1, "normal", 0.91, "warning"),  # flagged normal hour -> warning
            (H2, "warning", None, "warning"),  # not scored: untouched
            (H3, "critical", 0.97, "critical"),  # flagged, critical stays
        ],
        CLASSES_SCHEMA,
    )
    assert_df_equality(_classes(after), expected, ignore_row_order=True, ignore_nullable=True)
    changed = after.toPandas().set_index("hour_ts").sort_index()
    others = [c for c in before.columns if c not in ("model_anomaly_score", "anomaly_class")]
    assert changed[others].equals(before[others])  # keys, measures and the rules' class as they were
    from deltalake import DeltaTable

    assert DeltaTable(fact_path).history(1)[0]["operation"] == "MERGE"  # in place, one commit

    # A full rebuild of the fact reads the stored scores and gives the same table.
    rebuilt = build_fact_consommation_energie(
        hourly, dim, scores=read_delta(spark, lake.gold("energy", "prediction", ANOMALY_TABLE))
    )
    assert_df_equality(after, rebuilt, ignore_row_order=True, ignore_nullable=True)


def test_a_newer_model_that_no_longer_flags_gives_back_the_rules_class(spark, lake):
    hourly, dim = _star_inputs(spark)
    fact_path = lake.gold("energy", "star", FACT_TABLE)
    write_delta(build_fact_consommation_energie(hourly, dim), fact_path)
    apply_scores_to_fact(spark, lake, _scores(spark, [("M001", H1, 0.91, True)]))
    rescored = _scores(
        spark, [("M001", H1, 0.12, False)], version="4", scored_at=SCORED_AT + dt.timedelta(hours=1)
    )
    assert apply_scores_to_fact(spark, lake, rescored) == 1
    row = _classes(read_delta(spark, fact_path)).where(f"hour_ts = TIMESTAMP'{H1}'").first()
    assert (row.rule_anomaly_class, row.model_anomaly_score, row.anomaly_class) == ("normal", 0.12, "normal")


def test_scores_without_a_fact_change_nothing_and_an_old_fact_is_refused(spark, lake):
    scores = _scores(spark, [("M001", H1, 0.91, True)])
    assert apply_scores_to_fact(spark, lake, scores) == 0  # gold not built yet: nothing to update
    old_fact = spark.createDataFrame(
        [("M001", H1, "normal")], "machine_id string, hour_ts timestamp, anomaly_class string"
    )
    fact_path = lake.gold("energy", "star", FACT_TABLE)
    write_delta(old_fact, fact_path)
    with pytest.raises(ValueError, match="fact_consommation_energie has no rule_anomaly_class column"):
        apply_scores_to_fact(spark, lake, scores)
    assert read_delta(spark, fact_path).first().anomaly_class == "normal"
