"""The Grafana dashboard (``dashboards/boxkite-drift.json``), built as plain data.

Panels read the series of the recording rules (:mod:`.rules`) and the raw
``boxkite_*`` families; variables are ``datasource``, ``model``, ``feature`` and
``output``. Run ``python -m boxkite_middleware.dashboard`` to print it.
"""

from __future__ import annotations

import json
from typing import Any

from .drift import DEFAULT_THRESHOLDS
from .rules import CRITICAL
from .schema import (
    BASELINE_ROWS,
    DRIFT_MEASURES,
    FEATURES,
    FEEDBACK_MISSING,
    OBSERVATION_ERRORS,
    OBSERVED_REQUESTS,
    OBSERVED_ROWS,
    OTHER,
    OUTPUTS,
    Role,
    baseline_quality,
    recorded,
    recorded_prefix,
    recorded_quality,
)

DS = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39


def _target(expr: str, legend: str, ref: str, instant: bool = False) -> dict[str, Any]:
    target: dict[str, Any] = {
        "datasource": DS,
        "expr": expr,
        "legendFormat": legend,
        "refId": ref,
        "range": not instant,
        "instant": instant,
    }
    if instant:
        target["format"] = "table"
    return target


def _thresholds(warning: float, critical: float) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [
            {"color": "green", "value": 0},  # the base step: Grafana applies it below 0 too
            {"color": "orange", "value": warning},
            {"color": "red", "value": critical},
        ],
    }


def _timeseries(
    title: str,
    description: str,
    targets: list[dict],
    unit: str = "none",
    thresholds: dict | None = None,
) -> dict[str, Any]:
    custom: dict[str, Any] = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 10,
        "showPoints": "never",
        "spanNulls": False,
    }
    if thresholds is not None:
        custom["thresholdsStyle"] = {"mode": "dashed"}
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": custom,
        "color": {"mode": "palette-classic"},
    }
    if thresholds is not None:
        defaults["thresholds"] = thresholds
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {
                "displayMode": "list",
                "placement": "bottom",
                "showLegend": True,
                "calcs": [],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def _barchart(
    title: str,
    description: str,
    targets: list[dict],
    x_field: str,
    thresholds: dict | None = None,
    unit: str = "none",
) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": unit,
        "color": {"mode": "thresholds" if thresholds else "palette-classic"},
        "custom": {"fillOpacity": 80, "lineWidth": 1, "gradientMode": "none"},
    }
    if thresholds is not None:
        defaults["thresholds"] = thresholds
    return {
        "type": "barchart",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        # Instant table queries: one row per series, labels as columns; merged into one.
        "transformations": [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "xField": x_field,
            "orientation": "auto",
            "showValue": "auto",
            "stacking": "none",
            "groupWidth": 0.7,
            "barWidth": 0.9,
            "xTickLabelRotation": -45,
            "legend": {
                "displayMode": "list",
                "placement": "bottom",
                "showLegend": True,
                "calcs": [],
            },
            "tooltip": {"mode": "multi", "sort": "none"},
        },
    }


def _row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def _drift_over_time(role: Role) -> dict[str, Any]:
    var = label = role.label
    sel = f'{{model="$model",{label}="${var}"}}'
    return _timeseries(
        f"Drift of ${var} over time (1h window)",
        "PSI and KL (nats) of the last hour against the baseline, the binned KS (numeric "
        "only) and the Jensen-Shannon distance (base 2), over all replicas.",
        [
            _target(f"{recorded(role, m, '1h')}{sel}", m.upper(), ref)
            for m, ref in zip(DRIFT_MEASURES, "ABCD")
        ],
        thresholds=_thresholds(DEFAULT_THRESHOLDS.psi, CRITICAL.psi),
    )


def _distribution(role: Role) -> dict[str, Any]:
    var = label = role.label
    sel = f'{{model="$model",{label}="${var}"}}'
    return _barchart(
        f"${var}: baseline vs last hour, share per bin",
        "Share of values per baseline bin (upper bound `le`) or category, at training time "
        "and over the last hour on all replicas.",
        [
            _target(
                f"{recorded_prefix(role, baseline=True)}_bin_share{sel}",
                "baseline",
                "A",
                instant=True,
            ),
            _target(f"{recorded(role, 'bin_share', '1h')}{sel}", "last hour", "B", instant=True),
        ],
        x_field="bin",
        unit="percentunit",
    )


