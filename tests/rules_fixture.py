"""Builds dashboards/boxkite-rules_test.yml: promtool unit tests of the shipped rules.

The expected values come from boxkite_middleware.drift on the same counts, so the
committed file says "the rules compute what the offline report computes";
tests/test_rules.py checks the committed file is exactly this output and runs it.

    python -m tests.rules_fixture > dashboards/boxkite-rules_test.yml
"""

from __future__ import annotations

import math

import numpy as np
import yaml

from boxkite_middleware.drift import DEFAULT_THRESHOLDS, js, kl, ks, psi
from boxkite_middleware.rules import CRITICAL, WINDOWS

MINUTES = 60
ROUND = 1e-6  # promtool compares floats exactly; both sides are rounded to this (JS is a
# square root, which turns 1e-17 of float noise into 3e-9)
LE = ["1.0", "2.0", "3.0", "+Inf"]
BASELINE_BINS = [10, 20, 30, 40]
CATEGORIES = ["eu", "us", "__other__"]
BASELINE_CATEGORIES = [50, 50, 0]

# column -> (role, kind, per-minute increase per bin on replica a, on replica b, missing/min on a)
SCENARIO = {
    "drifted": ("feature", "numeric", [2, 2, 2, 2], [0, 0, 0, 8], 1),
    "stable": ("feature", "numeric", [1, 2, 3, 4], [1, 2, 3, 4], 0),
    # replica b restarts at RESTART: its counters start again (first sample after it is one
    # minute's counts); the window still holds every value counted
    "restarted": ("feature", "numeric", [1, 2, 3, 4], [1, 2, 3, 4], 0),
    "few": ("feature", "numeric", [0, 0, 0, 1], [0, 0, 0, 1], 0),
    "region": ("feature", "categorical", [1, 1, 6], [1, 1, 6], 0),
    "prediction": ("prediction", "numeric", [0, 0, 0, 6], [0, 0, 0, 6], 0),
}
REPLICAS = ("a", "b")
RESTART = 30  # minute at which replica b of column "restarted" restarts


IDLE = MINUTES // 2  # then no traffic: the counters stay flat this long


def _counter(per_minute, restarts: bool) -> str:
    """promtool series notation: a counter gaining ``per_minute`` every minute, then flat."""
    if not restarts:
        return f"0+{per_minute}x{MINUTES} {per_minute * MINUTES}x{IDLE - 1}"
    final = per_minute * (MINUTES - RESTART + 1)
    return (
        f"0+{per_minute}x{RESTART - 1} {per_minute}+{per_minute}x{MINUTES - RESTART} "
        f"{final}x{IDLE - 1}"
    )


def _label(role: str) -> str:
    return "feature" if role == "feature" else "output"


def _series(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}}"


def promql_round(value: float, to_nearest: float = ROUND) -> float:
    """PromQL's round(v, to_nearest), operation for operation, so results match bit for bit."""
    inverse = 1.0 / to_nearest
    return math.floor(value * inverse + 0.5) / inverse


def window_counts(column: str) -> tuple[np.ndarray, int]:
    _, _, a, b, missing = SCENARIO[column]
    return (np.array(a) + np.array(b)) * MINUTES, missing * MINUTES


def baseline_counts(column: str) -> np.ndarray:
    kind = SCENARIO[column][1]
    return np.array(BASELINE_BINS if kind == "numeric" else BASELINE_CATEGORIES)


def input_series() -> list[dict[str, str]]:
    series = []
    for column, (role, kind, a, b, missing) in SCENARIO.items():
        base = {"model": "m", _label(role): column}
        for replica, rates in zip(REPLICAS, (a, b)):
            labels = dict(base, instance=replica, job="model")
            restarts = column == "restarted" and replica == "b"
            if kind == "numeric":
                cumulative = np.cumsum(rates)
                for i, le in enumerate(LE):
                    series.append(
                        {
                            "series": _series(f"boxkite_{role}_value_bucket", dict(labels, le=le)),
                            "values": _counter(cumulative[i], restarts),
                        }
                    )
                    bins = {"bin": str(i + 1)} | ({"next": str(i + 2)} if i < 3 else {})
                    series.append(
                        {
                            "series": _series(
                                f"boxkite_baseline_{role}_value_bucket", dict(labels, le=le, **bins)
                            ),
                            "values": f"{np.cumsum(BASELINE_BINS)[i]}x{MINUTES + IDLE}",
                        }
                    )
            else:
                for category, rate, trained in zip(CATEGORIES, rates, BASELINE_CATEGORIES):
                    series.append(
                        {
                            "series": _series(
                                f"boxkite_{role}_category_total", dict(labels, category=category)
                            ),
                            "values": _counter(rate, restarts),
                        }
                    )
                    series.append(
                        {
                            "series": _series(
                                f"boxkite_baseline_{role}_category", dict(labels, category=category)
                            ),
                            "values": f"{trained}x{MINUTES + IDLE}",
                        }
                    )
            series.append(
                {
                    "series": _series(f"boxkite_{role}_missing_total", labels),
                    "values": _counter(missing if replica == "a" else 0, False),
                }
            )
    return series


