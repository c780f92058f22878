"""Both adapters over real Flask, Django, FastAPI and Starlette apps, and bare WSGI/ASGI."""

import gzip
import json

import numpy as np
import pytest

from .apps.model_apps import ASGI_APPS, WSGI_APPS, model
from .middleware_setup import (
    buckets,
    expected_buckets,
    make_baseline,
    scrape,
    value,
    write_config,
)
from .protocol import Client

FRAMEWORKS = [(name, "wsgi", f) for name, f in WSGI_APPS.items()] + [
    (name, "asgi", f) for name, f in ASGI_APPS.items()
]
BASELINE = make_baseline()


@pytest.fixture(params=FRAMEWORKS, ids=[f[0] for f in FRAMEWORKS])
def pair(request, tmp_path):
    """(monitored client, plain client) of the same app in one framework."""
    _, kind, factory = request.param
    config = write_config(tmp_path, BASELINE)
    return Client(factory(config), kind), Client(factory(None), kind)


def metrics(client: Client):
    reply = client.request("GET", "/metrics")
    assert reply.status == 200
    return scrape(reply.body.decode())


def test_single_records_are_counted_exactly(pair):
    client, _ = pair
    rng = np.random.default_rng(2)
    rows = [
        {"age": float(a), "bmi": float(b), "region": str(r)}
        for a, b, r in zip(
            rng.normal(0.01, 0.06, 60),
            rng.normal(0, 0.05, 60),
            rng.choice(["eu", "us", "mars"], 60),
        )
    ]
    rows[3]["age"] = None
    rows[4]["bmi"] = "oops"
    del rows[5]["region"]
    for row in rows:
        reply = client.post_json("/predict", row)
        assert reply.status == 200
    samples = metrics(client)
    age = [r["age"] for r in rows]
    assert buckets(samples, "boxkite_feature_value_bucket", feature="age") == expected_buckets(
        BASELINE.feature("age").edges, age
    )
    assert value(samples, "boxkite_feature_missing_total", feature="age") == 1
    assert value(samples, "boxkite_feature_missing_total", feature="bmi") == 1
    assert value(samples, "boxkite_feature_missing_total", feature="region") == 1
    regions = [r.get("region") for r in rows]
    assert value(
        samples, "boxkite_feature_category_total", feature="region", category="__other__"
    ) == regions.count("mars")
    assert value(
        samples, "boxkite_feature_category_total", feature="region", category="eu"
    ) == regions.count("eu")
    predictions = [model(r) for r in rows]
    assert buckets(
        samples, "boxkite_prediction_value_bucket", output="prediction"
    ) == expected_buckets(BASELINE.output("prediction").edges, predictions)
    assert value(samples, "boxkite_observed_requests_total", route="/predict") == 60
    assert value(samples, "boxkite_observed_rows_total", route="/predict") == 60


def test_batches_fan_out_into_rows(pair):
    client, _ = pair
    rng = np.random.default_rng(3)
    all_rows = []
    for size in (1, 7, 250):
        rows = [
            {"age": float(a), "bmi": float(b), "region": "us"}
            for a, b in zip(rng.normal(0, 0.05, size), rng.normal(0, 0.05, size))
        ]
        all_rows += rows
        assert client.post_json("/batch", {"instances": rows}).status == 200
    samples = metrics(client)
    assert buckets(samples, "boxkite_feature_value_bucket", feature="bmi") == expected_buckets(
        BASELINE.feature("bmi").edges, [r["bmi"] for r in all_rows]
    )
    assert buckets(
        samples, "boxkite_prediction_value_bucket", output="prediction"
    ) == expected_buckets(BASELINE.output("prediction").edges, [model(r) for r in all_rows])
    assert value(samples, "boxkite_feature_category_total", feature="region", category="us") == 258
    assert value(samples, "boxkite_observed_requests_total", route="/batch") == 3
    assert value(samples, "boxkite_observed_rows_total", route="/batch") == 258


