"""The Grafana dashboard: generated, valid against Grafana's schemas, complete."""

import json
from pathlib import Path

import jsonschema
import pytest

from boxkite_middleware.dashboard import dashboard, dashboard_json, queries

DASHBOARDS = Path(__file__).parent.parent / "dashboards"
# Vendored copies, with their origin and licence: tests/grafana-schemas/README.md
SCHEMAS = Path(__file__).parent / "grafana-schemas"


def test_committed_dashboard_is_the_generated_one():
    assert (DASHBOARDS / "boxkite-drift.json").read_text() == dashboard_json()


def _validator(root: Path, name: str, definition: str | None = None):
    schema = json.loads((root / name).read_text())
    if definition is not None:
        schema = dict(schema, **{"$ref": f"#/definitions/{definition}"})
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("version", ["v11.6", "main"])
def test_dashboard_validates_against_grafana_schemas(version):
    root = SCHEMAS / version
    board = json.loads((DASHBOARDS / "boxkite-drift.json").read_text())
    errors = [e.message for e in _validator(root, "dashboard.jsonschema.json").iter_errors(board)]
    query = _validator(root, "prometheus.jsonschema.json")
    options = _validator(root, "timeseries.jsonschema.json", "Options")
    custom = _validator(root, "timeseries.jsonschema.json", "GraphFieldConfig")
    for panel in board["panels"]:
        errors += [
            f"{panel['title']}: {e.message}"
            for t in panel.get("targets", [])
            for e in query.iter_errors(t)
        ]
        if panel["type"] == "timeseries":
            errors += [e.message for e in options.iter_errors(panel["options"])]
            errors += [
                e.message for e in custom.iter_errors(panel["fieldConfig"]["defaults"]["custom"])
            ]
    assert errors == []


def test_dashboard_has_what_users_asked_for():
    board = dashboard()
    assert board["schemaVersion"] >= 39
    types = {p["type"] for p in board["panels"]}
    assert "graph" not in types and {"timeseries", "barchart", "row"} <= types
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "model", "feature", "output"]
    exprs = " ".join(expr for _, expr in queries(board))
    for series in (
        "boxkite:feature_psi:1h",
        "boxkite:feature_ks:1h",
        "boxkite:feature_kl:1h",
        "boxkite:feature_js:1h",
        "boxkite:prediction_kl:1h",
        "boxkite:prediction_ks:1h",
        "boxkite:baseline_feature_bin_share",
        "boxkite:baseline_prediction_bin_share",
        "boxkite_observation_errors_total",
        "boxkite_observed_rows_total",
        "boxkite:feature_missing_share:1h",
        'category="__other__"',
        "by (instance",
    ):
        assert series in exprs, series
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
