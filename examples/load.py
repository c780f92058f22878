"""Send baseline-like traffic, then drifted traffic, to a running example server.

    python ../load.py                       # http://127.0.0.1:8000, 500 + 500 requests
    python ../load.py --requests 200 --url http://127.0.0.1:5000

Rows are drawn from the diabetes data the model was trained on, so the first phase
matches the baseline; in the second phase `bmi` and `bp` are shifted upwards, as
if the population of patients had changed.
"""

import argparse

import httpx
import numpy as np
from sklearn.datasets import load_diabetes

SHIFTED = ("bmi", "bp")


def rows(count: int, drift: bool, seed: int) -> list[dict[str, float]]:
    data = load_diabetes(as_frame=True).data
    sample = data.sample(count, replace=True, random_state=seed).reset_index(drop=True)
    if drift:
        rng = np.random.default_rng(seed)
        for name in SHIFTED:
            sample[name] += rng.uniform(0.02, 0.05, count)
    return sample.to_dict(orient="records")


def send(url: str, count: int, drift: bool, seed: int = 0) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        for row in rows(count, drift, seed):
            client.post("/predict", json=row).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=500, help="per phase")
    args = parser.parse_args()
    send(args.url, args.requests, drift=False, seed=1)
    print(f"sent {args.requests} baseline-like requests")
    send(args.url, args.requests, drift=True, seed=2)
    print(f"sent {args.requests} requests with {' and '.join(SHIFTED)} shifted up")
    print(f"metrics: {args.url}/metrics")


if __name__ == "__main__":
    main()
