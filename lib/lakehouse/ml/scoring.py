"""Batch scoring with the ``champion`` models into gold prediction tables.

- ``gold/domain=energy/model=prediction/table=consumption_forecast``: one row per
  machine x forecast hour, key ``(machine_id, hour_ts)``: the kWh forecast for each
  of the 24 hours after the run date, made with what is known at the end of it.
- ``gold/domain=energy/model=prediction/table=anomaly_scores``: one row per machine x
  hour of the run date, key ``(machine_id, hour_ts)``: anomaly score (0-1) and flag.

Both carry ``model_name``, ``model_version``, ``model_run_id`` and ``scored_at``.
Scoring one date again replaces that date's rows (``replaceWhere``), so reruns are
idempotent. The anomaly scores then update the gold ``fact_consommation_energie``
rows of the scored hours in place (``apply_scores_to_fact``): the fact, built before
the scoring in the daily run, carries the model's class the same day, as a rebuild
of the fact (which reads the stored scores) would give. Both models run inside the
engine through ``mapInPandas``, loaded once and shipped with the function (see
``_shipped_model`` for why not ``spark_udf``), straight from the files of the champion
version (``tracking.champions`` reads which version and where without the registry).
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Settings
from lakehouse.engine.compat import score_without_spark_udf
from lakehouse.gold.energy_star import model_verdicts, raised_by_model
from lakehouse.lake import Lake, delta_exists, read_delta, write_delta
from lakehouse.ml import tracking
from lakehouse.ml.features import HOUR_S
from lakehouse.ml.tracking import ANOMALY_MODEL, CHAMPION, FORECAST_MODEL, ChampionModel

FORECAST_TABLE = "consumption_forecast"
ANOMALY_TABLE = "anomaly_scores"  # = lakehouse.gold.energy_star.ANOMALY_SCORES_PATH, read by the fact
FACT_TABLE = "fact_consommation_energie"
HORIZON_HOURS = 24
MODEL_COLUMNS = ("model_name", "model_version", "model_run_id", "scored_at")
_log = logging.getLogger(__name__)


def _no_champion(model_name: str) -> LookupError:
    return LookupError(
        f"registered model {model_name!r} has no {CHAMPION!r} version: run `lakehouse ml train` first"
    )


def champion(model_name: str) -> ChampionModel:
    """The version holding the ``champion`` alias in the store MLflow points at; a
    clear error when there is none."""
    found = tracking.champions(names=(model_name,))[model_name]
    if found is None:
        raise _no_champion(model_name)
    return found


def with_future_hours(hourly: DataFrame, start: dt.datetime, hours: int = HORIZON_HOURS) -> DataFrame:
    """Silver hourly readings plus ``hours`` empty hours per machine from ``start``
    (UTC, naive): readings NULL, production minutes taken from the same hour a week
    before (the weekly production plan is the best plan silver holds)."""
    start_s = int(start.replace(tzinfo=dt.UTC).timestamp())
    machines = hourly.select("machine_id").distinct()
    offsets = hourly.sparkSession.range(hours).select(
        (F.lit(start_s) + F.col("id") * HOUR_S).alias("_hour_s")
    )
    future = machines.crossJoin(offsets)
    week_before = hourly.select(
        F.col("machine_id").alias("_plan_machine"),
        (F.unix_seconds("hour_ts") + 168 * HOUR_S).alias("_plan_hour_s"),
        F.col("production_minutes").alias("_planned_minutes"),
    )
    on = (F.col("machine_id") == F.col("_plan_machine")) & (F.col("_hour_s") == F.col("_plan_hour_s"))
    planned = future.join(week_before, on, "left")
    empty = {
        c: F.lit(None).cast(t)
        for c, t in hourly.dtypes
        if c not in ("machine_id", "hour_ts", "production_minutes")
    }
    rows = planned.select(
        "machine_id",
        F.timestamp_seconds("_hour_s").alias("hour_ts"),
        *[v.alias(c) for c, v in empty.items()],
        F.coalesce("_planned_minutes", F.lit(0.0)).cast("double").alias("production_minutes"),
    )
    return hourly.unionByName(rows.select(*hourly.columns))


def _with_model_columns(df: DataFrame, model: ChampionModel, scored_at: dt.datetime) -> DataFrame:
    return df.select(
        "*",
        F.lit(model.name).alias("model_name"),
        F.lit(model.version).alias("model_version"),
        F.lit(model.run_id).alias("model_run_id"),
        F.lit(scored_at).cast("timestamp").alias("scored_at"),
    )


TEXT_COLUMNS = ("machine_id", "machine_type")


def _shipped_model(model: ChampionModel):
    """The pyfunc model, loaded once here and shipped to the workers with the function
    that uses it (its ``ml/models/`` code pickled by value), and its input columns.

    Not ``mlflow.pyfunc.spark_udf`` (gap ``spark_udf_struct_result`` of
    ``lakehouse.engine.compat``): the shipped object goes through
    ``score_without_spark_udf``, which works on every engine."""
    import mlflow.pyfunc

    from lakehouse.ml.model_code import pickle_by_value

    folder = _local_folder(model.uri)
    # MLflow's own check of the model's requirements scans every installed distribution
    # (about 1 s per process); the same check of the model's pins is done here instead.
    pyfunc = mlflow.pyfunc.load_model(model.uri, suppress_warnings=folder is not None)
    if folder is not None:
        for difference in environment_differences(folder, pyfunc.metadata.flavors):
            _log.warning("%s v%s was logged with %s", model.name, model.version, difference)
    pickle_by_value(sys.modules[type(pyfunc.unwrap_python_model()).__module__])
    return pyfunc, list(pyfunc.metadata.get_input_schema().input_names())


def _local_folder(uri: str) -> Path | None:
    """The folder of a ``file:`` URI or a plain path; None for any other URI."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path))
    return Path(uri) if not parsed.scheme else None


