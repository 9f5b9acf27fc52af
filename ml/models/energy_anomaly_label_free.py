"""Energy anomaly detector without labels: the hour against its own day-ahead
forecast, judged per machine by a robust threshold.

Plants rarely have incident labels, so this detector needs none:
- expected kWh: a ``HistGradientBoostingRegressor`` with absolute-error loss (the
  anomalies it is trained among move a median less than a mean) from what is known
  24 hours before (``FORECAST_FEATURES``);
- per machine, the median and MAD of its out-of-fold residuals on the training
  period, relative to rated power (a machine never seen falls back to the fleet's
  median); ``z = |residual - median| / (1.4826 MAD)``, MAD floored at 2 % of rated
  power;
- ``anomaly_score = z / (z + Z_FLAG)``: 0.5 exactly at ``Z_FLAG``, so the flag and
  the score agree; ``is_anomaly`` = score >= 0.5;
- a stuck meter is a physical impossibility, not a statistic: an hour whose 60
  readings are identical while the machine draws power (``is_flat_hour`` and
  kWh > 0) scores 1.

Fitted by ``lakehouse.ml.models.train_label_free``; served as an MLflow model from
code, the estimator travelling as a skops file.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from lakehouse.ml.features import FORECAST_FEATURES
from lakehouse.ml.model_code import load_estimator, save_estimator
from lakehouse.ml.models import MAD_TO_SIGMA, THREADS, design

Z_FLAG = 4.0  # robust z-score of the residual above which an hour is flagged
SCALE_FLOOR = 0.02  # share of rated power: a machine with a flat history is not infinitely sure
INPUT_COLUMNS = tuple(dict.fromkeys(("machine_id", "kwh", "is_flat_hour", *FORECAST_FEATURES)))


class EnergyAnomalyLabelFree(mlflow.pyfunc.PythonModel):
    input_columns = INPUT_COLUMNS
    needs_labels = False

    def __init__(
        self, estimator=None, categories: list[str] | None = None, residuals: dict | None = None
    ) -> None:
        self.estimator = estimator
        self.categories = categories or []
        # machine_id -> [median, MAD] of residual / rated power; "*" is the fleet's
        self.residuals = residuals or {}

    def save(self, folder) -> dict[str, str]:
        return save_estimator(self.estimator, folder, categories=self.categories, residuals=self.residuals)

    def load_context(self, context) -> None:
        self.estimator, settings = load_estimator(context.artifacts)
        self.categories, self.residuals = settings["categories"], settings["residuals"]

    def expected_kwh(self, model_input: pd.DataFrame) -> np.ndarray:
        with threadpool_limits(THREADS):
            return self.estimator.predict(design(model_input, FORECAST_FEATURES, self.categories))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        rated = pd.to_numeric(model_input["rated_power_kw"], errors="coerce").to_numpy(float)
        kwh = pd.to_numeric(model_input["kwh"], errors="coerce").to_numpy(float)
        relative = (kwh - self.expected_kwh(model_input)) / rated
        fleet = self.residuals["*"]
        stats = np.array([self.residuals.get(m, fleet) for m in model_input["machine_id"].astype(str)], float)
        scale = np.maximum(MAD_TO_SIGMA * stats[:, 1], SCALE_FLOOR)
        z = np.abs(relative - stats[:, 0]) / scale
        score = np.where(np.isfinite(z), z / (z + Z_FLAG), 0.0)
        flat = pd.to_numeric(model_input["is_flat_hour"], errors="coerce").fillna(0).to_numpy() > 0
        score = np.where(flat & (kwh > 0), 1.0, score)
        return pd.DataFrame({"anomaly_score": score, "is_anomaly": score >= 0.5})


mlflow.models.set_model(EnergyAnomalyLabelFree())
