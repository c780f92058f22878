"""Exact counts under concurrent load and under worker faults, over real HTTP."""

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

from .helpers import free_port, gunicorn, poll, serve, uvicorn
from .middleware_setup import make_baseline, scrape, value, write_config

pytestmark = pytest.mark.e2e
ROOT = str(Path(__file__).parent.parent)
THREADS, PER_THREAD = 8, 10_000


def _total(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    return value(scrape(text), "boxkite_feature_value_count", feature="age")


def test_eight_threads_of_ten_thousand_requests_on_a_threaded_wsgi_server(tmp_path):
    config = write_config(tmp_path, make_baseline())
    port = free_port()
    body = json.dumps({"age": 0.01, "bmi": -0.02, "region": "eu"}).encode()
    failures: list[str] = []

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(PER_THREAD):
            connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures.append(str(response.status))
        connection.close()

    server = gunicorn(
        "tests.apps.served:bare_wsgi",
        port,
        "-k",
        "gthread",
        "--threads",
        str(THREADS),
        "-w",
        "1",
        "--keep-alive",
        "30",
    )
    with serve(
        server, f"http://127.0.0.1:{port}/metrics", env={"BOXKITE_CONFIG": config}, cwd=ROOT
    ):
        threads = [threading.Thread(target=client) for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        samples = scrape(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
    sent = THREADS * PER_THREAD
    assert value(samples, "boxkite_observed_requests_total", route="/predict") == sent
    assert value(samples, "boxkite_feature_value_count", feature="age") == sent
    assert value(samples, "boxkite_feature_category_total", feature="region", category="eu") == sent
    assert value(samples, "boxkite_prediction_value_count", output="prediction") == sent


def test_concurrent_asyncio_requests_on_uvicorn(tmp_path):
    config = write_config(tmp_path, make_baseline())
    port = free_port()
    rng = np.random.default_rng(3)
    ages = rng.normal(0, 0.05, 10_000).tolist()

    async def load() -> list[int]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60
        ) as client:
            gate = asyncio.Semaphore(64)

            async def one(age: float) -> int:
                async with gate:
                    reply = await client.post(
                        "/predict", json={"age": age, "bmi": 0.0, "region": "us"}
                    )
                    return reply.status_code

            return await asyncio.gather(*(one(a) for a in ages))

    with serve(
        uvicorn("tests.apps.served:fastapi", port),
        f"http://127.0.0.1:{port}/metrics",
        env={"BOXKITE_CONFIG": config},
        cwd=ROOT,
    ):
        statuses = asyncio.run(load())
        samples = scrape(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
    assert set(statuses) == {200}
    assert value(samples, "boxkite_feature_value_count", feature="age") == len(ages)
    assert value(samples, "boxkite_observed_rows_total", route="/predict") == len(ages)


def _workers(master: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True
    ).stdout
    return [int(p) for p in out.split()]


def test_killed_and_recycled_workers_keep_their_counts(tmp_path):
    config = write_config(tmp_path, make_baseline())
    (tmp_path / "mp").mkdir()
    port = free_port()
    env = {"BOXKITE_CONFIG": config, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "mp")}
    server = gunicorn(
        "tests.apps.served:bare_wsgi",
        port,
        "-w",
        "3",
        "--max-requests",
        "150",
        "--max-requests-jitter",
        "50",
    )
    totals = []

    def send(n: int) -> None:
        for _ in range(n):  # a new connection each time spreads requests over the workers
            reply = httpx.post(f"http://127.0.0.1:{port}/predict", json={"age": 0.0})
            assert reply.status_code == 200

    with serve(server, f"http://127.0.0.1:{port}/metrics", env=env, cwd=ROOT) as proc:
        sent = 0
        for round_ in range(4):
            send(400)
            sent += 400
            totals.append(_total(port))
            assert totals[-1] == sent
            before = set(_workers(proc.pid))
            victim = sorted(before)[round_ % len(before)]
            os.kill(victim, signal.SIGKILL)  # mid-load: no clean-up code runs in it
            poll(
                lambda b=before, v=victim: (
                    len(set(_workers(proc.pid)) - b) >= 1 and v not in _workers(proc.pid)
                )
            )
            for _ in range(5):  # every worker, old or new, reports the same total
                totals.append(_total(port))
                assert totals[-1] == sent
        files = [n for n in os.listdir(tmp_path / "mp") if n.endswith(".bkc")]
    assert totals == sorted(totals)  # never backwards
    assert len(files) <= 4  # the archive and the live workers: dead files were folded


def test_a_million_requests_leave_memory_flat():
    result = subprocess.run(
        [sys.executable, "benchmarks/memory_soak.py", "--requests", "1000000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    ours = next(ln for ln in lines if ln.startswith("with boxkite-middleware"))
    growth = float(ours.split()[-2])
    assert growth < 1.0, result.stdout  # MB over 990,000 requests with new categories
    series = next(ln for ln in lines if ln.startswith("series on /metrics"))
    before, after = (int(n) for n in series.replace(",", "").split() if n.isdigit())
    assert before == after, series