def _by_replica(role: Role) -> dict[str, Any]:
    var = label = role.label
    sel = f'model="$model",{label}="${var}"'
    median = (
        f"histogram_quantile(0.5, sum by (instance, le) "
        f"(rate({role.value()}_bucket{{{sel}}}[$__rate_interval])))"
    )
    categories = (
        f"sum by (instance, category) (rate({role.category()}_total{{{sel}}}"
        f"[$__rate_interval])) / on(instance) group_left() sum by (instance) "
        f"(rate({role.category()}_total{{{sel}}}[$__rate_interval]))"
    )
    return _timeseries(
        f"${var} across replicas",
        "How the distribution varies between replicas: the median per replica for a numeric "
        "column (dashed: the baseline median), the share of each category per replica for a "
        "categorical one.",
        [
            _target(f"{median} or {categories}", "{{instance}} {{category}}", "A"),
            _target(
                f"histogram_quantile(0.5, max by (le) ({role.value(baseline=True)}_bucket"
                f"{{{sel}}}))",
                "baseline median",
                "B",
            ),
        ],
    )


QUALITY_PANELS = {
    "Error: MAE and RMSE, last hour": "numeric",
    "Bias (mean prediction - truth), last hour": "numeric",
    "Accuracy, last hour": "categorical",
    "Feedback per hour, and unusable feedback": "any",
}
"""Titles of the quality row's panels and the outputs they show: they have data only
for outputs that feedback routes bring labels for."""


def _quality_panels() -> list[dict[str, Any]]:
    """Live quality from feedback routes next to the baseline's, for the chosen output."""
    sel = '{model="$model",output="$output"}'
    titles = list(QUALITY_PANELS)
    measures = [
        (titles[0], ("mae", "rmse"), "numeric outputs"),
        (titles[1], ("bias",), "numeric outputs"),
        (titles[2], ("accuracy",), "categorical outputs"),
    ]
    panels = []
    for title, names, kind in measures:
        targets = []
        for i, measure in enumerate(names):
            targets.append(
                _target(f"{recorded_quality(measure, '1h')}{sel}", f"{measure} live", "AB"[i])
            )
            targets.append(
                _target(
                    f"max by (output) ({baseline_quality(measure)}{sel})",
                    f"{measure} baseline",
                    "CD"[i],
                )
            )
        panels.append(
            _timeseries(
                title,
                f"From feedback routes ({kind}): live over the last hour against the "
                "baseline's, computed the same way from its held-out rows.",
                targets,
            )
        )
    panels.append(
        _timeseries(
            titles[3],
            "Labelled predictions counted in the last hour; feedback whose prediction or "
            "truth could not be used, per second.",
            [
                _target(f"{recorded_quality('feedback_count', '1h')}{sel}", "feedback", "A"),
                _target(
                    f"sum by (output) (rate({FEEDBACK_MISSING}_total{sel}[$__rate_interval]))",
                    "unusable /s",
                    "B",
                ),
            ],
        )
    )
    return panels


