"""Baseline, counting and drift in one file, no server: the framework-free core.

    python examples/quickstart.py

Trains a linear model on scikit-learn's diabetes data, snapshots the baseline,
counts normal and then shifted traffic into its bins and prints the drift
report for each phase, plus a few lines of what ``/metrics`` would serve.
"""

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split

from boxkite_middleware import Baseline, Monitor


def main() -> None:
    data = load_diabetes(as_frame=True)
    x_train, _, y_train, _ = train_test_split(data.data, data.target, random_state=0)
    model = LinearRegression().fit(x_train, y_train)
    baseline = Baseline.from_training(x_train, model.predict(x_train))

    rng = np.random.default_rng(0)
    # Live traffic drawn like the training data (the diabetes set has only 442 rows).
    rows = x_train.sample(2000, replace=True, random_state=0).reset_index(drop=True)
    for phase, shift in (("normal traffic", 0.0), ("bmi and bp shifted up", 0.03)):
        monitor = Monitor(baseline, model="diabetes")
        live = rows.copy()
        live["bmi"] += shift * rng.uniform(0.5, 1.5, len(live))
        live["bp"] += shift * rng.uniform(0.5, 1.5, len(live))
        monitor.observe_batch(
            {c: live[c].tolist() for c in live.columns}, model.predict(live).tolist()
        )
        print(f"== {phase}: {len(live)} rows ==")
        print(monitor.drift())
        print()
    body, _ = monitor.render()
    print("== /metrics (excerpt) ==")
    print("\n".join(line for line in body.decode().splitlines() if 'feature="bmi"' in line)[:1200])


if __name__ == "__main__":
    main()
