"""MLflow's real scoring server app for a Series model and a 2-column DataFrame model,
every request format MLflow has accepted.

Runs in the venv made by tests/model_servers/envs.py (driven by tests/test_model_servers.py).
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import yaml
from starlette.testclient import TestClient

from boxkite_middleware import Baseline, BoxkiteASGIMiddleware

from .common import Pair, assert_features, assert_outputs, delta, shifted, total
from .mlflow_app import build_app, diabetes_frame, iris_frame, save_models

N = 30


def bodies(frame: pd.DataFrame) -> dict[str, object]:
    """Every JSON request format for the same rows: MLflow 2/3 and MLflow 1.x."""
    cols, rows = list(frame.columns), frame.to_numpy().tolist()
    records = frame.to_dict(orient="records")
    return {
        "dataframe_split": {"dataframe_split": {"columns": cols, "data": rows}},
        "dataframe_split_index": {
            "dataframe_split": {"index": list(range(len(rows))), "columns": cols, "data": rows}
        },
        "dataframe_split_reordered": {
            "dataframe_split": {
                "columns": cols[::-1],
                "data": frame[cols[::-1]].to_numpy().tolist(),
            }
        },
        "dataframe_records": {"dataframe_records": records},
        "instances_records": {"instances": records},
        "instances_lists": {"instances": rows},
        "inputs_records": {"inputs": records},
        "inputs_columns": {"inputs": frame.to_dict(orient="list")},
        "mlflow1_columns_data": {"columns": cols, "data": rows},
        "mlflow1_bare_records": records,
    }


FORMATS = list(bodies(pd.DataFrame({"a": [1.0]})))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    paths = save_models(str(tmp_path_factory.mktemp("mlflow-models")))
    X, _, _ = iris_frame()
    D, _ = diabetes_frame()
    loaded = {n: mlflow.pyfunc.load_model(p) for n, p in paths.items()}
    baselines = {
        # a 2-column DataFrame: species (categorical strings) and probability
        "iris": Baseline.from_training(X, loaded["iris"].predict(X)),
        # a Series: one output named ``prediction``
        "diabetes": Baseline.from_training(D, loaded["diabetes"].predict(D)),
    }
    apps = {}
    for name, path in paths.items():
        directory = tmp_path_factory.mktemp(f"mlflow-{name}")
        baselines[name].save(directory / "baseline.json")
        config = directory / "boxkite.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "model": name,
                    "baseline": "baseline.json",
                    "routes": [{"path": "/invocations", "preset": "mlflow"}],
                }
            )
        )
        monitored = build_app(path)
        monitored.add_middleware(BoxkiteASGIMiddleware, config=str(config))
        apps[name] = (monitored, build_app(path))
    frames = {"iris": X, "diabetes": D}
    with (
        TestClient(apps["iris"][0]) as im,
        TestClient(apps["iris"][1]) as ip,
        TestClient(apps["diabetes"][0]) as dm,
        TestClient(apps["diabetes"][1]) as dp,
    ):
        pairs = {"iris": Pair(im, ip), "diabetes": Pair(dm, dp)}
        yield pairs, baselines, loaded, frames


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("model", ["iris", "diabetes"])
def test_every_request_format(models, model, fmt):
    pairs, baselines, loaded, frames = models
    pair, baseline = pairs[model], baselines[model]
    X = frames[model]
    rows = pd.DataFrame(shifted(X.to_numpy(), N, 7), columns=X.columns)
    before = pair.metrics()
    reply = pair.post_json("/invocations", bodies(rows)[fmt])
    samples = delta(pair.metrics(), before)
    # Request features count whatever MLflow answers (3.x refuses 1.x formats with 400).
    assert_features(samples, model, baseline, list(X.columns), rows.to_numpy())
    assert total(samples, "boxkite_observed_rows_total", model=model) == N
    if reply.status_code == 200:
        predicted = loaded[model].predict(rows)
        outputs = (
            {c: predicted[c].tolist() for c in predicted.columns}
            if isinstance(predicted, pd.DataFrame)
            else {"prediction": np.asarray(predicted).tolist()}
        )
        assert_outputs(samples, model, baseline, outputs)
    else:
        assert reply.status_code == 400, reply.text
        assert fmt in ("instances_lists", "mlflow1_columns_data", "mlflow1_bare_records")
        for output in baseline.output_names:
            assert total(samples, "boxkite_prediction_missing_total", output=output) == 0
            assert total(samples, "boxkite_prediction_value_count", output=output) == 0
            assert total(samples, "boxkite_prediction_category_total", output=output) == 0
    assert total(samples, "boxkite_observation_errors_total") == 0


def test_formats_that_mlflow_answers(models):
    """Which formats this MLflow serves (a 400 here is MLflow's answer, not ours)."""
    pairs, _, _, frames = models
    rows = frames["iris"].head(3)
    status = {
        f: pairs["iris"].post_json("/invocations", b).status_code for f, b in bodies(rows).items()
    }
    assert {f for f, s in status.items() if s == 200} >= {
        "dataframe_split",
        "dataframe_records",
        "inputs_records",
        "inputs_columns",
    }


def test_csv_is_passed_through_and_not_counted(models):
    pairs, _, _, frames = models
    pair = pairs["iris"]
    X = frames["iris"].head(5)
    before = pair.metrics()
    reply = pair.post("/invocations", X.to_csv(index=False).encode(), {"content-type": "text/csv"})
    assert reply.status_code == 200
    samples = delta(pair.metrics(), before)
    assert total(samples, "boxkite_feature_value_count") == 0
    assert total(samples, "boxkite_prediction_category_total") == 0
    # not JSON: passed through untouched, counted as an error, not as observed
    assert total(samples, "boxkite_observation_errors_total", model="iris") == 1
    assert total(samples, "boxkite_observed_requests_total") == 0