def environment_differences(folder: Path, flavors: dict) -> list[str]:
    """What this process runs that differs from what a logged model pins: each
    ``name==version`` of its ``requirements.txt`` installed in another version (or not
    at all), and another Python minor version. Empty when they match."""
    from importlib.metadata import PackageNotFoundError, version

    differences = []
    requirements = folder / "requirements.txt"
    lines = requirements.read_text(encoding="utf-8").splitlines() if requirements.is_file() else []
    for line in lines:
        name, pinned, wanted = line.split("#", 1)[0].strip().partition("==")
        if not pinned or not name or ";" in wanted:
            continue
        try:
            installed = version(name.strip())
        except PackageNotFoundError:
            installed = "not installed"
        if installed != wanted.strip():
            differences.append(f"{name.strip()}=={wanted.strip()} (here: {installed})")
    logged_python = str(flavors.get("python_function", {}).get("python_version") or "")
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if logged_python and logged_python.split(".")[:2] != running.split("."):
        differences.append(f"Python {logged_python} (here: {sys.version.split()[0]})")
    return differences


def _scored_inputs(features: DataFrame, model_columns: list[str]) -> DataFrame:
    """The keys, kWh and the model's columns, typed as its signature wants them."""
    columns = dict.fromkeys(["machine_id", "hour_ts", "kwh", *model_columns])
    return features.select(
        *[
            F.col(c).cast("string" if c in TEXT_COLUMNS else "double").alias(c)
            if c != "hour_ts"
            else F.col(c)
            for c in columns
        ]
    )


def _design(batch, model_columns: list[str]):
    design = batch[model_columns].reset_index(drop=True)
    for column in TEXT_COLUMNS:
        if column in design:
            design[column] = design[column].astype(str)
    return design


FORECAST_SCHEMA = "machine_id string, hour_ts timestamp, predicted_kwh double"


