"""KServe's real ModelServer app, two models, with the middleware: every KServe format.

Runs in the venv made by tests/model_servers/envs.py (driven by tests/test_model_servers.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from kserve import InferInput, InferRequest
from kserve.protocol.infer_type import RequestedOutput
from starlette.testclient import TestClient

from boxkite_middleware import Baseline, BoxkiteASGIMiddleware

from .common import (
    DIABETES_FEATURES,
    IRIS_CLASSES,
    IRIS_FEATURES,
    Pair,
    assert_features,
    assert_outputs,
    delta,
    shifted,
    total,
    write_config,
)
from .kserve_app import build_app, diabetes_model, iris_model, models

V1 = "/v1/models/{model}:predict"
V2 = "/v2/models/{model}/infer"
ROUTES = [{"path": V1, "preset": "kserve-v1"}, {"path": V2, "preset": "kserve-v2"}]
N = 40


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    iris, X_iris = iris_model()
    diabetes, X_diabetes = diabetes_model()
    baselines = {
        "iris": Baseline.from_training(
            X_iris,
            iris.estimator.predict_proba(X_iris),
            feature_names=IRIS_FEATURES,
            output_names=IRIS_CLASSES,
        ),
        "diabetes": Baseline.from_training(
            X_diabetes, diabetes.estimator.predict(X_diabetes), feature_names=DIABETES_FEATURES
        ),
    }
    config = write_config(tmp_path_factory.mktemp("kserve"), baselines, ROUTES)

    def add(app):  # what a user writes before ModelServer().start(models)
        app.add_middleware(BoxkiteASGIMiddleware, config=config)

    monitored = build_app([iris, diabetes], before_routes=add)
    plain = build_app(models(), fresh=True)
    with TestClient(monitored) as m, TestClient(plain) as p:
        yield Pair(m, p), baselines, {"iris": iris.estimator, "diabetes": diabetes.estimator}


def rows_for(model: str, seed: int) -> np.ndarray:
    X = iris_model()[1] if model == "iris" else diabetes_model()[1]
    return shifted(X, N, seed)


def check(samples, baselines, estimators, model: str, rows: np.ndarray) -> None:
    baseline = baselines[model]
    names = IRIS_FEATURES if model == "iris" else DIABETES_FEATURES
    assert_features(samples, model, baseline, names, rows)
    if model == "iris":
        proba = estimators["iris"].predict_proba(rows)
        outputs = {c: proba[:, i] for i, c in enumerate(IRIS_CLASSES)}
    else:
        outputs = {"prediction": estimators["diabetes"].predict(rows)}
    assert_outputs(samples, model, baseline, outputs)


@pytest.mark.parametrize("model", ["iris", "diabetes"])
def test_v1_instances(setup, model):
    pair, baselines, estimators = setup
    rows = rows_for(model, 1)
    before = pair.metrics()
    reply = pair.post_json(f"/v1/models/{model}:predict", {"instances": rows.tolist()})
    assert reply.status_code == 200
    samples = delta(pair.metrics(), before)
    check(samples, baselines, estimators, model, rows)
    assert total(samples, "boxkite_observed_rows_total", model=model, route=V1) == N
    assert total(samples, "boxkite_observation_errors_total") == 0


def test_v1_cloudevent_structured_mode(setup):
    pair, baselines, estimators = setup
    rows = rows_for("iris", 2)
    event = {
        "specversion": "1.0",
        "id": "36077800-0c23-4f38-a0b4-01f4369f670a",
        "source": "https://example.com/boxkite",
        "type": "org.kubeflow.serving.inference.request",
        "time": "2026-12-06T05:00:00Z",
        "datacontenttype": "application/json",
        "data": {"instances": rows.tolist()},
    }
    before = pair.metrics()
    # KServe answers with a CloudEvent of its own: a fresh id and time each time.
    reply = pair.post_json(
        "/v1/models/iris:predict",
        event,
        content_type="application/cloudevents+json",
        volatile=("id", "time"),
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/cloudevents+json"
    samples = delta(pair.metrics(), before)
    check(samples, baselines, estimators, "iris", rows)
    assert total(samples, "boxkite_observation_errors_total") == 0


@pytest.mark.parametrize("model", ["iris", "diabetes"])
@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_v2_json(setup, model, layout):
    pair, baselines, estimators = setup
    rows = rows_for(model, 3)
    data = rows.ravel().tolist() if layout == "flat" else rows.tolist()
    doc = {
        "id": "req-1",  # KServe echoes it; without one it makes up a uuid per response
        "inputs": [
            {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": data}
        ],
    }
    before = pair.metrics()
    reply = pair.post_json(f"/v2/models/{model}/infer", doc)
    assert reply.status_code == 200
    assert reply.json()["outputs"][0]["shape"] == ([N, 3] if model == "iris" else [N])
    samples = delta(pair.metrics(), before)
    check(samples, baselines, estimators, model, rows)
    assert total(samples, "boxkite_observed_rows_total", model=model, route=V2) == N
    assert total(samples, "boxkite_observation_errors_total") == 0


def binary_request(model: str, rows: np.ndarray, binary_output: bool) -> tuple[bytes, dict]:
    """A V2 binary tensor request made by kserve's own client types."""
    infer_input = InferInput("input-0", list(rows.shape), "FP64")
    infer_input.set_data_from_numpy(rows, binary_data=True)
    request = InferRequest(
        model_name=model,
        infer_inputs=[infer_input],
        request_id="req-2",
        request_outputs=(
            [RequestedOutput("output-0", {"binary_data": True})] if binary_output else None
        ),
    )
    body, json_length = request.to_rest()
    assert isinstance(body, bytes) and json_length < len(body)
    return body, {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(json_length),
    }


