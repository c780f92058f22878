"""Each preset with the body shapes model servers really send, through real apps."""

import numpy as np
import pytest

from .apps.model_apps import FEATURES, fastapi_app, flask_app, model
from .middleware_setup import buckets, expected_buckets, make_baseline, scrape, value, write_config
from .protocol import Client

BASELINE = make_baseline()


def _rows(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {"age": float(a), "bmi": float(b), "region": str(r)}
        for a, b, r in zip(
            rng.normal(0, 0.05, n), rng.normal(0.02, 0.05, n), rng.choice(["eu", "us", "apac"], n)
        )
    ]


def _positional(rows):
    return [[r[f] for f in FEATURES] for r in rows]


def _bodies(rows):
    """(path, body) pairs in every supported shape, each carrying ``rows``."""
    n = len(rows)
    reordered = ["region", "bmi", "age"]
    yield "/flat", rows[0]
    yield "/v1/models/m:predict", {"instances": _positional(rows)}
    yield "/v1/models/m:predict", {"instances": rows}
    yield (
        "/v2/models/m/infer",
        {
            "inputs": [
                {"name": "input-0", "shape": [n, 3], "datatype": "BYTES", "data": _positional(rows)}
            ]
        },
    )
    flat = [v for row in _positional(rows) for v in row]
    yield (
        "/v2/models/m/infer",
        {"inputs": [{"name": "input-0", "shape": [n, 3], "datatype": "BYTES", "data": flat}]},
    )
    yield (
        "/invocations",
        {
            "dataframe_split": {
                "columns": reordered,
                "data": [[r[c] for c in reordered] for r in rows],
            }
        },
    )
    yield "/invocations", {"dataframe_records": rows}
    yield "/invocations", {"instances": _positional(rows)}
    yield "/invocations", {"inputs": rows}


@pytest.mark.parametrize(
    "factory, kind", [(flask_app, "wsgi"), (fastapi_app, "asgi")], ids=["flask", "fastapi"]
)
def test_every_preset_shape_counts_exactly(tmp_path, factory, kind):
    client = Client(factory(write_config(tmp_path, BASELINE)), kind)
    rows = _rows(40, seed=4)
    sent = []
    for path, body in _bodies(rows):
        reply = client.post_json(path, body)
        assert reply.status == 200, (path, reply.body)
        sent += [rows[0]] if path == "/flat" else rows
    samples = scrape(client.request("GET", "/metrics").body.decode())
    for feature in ("age", "bmi"):
        assert buckets(
            samples, "boxkite_feature_value_bucket", feature=feature
        ) == expected_buckets(BASELINE.feature(feature).edges, [r[feature] for r in sent])
    regions = [r["region"] for r in sent]
    for category in ("eu", "us", "apac"):
        assert value(
            samples, "boxkite_feature_category_total", feature="region", category=category
        ) == regions.count(category)
    assert buckets(
        samples, "boxkite_prediction_value_bucket", output="prediction"
    ) == expected_buckets(BASELINE.output("prediction").edges, [model(r) for r in sent])
    for route, requests in (
        ("/flat", 1),
        ("/v1/models/{name}:predict", 2),
        ("/v2/models/{name}/infer", 2),
        ("/invocations", 4),
    ):
        assert value(samples, "boxkite_observed_requests_total", route=route) == requests
        errors = sum(
            v
            for k, v in samples["boxkite_observation_errors_total"].items()
            if ("route", route) in k
        )
        assert errors == 0


def test_preset_shape_mismatches_are_counted(tmp_path):
    client = Client(flask_app(write_config(tmp_path, BASELINE)), "wsgi")
    for body in (
        {"instances": [[0.1, 0.2]]},  # two values for three features
        {"rows": []},
        {"instances": [[0.1, 0.2, "eu"], {"age": 1}]},
    ):
        client.post_json("/v1/models/m:predict", body)
    client.post_json("/v2/models/m/infer", {"inputs": [{"shape": [2, 3], "data": [1, 2, 3]}]})
    samples = scrape(client.request("GET", "/metrics").body.decode())
    assert (
        value(
            samples,
            "boxkite_observation_errors_total",
            route="/v1/models/{name}:predict",
            reason="shape",
        )
        == 3
    )
    assert (
        value(
            samples,
            "boxkite_observation_errors_total",
            route="/v2/models/{name}/infer",
            reason="shape",
        )
        == 1
    )


def test_kserve_v2_named_input_and_per_feature_tensors(tmp_path):
    from boxkite_middleware.observing import Observer

    config = {
        "baseline": str(tmp_path / "b.json"),
        "routes": [
            {"path": "/a", "preset": "kserve-v2", "input": "x", "output": "y"},
            {"path": "/b", "preset": "kserve-v2"},
        ],
    }
    BASELINE.save(tmp_path / "b.json")
    observer = Observer(config, shared=False)
    named = observer.routes[0].fixed.extractor
    rows, columns = named.request(
        {
            "inputs": [
                {"name": "other", "shape": [1, 1], "data": [9]},
                {"name": "x", "shape": [2, 3], "data": [0.1, 0.2, "eu", 0.3, 0.4, "us"]},
            ]
        }
    )
    assert rows == 2 and [list(v) for _, v in columns] == [[0.1, 0.3], [0.2, 0.4], ["eu", "us"]]
    _, outputs = named.response(
        {"outputs": [{"name": "z", "data": [5, 5]}, {"name": "y", "data": [[1.5], [2.5]]}]}, 2
    )
    assert [list(v) for _, v in outputs] == [[1.5, 2.5]]
    per_feature = observer.routes[1].fixed.extractor
    rows, columns = per_feature.request(
        {
            "inputs": [
                {"name": "age", "shape": [2], "data": [0.1, 0.2]},
                {"name": "region", "shape": [2, 1], "data": [["eu"], ["us"]]},
            ]
        }
    )
    assert rows == 2
    assert [list(v) for _, v in columns] == [[0.1, 0.2], [None, None], ["eu", "us"]]
