"""Evaluating registered models without retraining (``lakehouse ml evaluate``), on the
tiny lake (4 machines x 16 days, 3 hold-out days): the same lake gives back exactly
the metrics training logged."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lakehouse.ml import tracking
from lakehouse.ml.evaluation import evaluate_models, resolve
from lakehouse.ml.training import train_all

from .conftest import RUN_DATE, own_mlflow_store

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ml_evaluation")]
MAX_ITER = 60  # enough for both to beat their baselines (champions) on the tiny lake


@pytest.fixture(scope="module")
def store(tiny_lake, tmp_path_factory):
    return own_mlflow_store(tiny_lake, tmp_path_factory.mktemp("mlflow_evaluation"))


@pytest.fixture(autouse=True)
def _use_store(store):
    tracking.configure(store)


@pytest.fixture(scope="module")
def trained(spark, tiny_lake, store):
    """forecast v1 (champion), supervised detector v1 (champion), label-free detector v2."""
    return train_all(spark, store, events_path=tiny_lake.truth, max_iter=MAX_ITER)


@pytest.fixture(scope="module")
def report(spark, tiny_lake, store, trained):
    return evaluate_models(spark, store, events_path=tiny_lake.truth)


def test_default_models_are_both_champions_and_the_label_free_detector(report, trained):
    forecast, supervised, label_free = trained
    got = [
        (e.model.name, e.model.version, e.model.detector, e.model.champion, e.kind)
        for e in report.evaluations
    ]
    assert got == [
        (tracking.FORECAST_MODEL, "1", "energy_forecast", True, "forecast"),
        (tracking.ANOMALY_MODEL, "1", "energy_anomaly", True, "anomaly"),
        (tracking.ANOMALY_MODEL, "2", "energy_anomaly_label_free", False, "anomaly"),
    ]
    assert [e.model.run_id for e in report.evaluations] == [r.run_id for r in trained]
    assert (forecast.version, supervised.version, label_free.version) == ("1", "1", "2")


def test_the_same_lake_gives_back_exactly_the_metrics_training_logged(report, trained):
    import mlflow

    for evaluation, result in zip(report.evaluations, trained, strict=True):
        assert evaluation.metrics == result.metrics
        assert evaluation.details == result.details
        logged = mlflow.get_run(result.run_id).data.metrics
        assert {k: logged[k] for k in evaluation.metrics} == evaluation.metrics
    forecast, supervised, label_free = report.evaluations
    run = mlflow.get_run(trained[0].run_id)
    assert report.holdout_start == run.data.params["holdout_start"] == "2026-11-24T00:00:00"
    assert report.holdout_rows == 4 * 24 * 3
    assert forecast.rows == int(run.data.params["holdout_rows"])
    assert int(mlflow.get_run(trained[1].run_id).data.params["holdout_events"]) == report.holdout_events
    # Per type, the detectors beside the same robust z-score baseline.
    assert supervised.details["baseline"] == label_free.details["baseline"]
    assert set(supervised.details["model"]) == {"overall", *supervised.details["event_recall"]}
    assert forecast.metrics["skill_mae"] == pytest.approx(
        1 - forecast.metrics["mae"] / forecast.metrics["baseline_mae"]
    )


def test_a_model_uri_resolves_to_its_registered_version(trained):
    ref = resolve(f"models:/{tracking.ANOMALY_MODEL}@champion")
    assert (ref.version, ref.run_id, ref.detector, ref.champion) == (
        "1",
        trained[1].run_id,
        "energy_anomaly",
        True,
    )
    assert resolve(f"models:/{tracking.ANOMALY_MODEL}/2").detector == "energy_anomaly_label_free"
    with pytest.raises(LookupError, match="no such registered model version"):
        resolve(f"models:/{tracking.ANOMALY_MODEL}/9")


def test_the_command_prints_the_tables_and_writes_the_figures(
    tiny_lake, store, trained, tmp_path, monkeypatch
):
    from lakehouse.ml.cli import ml_cli

    monkeypatch.setenv("LAKEHOUSE_ML__HOLDOUT_DAYS", "3")
    figures = tmp_path / "figures.json"
    args = ["evaluate", "--lake-root", tiny_lake.lake_root, "--run-date", RUN_DATE.isoformat()]
    args += ["--truth", str(tiny_lake.truth), "--tracking-uri", store.ml.tracking_uri, "--json", str(figures)]
    args += [
        "--model",
        f"models:/{tracking.FORECAST_MODEL}/1",
        "--model",
        f"models:/{tracking.ANOMALY_MODEL}/2",
    ]
    result = CliRunner().invoke(ml_cli, args)
    assert result.exit_code == 0, result.output
    assert "energy_anomaly_label_free v2" in result.output
    assert "robust z-score (MAD)" in result.output and "same hour last week" in result.output
    written = json.loads(figures.read_text())
    assert written["holdout_rows"] == 4 * 24 * 3
    assert [m["version"] for m in written["models"]] == ["1", "2"]
    assert written["models"][0]["metrics"] == trained[0].metrics
    assert written["models"][1]["metrics"] == trained[2].metrics


def test_without_a_champion_it_says_what_to_run(spark, tiny_lake, store, tmp_path):
    from lakehouse.ml.cli import ml_cli

    empty = tiny_lake.settings(tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(
            LookupError,
            match="'energy_consumption_forecast' has no 'champion' version: run `lakehouse ml train`",
        ):
            evaluate_models(spark, empty, events_path=tiny_lake.truth)
        args = ["evaluate", "--lake-root", tiny_lake.lake_root, "--run-date", RUN_DATE.isoformat()]
        result = CliRunner().invoke(ml_cli, [*args, "--tracking-uri", empty.ml.tracking_uri])
        assert result.exit_code == 1
        assert "has no 'champion' version: run `lakehouse ml train` first" in result.output
    finally:
        tracking.configure(store)


def test_without_labelled_hours_in_the_hold_out_only_the_flagged_share(
    spark, tiny_lake, store, trained, tmp_path
):
    import pandas as pd

    events = pd.read_csv(tiny_lake.truth)
    before = events[pd.to_datetime(events["end_ts"], utc=True) < pd.Timestamp("2026-11-24", tz="UTC")]
    truth = tmp_path / "old_anomalies.csv"
    before.to_csv(truth, index=False)
    assert 0 < len(before) < len(events)
    report = evaluate_models(spark, store, events_path=truth)
    forecast, supervised, label_free = report.evaluations
    assert report.holdout_events == 0
    assert forecast.metrics == trained[0].metrics
    assert supervised.metrics == {"flagged_share": trained[1].metrics["flagged_share"]}
    assert label_free.metrics == {"flagged_share": trained[2].metrics["flagged_share"]}
    assert supervised.details == label_free.details == {}
