"""A BentoML service with JSON APIs: an iris classifier and a diabetes regressor."""

from __future__ import annotations

import bentoml
import numpy as np
from pydantic import BaseModel
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class IrisRow(BaseModel):
    sepal_length: float
    sepal_width: float
    petal_length: float
    petal_width: float


@bentoml.service(name="models")
class Models:
    def __init__(self) -> None:
        iris, diabetes = load_iris(), load_diabetes()
        self.classes = [str(c) for c in iris.target_names]
        self.iris = LogisticRegression(max_iter=1000).fit(iris.data, iris.target)
        self.diabetes = Ridge(alpha=0.1).fit(diabetes.data, diabetes.target)

    @bentoml.api
    def classify(self, rows: list[IrisRow]) -> list[dict]:
        """One record per row: the species and each class probability, by class name."""
        X = np.array([[getattr(r, f) for f in IRIS_FEATURES] for r in rows])
        proba = self.iris.predict_proba(X)
        return [
            {"species": self.classes[int(p.argmax())], **dict(zip(self.classes, p.tolist()))}
            for p in proba
        ]

    @bentoml.api
    def regress(self, instances: list[list[float]]) -> dict:
        return {"predictions": self.diabetes.predict(np.array(instances)).tolist()}
