"""MLflow's real scoring server app (``mlflow models serve``) for two pyfunc models."""

from __future__ import annotations

import os

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.pyfunc import scoring_server
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge


def iris_frame() -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    data = load_iris()
    names = [n.replace(" (cm)", "").replace(" ", "_") for n in data.feature_names]
    return pd.DataFrame(data.data, columns=names), data.target, list(data.target_names)


def diabetes_frame() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_diabetes()
    return pd.DataFrame(data.data, columns=data.feature_names), data.target


class Regressor(mlflow.pyfunc.PythonModel):
    """Answers a pandas Series, as many pyfuncs do."""

    def __init__(self, estimator) -> None:
        self.estimator = estimator

    def predict(self, context, model_input, params=None):
        return pd.Series(self.estimator.predict(model_input), name="prediction")


class Classifier(mlflow.pyfunc.PythonModel):
    """Answers a 2-column DataFrame: the predicted species and its probability."""

    def __init__(self, estimator, classes: list[str]) -> None:
        self.estimator, self.classes = estimator, classes

    def predict(self, context, model_input, params=None):
        proba = self.estimator.predict_proba(model_input)
        return pd.DataFrame(
            {
                "species": [self.classes[i] for i in proba.argmax(axis=1)],
                "probability": proba.max(axis=1),
            }
        )


def save_models(directory: str) -> dict[str, str]:
    """Fit and save both models as MLflow models; returns name -> model path."""
    X, y, classes = iris_frame()
    D, t = diabetes_frame()
    paths = {}
    for name, python_model, train in (
        ("iris", Classifier(LogisticRegression(max_iter=1000).fit(X, y), classes), X),
        ("diabetes", Regressor(Ridge(alpha=0.1).fit(D, t)), D),
    ):
        paths[name] = os.path.join(directory, name)
        mlflow.pyfunc.save_model(
            paths[name],
            python_model=python_model,
            signature=infer_signature(train, python_model.predict(None, train)),
            pip_requirements=["scikit-learn"],
        )
    return paths


def build_app(model_path: str):
    """The app ``mlflow models serve -m PATH`` runs: ``scoring_server.init(load_model(PATH))``."""
    return scoring_server.init(mlflow.pyfunc.load_model(model_path))