@pytest.mark.parametrize("model", ["iris", "diabetes"])
@pytest.mark.parametrize("binary_output", [True, False], ids=["binary-out", "json-out"])
def test_v2_binary_tensors(setup, model, binary_output):
    pair, baselines, estimators = setup
    rows = rows_for(model, 4)
    body, headers = binary_request(model, rows, binary_output)
    before = pair.metrics()
    reply = pair.post(f"/v2/models/{model}/infer", body, headers)
    assert reply.status_code == 200
    assert ("inference-header-content-length" in reply.headers) == binary_output
    samples = delta(pair.metrics(), before)
    check(samples, baselines, estimators, model, rows)
    assert total(samples, "boxkite_observation_errors_total") == 0


def test_unknown_model_is_counted_as_an_error_and_makes_no_series(setup):
    pair, _, _ = setup
    before = pair.metrics()
    reply = pair.post_json("/v1/models/nope:predict", {"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert reply.status_code == 404
    after = pair.metrics()
    samples = delta(after, before)
    assert total(samples, "boxkite_observation_errors_total", reason="unknown_model") == 1
    assert not any(("model", "nope") in key for series in after.values() for key in series)


def test_kserve_metrics_stay_visible_at_metrics(setup):
    pair, _, _ = setup
    pair.post_json("/v1/models/diabetes:predict", {"instances": rows_for("diabetes", 5).tolist()})
    samples = pair.metrics()
    predict = total(samples, "request_predict_seconds_count", model_name="diabetes")
    assert predict >= 1, sorted(samples)[:20]
    assert total(samples, "boxkite_feature_value_count", model="diabetes", feature="bmi") >= N


def test_real_model_server_process(setup, tmp_path):
    """`ModelServer().start(models)` in its own process, as docs/model-servers.md shows."""
    import sys

    import httpx

    from ..helpers import free_port, serve

    _, baselines, estimators = setup
    config = write_config(tmp_path, baselines, ROUTES)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "tests.model_servers.serve", "kserve", str(port), config]
    rows = rows_for("iris", 11)
    with serve(args, f"{url}/v2/health/ready"):
        reply = httpx.post(f"{url}/v1/models/iris:predict", json={"instances": rows.tolist()})
        assert reply.status_code == 200, reply.text
        body, headers = binary_request("diabetes", rows_for("diabetes", 12), binary_output=True)
        reply = httpx.post(f"{url}/v2/models/diabetes/infer", content=body, headers=headers)
        assert reply.status_code == 200
        text = httpx.get(f"{url}/metrics").text
    from ..middleware_setup import scrape

    samples = scrape(text)
    check(samples, baselines, estimators, "iris", rows)
    check(samples, baselines, estimators, "diabetes", rows_for("diabetes", 12))
    assert total(samples, "request_predict_seconds_count", model_name="iris") >= 1
