"""Speed of the framework-free core, each figure next to a reference measured in the same run.

    python benchmarks/core_speed.py [--quick]

- one row of 10 features + 1 output: Recorder.observe vs 11 prometheus_client
  Histogram.observe calls with the same buckets (what a hand-instrumented server does);
- a 1,000-row x 11-value batch: counting vs orjson.loads of the same JSON body;
- /metrics for 10, 50 and 200 numeric features x 10 bins: our render vs
  prometheus_client's generate_latest over the same families;
- multi-process scrape: 4 worker files vs 1,024 exited workers (after the first
  scrape has folded them into the archive).

Timings are medians of several interleaved repetitions; compare ratios, not
absolute times, across machines.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import orjson
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest

from boxkite_middleware import Baseline, Monitor


def per_call(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def compare(cases: dict[str, tuple[Callable[[], object], int]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each case, repetitions interleaved across cases."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (fn, number) in cases.items():
            samples[name].append(per_call(fn, number))
    return {name: statistics.median(values) for name, values in samples.items()}


def make_baseline(features: int, rng: np.random.Generator) -> Baseline:
    data = {f"f{i}": rng.normal(size=5000) for i in range(features)}
    return Baseline.from_training(data, rng.normal(size=5000))


def _dead_worker(directory: str, baseline: Baseline) -> None:
    Monitor(baseline, multiprocess_dir=directory).observe({"f0": 0.1})
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny N, for smoke tests")
    args = parser.parse_args()
    scale, repeats = (0.01, 3) if args.quick else (1.0, 7)
    rng = np.random.default_rng(0)
    rows = []

    baseline = make_baseline(10, rng)
    monitor = Monitor(baseline, routes=["/predict"])
    row = [(i, (float(rng.normal()),)) for i in range(11)]
    registry = CollectorRegistry()
    hist = Histogram(
        "h", "h", ["feature"], buckets=list(baseline.features[0].edges), registry=registry
    )
    children = [hist.labels(f"f{i}") for i in range(11)]
    values = [v for _, (v,) in row]

    def prometheus_client_row() -> None:
        for child, value in zip(children, values):
            child.observe(value)

    n = max(int(20000 * scale), 50)
    t = compare(
        {
            "ours": (lambda: monitor.recorder.observe(0, 1, row), n),
            "ref": (prometheus_client_row, n),
        },
        repeats,
    )
    rows.append(("count one row of 11 values", t["ours"], "11 x Histogram.observe", t["ref"]))

    batch = {f"f{i}": rng.normal(size=1000).tolist() for i in range(10)}
    body = orjson.dumps({"instances": [dict(zip(batch, r)) for r in zip(*batch.values())]})
    columns = [(i, batch[f"f{i}"]) for i in range(10)] + [(10, rng.normal(size=1000).tolist())]
    n = max(int(300 * scale), 5)
    t = compare(
        {
            "ours": (lambda: monitor.recorder.observe(0, 1000, columns), n),
            "ref": (lambda: orjson.loads(body), n),
        },
        repeats,
    )
    rows.append(("count a 1,000 x 11 batch", t["ours"], "orjson.loads of its body", t["ref"]))

    for features in (10, 50, 200):
        m = Monitor(make_baseline(features, rng), routes=["/predict"])
        m.observe_batch({f"f{i}": rng.normal(size=100).tolist() for i in range(features)})
        n = max(int(200 * scale), 5)
        t = compare(
            {
                "ours": (lambda m=m: m.render(), n),
                "ref": (lambda m=m: generate_latest(m.registry), n),
            },
            repeats,
        )
        rows.append(
            (
                f"render /metrics, {features} features",
                t["ours"],
                "generate_latest, same families",
                t["ref"],
            )
        )

    fork = multiprocessing.get_context("fork")
    small = make_baseline(10, rng)
    with tempfile.TemporaryDirectory() as few_dir, tempfile.TemporaryDirectory() as many_dir:
        scrapers = {}
        for directory, workers in ((few_dir, 4), (many_dir, max(int(1024 * scale), 8))):
            scraper = Monitor(small, multiprocess_dir=directory)
            for _ in range(workers):
                p = fork.Process(target=_dead_worker, args=(directory, small))
                p.start()
                p.join()
            first = per_call(scraper.recorder.snapshot, 1)
            scrapers[workers] = (scraper, first)
        (few, _), (many, first_many) = scrapers[4], list(scrapers.values())[1]
        # Steady state: scrapes come seconds apart, after the directory stopped changing.
        time.sleep(2.1)
        n = max(int(500 * scale), 5)
        t = compare(
            {"many": (many.recorder.snapshot, n), "few": (few.recorder.snapshot, n)}, repeats
        )
        workers = list(scrapers)[1]
        rows.append(
            (f"scrape, {workers} exited workers", t["many"], "scrape, 4 exited workers", t["few"])
        )
        rows.append(
            (
                f"first scrape after {workers} exits (folds them)",
                first_many,
                "scrape, 4 exited workers",
                t["few"],
            )
        )

    print(f"{'case':44} {'ours':>10}  {'reference':34} {'ref':>10}  ratio")
    for name, ours, ref_name, ref in rows:
        print(f"{name:44} {ours * 1e6:8.1f}us  {ref_name:34} {ref * 1e6:8.1f}us  {ours / ref:5.2f}")


if __name__ == "__main__":
    main()
