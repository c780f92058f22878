"""A baseline and config shared by the middleware tests, and reading counts back."""

from __future__ import annotations

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from boxkite_middleware import Baseline

from .apps.model_apps import model

CONFIG_YAML = """\
model: toy
baseline: baseline.json
max_body_bytes: 65536
routes:
  - path: /predict
    features:
      age: $.age
      bmi: $['bmi']
      region: $.region
    predictions:
      prediction: $.result
  - path: /stream
    features: {age: $.age, bmi: $.bmi}
    predictions: {prediction: $.result}
  - path: /echo
    methods: [POST, PUT]
    features: {age: $.age}
  - path: /status/{code}
    features: {age: $.age}
    predictions: {prediction: $.result}
  - path: /raise
    features: {age: $.age}
  - path: /batch
    features:
      age: $.instances[*].age
      bmi: $.instances[*].bmi
      region: $.instances[*].region
    predictions:
      prediction: $.predictions[*]
  - path: /flat
    preset: flat
  - path: /v1/models/{name}:predict
    preset: kserve-v1
  - path: /v2/models/{name}/infer
    preset: kserve-v2
  - path: /invocations
    preset: mlflow
"""


def make_baseline(seed: int = 1) -> Baseline:
    rng = np.random.default_rng(seed)
    n = 3000
    rows = {
        "age": rng.normal(0.0, 0.05, n),
        "bmi": rng.normal(0.0, 0.05, n),
        "region": rng.choice(["eu", "us", "apac"], n),
    }
    predictions = [model({"age": a, "bmi": b}) for a, b in zip(rows["age"], rows["bmi"])]
    return Baseline.from_training(rows, np.array(predictions))


def write_config(directory, baseline: Baseline, text: str = CONFIG_YAML) -> str:
    baseline.save(directory / "baseline.json")
    path = directory / "boxkite.yaml"
    path.write_text(text)
    return str(path)


def scrape(text: str) -> dict[str, dict[tuple, float]]:
    """family sample name -> {sorted label items: value}, from exposition text."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def value(samples, name: str, **labels) -> float:
    wanted = set(labels.items())
    matches = [v for k, v in samples.get(name, {}).items() if wanted <= set(k)]
    assert len(matches) == 1, (name, labels, matches)
    return matches[0]


def expected_buckets(edges: np.ndarray, values) -> list[float]:
    values = np.asarray([v for v in values if v is not None], dtype=float)
    return [float(np.sum(values <= e)) for e in edges] + [float(len(values))]


def buckets(samples, name: str, **labels) -> list[float]:
    wanted = set(labels.items())
    rows = [(dict(k)["le"], v) for k, v in samples.get(name, {}).items() if wanted <= set(k)]
    return [v for _, v in sorted(rows, key=lambda r: float(r[0]))]
