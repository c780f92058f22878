"""Seldon MLServer's real REST app with two mlserver-sklearn models and one `models:` config.

Runs in the venv made by tests/model_servers/envs.py (driven by tests/test_model_servers.py).
"""

from __future__ import annotations

import os
import time

import joblib
import numpy as np
import pytest
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
    metrics,
    shifted,
    total,
    write_config,
)
from .mlserver_app import build_app, train

INFER = "/v2/models/{model}/infer"
VERSIONED = "/v2/models/{model}/versions/{version}/infer"
ROUTES = [{"path": INFER, "preset": "kserve-v2"}, {"path": VERSIONED, "preset": "kserve-v2"}]
N = 40


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mlserver-models")
    X = train(str(directory))
    estimators = {n: joblib.load(os.path.join(directory, f"{n}.joblib")) for n in X}
    return str(directory), X, estimators


@pytest.fixture(scope="module")
def setup(trained, tmp_path_factory):
    directory, X, est = trained
    baselines = {
        # predict_proba: one output per class, in the estimator's class order
        "iris": Baseline.from_training(
            X["iris"],
            est["iris"].predict_proba(X["iris"]),
            feature_names=IRIS_FEATURES,
            output_names=IRIS_CLASSES,
        ),
        "diabetes": Baseline.from_training(
            X["diabetes"], est["diabetes"].predict(X["diabetes"]), feature_names=DIABETES_FEATURES
        ),
    }
    config = write_config(tmp_path_factory.mktemp("mlserver"), baselines, ROUTES)
    plain = build_app(directory)
    monitored = build_app(
        directory, before_load=lambda app: app.add_middleware(BoxkiteASGIMiddleware, config=config)
    )
    with (
        TestClient(monitored, raise_server_exceptions=False) as m,
        TestClient(plain, raise_server_exceptions=False) as p,
    ):
        yield Pair(m, p), baselines, est


