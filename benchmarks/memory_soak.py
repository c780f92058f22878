"""Resident memory after 1M observed requests vs after 10k: the counts do not grow.

    python benchmarks/memory_soak.py [--requests 1000000] [--quick]

Drives the WSGI middleware in-process around a minimal WSGI model app: single
records of 10 numeric features and a categorical one that is a new, never-seen
string on every request (the worst case for label cardinality), one prediction
each. Prints RSS after a 10k-request warm-up and at the end, the growth, and the
number of series /metrics serves at both points. The reference is the same loop
with the app alone, measured in the same run.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import orjson

from boxkite_middleware import Baseline, BoxkiteWSGIMiddleware

FEATURES = [f"f{i}" for i in range(10)]
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


def app(environ, start_response):
    doc = orjson.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
    start_response("200 OK", [("Content-Type", "application/json")])
    return [orjson.dumps({"result": doc["f0"] * 2})]


def drive(wsgi, requests: int, start: int, rng: np.random.Generator) -> None:
    values = rng.normal(size=(1000, 10)).tolist()
    for i in range(start, start + requests):
        record = dict(zip(FEATURES, values[i % 1000]))
        record["city"] = f"city-{i}"  # never seen before: must not create a series
        body = orjson.dumps(record)
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/predict",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        result = wsgi(environ, lambda status, headers, exc_info=None: None)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()


def series(wsgi) -> int:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "wsgi.input": io.BytesIO()}
    body = b"".join(wsgi(environ, lambda *a: None))
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="tiny N, for smoke tests")
    args = parser.parse_args()
    total = 50_000 if args.quick else args.requests
    warmup = 10_000
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        training = {f: rng.normal(size=5000) for f in FEATURES}
        training["city"] = rng.choice(["paris", "lima", "oslo"], 5000)
        Baseline.from_training(training, rng.normal(size=5000)).save(Path(tmp) / "b.json")
        config = {
            "baseline": str(Path(tmp) / "b.json"),
            "routes": [
                {
                    "path": "/predict",
                    "features": {f: f"$.{f}" for f in [*FEATURES, "city"]},
                    "predictions": {"prediction": "$.result"},
                }
            ],
        }
        wsgi = BoxkiteWSGIMiddleware(app, config=config)
        results = {}
        for name, target in (("app alone (reference)", app), ("with boxkite-middleware", wsgi)):
            drive(target, warmup, 0, rng)
            before = rss_mb()
            series_before = series(wsgi)
            drive(target, total - warmup, warmup, rng)
            results[name] = (before, rss_mb())
        series_after = series(wsgi)
    print(f"{total:,} requests ({warmup:,} warm-up), each with a never-seen category")
    print(f"{'case':28} {'RSS after warm-up':>18} {'RSS at end':>11} {'growth':>8}")
    for name, (before, after) in results.items():
        print(f"{name:28} {before:15.1f} MB {after:8.1f} MB {after - before:+6.2f} MB")
    (ours_before, ours_after) = results["with boxkite-middleware"]
    ref_before, ref_after = results["app alone (reference)"]
    print(f"series on /metrics after warm-up: {series_before}, at the end: {series_after}")
    extra = (ours_after - ours_before) - (ref_after - ref_before)
    print(f"growth beyond the reference's: {extra:+.2f} MB")


if __name__ == "__main__":
    main()