def predict_consumption(features: DataFrame, model: ChampionModel, scored_at: dt.datetime) -> DataFrame:
    """``machine_id, hour_ts, predicted_kwh`` + model columns for every row of ``features``."""
    pyfunc, model_columns = _shipped_model(model)

    def predict(batches):
        import numpy as np
        import pandas as pd

        for batch in batches:
            if batch.empty:
                continue
            predicted = np.asarray(pyfunc.predict(_design(batch, model_columns)), float)
            yield pd.DataFrame(
                {
                    "machine_id": batch["machine_id"].to_numpy(),
                    "hour_ts": batch["hour_ts"].to_numpy(),
                    "predicted_kwh": predicted,
                }
            )

    scored = score_without_spark_udf(_scored_inputs(features, model_columns), predict, FORECAST_SCHEMA)
    return _with_model_columns(scored, model, scored_at)


ANOMALY_SCHEMA = "machine_id string, hour_ts timestamp, kwh double, anomaly_score double, is_anomaly boolean"


def score_anomalies(features: DataFrame, model: ChampionModel, scored_at: dt.datetime) -> DataFrame:
    """``machine_id, hour_ts, kwh, anomaly_score, is_anomaly`` + model columns. The
    model gets the columns of its signature (the supervised and the label-free
    detectors take different ones)."""
    pyfunc, model_columns = _shipped_model(model)

    def score(batches):
        import pandas as pd

        for batch in batches:
            if batch.empty:
                continue
            result = pyfunc.predict(_design(batch, model_columns))
            yield pd.DataFrame(
                {
                    "machine_id": batch["machine_id"].to_numpy(),
                    "hour_ts": batch["hour_ts"].to_numpy(),
                    "kwh": batch["kwh"].to_numpy(),
                    "anomaly_score": result["anomaly_score"].to_numpy(float),
                    "is_anomaly": result["is_anomaly"].to_numpy(bool),
                }
            )

    scored = score_without_spark_udf(_scored_inputs(features, model_columns), score, ANOMALY_SCHEMA)
    return _with_model_columns(scored, model, scored_at)


def _write_window(df: DataFrame, path: str, start: dt.datetime, end: dt.datetime) -> None:
    """Replace the rows of ``[start, end)`` (the whole table on the first write)."""
    where = (
        f"hour_ts >= TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}' AND hour_ts < TIMESTAMP '{end:%Y-%m-%d %H:%M:%S}'"
    )
    window = df.where(where)
    if delta_exists(path):
        write_delta(window, path, replace_where=where)
    else:
        write_delta(window, path)


@dataclass(frozen=True)
class ScoringResult:
    forecast_rows: int
    anomaly_rows: int
    forecast_model: ChampionModel
    anomaly_model: ChampionModel
    fact_rows_updated: int = 0  # fact_consommation_energie rows of the scored hours
    first_day: dt.date | None = None  # the days scored: first_day .. the run date
    last_day: dt.date | None = None


def score_run_date(
    spark: SparkSession, lake: Lake, run_date: dt.date, scored_at: dt.datetime
) -> ScoringResult:
    """Anomaly scores for the hours of ``run_date`` and the forecast of the next 24
    hours, from silver, with the champions; written to gold (see the module doc)."""
    return score_days(spark, lake, run_date, run_date, scored_at)


