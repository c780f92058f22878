"""The middleware under real servers over real HTTP: gunicorn, uvicorn, several workers."""

import os

import httpx
import numpy as np
import pytest

from .helpers import free_port, gunicorn, serve, uvicorn
from .middleware_setup import expected_buckets, make_baseline, scrape, value, write_config

pytestmark = pytest.mark.e2e
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = make_baseline()


def _servers(port: int, workers: int):
    return {
        "gunicorn-flask": gunicorn("tests.apps.served:flask", port, "-w", str(workers)),
        "uvicorn-fastapi": uvicorn("tests.apps.served:fastapi", port, "--workers", str(workers)),
    }


@pytest.mark.parametrize("server", ["gunicorn-flask", "uvicorn-fastapi"])
def test_chunked_requests_reach_the_app_whole_and_are_observed(tmp_path, server):
    config = write_config(tmp_path, BASELINE)
    port = free_port()
    body = b'{"age": 0.031, "bmi": -0.02, "region": "eu", "pad": "' + b"z" * 3000 + b'"}'

    def pieces():
        for i in range(0, len(body), 100):
            yield body[i : i + 100]

    with serve(
        _servers(port, 1)[server],
        f"http://127.0.0.1:{port}/metrics",
        cwd=ROOT,
        env={"BOXKITE_CONFIG": config},
    ):
        url = f"http://127.0.0.1:{port}"
        echo = httpx.post(
            f"{url}/echo", content=pieces(), headers={"Content-Type": "application/json"}
        )
        assert echo.request.headers.get("transfer-encoding") == "chunked"
        assert echo.status_code == 200 and echo.content == body
        predicted = httpx.post(
            f"{url}/predict", content=pieces(), headers={"Content-Type": "application/json"}
        )
        assert predicted.json() == {"result": round(2 * 0.031 - 0.02, 6)}
        samples = scrape(httpx.get(f"{url}/metrics").text)
    assert value(samples, "boxkite_observed_requests_total", route="/echo") == 1
    assert value(samples, "boxkite_observed_requests_total", route="/predict") == 1
    assert value(samples, "boxkite_feature_value_count", feature="age") == 2
    assert value(samples, "boxkite_prediction_value_count", output="prediction") == 1


@pytest.mark.parametrize("server", ["gunicorn-flask", "uvicorn-fastapi"])
def test_several_workers_report_exact_totals_on_every_scrape(tmp_path, server):
    config = write_config(tmp_path, BASELINE)
    (tmp_path / "mp").mkdir()
    port = free_port()
    rng = np.random.default_rng(6)
    ages = rng.normal(0, 0.05, 300)
    env = {"BOXKITE_CONFIG": config, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "mp")}
    with serve(_servers(port, 3)[server], f"http://127.0.0.1:{port}/metrics", cwd=ROOT, env=env):
        url = f"http://127.0.0.1:{port}"
        for start in range(0, 300, 10):  # a fresh connection each time spreads the workers
            with httpx.Client(base_url=url) as client:
                for age in ages[start : start + 10]:
                    assert (
                        client.post(
                            "/predict", json={"age": float(age), "bmi": 0.0, "region": "us"}
                        ).status_code
                        == 200
                    )
        scrapes = [scrape(httpx.get(f"{url}/metrics").text) for _ in range(9)]
    for samples in scrapes:
        assert value(samples, "boxkite_observed_requests_total", route="/predict") == 300
        assert (
            value(samples, "boxkite_feature_category_total", feature="region", category="us") == 300
        )
    edges = BASELINE.feature("age").edges
    got = sorted(
        (dict(k)["le"], v)
        for k, v in scrapes[-1]["boxkite_feature_value_bucket"].items()
        if ("feature", "age") in k
    )
    assert [v for _, v in sorted(got, key=lambda r: float(r[0]))] == expected_buckets(edges, ages)
    files = [n for n in os.listdir(tmp_path / "mp") if n.endswith(".bkc")]
    # one file per worker that counted: the totals above were summed over several
    assert 2 <= len(files) <= 3, files
