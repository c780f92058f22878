"""Ground truth: baseline quality, feedback routes and their counters, against
scikit-learn's metrics on the same rows, through real Flask and FastAPI apps."""

import json
from collections import Counter

import numpy as np
import pytest
from fastapi import FastAPI
from flask import Flask, jsonify
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
)
from starlette.responses import JSONResponse

from boxkite_middleware import (
    Baseline,
    BoxkiteASGIMiddleware,
    BoxkiteWSGIMiddleware,
    ConfigError,
    load_config,
)

from .middleware_setup import buckets, scrape, value
from .protocol import Client


@pytest.fixture(scope="module")
def regression():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = LinearRegression().fit(X[:300], y[:300])
    held_out = X[300:]
    return model, held_out, y[300:].to_numpy(), model.predict(held_out)


@pytest.fixture(scope="module")
def classification():
    X, y = load_iris(return_X_y=True, as_frame=True)
    names = np.array(["setosa", "versicolor", "virginica"])
    model = LogisticRegression(max_iter=1000).fit(X[::2], names[y[::2]])
    held_out = X[1::2]
    return model, held_out, names[y[1::2]], model.predict(held_out)


def test_offline_quality_equals_scikit_learn(regression, classification):
    _, X, y, p = regression
    baseline = Baseline.from_training(X, p, truth=y)
    row = baseline.quality(y, p)["prediction"]
    assert row.n == len(y) and row.missing == 0
    assert row.metrics["mae"] == pytest.approx(mean_absolute_error(y, p), rel=1e-9)
    assert row.metrics["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, p)), rel=1e-9)
    assert row.metrics["bias"] == pytest.approx(np.mean(p - y), rel=1e-9)
    assert row.baseline["mae"] == pytest.approx(row.metrics["mae"], rel=1e-12)

    _, X, labels, predicted = classification
    baseline = Baseline.from_training(X, {"species": predicted}, truth={"species": labels})
    row = baseline.quality({"species": labels}, {"species": predicted})["species"]
    assert row.metrics["accuracy"] == pytest.approx(accuracy_score(labels, predicted), rel=1e-9)
    classes = sorted(set(labels))
    precision, recall, _, _ = precision_recall_fscore_support(labels, predicted, labels=classes)
    for c, p_, r_ in zip(classes, precision, recall):
        assert row.metrics["precision"][c] == pytest.approx(p_, rel=1e-9)
        assert row.metrics["recall"][c] == pytest.approx(r_, rel=1e-9)


def test_quality_survives_save_and_load_and_a_degraded_model_is_worse(tmp_path, regression):
    _, X, y, p = regression
    baseline = Baseline.from_training(X, p, truth=y)
    baseline.save(tmp_path / "b.json")
    loaded = Baseline.load(tmp_path / "b.json")
    assert (
        loaded.output("prediction").quality.metrics()
        == baseline.output("prediction").quality.metrics()
    )
    worse = loaded.quality(y, p * 1.5)["prediction"]
    assert worse.metrics["mae"] > 1.5 * worse.baseline["mae"]


def _config(path, respond: bool, categorical: bool = False) -> dict:
    output = "species" if categorical else "prediction"
    return {
        "baseline": str(path),
        "routes": [{"path": "/predict", "preset": "flat"}],
        "feedback": [
            {
                "path": "/feedback",
                "respond": respond,
                "predictions": {output: "$.rows[*].predicted"},
                "truth": {output: "$.rows[*].actual"},
            }
        ],
    }


def _flask(config):
    app = Flask("feedback")

    @app.post("/feedback")
    def feedback():  # the app's own route, when respond is false
        return jsonify(stored=True)

    if config is not None:
        app.wsgi_app = BoxkiteWSGIMiddleware(app.wsgi_app, config=config)
    return Client(app, "wsgi")


def _fastapi(config):
    app = FastAPI()

    @app.post("/feedback")
    async def feedback():
        return JSONResponse({"stored": True})

    if config is not None:
        app.add_middleware(BoxkiteASGIMiddleware, config=config)
    return Client(app, "asgi")


@pytest.mark.parametrize("factory", [_flask, _fastapi], ids=["flask", "fastapi"])
@pytest.mark.parametrize("respond", [True, False], ids=["respond", "app-answers"])
def test_numeric_feedback_counts_exact_errors(tmp_path, regression, factory, respond):
    _, X, y, p = regression
    baseline = Baseline.from_training(X, p, truth=y)
    baseline.save(tmp_path / "b.json")
    client, bare = factory(_config(tmp_path / "b.json", respond)), factory(None)
    rows = [{"predicted": float(a), "actual": float(b)} for a, b in zip(p, y)]
    rows += [{"predicted": None, "actual": 1.0}, {"predicted": 2.0, "actual": "n/a"}]
    for start in range(0, len(rows), 50):
        doc = {"rows": rows[start : start + 50]}
        reply = client.post_json("/feedback", doc)
        if respond:
            assert reply.status == 204 and reply.body == b""
        else:
            assert reply.same_as(bare.post_json("/feedback", doc))
    samples = scrape(client.request("GET", "/metrics").body.decode())
    errors = p - y
    edges = baseline.output("prediction").quality.edges
    got = buckets(samples, "boxkite_prediction_error_bucket", output="prediction")
    assert got == [float(np.sum(errors <= e)) for e in edges] + [float(len(errors))]
    labels = {"output": "prediction"}
    assert value(samples, "boxkite_prediction_error_sum", **labels) == pytest.approx(
        errors.sum(), rel=1e-9
    )
    abs_total = value(samples, "boxkite_prediction_abs_error_total", **labels)
    squared = value(samples, "boxkite_prediction_squared_error_total", **labels)
    assert abs_total / len(y) == pytest.approx(mean_absolute_error(y, p), rel=1e-9)
    assert squared / len(y) == pytest.approx(mean_squared_error(y, p), rel=1e-9)
    assert value(samples, "boxkite_feedback_missing_total", **labels) == 2
    assert value(samples, "boxkite_observed_rows_total", route="/feedback") == len(rows)
    # The baseline's quality is on the same page, to compare with.
    mae = baseline.output("prediction").quality.metrics()["mae"]
    assert value(samples, "boxkite_baseline_prediction_mae", **labels) == pytest.approx(mae)


@pytest.mark.parametrize("factory", [_flask, _fastapi], ids=["flask", "fastapi"])
def test_categorical_feedback_counts_every_outcome(tmp_path, classification, factory):
    _, X, labels, predicted = classification
    baseline = Baseline.from_training(X, {"species": predicted}, truth={"species": labels})
    baseline.save(tmp_path / "b.json")
    client = factory(_config(tmp_path / "b.json", respond=True, categorical=True))
    rows = [{"predicted": a, "actual": b} for a, b in zip(predicted, labels)]
    rows.append({"predicted": "unicorn", "actual": "setosa"})  # unseen: __other__, bounded
    client.post_json("/feedback", {"rows": rows})
    samples = scrape(client.request("GET", "/metrics").body.decode())
    outcomes = samples["boxkite_prediction_outcome_total"]
    known = set(baseline.output("species").categories)

    def category(v):
        return v if v in known else "__other__"

    expected = Counter((category(r["predicted"]), category(r["actual"])) for r in rows)
    assert len(outcomes) == len(known) ** 2  # every pair pre-set, nothing from request text
    for labels_, count in outcomes.items():
        pair = (dict(labels_)["predicted"], dict(labels_)["actual"])
        assert count == expected.get(pair, 0), pair
    correct = sum(v for k, v in outcomes.items() if dict(k)["predicted"] == dict(k)["actual"])
    total = sum(outcomes.values())
    expected = accuracy_score(labels, predicted) * len(labels) / (len(labels) + 1)
    assert correct / total == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("factory", [_flask, _fastapi], ids=["flask", "fastapi"])
def test_bad_feedback_is_counted_never_raised_and_changes_no_byte(tmp_path, regression, factory):
    _, X, y, p = regression
    Baseline.from_training(X, p, truth=y).save(tmp_path / "b.json")
    client, bare = factory(_config(tmp_path / "b.json", respond=False)), factory(None)
    bodies = [
        (b"{not json", {"Content-Type": "application/json"}, "invalid_json"),
        (b'{"rows": 5}', {"Content-Type": "application/json"}, "shape"),
        (b"a,b\n1,2", {"Content-Type": "text/csv"}, "content_type"),
    ]
    for body, headers, _ in bodies:
        assert client.request("POST", "/feedback", body, headers).same_as(
            bare.request("POST", "/feedback", body, headers)
        )
    samples = scrape(client.request("GET", "/metrics").body.decode())
    for _, _, reason in bodies:
        assert (
            value(samples, "boxkite_observation_errors_total", route="/feedback", reason=reason)
            == 1
        )
    assert value(samples, "boxkite_observed_requests_total", route="/feedback") == 0


def test_feedback_totals_are_exact_across_processes_sharing_a_directory(tmp_path, regression):
    _, X, y, p = regression
    Baseline.from_training(X, p, truth=y).save(tmp_path / "b.json")
    config = _config(tmp_path / "b.json", respond=True)
    store = tmp_path / "mp"
    store.mkdir()
    first = Client(BoxkiteWSGIMiddleware(None, config=config, multiprocess_dir=store), "wsgi")
    second = Client(BoxkiteWSGIMiddleware(None, config=config, multiprocess_dir=store), "wsgi")
    rows = [{"predicted": float(a), "actual": float(b)} for a, b in zip(p, y)]
    first.post_json("/feedback", {"rows": rows[:70]})
    second.post_json("/feedback", {"rows": rows[70:]})
    for client in (first, second):
        samples = scrape(client.request("GET", "/metrics").body.decode())
        total = value(samples, "boxkite_prediction_abs_error_total", output="prediction")
        assert total == pytest.approx(np.abs(p - y).sum(), rel=1e-9)


def test_config_refuses_what_feedback_cannot_count(tmp_path, regression):
    _, X, y, p = regression
    Baseline.from_training(X, p).save(tmp_path / "no-truth.json")  # no error bins
    (tmp_path / "boxkite.yaml").write_text(
        "baseline: no-truth.json\n"
        "routes:\n  - path: /predict\n    preset: flat\n"
        "feedback:\n  - path: /feedback\n    predictions:\n      prediction: $.p\n"
        "    truth:\n      prediction: $.t\n"
    )
    with pytest.raises(ConfigError, match=r"boxkite.yaml:8: .*truth=y_true"):
        load_config(tmp_path / "boxkite.yaml")
    Baseline.from_training(X, p, truth=y).save(tmp_path / "no-truth.json")
    (tmp_path / "boxkite.yaml").write_text(
        "baseline: no-truth.json\n"
        "routes:\n  - path: /predict\n    preset: flat\n"
        "feedback:\n  - path: /feedback\n    predictions:\n      prediction: $.p\n"
        "    truth:\n      score: $.t\n"
    )
    with pytest.raises(ConfigError, match=r"boxkite.yaml:10: output 'score' is not in"):
        load_config(tmp_path / "boxkite.yaml")


def test_log_prediction_ids_join_labels_on_the_users_side(tmp_path, regression):
    """The documented Boxkite flow: keep (id, prediction), post both with the label."""
    from boxkite_middleware import ModelMonitoringService

    _, X, y, p = regression
    Baseline.from_training(X, p, truth=y).save(tmp_path / "b.json")
    service = ModelMonitoringService(baseline=tmp_path / "b.json")
    kept = {}
    for row, prediction in zip(X.to_numpy()[:20], p[:20]):
        kept[service.log_prediction(request_body=None, features=list(row), output=prediction)] = (
            prediction
        )
    labels = dict(zip(kept, y[:20]))  # arrives later, keyed by the same ids
    client = _flask(_config(tmp_path / "b.json", respond=True))
    rows = [{"predicted": float(kept[i]), "actual": float(labels[i])} for i in kept]
    assert (
        client.request("POST", "/feedback", json.dumps({"rows": rows}).encode(), {}).status == 204
    )
    samples = scrape(client.request("GET", "/metrics").body.decode())
    total = value(samples, "boxkite_prediction_abs_error_total", output="prediction")
    assert total == pytest.approx(np.abs(p[:20] - y[:20]).sum(), rel=1e-9)


def test_baseline_command_keeps_quality_from_a_truth_column(tmp_path, regression):
    import subprocess
    import sys

    _, X, y, p = regression
    frame = X.copy()
    frame["score"], frame["target"] = p, y
    frame["band"] = np.where(p > 150, "high", "low")
    frame["band_true"] = np.where(y > 150, "high", "low")
    frame.to_csv(tmp_path / "train.csv", index=False)
    result = subprocess.run(
        [sys.executable, "-m", "boxkite_middleware", "baseline", str(tmp_path / "train.csv")]
        + ["--prediction", "score", "--prediction", "band"]
        + ["--truth", "score=target", "--truth", "band=band_true", "-o", str(tmp_path / "b.json")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    baseline = Baseline.load(tmp_path / "b.json")
    assert "target" not in baseline.feature_names and "band_true" not in baseline.feature_names
    score = baseline.output("score").quality.metrics()
    assert score["mae"] == pytest.approx(mean_absolute_error(y, p), rel=1e-9)
    assert score["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, p)), rel=1e-9)
    band = baseline.output("band").quality.metrics()
    assert band["accuracy"] == pytest.approx(
        accuracy_score(frame["band_true"], frame["band"]), rel=1e-9
    )


def test_quality_read_back_from_two_replicas_equals_scikit_learn(tmp_path, classification):
    from boxkite_middleware.readback import quality_from_texts

    _, X, labels, predicted = classification
    baseline = Baseline.from_training(X, {"species": predicted}, truth={"species": labels})
    baseline.save(tmp_path / "b.json")
    config = _config(tmp_path / "b.json", respond=True, categorical=True)
    replicas = [_flask(config), _fastapi(config)]
    rows = [{"predicted": a, "actual": b} for a, b in zip(predicted, labels)]
    replicas[0].post_json("/feedback", {"rows": rows[:40]})
    replicas[1].post_json("/feedback", {"rows": rows[40:]})
    pages = [r.request("GET", "/metrics").body.decode() for r in replicas]
    row = quality_from_texts(pages)["species"]
    assert row.metrics["accuracy"] == pytest.approx(accuracy_score(labels, predicted), rel=1e-9)
    classes = sorted(set(labels))
    precision, recall, _, _ = precision_recall_fscore_support(labels, predicted, labels=classes)
    for c, p_, r_ in zip(classes, precision, recall):
        assert row.metrics["precision"][c] == pytest.approx(p_, rel=1e-9)
        assert row.metrics["recall"][c] == pytest.approx(r_, rel=1e-9)
    expected = baseline.output("species").quality.metrics()
    assert row.baseline["accuracy"] == pytest.approx(expected["accuracy"])
    confusion = row.figures()["confusion"]
    assert sum(map(sum, confusion["matrix"])) == len(rows)


def test_bias_comes_from_counters_that_only_grow(tmp_path, regression):
    """The bias rule reads |e| and max(e, 0) sums: both only grow, unlike the signed _sum."""
    _, X, y, p = regression
    Baseline.from_training(X, p, truth=y).save(tmp_path / "b.json")
    client = _flask(_config(tmp_path / "b.json", respond=True))
    rows = [{"predicted": float(a), "actual": float(b)} for a, b in zip(p, y)]
    client.post_json("/feedback", {"rows": rows})
    samples = scrape(client.request("GET", "/metrics").body.decode())
    over = value(samples, "boxkite_prediction_overestimate_total", output="prediction")
    absolute = value(samples, "boxkite_prediction_abs_error_total", output="prediction")
    errors = p - y
    assert over == pytest.approx(errors[errors > 0].sum(), rel=1e-9)
    assert (2 * over - absolute) / len(y) == pytest.approx(np.mean(errors), rel=1e-9)


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.none(),
    st.booleans(),
    st.sampled_from(["setosa", "virginica", "1.5", "unicorn"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(values, values), min_size=9, max_size=60))
def test_one_by_one_and_batch_feedback_count_alike(classification, regression, pairs):
    """Small feedback batches take the per-value loop, large ones numpy: same counts."""
    from boxkite_middleware import Monitor
    from boxkite_middleware.schema import REASONS

    _, X, y, p = regression
    numeric = Baseline.from_training(X, p, truth=y)
    _, Xc, labels, predicted = classification
    categorical = Baseline.from_training(Xc, {"species": predicted}, truth={"species": labels})
    for baseline, output in ((numeric, "prediction"), (categorical, "species")):
        single, batch = (
            Monitor(baseline, routes=["/f"], feedback=[("default", output)]) for _ in range(2)
        )
        q = single.quality_index(output)
        predictions, truths = [a for a, _ in pairs], [b for _, b in pairs]
        for a, b in pairs:
            single.record_feedback(0, 1, [(q, [a], [b])])
        batch.record_feedback(0, len(pairs), [(q, predictions, truths)])
        # the route's counters come last: requests differ (one per call), rows do not
        width = 2 + len(REASONS)
        one, many = single.snapshot(), batch.snapshot()
        assert one[-width + 1] == many[-width + 1] == len(pairs)
        assert np.allclose(one[:-width], many[:-width], rtol=1e-9, equal_nan=True), output
