"""Energy consumption forecast: kWh of a machine for an hour, from what is known 24
hours before (``FORECAST_FEATURES``), so one model serves each of the next 24 hours.

A scikit-learn ``HistGradientBoostingRegressor`` (fitted by
``lakehouse.ml.models.train_forecast``), served as an MLflow model from code: this
file is logged with the model, the estimator travels as a skops file.
Input: the ``FORECAST_FEATURES`` columns (numbers, ``machine_type`` a string).
Output: ``predicted_kwh`` (never negative).
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from lakehouse.ml.features import FORECAST_FEATURES
from lakehouse.ml.model_code import load_estimator, save_estimator
from lakehouse.ml.models import THREADS, design


class EnergyForecast(mlflow.pyfunc.PythonModel):
    input_columns = FORECAST_FEATURES

    def __init__(self, estimator=None, categories: list[str] | None = None) -> None:
        self.estimator = estimator
        self.categories = categories or []

    def save(self, folder) -> dict[str, str]:
        return save_estimator(self.estimator, folder, categories=self.categories)

    def load_context(self, context) -> None:
        self.estimator, settings = load_estimator(context.artifacts)
        self.categories = settings["categories"]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:
        with threadpool_limits(THREADS):
            predicted = self.estimator.predict(design(model_input, FORECAST_FEATURES, self.categories))
        return pd.Series(np.clip(predicted, 0.0, None), name="predicted_kwh")


mlflow.models.set_model(EnergyForecast())