def dashboard() -> dict[str, Any]:
    warn, crit = DEFAULT_THRESHOLDS, CRITICAL
    model = '{model="$model"}'
    overview = [
        _barchart(
            "Features: PSI, last hour (sorted)",
            f"Population stability index per feature over all replicas; orange from "
            f"{warn.psi} (warning alert), red from {crit.psi} (critical).",
            [
                _target(
                    f"sort_desc({recorded(FEATURES, 'psi', '1h')}{model})",
                    "{{feature}}",
                    "A",
                    instant=True,
                )
            ],
            x_field="feature",
            thresholds=_thresholds(warn.psi, crit.psi),
        ),
        _barchart(
            "Features: KS, last hour (sorted)",
            f"Largest gap between the binned CDFs (numeric features); orange from "
            f"{warn.ks}, red from {crit.ks}.",
            [
                _target(
                    f"sort_desc({recorded(FEATURES, 'ks', '1h')}{model})",
                    "{{feature}}",
                    "A",
                    instant=True,
                )
            ],
            x_field="feature",
            thresholds=_thresholds(warn.ks, crit.ks),
        ),
        _barchart(
            "Predictions: PSI, last hour",
            "Population stability index of each model output over all replicas.",
            [
                _target(
                    f"sort_desc({recorded(OUTPUTS, 'psi', '1h')}{model})",
                    "{{output}}",
                    "A",
                    instant=True,
                )
            ],
            x_field="output",
            thresholds=_thresholds(warn.psi, crit.psi),
        ),
        _timeseries(
            "Observed requests and rows per second",
            "Requests whose bodies were observed, and the rows in them, per route.",
            [
                _target(
                    f"sum by (route) (rate({OBSERVED_REQUESTS}_total{model}[$__rate_interval]))",
                    "requests {{route}}",
                    "A",
                ),
                _target(
                    f"sum by (route) (rate({OBSERVED_ROWS}_total{model}[$__rate_interval]))",
                    "rows {{route}}",
                    "B",
                ),
            ],
            unit="reqps",
        ),
        _timeseries(
            "Observation errors per second, by reason",
            "Requests passed through unobserved: see the README for each reason.",
            [
                _target(
                    f"sum by (reason) (rate({OBSERVATION_ERRORS}_total{model}[$__rate_interval]))",
                    "{{reason}}",
                    "A",
                )
            ],
            unit="reqps",
        ),
        _timeseries(
            "Missing share, last hour",
            "Share of values that were absent, null, NaN or of the wrong type.",
            [
                _target(f"{recorded(FEATURES, 'missing_share', '1h')}{model}", "{{feature}}", "A"),
                _target(f"{recorded(OUTPUTS, 'missing_share', '1h')}{model}", "{{output}}", "B"),
            ],
            unit="percentunit",
        ),
        _timeseries(
            "Unseen category share, last hour",
            "Share of categorical values outside the baseline's categories (counted as __other__).",
            [
                _target(
                    f'{recorded(FEATURES, "bin_share", "1h")}{{model="$model",category="{OTHER}"}}',
                    "{{feature}}",
                    "A",
                )
            ],
            unit="percentunit",
        ),
    ]
    panels = [
        _row("Overview"),
        *overview,
        _row("Feature: $feature"),
        _distribution(FEATURES),
        _drift_over_time(FEATURES),
        _by_replica(FEATURES),
        _row("Prediction: $output"),
        _distribution(OUTPUTS),
        _drift_over_time(OUTPUTS),
        _by_replica(OUTPUTS),
        _row("Quality (ground truth): $output"),
        *_quality_panels(),
    ]
    _layout(panels)

    def variable(name: str, query: str) -> dict[str, Any]:
        return {
            "type": "query",
            "name": name,
            "label": name,
            "datasource": DS,
            "query": query,
            "refresh": 2,
            "sort": 1,
            "includeAll": False,
            "multi": False,
        }

    return {
        "uid": "boxkite-drift",
        "title": "Boxkite: model and data drift",
        "description": "Baseline vs runtime distributions and PSI/KS/KL/JS drift of every "
        "feature and prediction, over all replicas (boxkite-middleware).",
        "tags": ["boxkite", "drift", "ml"],
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "timezone": "browser",
        "annotations": {"list": []},
        "panels": panels,
        "templating": {
            "list": [
                {
                    "type": "datasource",
                    "name": "datasource",
                    "label": "Prometheus",
                    "query": "prometheus",
                    "refresh": 1,
                    "hide": 0,
                },
                variable("model", f"label_values({BASELINE_ROWS}, model)"),
                variable(
                    "feature",
                    f'label_values({FEATURES.missing(baseline=True)}{{model="$model"}}, feature)',
                ),
                variable(
                    "output",
                    f'label_values({OUTPUTS.missing(baseline=True)}{{model="$model"}}, output)',
                ),
            ]
        },
    }


def _layout(panels: list[dict[str, Any]]) -> None:
    """Ids and grid positions: rows span the width, other panels three to a row."""
    x = y = 0
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number
        if panel["type"] == "row":
            y += 0 if x == 0 else 8
            panel["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            x, y = 0, y + 1
            continue
        panel["gridPos"] = {"h": 8, "w": 8, "x": x, "y": y}
        x += 8
        if x >= 24:
            x, y = 0, y + 8


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel, variables not substituted."""
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]


def dashboard_json() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    print(dashboard_json(), end="")
