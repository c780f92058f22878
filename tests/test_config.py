import textwrap

import pytest

from boxkite_middleware import (
    BoxkiteASGIMiddleware,
    BoxkiteWSGIMiddleware,
    ConfigError,
    load_config,
)

from .middleware_setup import make_baseline

BASELINE = make_baseline()


def _write(tmp_path, text: str):
    BASELINE.save(tmp_path / "baseline.json")
    path = tmp_path / "boxkite.yaml"
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """\
    model: m
    baseline: baseline.json
    routes:
      - path: /predict
        features:
          age: $.age
        predictions:
          prediction: $.result
"""


def test_a_good_config_resolves_paths_relative_to_the_file(tmp_path, monkeypatch):
    path = _write(tmp_path, GOOD)
    monkeypatch.chdir("/")
    config = load_config(str(path))
    assert config.model == "m" and config.metrics_path == "/metrics"
    assert config.max_body_bytes == 1 << 20
    assert config.routes[0].methods == ("POST",)
    assert config.baseline.feature_names == BASELINE.feature_names


def test_a_dict_config_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    BASELINE.save(tmp_path / "b.json")
    monkeypatch.chdir(tmp_path)
    config = load_config(
        {
            "baseline": "b.json",
            "metrics": {"path": None},
            "routes": [{"path": "/p", "preset": "flat"}],
        }
    )
    assert config.metrics_path is None and config.model == "default"


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("model: m\nbaseline: baseline.json\nroutez: []\n", 3, "unknown key 'routez'"),
        ("baseline: nope.json\nroutes: [{path: /p, preset: flat}]\n", 1, "does not exist"),
        (
            "baseline: baseline.json\nroutes:\n  - path: /p\n    features:\n      age: $.age\n"
            "      height: $.h\n",
            6,
            "feature 'height' is not in the baseline",
        ),
        (
            "baseline: baseline.json\nroutes:\n  - path: /p\n    features:\n      age: $..age\n",
            5,
            "recursive descent",
        ),
        (
            "baseline: baseline.json\nroutes:\n  - path: /p\n    features:\n"
            "      age: $.rows[*].age\n      bmi: $.bmi\n",
            3,
            "fan out alike",
        ),
        (
            "baseline: baseline.json\nroutes:\n  - path: /p\n    predictions:\n      score: $.s\n",
            5,
            "output 'score' is not in the baseline",
        ),
        (
            "baseline: baseline.json\nroutes:\n  - path: /p\n    preset: tfserving\n",
            4,
            "unknown preset",
        ),
        (
            "baseline: baseline.json\nroutes:\n  - path: /p\n    methods: [HEAD]\n"
            "    preset: flat\n",
            4,
            "HEAD",
        ),
        (
            "baseline: baseline.json\nroutes:\n  - path: /p\n    preset: flat\n    input: x\n",
            5,
            "option of preset kserve-v2",
        ),
        (
            "baseline: baseline.json\nroutes:\n  - path: p\n    preset: flat\n",
            3,
            "must start with '/'",
        ),
        (
            "baseline: baseline.json\nroutes:\n  - path: /p\n    preset: flat\n"
            "  - path: /p\n    preset: mlflow\n",
            5,
            "configured twice",
        ),
        (
            "baseline: baseline.json\nmax_body_bytes: -1\nroutes: [{path: /p, preset: flat}]\n",
            2,
            "positive integer",
        ),
        ("baseline: baseline.json\nroutes: []\n", 2, "non-empty list"),
        (
            "baseline: baseline.json\nroutes:\n  - path: /p\n    features: {age: $.a}\n"
            "    colour: red\n",
            5,
            "unknown key 'colour'",
        ),
        (
            "baseline: baseline.json\nroutes:\n  - path: /metrics\n    preset: flat\n",
            3,
            "is the metrics path",
        ),
        ("baseline: baseline.json\nroutes:\n  - path: /p\n   bad: indent\n", 4, "invalid YAML"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path, text, line, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value).startswith(f"{path}:{line}: "), str(info.value)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_corrupt_baseline_fails_at_start_up(tmp_path):
    path = _write(tmp_path, GOOD)
    (tmp_path / "baseline.json").write_text("{")
    with pytest.raises(ConfigError, match=r"boxkite.yaml:2: .*corrupt baseline"):
        BoxkiteWSGIMiddleware(lambda e, s: [], config=str(path))


def test_asgi_config_errors_raise_at_start_up_not_during_requests(tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    path = _write(tmp_path, GOOD.replace("$.age", "$.a[1:2]"))
    app = FastAPI()
    app.add_middleware(BoxkiteASGIMiddleware, config=str(path))
    with pytest.raises(ConfigError, match="slices"), TestClient(app):
        pass  # the lifespan start-up builds the middleware stack


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(str(tmp_path / "absent.yaml"))
