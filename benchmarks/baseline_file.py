"""Building a baseline from a large CSV: time and peak memory, next to pandas.read_csv.

    python benchmarks/baseline_file.py [--rows 1000000] [--quick]

Writes a CSV of ``--rows`` rows x 10 columns (8 numeric features, 1 categorical,
1 prediction) to a temporary directory, then in fresh subprocesses, one after the
other, runs ``boxkite-middleware baseline`` on it and, as the reference, just
``pandas.read_csv`` of the whole file (the least a load-everything approach costs).
Prints seconds and peak RSS of each, and the ratios.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MEASURE = """
import resource, sys, time
start = time.perf_counter()
{body}
elapsed = time.perf_counter() - start
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
OURS = (
    "from boxkite_middleware.datafile import build_baseline\n"
    "build_baseline(sys.argv[1], predictions=['score']).save(sys.argv[1] + '.json')"
)
PANDAS = "import pandas\npandas.read_csv(sys.argv[1])"


def write_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*(f"x{i}" for i in range(8)), "region", "score"])
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            block = [rng.normal(size=n).round(6) for _ in range(8)]
            writer.writerows(
                zip(*block, rng.choice(["eu", "us", "apac"], n), rng.normal(size=n).round(6))
            )


def run(body: str, path: Path) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE.format(body=body), str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="tiny N, for smoke tests")
    args = parser.parse_args()
    rows, repeats = (20_000, 1) if args.quick else (args.rows, 3)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.csv"
        started = time.perf_counter()
        write_csv(path, rows)
        size = path.stat().st_size / 1e6
        print(
            f"{rows:,} rows x 10 columns, {size:.0f} MB, written in "
            f"{time.perf_counter() - started:.1f} s"
        )
        ours, ref = [], []
        for _ in range(repeats):
            ours.append(run(OURS, path))
            ref.append(run(PANDAS, path))
    t_ours, m_ours = statistics.median(o[0] for o in ours), statistics.median(o[1] for o in ours)
    t_ref, m_ref = statistics.median(r[0] for r in ref), statistics.median(r[1] for r in ref)
    print(f"{'case':36} {'seconds':>8} {'peak RSS MB':>12}")
    print(f"{'boxkite-middleware baseline':36} {t_ours:8.1f} {m_ours:12.0f}")
    print(f"{'pandas.read_csv (reference)':36} {t_ref:8.1f} {m_ref:12.0f}")
    print(f"ratio (ours / reference): time {t_ours / t_ref:.2f}, memory {m_ours / m_ref:.2f}")


if __name__ == "__main__":
    main()