def test_unusable_bodies_are_counted_by_reason_and_passed_through(pair):
    client, plain = pair
    cases = [
        ("invalid_json", "/predict", b"{not json", {"Content-Type": "application/json"}),
        ("invalid_json", "/predict", b'{"age": NaN}', {"Content-Type": "application/json"}),
        (
            "content_type",
            "/predict",
            b"age=1",
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
        (
            "body_too_large",
            "/predict",
            json.dumps({"age": 0.1, "pad": "x" * 70_000}).encode(),
            {"Content-Type": "application/json"},
        ),
        (
            "content_encoding",
            "/predict",
            b"\x00\x01",
            {"Content-Type": "application/json", "Content-Encoding": "br"},
        ),
        (
            "content_encoding",
            "/predict",
            gzip.compress(b'{"age": 0.1}')[:-6],
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        ),
        (
            "body_too_large",
            "/predict",
            gzip.compress(b'{"age": 0.1, "pad": "' + b"x" * 10**6 + b'"}'),
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        ),
        ("shape", "/batch", b'{"instances": {"age": 1}}', {"Content-Type": "application/json"}),
        (
            "shape",
            "/batch",
            b'{"instances": [{"age": 1}], "x": 1}',
            {"Content-Type": "application/json"},
        ),  # the app answers 422: no predictions
    ]
    for _, path, body, headers in cases:
        assert client.request("POST", path, body, headers).same_as(
            plain.request("POST", path, body, headers)
        )
    samples = metrics(client)
    for reason in ("invalid_json", "content_type", "body_too_large", "content_encoding"):
        expected = sum(1 for r, p, _, _ in cases if r == reason and p == "/predict")
        assert (
            value(samples, "boxkite_observation_errors_total", route="/predict", reason=reason)
            == expected
        ), reason
    assert value(samples, "boxkite_observation_errors_total", route="/batch", reason="shape") == 1
    # the 422 request was observed: features count whatever the status
    assert value(samples, "boxkite_observed_requests_total", route="/batch") == 1
    assert value(samples, "boxkite_observed_requests_total", route="/predict") == 0


def test_gzip_request_bodies_are_observed_and_reach_the_app_unchanged(pair):
    client, plain = pair
    body = gzip.compress(json.dumps({"age": 0.02, "bmi": 0.01, "region": "eu"}).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    for c in (client, plain):
        reply = c.request("POST", "/echo", body, headers)
        assert reply.body == body
    samples = metrics(client)
    assert value(samples, "boxkite_feature_value_count", feature="age") == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_responses_and_request_bodies_are_byte_identical(pair, chunked):
    client, plain = pair
    requests = [
        ("POST", "/predict", {"age": 0.01, "bmi": -0.02, "region": "eu"}),
        ("POST", "/echo", {"age": 1.5, "note": "é ✓ \u2028"}),
        ("PUT", "/echo", {"age": 2}),
        ("POST", "/stream", {"age": 0.1, "bmi": 0.2}),
        ("POST", "/status/503", {"age": 0.3}),
        ("POST", "/status/201", {"age": 0.3}),
        ("POST", "/not-observed", {"age": 0.3}),
        ("GET", "/predict", None),
        ("HEAD", "/predict", None),
        ("POST", "/batch", {"instances": [{"age": 0.1, "bmi": 0.0, "region": "us"}] * 5}),
    ]
    predictions = 0
    for method, path, doc in requests:
        body = b"" if doc is None else json.dumps(doc, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"} if doc is not None else {}
        ours = client.request(method, path, body, headers, chunked=chunked and doc is not None)
        theirs = plain.request(method, path, body, headers, chunked=chunked and doc is not None)
        assert ours.same_as(theirs), (method, path)
        if 200 <= theirs.status < 300 and method == "POST" and path != "/echo":
            out = json.loads(theirs.body)
            predictions += len(out["predictions"]) if "predictions" in out else "result" in out
    samples = metrics(client)
    assert value(samples, "boxkite_observed_requests_total", route="/echo") == 2
    assert value(samples, "boxkite_observed_requests_total", route="/stream") == 1
    assert value(samples, "boxkite_observed_requests_total", route="/status/{code}") == 2
    assert value(samples, "boxkite_observed_requests_total", route="/predict") == 1
    # Django refuses chunked requests (no Content-Length) with 400 with or without us:
    # their features still count, as the client sent them; no prediction does.
    assert predictions in (1, 8)
    assert value(samples, "boxkite_prediction_value_count", output="prediction") == predictions


def test_app_exceptions_propagate_unchanged_and_features_still_count(pair):
    client, plain = pair
    body = json.dumps({"age": 0.05}).encode()
    headers = {"Content-Type": "application/json"}
    outcomes = []
    for c in (client, plain):
        try:
            reply = c.request("POST", "/raise", body, headers)
            outcomes.append((reply.status, reply.body))
        except RuntimeError as exc:
            outcomes.append(("raised", str(exc)))
    assert outcomes[0] == outcomes[1]
    samples = metrics(client)
    assert value(samples, "boxkite_observed_requests_total", route="/raise") == 1
    assert value(samples, "boxkite_feature_value_count", feature="age") == 1


def _ours(body: bytes) -> list[bytes]:
    return [line for line in body.splitlines() if b"boxkite_" in line]


def test_metrics_endpoint(pair):
    client, _ = pair
    reply = client.request("GET", "/metrics")
    assert reply.status == 200 and reply.header("Content-Type").startswith("text/plain")
    assert b'boxkite_baseline_feature_value_bucket{bin="1",feature="age"' in reply.body
    om = client.request("GET", "/metrics", headers={"Accept": "application/openmetrics-text"})
    assert om.header("Content-Type").startswith("application/openmetrics-text")
    assert om.body.endswith(b"# EOF\n")
    zipped = client.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
    assert zipped.header("Content-Encoding") == "gzip"
    # The app's own process metrics (default registry) move between scrapes; ours don't.
    assert _ours(gzip.decompress(zipped.body)) == _ours(reply.body)
    head = client.request("HEAD", "/metrics")
    assert head.status == 200 and head.body == b""
    assert abs(int(head.header("Content-Length")) - len(reply.body)) < 100
    for method in ("POST", "PUT", "DELETE"):
        refused = client.request(method, "/metrics", b"x", {"Content-Type": "text/plain"})
        assert refused.status == 405 and refused.header("Allow") == "GET, HEAD"
    only = client.request("GET", "/metrics", query="name[]=boxkite_feature_missing_total")
    assert set(scrape(only.body.decode())) == {"boxkite_feature_missing_total"}
    # exact path: no redirect, no prefix match
    assert client.request("GET", "/metrics/").status != 307
    assert b"boxkite_" not in client.request("GET", "/metrics/").body
