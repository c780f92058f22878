"""Record real request/response pairs from the real model servers, in-process.

Run inside a server's venv from the repository root:

    .venvs/<env>/bin/python -m tests.model_servers.capture kserve|mlserver|mlflow|bentoml

Each exchange is written to tests/model_servers/captured/<server>-<case>.json with the
method, path, request headers and body, status, response headers and body (bodies as
text when they are UTF-8 JSON, else base64). The bodies are exactly the bytes sent and
received through the server's own ASGI app (starlette's TestClient, lifespan included).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
from importlib import metadata

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "captured")


def _body_doc(body: bytes) -> dict:
    try:
        text = body.decode("utf-8")
        json.loads(text)
        return {"body": text}
    except (UnicodeDecodeError, ValueError):
        return {"body_base64": base64.b64encode(body).decode()}


def record(client, server: str, case: str, method: str, path: str, body: bytes, headers: dict):
    """Send one request through ``client`` (a TestClient) and save the exchange."""
    response = client.request(method, path, content=body, headers=headers)
    doc = {
        "server": server,
        "case": case,
        "versions": versions(server),
        "request": {"method": method, "path": path, "headers": headers, **_body_doc(body)},
        "response": {
            "status": response.status_code,
            "headers": [[k, v] for k, v in response.headers.multi_items()],
            **_body_doc(response.content),
        },
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"{server}-{case}.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{server}-{case}: {response.status_code} {response.content[:160]!r}")
    return response


def versions(server: str) -> dict:
    names = {
        "kserve": ["kserve"],
        "mlserver": ["mlserver", "mlserver-sklearn"],
        "mlflow": ["mlflow"],
        "bentoml": ["bentoml"],
    }[server] + ["fastapi", "starlette", "scikit-learn", "numpy", "pandas"]
    out = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def iris_rows() -> tuple[np.ndarray, list[str]]:
    from sklearn.datasets import load_iris

    data = load_iris()
    return data.data[[0, 60, 120]], [
        n.replace(" (cm)", "").replace(" ", "_") for n in data.feature_names
    ]


def diabetes_rows() -> tuple[np.ndarray, list[str]]:
    from sklearn.datasets import load_diabetes

    data = load_diabetes()
    return data.data[:3], list(data.feature_names)


def json_post(client, server, case, path, doc, content_type="application/json"):
    return record(
        client, server, case, "POST", path, json.dumps(doc).encode(), {"content-type": content_type}
    )


def capture_kserve() -> None:
    from kserve import InferInput, InferRequest
    from kserve.protocol.infer_type import RequestedOutput
    from starlette.testclient import TestClient

    from tests.model_servers.kserve_app import build_app, models

    app = build_app(models())
    X, _ = iris_rows()
    D, _ = diabetes_rows()
    with TestClient(app, raise_server_exceptions=False) as c:
        s = "kserve"
        json_post(c, s, "v1-iris", "/v1/models/iris:predict", {"instances": X.tolist()})
        json_post(c, s, "v1-diabetes", "/v1/models/diabetes:predict", {"instances": D.tolist()})
        json_post(
            c,
            s,
            "v1-cloudevent-iris",
            "/v1/models/iris:predict",
            {
                "specversion": "1.0",
                "id": "36077800-0c23-4f38-a0b4-01f4369f670a",
                "source": "https://example.com/boxkite",
                "type": "org.kubeflow.serving.inference.request",
                "time": "2026-12-06T05:00:00Z",
                "datacontenttype": "application/json",
                "data": {"instances": X.tolist()},
            },
            content_type="application/cloudevents+json",
        )
        for name, rows in (("iris", X), ("diabetes", D)):
            doc = {
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": list(rows.shape),
                        "datatype": "FP64",
                        "data": rows.ravel().tolist(),
                    }
                ]
            }
            json_post(c, s, f"v2-json-{name}", f"/v2/models/{name}/infer", doc)
            nested = {"inputs": [{**doc["inputs"][0], "data": rows.tolist()}]}
            json_post(c, s, f"v2-json-nested-{name}", f"/v2/models/{name}/infer", nested)
            # The binary tensor extension, built with kserve's own client types.
            infer_input = InferInput("input-0", list(rows.shape), "FP64")
            infer_input.set_data_from_numpy(rows, binary_data=True)
            request = InferRequest(
                model_name=name,
                infer_inputs=[infer_input],
                request_id="boxkite-1",
                request_outputs=[RequestedOutput("output-0", {"binary_data": True})],
            )
            body, json_length = request.to_rest()
            record(
                c,
                s,
                f"v2-binary-{name}",
                "POST",
                f"/v2/models/{name}/infer",
                body,
                {
                    "content-type": "application/octet-stream",
                    "inference-header-content-length": str(json_length),
                },
            )
            infer_input = InferInput("input-0", list(rows.shape), "FP64")
            infer_input.set_data_from_numpy(rows, binary_data=True)
            request = InferRequest(
                model_name=name, infer_inputs=[infer_input], request_id="boxkite-2"
            )
            body, json_length = request.to_rest()
            record(
                c,
                s,
                f"v2-binary-in-json-out-{name}",
                "POST",
                f"/v2/models/{name}/infer",
                body,
                {
                    "content-type": "application/octet-stream",
                    "inference-header-content-length": str(json_length),
                },
            )
        json_post(c, s, "v1-unknown-model", "/v1/models/nope:predict", {"instances": X.tolist()})


def capture_mlserver() -> None:
    import tempfile

    from starlette.testclient import TestClient

    from tests.model_servers.mlserver_app import build_app, train

    directory = tempfile.mkdtemp()
    train(directory)
    app = build_app(directory)
    X, names = iris_rows()
    D, dnames = diabetes_rows()
    s = "mlserver"

    def tensor(rows, datatype="FP64", name="input-0"):
        return {
            "name": name,
            "shape": list(rows.shape),
            "datatype": datatype,
            "data": rows.ravel().tolist(),
        }

    with TestClient(app, raise_server_exceptions=False) as c:
        path = "/v2/models/iris/infer"
        json_post(c, s, "iris-default", path, {"inputs": [tensor(X)]})
        json_post(
            c, s, "iris-predict", path, {"inputs": [tensor(X)], "outputs": [{"name": "predict"}]}
        )
        json_post(
            c,
            s,
            "iris-proba",
            path,
            {"inputs": [tensor(X)], "outputs": [{"name": "predict_proba"}]},
        )
        json_post(
            c,
            s,
            "iris-predict-and-proba",
            path,
            {"inputs": [tensor(X)], "outputs": [{"name": "predict"}, {"name": "predict_proba"}]},
        )
        json_post(
            c,
            s,
            "iris-nested-data",
            path,
            {"inputs": [{**tensor(X), "data": X.tolist()}], "outputs": [{"name": "predict_proba"}]},
        )
        strings = {
            "name": "input-0",
            "shape": list(X.shape),
            "datatype": "BYTES",
            "data": [repr(float(v)) for v in X.ravel()],
        }
        json_post(
            c,
            s,
            "iris-bytes-numeric-strings",
            path,
            {"inputs": [strings], "outputs": [{"name": "predict_proba"}]},
        )
        # The pandas request codec: one named 1-column tensor per feature.
        columns = [
            {"name": n, "shape": [len(X), 1], "datatype": "FP64", "data": X[:, i].tolist()}
            for i, n in enumerate(names)
        ]
        json_post(
            c,
            s,
            "iris-pandas-codec",
            path,
            {
                "parameters": {"content_type": "pd"},
                "inputs": columns,
                "outputs": [{"name": "predict_proba"}],
            },
        )
        json_post(
            c,
            s,
            "iris-versioned-path",
            "/v2/models/iris/versions/v1/infer",
            {"inputs": [tensor(X)]},
        )
        json_post(c, s, "diabetes", "/v2/models/diabetes/infer", {"inputs": [tensor(D)]})
        json_post(c, s, "unknown-model", "/v2/models/nope/infer", {"inputs": [tensor(D)]})
        json_post(
            c,
            s,
            "diabetes-bad-shape",
            "/v2/models/diabetes/infer",
            {"inputs": [{**tensor(D), "shape": [3, 5]}]},
        )


_CAPTURES = {"kserve": capture_kserve, "mlserver": capture_mlserver}


def capture_mlflow() -> None:
    import tempfile

    from starlette.testclient import TestClient

    from tests.model_servers.mlflow_app import build_app, save_models

    paths = save_models(tempfile.mkdtemp())
    X, names = iris_rows()
    D, dnames = diabetes_rows()
    s = "mlflow"
    for model, rows, cols in (
        ("iris", X, names),
        ("diabetes", D, dnames),
    ):
        records = [dict(zip(cols, r)) for r in rows.tolist()]
        bodies = {
            "dataframe-split": {"dataframe_split": {"columns": cols, "data": rows.tolist()}},
            "dataframe-split-index": {
                "dataframe_split": {
                    "index": list(range(len(rows))),
                    "columns": cols,
                    "data": rows.tolist(),
                }
            },
            "dataframe-records": {"dataframe_records": records},
            "instances-records": {"instances": records},
            "instances-lists": {"instances": rows.tolist()},
            "inputs-records": {"inputs": records},
            "inputs-columns": {"inputs": {c: rows[:, i].tolist() for i, c in enumerate(cols)}},
            "mlflow1-columns-data": {"columns": cols, "data": rows.tolist()},
            "mlflow1-bare-records": records,
        }
        with TestClient(build_app(paths[model]), raise_server_exceptions=False) as c:
            for case, doc in bodies.items():
                json_post(c, s, f"{model}-{case}", "/invocations", doc)
            if model == "iris":
                csv = (
                    ",".join(cols) + "\n" + "\n".join(",".join(map(repr, r)) for r in rows.tolist())
                )
                record(
                    c,
                    s,
                    "iris-csv",
                    "POST",
                    "/invocations",
                    csv.encode() + b"\n",
                    {"content-type": "text/csv"},
                )


_CAPTURES["mlflow"] = capture_mlflow


def capture_bentoml() -> None:
    from starlette.testclient import TestClient

    from tests.model_servers.bentoml_service import IRIS_FEATURES, Models

    X, _ = iris_rows()
    D, _ = diabetes_rows()
    s = "bentoml"
    with TestClient(Models.to_asgi(), raise_server_exceptions=False) as c:
        rows = [dict(zip(IRIS_FEATURES, r)) for r in X.tolist()]
        json_post(c, s, "classify", "/classify", {"rows": rows})
        json_post(c, s, "regress", "/regress", {"instances": D.tolist()})
        json_post(c, s, "classify-invalid", "/classify", {"rows": [{"sepal_length": "x"}]})


_CAPTURES["bentoml"] = capture_bentoml


if __name__ == "__main__":
    _CAPTURES[sys.argv[1]]()
