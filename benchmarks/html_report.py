"""Time to write the HTML drift report, and its size, for 50 and 200 features.

    python benchmarks/html_report.py [--repeats 20] [--quick]

A baseline of N features (four in five numeric with 10 quantile bins, one in five
categorical with 8 categories), a current window of 5,000 rows in which every third
feature is shifted, then, measured in the same run: ``DriftReport.to_html()`` and,
as the reference, ``str(report)`` (the text table the command line prints). Also
shown: ``Baseline.drift`` on the same window (computing the report), and the
page's size, raw and gzipped (as attached to a ticket or served by CI).
Medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from collections.abc import Callable

import numpy as np

from boxkite_middleware import Baseline

ROWS = 5_000


def data(features: int, shift: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for i in range(features):
        moved = shift if i % 3 == 0 else 0.0
        if i % 5 == 4:
            p = np.linspace(1, 2 + moved * 4, 8)
            out[f"category_{i:03d}"] = rng.choice([f"c{k}" for k in range(8)], ROWS, p=p / p.sum())
        else:
            out[f"feature_{i:03d}"] = rng.normal(moved, 1, ROWS)
    return out


def median_seconds(task: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        task()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="few repeats, for smoke tests")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    rng = np.random.default_rng(0)
    print(f"median of {repeats} runs; current window of {ROWS:,} rows")
    print(
        f"{'features':>8} {'drifted':>8} {'to_html ms':>11} {'table ms (reference)':>21} "
        f"{'ratio':>6} {'drift() ms':>11} {'size KB':>8} {'gzip KB':>8}"
    )
    for features in (50, 200):
        baseline = Baseline.from_training(data(features, 0.0, rng), rng.normal(0, 1, ROWS))
        current = data(features, 0.5, rng)
        predictions = rng.normal(0.2, 1, ROWS)
        report = baseline.drift(current, predictions)
        page = report.to_html()
        html_s = median_seconds(report.to_html, repeats)
        table_s = median_seconds(lambda r=report: str(r), repeats)
        drift_s = median_seconds(
            lambda b=baseline, c=current, p=predictions: b.drift(c, p), repeats
        )
        size = len(page.encode())
        packed = len(gzip.compress(page.encode()))
        print(
            f"{features:>8} {len(report.drifted):>8} {html_s * 1e3:>11.1f} "
            f"{table_s * 1e3:>21.2f} {html_s / table_s:>6.0f} {drift_s * 1e3:>11.1f} "
            f"{size / 1024:>8.0f} {packed / 1024:>8.0f}"
        )
    print("ratio: to_html time / text table time (the reference), same run")


if __name__ == "__main__":
    main()
