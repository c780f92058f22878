"""Seldon MLServer's real REST app serving two mlserver-sklearn models."""

from __future__ import annotations

import asyncio
import os

import joblib
import numpy as np
from mlserver import MLServer
from mlserver.settings import ModelParameters, ModelSettings, Settings
from mlserver_sklearn import SKLearnModel
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge


def train(directory: str) -> dict[str, np.ndarray]:
    """Fit both models, save them as mlserver-sklearn loads them; returns training X."""
    iris, diabetes = load_iris(), load_diabetes()
    os.makedirs(directory, exist_ok=True)
    joblib.dump(
        LogisticRegression(max_iter=1000).fit(iris.data, iris.target),
        os.path.join(directory, "iris.joblib"),
    )
    joblib.dump(
        Ridge(alpha=0.1).fit(diabetes.data, diabetes.target),
        os.path.join(directory, "diabetes.joblib"),
    )
    return {"iris": iris.data, "diabetes": diabetes.data}


def model_settings(directory: str) -> list[ModelSettings]:
    return [
        ModelSettings(
            name=name,
            implementation=SKLearnModel,
            parameters=ModelParameters(
                uri=os.path.join(directory, f"{name}.joblib"), version=version
            ),
        )
        for name, version in (("iris", "v1"), ("diabetes", None))
    ]


def _forget_previous_server_metrics() -> None:
    """MLServer's DataPlane registers its counters in the default registry, so a second
    MLServer in one process (the app built twice) would clash: drop the first one's."""
    from prometheus_client import REGISTRY

    for collector, names in list(REGISTRY._collector_to_names.items()):
        if any(n.startswith("model_infer_request") for n in names):
            REGISTRY.unregister(collector)


def build_app(directory: str, before_load=None):
    """The FastAPI app ``mlserver start`` serves, with both models loaded.

    ``MLServer(settings)`` builds the REST app (``mlserver.rest.app.create_app``) and the
    model registry; ``MLServer.start`` would load the models and run uvicorn on that app.
    Here the models are loaded into the same registry without starting uvicorn.
    ``before_load(app)`` runs where a user's code adds middleware.
    """
    settings = Settings(
        host="127.0.0.1", http_port=0, grpc_port=0, parallel_workers=0, metrics_port=0, debug=False
    )
    _forget_previous_server_metrics()
    # MLServer installs its signal handlers on the current event loop.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = MLServer(settings)
    app = server._rest_server._app
    if before_load is not None:
        before_load(app)

    async def load():
        for ms in model_settings(directory):
            await server._model_registry.load(ms)

    loop.run_until_complete(load())
    return app
