"""Shared by the model-server suites: data, baselines, configs and exact expected counts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import yaml
from sklearn.datasets import load_diabetes, load_iris

from boxkite_middleware import Baseline

from ..middleware_setup import scrape

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]
DIABETES_FEATURES = list(load_diabetes().feature_names)


def iris() -> tuple[np.ndarray, np.ndarray]:
    data = load_iris()
    return data.data, data.target


def diabetes() -> tuple[np.ndarray, np.ndarray]:
    data = load_diabetes()
    return data.data, data.target


def shifted(X: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` rows like ``X`` with some noise: values land in many bins, off the edges."""
    rng = np.random.default_rng(seed)
    rows = X[rng.integers(0, len(X), n)]
    return rows + rng.normal(0, X.std(axis=0) * 0.1, rows.shape)


def write_config(directory: Path, baselines: dict[str, Baseline], routes: list[dict]) -> str:
    """A ``models:`` config, one baseline file per model, as the README shows it."""
    models = []
    for name, baseline in baselines.items():
        (directory / name).mkdir(exist_ok=True)
        baseline.save(directory / name / "baseline.json")
        models.append({"name": name, "baseline": f"{name}/baseline.json"})
    path = directory / "boxkite.yaml"
    path.write_text(yaml.safe_dump({"models": models, "routes": routes}, sort_keys=False))
    return str(path)


def cumulative(edges: np.ndarray, values: Iterable[float]) -> list[float]:
    """Prometheus ``le`` buckets (cumulative, ``+Inf`` last) of ``values`` over ``edges``."""
    values = np.asarray(list(values), dtype=float)
    values = values[np.isfinite(values)]
    per_bin = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return [float(c) for c in np.cumsum(per_bin)]


def buckets(samples, family: str, **labels) -> list[float]:
    """Bucket values of one series, in ``le`` order, from scraped samples."""
    wanted = set(labels.items())
    rows = [(dict(k)["le"], v) for k, v in samples.get(family, {}).items() if wanted <= set(k)]
    return [v for _, v in sorted(rows, key=lambda r: float(r[0]))]


def total(samples, name: str, **labels) -> float:
    """Sum over the series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for k, v in samples.get(name, {}).items() if wanted <= set(k))


def metrics(client) -> dict:
    reply = client.get("/metrics")
    assert reply.status_code == 200, reply.text
    return scrape(reply.text)


def assert_features(samples, model: str, baseline: Baseline, names: Sequence[str], rows):
    """Every feature's buckets equal numpy's over ``rows`` (columns in ``names`` order)."""
    rows = np.asarray(rows, dtype=float).reshape(-1, len(names))
    for i, name in enumerate(names):
        got = buckets(samples, "boxkite_feature_value_bucket", model=model, feature=name)
        want = cumulative(baseline.feature(name).edges, rows[:, i])
        assert got == want, (model, name, got, want)


def assert_outputs(samples, model: str, baseline: Baseline, columns: dict[str, Sequence]):
    """Numeric outputs' buckets, and categorical outputs' counts, equal the expected ones."""
    for name, values in columns.items():
        column = baseline.output(name)
        if column.kind == "numeric":
            got = buckets(samples, "boxkite_prediction_value_bucket", model=model, output=name)
            want = cumulative(column.edges, values)
        else:
            got = [
                total(
                    samples,
                    "boxkite_prediction_category_total",
                    model=model,
                    output=name,
                    category=c,
                )
                for c in column.categories
            ]
            known = set(column.categories)
            want = [
                float(sum(1 for v in values if str(v) == c))
                if c != "__other__"
                else float(sum(1 for v in values if str(v) not in known))
                for c in column.categories
            ]
        assert got == want, (model, name, got, want)


def same_response(a, b, volatile: Sequence[str] = (), volatile_headers: Sequence[str] = ()):
    """Two httpx responses are identical: status, headers in order, body bytes.

    ``volatile`` names top-level JSON keys the server itself makes up per request (a
    CloudEvent's ``id`` and ``time``); only then are bodies compared as JSON without them,
    and ``content-length`` may differ with them. ``volatile_headers`` are headers whose
    value the server makes up per request (BentoML's request id): present in both, at the
    same place, values not compared.
    """

    def headers(response, skip=()):
        return [
            (k, "*" if k in volatile_headers else v)
            for k, v in response.headers.multi_items()
            if k not in skip
        ]

    assert a.status_code == b.status_code
    if not volatile:
        assert headers(a) == headers(b)
        assert a.content == b.content
        return
    assert headers(a, {"content-length"}) == headers(b, {"content-length"})
    da, db = json.loads(a.content), json.loads(b.content)
    for key in volatile:
        da.pop(key, None), db.pop(key, None)
    assert da == db


def delta(after: dict, before: dict) -> dict:
    """Counts added between two scrapes (series absent before count from 0)."""
    return {
        name: {k: v - before.get(name, {}).get(k, 0.0) for k, v in series.items()}
        for name, series in after.items()
    }


class Pair:
    """The same requests to the monitored app and to the plain one, responses compared."""

    def __init__(self, monitored, plain, volatile_headers: Sequence[str] = ()) -> None:
        self.monitored, self.plain = monitored, plain
        self.volatile_headers = volatile_headers

    def post(self, path: str, body: bytes, headers: dict, volatile: Sequence[str] = ()):
        got = self.monitored.post(path, content=body, headers=headers)
        want = self.plain.post(path, content=body, headers=headers)
        same_response(got, want, volatile, self.volatile_headers)
        return got

    def post_json(self, path: str, doc, content_type: str = "application/json", **kwargs):
        return self.post(path, json.dumps(doc).encode(), {"content-type": content_type}, **kwargs)

    def metrics(self) -> dict:
        return metrics(self.monitored)