def score_days(
    spark: SparkSession,
    lake: Lake,
    first_day: dt.date,
    run_date: dt.date,
    scored_at: dt.datetime,
    *,
    models: tuple[ChampionModel, ChampionModel] | None = None,
) -> ScoringResult:
    """``score_run_date`` for every day from ``first_day`` to ``run_date`` in one pass:
    the anomaly scores of their hours, and each day's forecast of the next 24 hours
    (for the days scored late, a forecast made only from what was known the day
    before, against an actual already in silver). ``models``: the (forecast, anomaly)
    champions when the caller has looked them up already."""
    from lakehouse.ml.training import spark_features

    if first_day > run_date:
        raise ValueError(f"first day {first_day} is after the run date {run_date}")
    forecast_model, anomaly_model = models or (champion(FORECAST_MODEL), champion(ANOMALY_MODEL))
    day_start = dt.datetime.combine(first_day, dt.time())
    day_end = dt.datetime.combine(run_date, dt.time()) + dt.timedelta(days=1)
    horizon_end = day_end + dt.timedelta(hours=HORIZON_HOURS)
    hourly = read_delta(spark, lake.silver("energy", "iot_readings_hourly"))
    history = hourly.where(F.col("hour_ts") < F.lit(day_end))
    # 8 days of history give every lag (168 h) and rolling window of the scored hours.
    recent = history.where(F.col("hour_ts") >= F.lit(day_start - dt.timedelta(days=8)))
    features = spark_features(spark, lake, with_future_hours(recent, day_end))

    forecast_path = lake.gold("energy", "prediction", FORECAST_TABLE)
    anomaly_path = lake.gold("energy", "prediction", ANOMALY_TABLE)
    # Each scored day forecasts the next one: the run date's forecast is the 24 hours
    # after it, a day scored late forecasts a day whose actual is already known.
    forecast_start = day_start + dt.timedelta(days=1)
    forecast = predict_consumption(
        features.where(F.col("hour_ts") >= F.lit(forecast_start)), forecast_model, scored_at
    )
    _write_window(forecast, forecast_path, forecast_start, horizon_end)
    scored_hours = features.where(
        (F.col("hour_ts") >= F.lit(day_start)) & (F.col("hour_ts") < F.lit(day_end))
    )
    _write_window(score_anomalies(scored_hours, anomaly_model, scored_at), anomaly_path, day_start, day_end)
    day_scores = read_delta(spark, anomaly_path).where(
        (F.col("hour_ts") >= F.lit(day_start)) & (F.col("hour_ts") < F.lit(day_end))
    )
    fact_rows = apply_scores_to_fact(spark, lake, day_scores)
    time_window = (F.col("hour_ts") >= F.lit(day_start)) & (F.col("hour_ts") < F.lit(horizon_end))
    return ScoringResult(
        forecast_rows=read_delta(spark, forecast_path).where(time_window).count(),
        anomaly_rows=read_delta(spark, anomaly_path).where(time_window).count(),
        forecast_model=forecast_model,
        anomaly_model=anomaly_model,
        fact_rows_updated=fact_rows,
        first_day=first_day,
        last_day=run_date,
    )


def apply_scores_to_fact(spark: SparkSession, lake: Lake, scores: DataFrame) -> int:
    """Update the gold ``fact_consommation_energie`` rows of the hours in ``scores``
    (``anomaly_scores`` rows) in one ``MERGE`` on (machine_id, hour_ts), the fact
    definition's own join: ``model_anomaly_score`` and the final ``anomaly_class``,
    recomputed from the row's ``rule_anomaly_class`` (so a newer model that no longer
    flags an hour gives it back the rules' class). Other rows are not touched. Returns
    the number of fact rows matched; 0 when the fact does not exist yet."""
    path = lake.gold("energy", "star", FACT_TABLE)
    if not delta_exists(path):
        return 0
    fact = read_delta(spark, path)
    if "rule_anomaly_class" not in fact.columns:
        raise ValueError(
            f"{path} has no rule_anomaly_class column (built by an older definition): "
            "refresh the gold energy tables before scoring"
        )
    verdicts = model_verdicts(scores)
    on = (F.col("machine_id") == F.col("_score_machine")) & (F.col("hour_ts") == F.col("_score_hour"))
    keys = fact.select("machine_id", "hour_ts", "rule_anomaly_class")
    updates = keys.join(verdicts, on, "inner").select(
        "machine_id",
        "hour_ts",
        "model_anomaly_score",
        raised_by_model(F.col("rule_anomaly_class"), F.col("_model_flag")).alias("anomaly_class"),
    )
    view = f"__fact_score_updates_{uuid.uuid4().hex}"
    updates.createOrReplaceTempView(view)
    location = path.replace("`", "``")
    try:
        matched = spark.table(view).count()
        if matched:
            spark.sql(
                f"MERGE INTO delta.`{location}` AS t USING {view} AS s "
                "ON t.machine_id = s.machine_id AND t.hour_ts = s.hour_ts "
                "WHEN MATCHED THEN UPDATE SET "
                "model_anomaly_score = s.model_anomaly_score, anomaly_class = s.anomaly_class"
            ).collect()
    finally:
        spark.catalog.dropTempView(view)
    return matched


