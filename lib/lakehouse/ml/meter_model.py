"""The registered meter forecast, logged to MLflow as a model from code.

MLflow runs this file when it loads the model: ``set_model`` below tells it which
object serves predictions, and ``load_context`` reads the fitted
``HistGradientBoostingRegressor`` from the model's ``estimator`` artifact, a skops
file (no pickle: it refuses a file that would create anything but scikit-learn and
numpy objects). The model takes the feature columns of ``lakehouse.ml.meters.meter_features``
(``FEATURES``; extra columns are ignored) and returns ``predicted_kwh``, the kWh of
each hour forecast a day ahead. It imports nothing from ``lakehouse``: the logged
model only needs numpy, pandas, scikit-learn, skops, threadpoolctl and MLflow.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel
from threadpoolctl import threadpool_limits

# What a fitted HistGradientBoostingRegressor holds besides plain data: skops asks for
# each such type to be trusted explicitly.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "functools.partial")


class MeterForecast(PythonModel):
    def load_context(self, context) -> None:
        import skops.io

        path = context.artifacts["estimator"]
        untrusted = skops.io.get_untrusted_types(file=path)
        unexpected = [name for name in untrusted if not name.startswith(TRUSTED_PREFIXES)]
        if unexpected:
            raise ValueError(f"{path}: refusing to load types outside scikit-learn and numpy: {unexpected}")
        self.estimator = skops.io.load(path, trusted=untrusted)
        self.features = list(self.estimator.feature_names_in_)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:
        design = model_input.loc[:, self.features].apply(pd.to_numeric, errors="coerce").astype("float64")
        with threadpool_limits(1):  # one OpenMP thread: much faster on a shared CPU
            predicted = self.estimator.predict(design)
        return pd.Series(np.clip(predicted, 0.0, None), name="predicted_kwh")


mlflow.models.set_model(MeterForecast())
