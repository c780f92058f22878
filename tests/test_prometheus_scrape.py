"""A real Prometheus scrapes real gunicorn workers: negotiation, gzip, negative sums, le labels."""

import os

import httpx
import numpy as np
import pytest

from boxkite_middleware import Baseline

from .helpers import free_port, gunicorn, poll, prometheus, query, serve

pytestmark = pytest.mark.e2e
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_prometheus_ingests_exact_counts_and_matching_le_labels(tmp_path):
    rng = np.random.default_rng(9)
    # negative values (negative first bucket and _sum) and values >= 1e6 (exponent labels)
    train = -rng.lognormal(14, 1, 2000)
    baseline = Baseline.from_training({"x": train})
    baseline.save(tmp_path / "baseline.json")
    (tmp_path / "mp").mkdir()
    port = free_port()
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "mp"),
        "BOXKITE_TEST_BASELINE": str(tmp_path / "baseline.json"),
    }
    values = -rng.lognormal(14.3, 1, 250)
    app = gunicorn("tests.apps.counting_app:app", port, "-w", "2")
    with (
        serve(app, f"http://127.0.0.1:{port}/metrics", env=env, cwd=ROOT),
        prometheus([f"127.0.0.1:{port}"], str(tmp_path)) as prom,
    ):
        with httpx.Client() as client:
            for v in values:
                client.post(f"http://127.0.0.1:{port}/observe", json={"x": float(v)})
        count = poll(
            lambda: [
                r
                for r in query(prom, 'boxkite_feature_value_count{model="mp"}')
                if float(r["value"][1]) == 250
            ]
        )
        assert len(count) == 1
        total = query(prom, "boxkite_feature_value_sum")
        assert float(total[0]["value"][1]) == pytest.approx(values.sum(), rel=1e-12)
        runtime = {
            r["metric"]["le"]: float(r["value"][1])
            for r in query(prom, "boxkite_feature_value_bucket")
        }
        trained = {
            r["metric"]["le"]: float(r["value"][1])
            for r in query(prom, "boxkite_baseline_feature_value_bucket")
        }
        column = baseline.feature("x")
        assert set(runtime) == set(trained) == set(column.le)
        assert [runtime[le] for le in column.le] == [
            float(np.sum(values <= e)) for e in column.edges
        ] + [250.0]
        assert [trained[le] for le in column.le] == np.cumsum(column.counts).tolist()
        # the join the rules will rely on: same labels on both sides
        joined = query(
            prom,
            "boxkite_feature_value_bucket / on(model, feature, le) "
            "boxkite_baseline_feature_value_bucket",
        )
        assert len(joined) == len(column.le)
        up = query(prom, "up")
        assert up[0]["value"][1] == "1"