def with_model_anomaly_class(fact: DataFrame, scores: DataFrame) -> DataFrame:
    """Fold the model's verdict into ``fact_consommation_energie``'s rule-based
    ``anomaly_class``: an hour the model flags is at least ``'warning'`` (a rule's
    ``'critical'`` stays); adds ``model_anomaly_score`` (NULL where the hour was not
    scored, whose class is then the rule's). The gold fact itself keeps the rules'
    class apart (``lakehouse.gold.energy_star.with_model_verdict``); this is the same rule
    for any frame with ``machine_id, hour_ts, anomaly_class``."""
    verdicts = model_verdicts(scores)
    on = (F.col("machine_id") == F.col("_score_machine")) & (F.col("hour_ts") == F.col("_score_hour"))
    folded = raised_by_model(F.col("anomaly_class"), F.col("_model_flag"))
    joined = fact.join(verdicts, on, "left")
    return joined.withColumn("anomaly_class", folded).drop("_score_machine", "_score_hour", "_model_flag")


def configure_and_score(
    settings: Settings,
    spark: SparkSession,
    scored_at: dt.datetime,
    *,
    if_no_champion: Literal["fail", "skip"] = "fail",
) -> ScoringResult | None:
    """Score the run date of ``settings`` and the days before it that were never scored
    (at most ``ml.catch_up_days``, e.g. after the first training or an outage), with
    its MLflow store. ``if_no_champion="skip"`` (the daily job on a lake no model was
    trained for yet) returns None instead of failing when a model has no champion."""
    champions = tracking.champions(settings, (FORECAST_MODEL, ANOMALY_MODEL))
    missing = [name for name, found in champions.items() if found is None]
    if missing and if_no_champion == "skip":
        print(f"not scored: no champion for {', '.join(missing)} yet (run the ml_training_weekly job)")
        return None
    if missing:
        raise _no_champion(missing[0])
    tracking.configure(settings)  # a champion stored elsewhere than in a local file loads through MLflow
    lake = Lake(settings.lake_root)
    first_day = first_unscored_day(spark, lake, settings.run_date, settings.ml.catch_up_days)
    models = (champions[FORECAST_MODEL], champions[ANOMALY_MODEL])
    return score_days(spark, lake, first_day, settings.run_date, scored_at, models=models)


def first_unscored_day(spark: SparkSession, lake: Lake, run_date: dt.date, catch_up_days: int) -> dt.date:
    """The day after the last day with anomaly scores before ``run_date``, no earlier
    than ``catch_up_days`` - 1 days before it; the run date itself at the latest."""
    earliest = run_date - dt.timedelta(days=catch_up_days - 1)
    path = lake.gold("energy", "prediction", ANOMALY_TABLE)
    if not delta_exists(path):
        return earliest
    before = read_delta(spark, path).where(F.col("hour_ts") < F.lit(dt.datetime.combine(run_date, dt.time())))
    last = before.agg(F.max("hour_ts").alias("last")).first()["last"]
    if last is None:
        return earliest
    return min(run_date, max(earliest, last.date() + dt.timedelta(days=1)))
