"""A BentoML service with JSON APIs, the middleware among its ASGI middlewares.

Runs in the venv made by tests/model_servers/envs.py (driven by tests/test_model_servers.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from boxkite_middleware import Baseline, BoxkiteASGIMiddleware

from .bentoml_service import IRIS_FEATURES, Models
from .common import (
    DIABETES_FEATURES,
    IRIS_CLASSES,
    Pair,
    assert_features,
    assert_outputs,
    delta,
    diabetes,
    iris,
    shifted,
    total,
    write_config,
)

N = 40
ROUTES = [
    {
        "path": "/classify",
        "model": "iris",
        "features": {f: f"$.rows[*].{f}" for f in IRIS_FEATURES},
        "predictions": {o: f"$[*].{o}" for o in ["species", *IRIS_CLASSES]},
    },
    {
        "path": "/regress",
        "model": "diabetes",
        "features": {f: f"$.instances[*][{i}]" for i, f in enumerate(DIABETES_FEATURES)},
        "predictions": {"prediction": "$.predictions[*]"},
    },
]


def answers(service, X: np.ndarray) -> pd.DataFrame:
    """What /classify answers for rows X, as a DataFrame (the service's own method)."""
    from .bentoml_service import IrisRow

    return pd.DataFrame(service.classify([IrisRow(**dict(zip(IRIS_FEATURES, r))) for r in X]))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    service = Models.inner()  # the plain Python class, for the expected answers
    X_iris, _ = iris()
    X_diabetes, _ = diabetes()
    baselines = {
        "iris": Baseline.from_training(
            X_iris, answers(service, X_iris), feature_names=IRIS_FEATURES
        ),
        "diabetes": Baseline.from_training(
            X_diabetes, service.diabetes.predict(X_diabetes), feature_names=DIABETES_FEATURES
        ),
    }
    config = write_config(tmp_path_factory.mktemp("bentoml"), baselines, ROUTES)
    plain = Models.to_asgi()
    Models.add_asgi_middleware(BoxkiteASGIMiddleware, config=config)
    monitored = Models.to_asgi()
    with TestClient(plain) as p:
        forget_bentoml_metrics()
        with TestClient(monitored) as m:
            yield Pair(m, p, volatile_headers=["x-bentoml-request-id"]), baselines, service


def forget_bentoml_metrics() -> None:
    """BentoML registers its request metrics in the default registry when an app starts,
    so the same service started twice in one process clashes: drop the first app's."""
    from prometheus_client import REGISTRY

    for collector, names in list(REGISTRY._collector_to_names.items()):
        if any(n.startswith("bentoml_") for n in names):
            REGISTRY.unregister(collector)


def test_classify_records(setup):
    pair, baselines, service = setup
    rows = shifted(iris()[0], N, 8)
    body = {"rows": [dict(zip(IRIS_FEATURES, r)) for r in rows.tolist()]}
    before = pair.metrics()
    reply = pair.post_json("/classify", body)
    assert reply.status_code == 200, reply.text
    samples = delta(pair.metrics(), before)
    assert_features(samples, "iris", baselines["iris"], IRIS_FEATURES, rows)
    expected = answers(service, rows)
    assert reply.json() == expected.to_dict(orient="records")
    assert_outputs(
        samples, "iris", baselines["iris"], {c: expected[c].tolist() for c in expected.columns}
    )
    assert total(samples, "boxkite_observed_rows_total", model="iris", route="/classify") == N
    assert total(samples, "boxkite_observation_errors_total") == 0


def test_regress_lists(setup):
    pair, baselines, service = setup
    rows = shifted(diabetes()[0], N, 9)
    before = pair.metrics()
    reply = pair.post_json("/regress", {"instances": rows.tolist()})
    assert reply.status_code == 200, reply.text
    samples = delta(pair.metrics(), before)
    assert_features(samples, "diabetes", baselines["diabetes"], DIABETES_FEATURES, rows)
    assert_outputs(
        samples, "diabetes", baselines["diabetes"], {"prediction": service.diabetes.predict(rows)}
    )
    assert total(samples, "boxkite_observation_errors_total") == 0


def test_validation_error_still_counts_the_request(setup):
    """BentoML refuses a bad row (400); its good values still count, the bad one is missing."""
    pair, baselines, _ = setup
    row = {"sepal_length": "x", "sepal_width": 3.0, "petal_length": 1.5, "petal_width": 0.2}
    before = pair.metrics()
    reply = pair.post_json("/classify", {"rows": [row]})
    assert reply.status_code == 400
    samples = delta(pair.metrics(), before)
    assert (
        total(samples, "boxkite_feature_missing_total", model="iris", feature="sepal_length") == 1
    )
    assert total(samples, "boxkite_feature_value_count", model="iris", feature="sepal_width") == 1
    assert total(samples, "boxkite_prediction_value_count", model="iris") == 0


def test_bentoml_metrics_stay_visible(setup):
    pair, _, _ = setup
    pair.post_json("/regress", {"instances": shifted(diabetes()[0], 2, 10).tolist()})
    samples = pair.metrics()
    assert total(samples, "bentoml_service_request_total", endpoint="/regress") >= 1, sorted(
        samples
    )
