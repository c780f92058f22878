"""Builds dashboards/boxkite-quality-rules_test.yml: promtool unit tests of the quality
rules in the shipped rule file.

Two replicas send feedback counters for an hour; the expected MAE, RMSE, bias,
accuracy, precision and recall come from :class:`boxkite_middleware.quality.Quality`
over the same counts, so the file says "the rules compute what the offline report
computes". tests/test_rules.py checks the committed file is this output and runs it.

    python -m tests.quality_rules_fixture > dashboards/boxkite-quality-rules_test.yml
"""

from __future__ import annotations

import numpy as np

from boxkite_middleware.quality import Quality
from boxkite_middleware.rules import QUALITY, WINDOWS

from .rules_fixture import ROUND, _matchers, _series, promql_round, promtool_file

MINUTES = 60
REPLICAS = ("a", "b")
# numeric output -> per minute on each replica: (count, sum |e|, sum e², sum max(e, 0)),
# and the baseline's (mae, rmse)
NUMERIC = {
    "healthy": ((5, 10.0, 30.0, 6.0), (5, 12.0, 32.0, 5.0), (2.3, 2.6)),
    "degraded": ((5, 40.0, 400.0, 35.0), (5, 30.0, 250.0, 1.0), (2.3, 2.6)),
    "sparse": ((1, 40.0, 1600.0, 40.0), (0, 0.0, 0.0, 0.0), (2.3, 2.6)),  # too few labels
}
CLASSES = ["cat", "dog", "__other__"]
# categorical output -> per minute (rows predicted, columns actual) on each replica, and
# the baseline's accuracy
CATEGORICAL = {
    "species": (
        [[3, 1, 0], [1, 4, 0], [0, 1, 0]],
        [[2, 2, 0], [2, 3, 0], [1, 0, 0]],
        0.9,
    ),
}


def _counter(per_minute: float) -> str:
    return f"0+{per_minute:g}x{MINUTES}"


def _gauge(value: float) -> str:
    return f"{value:g}x{MINUTES}"


def input_series() -> list[dict[str, str]]:
    series = []
    for output, (a, b, (mae, rmse)) in NUMERIC.items():
        labels = {"model": "m", "output": output}
        for replica, rates in zip(REPLICAS, (a, b)):
            at = dict(labels, instance=replica)
            for name, rate in zip(
                (
                    "boxkite_prediction_error_count",
                    "boxkite_prediction_abs_error_total",
                    "boxkite_prediction_squared_error_total",
                    "boxkite_prediction_overestimate_total",
                ),
                rates,
            ):
                series.append({"series": _series(name, at), "values": _counter(rate)})
            for name, value in (
                ("boxkite_baseline_prediction_mae", mae),
                ("boxkite_baseline_prediction_rmse", rmse),
            ):
                series.append({"series": _series(name, at), "values": _gauge(value)})
    for output, (a, b, accuracy) in CATEGORICAL.items():
        labels = {"model": "m", "output": output}
        for replica, matrix in zip(REPLICAS, (a, b)):
            at = dict(labels, instance=replica)
            for i, predicted in enumerate(CLASSES):
                for j, actual in enumerate(CLASSES):
                    cell = dict(at, predicted=predicted, actual=actual)
                    series.append(
                        {
                            "series": _series("boxkite_prediction_outcome_total", cell),
                            "values": _counter(matrix[i][j]),
                        }
                    )
            series.append(
                {
                    "series": _series("boxkite_baseline_prediction_accuracy", at),
                    "values": _gauge(accuracy),
                }
            )
    return series


def _quality_numeric(a, b) -> Quality:
    count, absolute, squared, over = (np.array(a) + np.array(b)) * MINUTES
    return Quality(
        "numeric",
        counts=np.array([int(count)]),
        error_sum=2 * over - absolute,
        abs_sum=absolute,
        squared_sum=squared,
    )


def _quality_categorical(a, b) -> Quality:
    confusion = (np.array(a) + np.array(b)) * MINUTES
    return Quality("categorical", classes=tuple(CLASSES), confusion=confusion)


def _check(series: str, labels: dict[str, str], value: float) -> dict:
    return {
        "expr": f"round({series}{{{_matchers(labels)}}}, {ROUND})",
        "eval_time": f"{MINUTES}m",
        "exp_samples": [{"labels": _series("", labels), "value": promql_round(value)}],
    }


def expected() -> tuple[list[dict], list[dict]]:
    """(promql expectations, expected BoxkiteQualityDrop alerts) at the end of the hour."""
    checks, alerts = [], []
    for output, (a, b, (mae, rmse)) in NUMERIC.items():
        labels = {"model": "m", "output": output}
        metrics = _quality_numeric(a, b).metrics()
        for window in WINDOWS:
            for measure in ("mae", "rmse", "bias"):
                checks.append(
                    _check(f"boxkite:prediction_{measure}:{window}", labels, metrics[measure])
                )
            checks.append(
                _check(f"boxkite:prediction_feedback_count:{window}", labels, metrics["n"])
            )
        worse = metrics["mae"] > QUALITY.error_ratio * mae
        worse |= metrics["rmse"] > QUALITY.error_ratio * rmse
        if worse and metrics["n"] >= QUALITY.min_count:
            alerts.append(_alert(output))
    for output, (a, b, accuracy) in CATEGORICAL.items():
        labels = {"model": "m", "output": output}
        metrics = _quality_categorical(a, b).metrics()
        for window in WINDOWS:
            checks.append(
                _check(f"boxkite:prediction_accuracy:{window}", labels, metrics["accuracy"])
            )
            for measure in ("precision", "recall"):
                for category, value in metrics[measure].items():
                    if value is not None:
                        checks.append(
                            _check(
                                f"boxkite:prediction_{measure}:{window}",
                                dict(labels, category=category),
                                value,
                            )
                        )
        if metrics["accuracy"] < accuracy - QUALITY.accuracy_drop:
            alerts.append(_alert(output))
    return checks, alerts


def _alert(output: str) -> dict:
    return {
        "exp_labels": {"severity": "warning", "model": "m", "output": output},
        "exp_annotations": {
            "summary": f"Output {output} of model m is doing worse than at training time",
            "description": f"Over the last {WINDOWS[0]}, from labelled predictions (feedback): "
            f"MAE or RMSE above {QUALITY.error_ratio} x the baseline's, or accuracy more than "
            f"{QUALITY.accuracy_drop} below it, with at least {QUALITY.min_count} labels in the "
            "window.",
        },
    }


def build() -> str:
    checks, alerts = expected()
    return promtool_file(
        input_series(),
        checks,
        {"BoxkiteQualityDrop": alerts},
        "quality_rules_fixture",
        "boxkite-quality-rules_test.yml",
    )


if __name__ == "__main__":
    print(build(), end="")
