"""The forecast of one real meter (``lakehouse ml meter train``), logged to MLflow
as a model from code.

MLflow runs this file when it loads the model: ``set_model`` below tells it which
object serves predictions, and ``load_context`` reads the fitted
``HistGradientBoostingRegressor`` from the model's ``estimator`` artifact, a skops
file (no pickle: ``lakehouse.ml.model_code.load_estimator`` refuses a file that would
create anything but scikit-learn and numpy objects). The model takes the feature
columns of ``lakehouse.ml.meters.meter_features`` (``FEATURES``; extra columns are
ignored) and returns ``predicted_kwh``, the kWh of each hour forecast a day ahead.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel
from threadpoolctl import threadpool_limits

from lakehouse.ml.model_code import load_estimator


class MeterForecast(PythonModel):
    def load_context(self, context) -> None:
        self.estimator, _ = load_estimator(context.artifacts)
        self.features = list(self.estimator.feature_names_in_)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:
        design = model_input.loc[:, self.features].apply(pd.to_numeric, errors="coerce").astype("float64")
        with threadpool_limits(1):  # one OpenMP thread: much faster on a shared CPU
            predicted = self.estimator.predict(design)
        return pd.Series(np.clip(predicted, 0.0, None), name="predicted_kwh")


mlflow.models.set_model(MeterForecast())
