"""Series per replica, computed from the baseline and routes, against real /metrics pages."""

import subprocess
import sys

import httpx
import numpy as np

from boxkite_middleware import Baseline
from boxkite_middleware.cardinality import GUIDANCE_ABOVE, series_per_replica
from boxkite_middleware.config import load_config
from boxkite_middleware.monitor import Monitor

from .helpers import free_port, gunicorn, serve
from .middleware_setup import make_baseline, write_config


def _series_on(text: str) -> int:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(set(lines)) == len(lines)
    return len(lines)


def test_the_count_is_the_series_a_real_server_exports(tmp_path):
    config = write_config(tmp_path, make_baseline())
    loaded = load_config(config)
    expected = series_per_replica(loaded.baseline, [r.path for r in loaded.routes])
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with serve(gunicorn("tests.apps.served:flask", port), url, env={"BOXKITE_CONFIG": config}):
        page = httpx.get(url).text
    assert _series_on(page) == expected.total
    baseline_series = page.count("\nboxkite_baseline_")
    assert baseline_series == expected.baseline


def test_numeric_categorical_bool_and_several_outputs(mixed_baseline, rng):
    two_outputs = Baseline.from_training(
        {"x": rng.normal(size=500), "colour": rng.choice(list("abcdefgh"), 500)},
        {"score": rng.normal(size=500), "label": rng.choice(["yes", "no"], 500)},
        bins=20,
    )
    for baseline, routes in ((mixed_baseline, ["/a", "/b"]), (two_outputs, [])):
        page = Monitor(baseline, routes=routes).render()[0].decode()
        count = series_per_replica(baseline, routes)
        assert _series_on(page) == count.total, baseline.feature_names
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
