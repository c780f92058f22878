"""Live model quality in a real Prometheus: three replicas take delayed labels.

A regression (scikit-learn's diabetes data) and a classifier (iris) are served by two
gunicorn servers and one uvicorn server with one config of two models and a feedback
route each, answered by the middleware itself. Every replica gets the same labelled
predictions; the shipped rules (interval 2s, as in test_fleet.py) must record the
MAE, RMSE, bias, accuracy and per-class precision and recall that scikit-learn
computes on those rows, the quality alert must fire for the model whose answers were
made worse and not for the healthy one, and the dashboard's quality row must show data.
"""

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
)

from boxkite_middleware import Baseline
from boxkite_middleware.dashboard import QUALITY_PANELS, dashboard, queries
from boxkite_middleware.readback import quality_from_prometheus
from boxkite_middleware.rules import rules_yaml

from .helpers import fleet, poll, query

pytestmark = pytest.mark.e2e
INTERVAL = "2s"
BEFORE = "4s"  # two intervals: stage 1 then sees every replica at both instants it reads

CONFIG = """\
models:
  - name: diabetes
    baseline: diabetes.json
  - name: iris
    baseline: iris.json
routes:
  - path: /predict
    model: diabetes
    preset: flat
feedback:
  - path: /feedback/diabetes
    model: diabetes
    respond: true
    predictions:
      prediction: $.rows[*].predicted
    truth:
      prediction: $.rows[*].actual
  - path: /feedback/iris
    model: iris
    respond: true
    predictions:
      species: $.rows[*].predicted
    truth:
      species: $.rows[*].actual
"""


def _models(tmp_path: Path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    regression = LinearRegression().fit(X[:300], y[:300])
    y_test, p_test = y[300:].to_numpy(), regression.predict(X[300:])
    Baseline.from_training(X[300:], p_test, truth=y_test).save(tmp_path / "diabetes.json")
    X, target = load_iris(return_X_y=True, as_frame=True)
    names = np.array(["setosa", "versicolor", "virginica"])
    labels = names[target]
    classifier = LogisticRegression(max_iter=1000).fit(X[::2], labels[::2])
    held_out = classifier.predict(X[1::2])
    Baseline.from_training(X[1::2], {"species": held_out}, truth={"species": labels[1::2]}).save(
        tmp_path / "iris.json"
    )
    (tmp_path / "boxkite.yaml").write_text(CONFIG)
    # what arrives later: the regression's answers made worse (a broken model), the
    # classifier's as they were on held-out rows (a healthy one)
    degraded = p_test * 1.5
    return (y_test, degraded), (labels[1::2], held_out)


def _value(prom: str, promql: str) -> float:
    result = query(prom, promql)
    assert len(result) == 1, (promql, result)
    return float(result[0]["value"][1])


def test_quality_rules_alert_and_dashboard_over_three_replicas(tmp_path):
    (truth, predicted), (labels, classes) = _models(tmp_path)
    rules = tmp_path / "boxkite-rules.yml"
    rules.write_text(rules_yaml(interval=INTERVAL))
    with fleet(tmp_path, str(tmp_path / "boxkite.yaml"), str(rules)) as (urls, prom):
        ready = f"boxkite_prediction_abs_error_total offset {BEFORE}"
        poll(lambda: len(query(prom, ready)) == 3)
        poll(lambda: len(query(prom, f"boxkite_prediction_outcome_total offset {BEFORE}")) > 0)
        regression = [{"predicted": float(p), "actual": float(t)} for p, t in zip(predicted, truth)]
        classification = [{"predicted": p, "actual": a} for p, a in zip(classes, labels)]
        for url in urls:
            with httpx.Client(base_url=url, timeout=30) as client:
                for start in range(0, len(regression), 50):
                    reply = client.post(
                        "/feedback/diabetes", json={"rows": regression[start : start + 50]}
                    )
                    assert reply.status_code == 204
                reply = client.post("/feedback/iris", json={"rows": classification})
                assert reply.status_code == 204
        total = 3 * len(regression)
        count = 'boxkite:prediction_feedback_count:1h{model="diabetes"}'
        poll(lambda: query(prom, count) and _value(prom, count) >= total)
        assert _value(prom, count) == pytest.approx(total, rel=1e-12)
        poll(
            lambda: (
                query(prom, 'boxkite:prediction_feedback_count:1h{model="iris"}')
                and _value(prom, 'boxkite:prediction_feedback_count:1h{model="iris"}')
                >= 3 * len(classification)
            )
        )
        # the recorded quality is scikit-learn's on the same rows
        diabetes = '{model="diabetes",output="prediction"}'
        expected = {
            "mae": mean_absolute_error(truth, predicted),
            "rmse": np.sqrt(mean_squared_error(truth, predicted)),
            "bias": np.mean(predicted - truth),
        }
        # a query may land mid-evaluation, before the group's quality rules ran: wait for
        # the evaluation after the one that saw every label
        stamp = _value(prom, f"timestamp({count})")
        poll(lambda: _value(prom, f"timestamp(boxkite:prediction_mae:1h{diabetes})") > stamp)
        for measure, value in expected.items():
            got = _value(prom, f"boxkite:prediction_{measure}:1h{diabetes}")
            assert got == pytest.approx(value, rel=1e-6), measure
        iris = '{model="iris",output="species"}'
        got = _value(prom, f"boxkite:prediction_accuracy:1h{iris}")
        assert got == pytest.approx(accuracy_score(labels, classes), rel=1e-6)
        names = sorted(set(labels))
        precision, recall, _, _ = precision_recall_fscore_support(labels, classes, labels=names)
        for name, p_, r_ in zip(names, precision, recall):
            selector = f'{{model="iris",output="species",category="{name}"}}'
            assert _value(prom, f"boxkite:prediction_precision:1h{selector}") == pytest.approx(p_)
            assert _value(prom, f"boxkite:prediction_recall:1h{selector}") == pytest.approx(r_)
        # the command line reads the raw counters: the same numbers
        report = quality_from_prometheus(prom, "1h", model="diabetes")
        assert report["prediction"].metrics["mae"] == pytest.approx(expected["mae"], rel=1e-6)
        # the alert: the degraded regression, not the healthy classifier (pending counts:
        # the shipped `for: 15m` is longer than a test should wait)
        flagged = poll(
            lambda: {
                a["labels"]["model"]
                for a in httpx.get(f"{prom}/api/v1/alerts").json()["data"]["alerts"]
                if a["labels"]["alertname"] == "BoxkiteQualityDrop"
            }
        )
        assert flagged == {"diabetes"}
        # the dashboard's quality row: numeric panels for the regression, the accuracy
        # panel for the classifier, the feedback panel for both
        empty = []
        for title, expr in queries(dashboard()):
            kind = QUALITY_PANELS.get(title)
            if kind is None:
                continue
            for model, output, output_kind in (
                ("diabetes", "prediction", "numeric"),
                ("iris", "species", "categorical"),
            ):
                if kind not in ("any", output_kind):
                    continue
                promql = (
                    expr.replace("$model", model)
                    .replace("$output", output)
                    .replace("$__rate_interval", "10m")
                )
                if not query(prom, promql):
                    empty.append((title, promql))
        assert empty == []
        assert json.dumps(query(prom, "boxkite_baseline_prediction_mae"))  # exported gauges
