"""Training, the MLflow registry, the promotion gate and batch scoring into gold, on
the tiny lake (4 machines x 16 days, 3 hold-out days)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import functions as F

from lakehouse.lake import Lake, read_delta
from lakehouse.ml import tracking
from lakehouse.ml.scoring import ANOMALY_TABLE, FORECAST_TABLE, score_run_date
from lakehouse.ml.training import model_input, spark_features, to_pandas, train_all, train_forecast_model

from .conftest import RUN_DATE, own_mlflow_store

# One worker trains once for the whole module (the fixtures are module-scoped).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ml_training")]
MAX_ITER = 60  # enough to beat the baselines on the tiny lake, fast on a shared CPU
SCORED_AT = dt.datetime(2026, 11, 27, 5, 45)


@pytest.fixture(scope="module")
def store(tiny_lake, tmp_path_factory):
    """Settings with their own MLflow store (one SQLite file per test module/worker)."""
    return own_mlflow_store(tiny_lake, tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(autouse=True)
def _use_store(store):
    """Other tests of the worker may point MLflow elsewhere: each test here uses ``store``."""
    tracking.configure(store)


@pytest.fixture(scope="module")
def first_training(spark, tiny_lake, store):
    return train_all(spark, store, events_path=tiny_lake.truth, max_iter=MAX_ITER)


@pytest.fixture(scope="module")
def features(spark, tiny_lake):
    return to_pandas(spark_features(spark, Lake(tiny_lake.lake_root)))


def test_first_models_beat_their_baselines_and_become_champions(first_training):
    forecast, anomaly, label_free = first_training
    assert forecast.decision.promote and anomaly.decision.promote
    assert forecast.metrics["mae"] < forecast.metrics["baseline_mae"]
    assert anomaly.metrics["f1_overall"] > anomaly.metrics["baseline_f1_overall"]
    assert tracking.champion_version(tracking.FORECAST_MODEL) == forecast.version == "1"
    assert tracking.champion_version(tracking.ANOMALY_MODEL) == anomaly.version == "1"


def test_champions_read_from_the_store_file_are_the_registry_s(store, first_training):
    from mlflow import MlflowClient

    forecast, anomaly, _ = first_training
    client = MlflowClient()
    found = tracking.champions(store)
    for trained in (forecast, anomaly):
        location = client.get_model_version_download_uri(trained.model_name, trained.version)
        assert found[trained.model_name] == tracking.ChampionModel(
            trained.model_name, trained.version, trained.run_id, location
        )
        assert location.startswith("file:///") and location.endswith("/artifacts")


def test_runs_carry_params_metrics_signature_and_plots(first_training, store):
    import mlflow

    forecast, anomaly, label_free = first_training
    run = mlflow.get_run(forecast.run_id)
    assert run.data.params["holdout_rows"] == str(4 * 24 * 3)
    assert run.data.params["seed"] == "42"
    assert {"mae", "baseline_mae", "skill_mae", "cv_rmse", "nmbe", "smape"} <= set(run.data.metrics)
    assert run.data.tags["promoted"] == "True"
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(forecast.run_id, "evaluation")]
    assert artifacts == ["evaluation/forecast_holdout.png"]
    model = mlflow.models.get_model_info(f"models:/{tracking.ANOMALY_MODEL}/1")
    assert "is_flat_hour" in model.signature.inputs.input_names()
    assert {"f1_spike", "recall_drift", "event_recall_overall"} <= set(
        mlflow.get_run(anomaly.run_id).data.metrics
    )


def test_same_data_and_seed_give_the_same_metrics_and_a_tie_is_not_promoted(
    spark, tiny_lake, store, first_training
):
    again = train_all(spark, store, events_path=tiny_lake.truth, max_iter=MAX_ITER)
    for before, after in zip(first_training, again):
        assert after.metrics == before.metrics
        assert not after.decision.promote
    # The forecast and the supervised detector tie with their champions; the
    # label-free detector, second to the supervised one, was not promoted either time.
    assert all("does not beat the champion" in r.decision.reason for r in again[:2])
    assert not first_training[2].decision.promote
    assert tracking.champion_version(tracking.FORECAST_MODEL) == "1"


def test_the_gate_refuses_a_worse_model(store, features, first_training):
    worse = train_forecast_model(store, features, max_iter=3)  # 3 boosting rounds: underfit
    assert worse.metrics["mae"] > first_training[0].metrics["mae"]
    assert not worse.decision.promote
    assert worse.decision.champion == pytest.approx(first_training[0].metrics["mae"])
    assert int(worse.version) > 1, "registered all the same, for the record"
    assert tracking.champion_version(tracking.FORECAST_MODEL) == "1"


def test_scoring_writes_gold_prediction_tables_from_the_champions(
    spark, tiny_lake, store, first_training, features
):
    lake = Lake(tiny_lake.lake_root)
    result = score_run_date(spark, lake, RUN_DATE, SCORED_AT)
    forecast_model, anomaly_model, _ = first_training
    # The run date's hours of the 4 machines, and the 24 hours after it.
    assert (result.anomaly_rows, result.forecast_rows) == (4 * 24, 4 * 24)

    scores = read_delta(spark, lake.gold("energy", "prediction", ANOMALY_TABLE)).toPandas()
    silver = tiny_lake.hourly[tiny_lake.hourly["hour_ts"].dt.date == RUN_DATE]
    keys = ["machine_id", "hour_ts"]
    expected = silver[[*keys, "kwh"]].sort_values(keys).reset_index(drop=True)
    got = scores.sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[[*keys, "kwh"]], expected, check_dtype=False)
    assert got["anomaly_score"].between(0, 1).all()
    assert set(got["model_version"]) == {anomaly_model.version}
    assert set(got["model_run_id"]) == {anomaly_model.run_id}
    assert set(got["scored_at"]) == {pd.Timestamp(SCORED_AT)}
    # Scored from the champion's files: what the registry's champion predicts.
    import mlflow

    registered = mlflow.pyfunc.load_model(f"models:/{tracking.ANOMALY_MODEL}@{tracking.CHAMPION}")
    hours = features[features["hour_ts"].dt.date == RUN_DATE].sort_values(keys).reset_index(drop=True)
    columns = tuple(registered.metadata.get_input_schema().input_names())
    expected_scores = registered.predict(model_input(hours, columns))
    assert got["anomaly_score"].to_numpy() == pytest.approx(
        expected_scores["anomaly_score"].to_numpy(), abs=1e-12
    )
    assert got["is_anomaly"].tolist() == expected_scores["is_anomaly"].tolist()

    forecast = read_delta(spark, lake.gold("energy", "prediction", FORECAST_TABLE)).toPandas()
    next_day = pd.Timestamp(RUN_DATE) + pd.Timedelta(days=1)
    assert forecast["hour_ts"].min() == next_day
    assert forecast["hour_ts"].max() == next_day + pd.Timedelta(hours=23)
    assert forecast.groupby("machine_id").size().to_dict() == {m: 24 for m in silver["machine_id"].unique()}
    assert (forecast["predicted_kwh"] >= 0).all() and forecast["predicted_kwh"].notna().all()
    assert set(forecast["model_name"]) == {tracking.FORECAST_MODEL}
    assert set(forecast["model_version"]) == {forecast_model.version}

    # Scoring the same date again replaces its rows.
    score_run_date(spark, lake, RUN_DATE, SCORED_AT + dt.timedelta(hours=1))
    again = read_delta(spark, lake.gold("energy", "prediction", ANOMALY_TABLE))
    assert again.count() == 4 * 24
    assert again.where(F.col("scored_at") == F.lit(SCORED_AT)).count() == 0


def test_scoring_without_a_champion_says_what_to_do_or_skips(spark, tmp_path, tiny_lake, store, capsys):
    from lakehouse.ml.scoring import configure_and_score

    empty = tiny_lake.settings(tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(LookupError, match="has no 'champion' version: run `lakehouse ml train`"):
            configure_and_score(empty, spark, SCORED_AT)
        # The daily job on a lake never trained for: nothing written, and it says why.
        assert configure_and_score(empty, spark, SCORED_AT, if_no_champion="skip") is None
        assert (
            "no champion for energy_consumption_forecast, energy_anomaly_detector" in capsys.readouterr().out
        )
    finally:
        tracking.configure(store)


def test_without_labels_the_label_free_detector_is_trained_alone_and_serves(spark, tiny_lake, tmp_path):
    import mlflow

    settings = tiny_lake.settings(
        tracking_uri=f"sqlite:///{tmp_path / 'nolabels.db'}", artifact_root=str(tmp_path / "artifacts")
    )
    tracking.configure(settings)
    results = train_all(spark, settings, events_path=tmp_path / "no_labels.csv", max_iter=MAX_ITER)
    assert [r.model_name for r in results] == [tracking.FORECAST_MODEL, tracking.ANOMALY_MODEL]
    detector = results[1]
    assert detector.decision.promote and detector.decision.reason == "no labels; first detector: promoted"
    assert tracking.champion_version(tracking.ANOMALY_MODEL) == detector.version == "1"
    params = mlflow.get_run(detector.run_id).data.params
    assert (params["detector"], params["labels"]) == ("energy_anomaly_label_free", "none")
    assert not any(k.startswith("f1") for k in detector.metrics), "no labels, no F1"
    # Retrained on the same data: the same expected kWh, so the champion stays.
    again = train_all(spark, settings, events_path=tmp_path / "no_labels.csv", max_iter=MAX_ITER)[1]
    assert not again.decision.promote and "does not beat the champion" in again.decision.reason


def test_the_gate_judges_against_the_champion_of_the_store_it_registers_in(
    store, features, first_training, tiny_lake, tmp_path
):
    """MLflow still points at ``store`` (which has a champion); a fresh store has none,
    so the first model trained into it is its champion."""
    fresh = own_mlflow_store(tiny_lake, tmp_path / "fresh")
    tracking.configure(store)  # as another test of this worker, or a notebook, left it
    trained = train_forecast_model(fresh, features, max_iter=MAX_ITER)
    assert trained.version == "1" and trained.decision.promote and trained.decision.champion is None
    assert tracking.champion_version(tracking.FORECAST_MODEL) == "1"  # of the fresh store
