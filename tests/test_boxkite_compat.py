"""The Boxkite tutorial (export_text, then log_prediction) after changing one import."""

import pickle

import numpy as np
from flask import Flask, Response, request
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split

from boxkite_middleware import Baseline, ModelMonitoringService


def _train(tmp_path):
    bunch = load_diabetes()
    x_train, x_test, y_train, _ = train_test_split(bunch.data, bunch.target, random_state=0)
    model = LinearRegression().fit(x_train, y_train)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    features = zip(*[bunch.feature_names, x_train.T])
    ModelMonitoringService.export_text(
        features=features,
        inference=list(model.predict(x_train)),
        path=str(tmp_path / "histogram.prom"),
    )
    return bunch.feature_names, model, x_test


def _tutorial_app(tmp_path, **service_args):
    model = pickle.loads((tmp_path / "model.pkl").read_bytes())
    monitor = ModelMonitoringService(**service_args)
    app = Flask(__name__)

    @app.route("/", methods=["POST"])
    def predict():
        features = request.json
        score = model.predict([features])[0]
        pid = monitor.log_prediction(request_body=request.data, features=features, output=score)
        return {"result": score, "prediction_id": pid}

    @app.route("/metrics", methods=["GET"])
    def metrics():
        content, mimetype = monitor.export_http(
            params=request.args.to_dict(flat=False), headers=request.headers
        )
        return Response(content, content_type=mimetype)

    return app


def test_boxkite_tutorial_runs_and_counts(tmp_path):
    names, model, x_test = _train(tmp_path)
    baseline = Baseline.load(tmp_path / "histogram.prom")
    assert baseline.feature_names == names
    assert baseline.output_names == ["prediction"]
    for kwargs in (
        {"baseline": str(tmp_path / "histogram.prom")},
        {"histogram_file": str(tmp_path / "histogram.prom")},
    ):
        client = _tutorial_app(tmp_path, **kwargs).test_client()
        ids = set()
        for row in x_test:
            response = client.post("/", json=row.tolist())
            assert response.status_code == 200
            ids.add(response.json["prediction_id"])
        assert len(ids) == len(x_test)
        text = client.get("/metrics").get_data(as_text=True)
        families = {f.name: f for f in text_string_to_metric_families(text)}
        counts = {
            s.labels["feature"]: s.value
            for s in families["boxkite_feature_value"].samples
            if s.name.endswith("_count")
        }
        assert counts == {name: len(x_test) for name in names}
        bmi = baseline.feature("bmi")
        buckets = [
            s.value
            for s in families["boxkite_feature_value"].samples
            if s.name.endswith("_bucket") and s.labels["feature"] == "bmi"
        ]
        column = x_test[:, names.index("bmi")]
        assert buckets == [float(np.sum(column <= e)) for e in bmi.edges] + [len(x_test)]
        predictions = model.predict(x_test)
        total = next(
            s.value for s in families["boxkite_prediction_value"].samples if s.name.endswith("_sum")
        )
        assert np.isclose(total, predictions.sum())
        requests = families["boxkite_observed_requests"].samples[0]
        assert requests.labels["route"] == "log_prediction" and requests.value == len(x_test)


def test_export_http_negotiates_and_filters(tmp_path):
    _train(tmp_path)
    monitor = ModelMonitoringService(baseline=str(tmp_path / "histogram.prom"), model="diabetes")
    monitor.log_prediction(request_body=b"{}", features=[0.0] * 10, output=100.0)
    body, content_type = monitor.export_http()
    assert content_type.startswith("text/plain") and b'model="diabetes"' in body
    body, content_type = monitor.export_http(
        headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert content_type.startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
    body, _ = monitor.export_http(params={"name[]": ["boxkite_prediction_value_count"]})
    assert [f.name for f in text_string_to_metric_families(body.decode())] == [
        "boxkite_prediction_value"
    ]
