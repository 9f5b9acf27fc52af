"""Energy anomaly detector, supervised: learns each anomaly's signature from
labelled incidents (maintenance tickets; here the generator's ground truth).

A scikit-learn ``HistGradientBoostingClassifier`` on residual-like features of the
hour (``ANOMALY_FEATURES``: the hour against its lags and its previous 24 hours, peak
vs mean power, temperature, the production plan), fitted by
``lakehouse.ml.models.train_anomaly`` with a flag threshold tuned out of fold.
Served as an MLflow model from code; the estimator travels as a skops file.
Output: ``anomaly_score`` (probability, 0-1) and ``is_anomaly`` (score >= threshold).
"""

from __future__ import annotations

import mlflow
import pandas as pd
from threadpoolctl import threadpool_limits

from lakehouse.ml.features import ANOMALY_FEATURES
from lakehouse.ml.model_code import load_estimator, save_estimator
from lakehouse.ml.models import THREADS, design


class EnergyAnomalyDetector(mlflow.pyfunc.PythonModel):
    input_columns = ANOMALY_FEATURES
    needs_labels = True

    def __init__(self, estimator=None, categories: list[str] | None = None, threshold: float = 0.5) -> None:
        self.estimator = estimator
        self.categories = categories or []
        self.threshold = threshold

    def save(self, folder) -> dict[str, str]:
        return save_estimator(self.estimator, folder, categories=self.categories, threshold=self.threshold)

    def load_context(self, context) -> None:
        self.estimator, settings = load_estimator(context.artifacts)
        self.categories, self.threshold = settings["categories"], settings["threshold"]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        with threadpool_limits(THREADS):
            score = self.estimator.predict_proba(design(model_input, ANOMALY_FEATURES, self.categories))[:, 1]
        return pd.DataFrame({"anomaly_score": score, "is_anomaly": score >= self.threshold})


mlflow.models.set_model(EnergyAnomalyDetector())
