"""KServe's real ModelServer app with two scikit-learn models (the sklearnserver pattern)."""

from __future__ import annotations

from importlib import metadata

import kserve
import numpy as np
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse
from kserve.model_repository import ModelRepository
from kserve.protocol.rest.server import RESTServer
from kserve.utils.utils import get_predict_input, get_predict_response
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge


class SklearnModel(kserve.Model):
    """Answers V1 and V2 like kserve's sklearnserver; ``proba`` answers probabilities."""

    def __init__(self, name: str, estimator, proba: bool = False) -> None:
        super().__init__(name)
        self.estimator, self.proba = estimator, proba
        self.ready = True

    def predict(self, payload, headers=None):
        X = get_predict_input(payload)
        result = self.estimator.predict_proba(X) if self.proba else self.estimator.predict(X)
        return get_predict_response(payload, result, self.name)


def iris_model() -> tuple[SklearnModel, np.ndarray]:
    data = load_iris()
    estimator = LogisticRegression(max_iter=1000).fit(data.data, data.target)
    return SklearnModel("iris", estimator, proba=True), data.data


def diabetes_model() -> tuple[SklearnModel, np.ndarray]:
    data = load_diabetes()
    estimator = Ridge(alpha=0.1).fit(data.data, data.target)
    return SklearnModel("diabetes", estimator), data.data


def models() -> list[SklearnModel]:
    return [iris_model()[0], diabetes_model()[0]]


def build_app(model_list, fresh: bool = False, before_routes=None) -> FastAPI:
    """The app ``ModelServer().start(models)`` serves, built without starting uvicorn.

    ``ModelServer`` registers the models and ``RESTServer.create_application`` adds
    kserve's middlewares, routes (V1, V2, ``/metrics``) and exception handlers to
    ``kserve.model_server.app``. ``fresh`` builds the same thing on a new FastAPI app
    made exactly like that module-level one, so a test can build it twice.
    ``before_routes(app)`` runs where a user's code would, before ``start()``.
    """
    repository = ModelRepository()
    for model in model_list:
        repository.update(model)
    server = kserve.ModelServer(registered_models=repository, enable_grpc=False)
    rest = RESTServer(
        "kserve.model_server:app",
        server.dataplane,
        server.model_repository_extension,
        http_port=0,
    )
    if fresh:
        app = FastAPI(
            title="KServe ModelServer",
            version=metadata.version("kserve"),
            docs_url=None,
            redoc_url=None,
            default_response_class=ORJSONResponse,
        )
    else:
        from kserve.model_server import app
    if before_routes is not None:
        before_routes(app)
    rest._add_middlewares(app)
    rest._register_endpoints(app)
    rest._add_exception_handlers(app)
    return app