def expected() -> tuple[list[dict], dict[str, list[dict]]]:
    """(promql expectations, alert name -> expected alerts) at the end of the window."""
    checks = []
    alerts: dict[str, list[dict]] = {"BoxkiteFeatureDrift": [], "BoxkitePredictionDrift": []}
    for column, (role, kind, *_rest) in SCENARIO.items():
        counts, missing = window_counts(column)
        trained = baseline_counts(column)
        labels = {"model": "m", _label(role): column}
        values = {
            "psi": psi(trained, counts),
            "kl": kl(trained, counts),
            "js": js(trained, counts),
            "count": float(counts.sum()),
            "missing_share": float(missing / (missing + counts.sum())),
        }
        if kind == "numeric":
            values["ks"] = ks(trained, counts)
        # all the data lies inside every window, so they all agree
        for window in WINDOWS:
            for metric, value in values.items():
                series = f"boxkite:{role}_{metric}:{window}{{{_matchers(labels)}}}"
                checks.append(
                    {
                        "expr": f"round({series}, {ROUND})",
                        "eval_time": f"{MINUTES}m",
                        "exp_samples": [
                            {"labels": _series("", labels), "value": promql_round(value)}
                        ],
                    }
                )
        name = "BoxkiteFeatureDrift" if role == "feature" else "BoxkitePredictionDrift"
        for severity, limits in (("warning", DEFAULT_THRESHOLDS), ("critical", CRITICAL)):
            over = values["psi"] >= limits.psi or values.get("ks", 0) >= limits.ks
            if over and counts.sum() >= limits.min_count:
                alerts[name].append(_alert(role, column, severity, limits, values))
    # Half an hour after the traffic ends, the 1h window holds its last half hour only and
    # the 24h window all of it.
    counts, _ = window_counts("stable")
    labels = {"model": "m", "feature": "stable"}
    for window, expected_count in (("1h", counts.sum() / 2), ("24h", counts.sum())):
        checks.append(
            {
                "expr": f"round(boxkite:feature_count:{window}{{{_matchers(labels)}}})",
                "eval_time": f"{MINUTES + IDLE}m",
                "exp_samples": [
                    {
                        "labels": _series("", labels),
                        "value": float(expected_count),
                    }
                ],
            }
        )
    return checks, alerts


def _matchers(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def _alert(role: str, column: str, severity: str, limits, values: dict) -> dict:
    label = _label(role)
    what = "Feature" if role == "feature" else "Prediction output"
    ks_text = f", KS {values['ks']:.3f}" if "ks" in values else ""
    return {
        "exp_labels": {"severity": severity, "model": "m", label: column},
        "exp_annotations": {
            "summary": f"{what} {column} of model m drifted from its baseline ({severity})",
            "description": (
                f"Over the last 1h: PSI {values['psi']:.3f}{ks_text} (thresholds: PSI "
                f"{limits.psi}, KS {limits.ks}, at least {limits.min_count} values in the window)."
            ),
        },
    }


def promtool_file(
    input_series: list[dict],
    checks: list[dict],
    alerts: dict[str, list[dict]],
    source: str,
    target: str,
) -> str:
    """A promtool unit-test file of the shipped rules: one test, evaluated every minute,
    with ``alerts`` (alert name -> expected alerts) checked at the end of the hour."""
    test = {
        "rule_files": ["boxkite-rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": input_series,
                "promql_expr_test": checks,
                "alert_rule_test": [
                    {"eval_time": f"{MINUTES}m", "alertname": name, "exp_alerts": expected_alerts}
                    for name, expected_alerts in alerts.items()
                ],
            }
        ],
    }
    header = (
        f"# Generated by tests/{source}.py: expected values from boxkite_middleware.\n"
        f"# Run: promtool test rules dashboards/{target}\n"
    )
    return header + yaml.safe_dump(test, sort_keys=False, width=10_000)


def build() -> str:
    checks, alerts = expected()
    return promtool_file(input_series(), checks, alerts, "rules_fixture", "boxkite-rules_test.yml")


if __name__ == "__main__":
    print(build(), end="")