def tensor(rows: np.ndarray, nested: bool = False) -> dict:
    data = rows.tolist() if nested else rows.ravel().tolist()
    return {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": data}


def infer(pair: Pair, path: str, inputs: list[dict], outputs=None, **extra):
    doc = {"id": "req-1", "inputs": inputs, **extra}  # an id: MLServer echoes it
    if outputs:
        doc["outputs"] = [{"name": o} for o in outputs]
    return pair.post_json(path, doc)


@pytest.mark.parametrize(
    "path, nested",
    [
        ("/v2/models/iris/infer", False),
        ("/v2/models/iris/infer", True),
        ("/v2/models/iris/versions/v1/infer", False),
    ],
    ids=["flat", "nested", "versioned"],
)
def test_proba_tensor_counts_one_output_per_class(setup, path, nested):
    pair, baselines, est = setup
    rows = shifted(est_rows("iris"), N, 1)
    before = pair.metrics()
    reply = infer(pair, path, [tensor(rows, nested)], outputs=["predict_proba"])
    assert reply.status_code == 200, reply.text
    out = reply.json()["outputs"][0]
    assert (out["name"], out["shape"]) == ("predict_proba", [N, 3])
    samples = delta(pair.metrics(), before)
    assert_features(samples, "iris", baselines["iris"], IRIS_FEATURES, rows)
    proba = est["iris"].predict_proba(rows)
    assert_outputs(
        samples, "iris", baselines["iris"], {c: proba[:, i] for i, c in enumerate(IRIS_CLASSES)}
    )
    route = VERSIONED if "versions" in path else INFER
    assert total(samples, "boxkite_observed_rows_total", model="iris", route=route) == N
    assert total(samples, "boxkite_observation_errors_total") == 0


def test_regressor_answers_a_one_column_tensor(setup):
    pair, baselines, est = setup
    rows = shifted(est_rows("diabetes"), N, 2)
    before = pair.metrics()
    reply = infer(pair, "/v2/models/diabetes/infer", [tensor(rows)])
    assert reply.status_code == 200, reply.text
    assert reply.json()["outputs"][0]["shape"] == [N, 1]
    samples = delta(pair.metrics(), before)
    assert_features(samples, "diabetes", baselines["diabetes"], DIABETES_FEATURES, rows)
    assert_outputs(
        samples, "diabetes", baselines["diabetes"], {"prediction": est["diabetes"].predict(rows)}
    )
    assert total(samples, "boxkite_observation_errors_total") == 0


def test_pandas_codec_one_named_tensor_per_feature(setup):
    pair, baselines, est = setup
    rows = shifted(est_rows("iris"), N, 3)
    columns = [
        {"name": n, "shape": [N, 1], "datatype": "FP64", "data": rows[:, i].tolist()}
        for i, n in enumerate(IRIS_FEATURES)
    ]
    before = pair.metrics()
    reply = infer(
        pair,
        "/v2/models/iris/infer",
        columns,
        outputs=["predict_proba"],
        parameters={"content_type": "pd"},
    )
    assert reply.status_code == 200, reply.text
    samples = delta(pair.metrics(), before)
    assert_features(samples, "iris", baselines["iris"], IRIS_FEATURES, rows)
    proba = est["iris"].predict_proba(rows)
    assert_outputs(
        samples, "iris", baselines["iris"], {c: proba[:, i] for i, c in enumerate(IRIS_CLASSES)}
    )


def test_bytes_tensor_of_numeric_strings_counts_as_numbers(setup):
    """mlserver-sklearn refuses BYTES (500); the request's features still count as numbers."""
    pair, baselines, _ = setup
    rows = np.round(shifted(est_rows("iris"), N, 4), 3)
    strings = {
        "name": "input-0",
        "shape": [N, 4],
        "datatype": "BYTES",
        "data": [repr(float(v)) for v in rows.ravel()],
    }
    before = pair.metrics()
    reply = infer(pair, "/v2/models/iris/infer", [strings], outputs=["predict_proba"])
    assert reply.status_code == 500
    samples = delta(pair.metrics(), before)
    assert_features(samples, "iris", baselines["iris"], IRIS_FEATURES, rows)
    for c in IRIS_CLASSES:  # outputs are read only from 2xx responses
        assert total(samples, "boxkite_prediction_value_count", model="iris", output=c) == 0


def test_unknown_model_is_an_error_and_makes_no_series(setup):
    pair, _, _ = setup
    before = pair.metrics()
    reply = infer(pair, "/v2/models/nope/infer", [tensor(np.ones((2, 4)))])
    assert reply.status_code == 404
    after = pair.metrics()
    assert (
        total(delta(after, before), "boxkite_observation_errors_total", reason="unknown_model") == 1
    )
    assert not any(
        ("model", "nope") in key
        for name, series in after.items()
        if name.startswith("boxkite_")
        for key in series
    )


def test_mlserver_own_metrics_stay_visible(setup):
    pair, _, _ = setup
    infer(pair, "/v2/models/diabetes/infer", [tensor(shifted(est_rows("diabetes"), 3, 5))])
    samples = pair.metrics()
    assert total(samples, "model_infer_request_success_total", model="diabetes") >= 1
    assert total(samples, "boxkite_feature_value_count", model="diabetes", feature="bmi") >= 3


def test_predict_and_predict_proba_tensors_map_by_name(trained, tmp_path):
    """Both outputs asked for: the tensor named ``predict`` (class ids) feeds the output of
    that name; ``predict_proba`` feeds no output of this baseline."""
    directory, X, est = trained
    baseline = Baseline.from_training(
        X["iris"],
        {"predict": est["iris"].predict(X["iris"])},
        feature_names=IRIS_FEATURES,
        categorical=["predict"],
    )
    config = write_config(tmp_path, {"iris": baseline}, [{"path": INFER, "preset": "kserve-v2"}])
    app = build_app(
        directory, before_load=lambda a: a.add_middleware(BoxkiteASGIMiddleware, config=config)
    )
    rows = shifted(est_rows("iris"), N, 6)
    with TestClient(app) as client:
        reply = client.post(
            "/v2/models/iris/infer",
            json={
                "inputs": [tensor(rows)],
                "outputs": [{"name": "predict_proba"}, {"name": "predict"}],
            },
        )
        assert reply.status_code == 200, reply.text
        assert [o["name"] for o in reply.json()["outputs"]] == ["predict_proba", "predict"]
        samples = metrics(client)
    assert_features(samples, "iris", baseline, IRIS_FEATURES, rows)
    assert_outputs(samples, "iris", baseline, {"predict": est["iris"].predict(rows)})
    assert total(samples, "boxkite_observation_errors_total") == 0


def est_rows(model: str) -> np.ndarray:
    from sklearn.datasets import load_diabetes, load_iris

    return (load_iris() if model == "iris" else load_diabetes()).data


def test_real_mlserver_process(trained, setup, tmp_path):
    """MLServer started from a model folder, as `mlserver start` does, plus the README line."""
    import json
    import shutil
    import sys

    import httpx

    from ..helpers import free_port, serve
    from ..middleware_setup import scrape

    directory, _, est = trained
    _, baselines, _ = setup
    config = write_config(tmp_path, baselines, ROUTES)
    folder = tmp_path / "models"
    port = free_port()
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 0,
        "debug": False,
    }
    (folder).mkdir()
    (folder / "settings.json").write_text(json.dumps(settings))
    for name in ("iris", "diabetes"):
        (folder / name).mkdir()
        shutil.copy(os.path.join(directory, f"{name}.joblib"), folder / name / "model.joblib")
        model = {
            "name": name,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib"},
        }
        (folder / name / "model-settings.json").write_text(json.dumps(model))
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "tests.model_servers.serve", "mlserver", str(folder), config]
    iris_rows = shifted(est_rows("iris"), N, 13)
    diabetes_rows = shifted(est_rows("diabetes"), N, 14)
    with serve(args, f"{url}/v2/health/ready"):
        for _ in range(200):  # ready once both models are loaded
            if httpx.get(f"{url}/v2/models/diabetes/ready").status_code == 200:
                break
            time.sleep(0.1)
        doc = {"inputs": [tensor(iris_rows)], "outputs": [{"name": "predict_proba"}]}
        assert httpx.post(f"{url}/v2/models/iris/infer", json=doc).status_code == 200
        doc = {"inputs": [tensor(diabetes_rows)]}
        assert httpx.post(f"{url}/v2/models/diabetes/infer", json=doc).status_code == 200
        samples = scrape(httpx.get(f"{url}/metrics").text)
    assert_features(samples, "iris", baselines["iris"], IRIS_FEATURES, iris_rows)
    proba = est["iris"].predict_proba(iris_rows)
    assert_outputs(
        samples, "iris", baselines["iris"], {c: proba[:, i] for i, c in enumerate(IRIS_CLASSES)}
    )
    assert_features(samples, "diabetes", baselines["diabetes"], DIABETES_FEATURES, diabetes_rows)
    assert_outputs(
        samples,
        "diabetes",
        baselines["diabetes"],
        {"prediction": est["diabetes"].predict(diabetes_rows)},
    )
    assert total(samples, "model_infer_request_success_total", model="iris") >= 1
