"""Series per replica, computed from the baselines and routes, against real /metrics pages."""

import subprocess
import sys

import httpx
import numpy as np

from boxkite_middleware import Baseline
from boxkite_middleware.cardinality import GUIDANCE_ABOVE, series_of_config, series_per_replica
from boxkite_middleware.config import load_config
from boxkite_middleware.monitor import Monitor
from boxkite_middleware.observing import Observer

from .helpers import free_port, gunicorn, serve
from .middleware_setup import make_baseline, write_config


def _boxkite_series(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if line.startswith("boxkite_")]
    assert len(set(lines)) == len(lines)
    return lines


def test_the_count_is_the_series_a_real_server_exports(tmp_path):
    config = write_config(tmp_path, make_baseline())
    expected = series_of_config(load_config(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with serve(gunicorn("tests.apps.served:flask", port), url, env={"BOXKITE_CONFIG": config}):
        page = _boxkite_series(httpx.get(url).text)
    assert len(page) == expected.total
    assert sum(s.startswith("boxkite_baseline_") for s in page) == expected.baseline


def test_several_models_and_a_route_that_picks_them(tmp_path, rng):
    def baseline(n_features: int, bins: int) -> Baseline:
        columns = {f"x{i}": rng.normal(size=400) for i in range(n_features)}
        return Baseline.from_training(columns, rng.normal(size=400), bins=bins)

    baseline(3, 5).save(tmp_path / "a.json")
    baseline(2, 8).save(tmp_path / "b.json")
    (tmp_path / "boxkite.yaml").write_text(
        "models:\n  - {name: a, baseline: a.json}\n  - {name: b, baseline: b.json}\n"
        "routes:\n  - path: /v2/models/{model}/infer\n    preset: kserve-v2\n"
        "  - path: /score\n    model: b\n    features: {x0: $.x0}\n"
    )
    config = load_config(str(tmp_path / "boxkite.yaml"))
    page = Observer(config, shared=False).monitor.render()[0].decode()
    count = series_of_config(config)
    assert len(_boxkite_series(page)) == count.total
    assert count.routes == 4 * (2 + 8)  # (a, b, __other__) x /v2/..., (b, /score)


def test_numeric_categorical_bool_and_several_outputs(mixed_baseline, rng):
    two_outputs = Baseline.from_training(
        {"x": rng.normal(size=500), "colour": rng.choice(list("abcdefgh"), 500)},
        {"score": rng.normal(size=500), "label": rng.choice(["yes", "no"], 500)},
        bins=20,
    )
    for baseline, routes in ((mixed_baseline, ["/a", "/b"]), (two_outputs, [])):
        page = Monitor(baseline, routes=routes).render()[0].decode()
        count = series_per_replica(baseline, routes)
        assert len(_boxkite_series(page)) == count.total, baseline.feature_names
        assert count.baseline == count.columns + 1
    # 20 bins: 20 buckets (+Inf included), _count, _sum, missing
    assert series_per_replica(two_outputs).widest == ("feature x", 20 + 3)


def test_check_prints_the_count_and_points_to_the_guidance_when_it_is_large(tmp_path):
    rng = np.random.default_rng(3)
    wide = Baseline.from_training({f"x{i}": rng.normal(size=300) for i in range(300)}, bins=20)
    config = write_config(
        tmp_path,
        wide,
        "model: wide\nbaseline: baseline.json\nroutes:\n  - path: /predict\n"
        "    features: {x0: $.x0}\n",
    )
    out = subprocess.run(
        [sys.executable, "-m", "boxkite_middleware", "check", config],
        capture_output=True,
        text=True,
    ).stdout
    count = series_per_replica(wide, ["/predict"])
    assert count.total > GUIDANCE_ABOVE
    assert f"{count.total:,} series per replica" in out
    assert "docs/rules-scaling.md" in out


def test_feedback_series_are_counted_for_numeric_and_categorical_outputs(tmp_path, rng):
    x = rng.normal(size=600)
    score = 2 * x + rng.normal(size=600)
    label = np.where(x > 0, "hi", "lo")
    Baseline.from_training(
        {"x": x},
        {"score": score, "label": label},
        truth={"score": score + rng.normal(size=600), "label": np.where(x > 0.1, "hi", "lo")},
    ).save(tmp_path / "b.json")
    (tmp_path / "boxkite.yaml").write_text(
        "baseline: b.json\nroutes:\n  - path: /predict\n    preset: flat\n"
        "feedback:\n  - path: /feedback\n    respond: true\n"
        "    predictions:\n      score: $.score\n      label: $.label\n"
        "    truth:\n      score: $.true_score\n      label: $.true_label\n"
    )
    config = load_config(str(tmp_path / "boxkite.yaml"))
    page = _boxkite_series(Observer(config, shared=False).monitor.render()[0].decode())
    count = series_of_config(config)
    assert len(page) == count.total and count.quality > 0
    families = (
        "boxkite_prediction_error_",
        "boxkite_prediction_abs_error_total",
        "boxkite_prediction_squared_error_total",
        "boxkite_prediction_overestimate_total",
        "boxkite_prediction_outcome_total",
        "boxkite_feedback_missing_total",
        "boxkite_baseline_prediction_error_",
        *(f"boxkite_baseline_prediction_{m}{{" for m in ("mae", "rmse", "bias", "accuracy")),
        *(f"boxkite_baseline_prediction_{m}{{" for m in ("precision", "recall")),
    )
    assert sum(s.startswith(families) for s in page) == count.quality
