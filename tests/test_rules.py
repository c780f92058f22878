"""The shipped Prometheus rules: generated, checked and unit-tested with promtool."""

import subprocess
from pathlib import Path

from boxkite_middleware.drift import DEFAULT_THRESHOLDS, psi
from boxkite_middleware.rules import rules_yaml

from . import quality_rules_fixture, rules_fixture
from .conftest import require_tool

DASHBOARDS = Path(__file__).parent.parent / "dashboards"


def test_committed_rules_are_the_generated_ones():
    assert (DASHBOARDS / "boxkite-rules.yml").read_text() == rules_yaml()


def test_committed_rule_tests_are_the_generated_ones():
    assert (DASHBOARDS / "boxkite-rules_test.yml").read_text() == rules_fixture.build()


def test_committed_quality_rule_tests_are_the_generated_ones():
    text = (DASHBOARDS / "boxkite-quality-rules_test.yml").read_text()
    assert text == quality_rules_fixture.build()


def test_the_quality_scenario_covers_a_drop_a_healthy_model_and_the_min_count_guard():
    _, alerts = quality_rules_fixture.expected()
    assert {a["exp_labels"]["output"] for a in alerts} == {"degraded", "species"}
    sparse = quality_rules_fixture._quality_numeric(*quality_rules_fixture.NUMERIC["sparse"][:2])
    assert sparse.metrics()["mae"] > 10 * quality_rules_fixture.NUMERIC["sparse"][2][0]
    assert sparse.n < quality_rules_fixture.QUALITY.min_count  # worse, but too few labels


def test_the_scenario_covers_drift_no_drift_and_the_min_count_guard():
    _, alerts = rules_fixture.expected()
    fired = {
        (a["exp_labels"].get("feature") or a["exp_labels"]["output"], a["exp_labels"]["severity"])
        for group in alerts.values()
        for a in group
    }
    assert fired == {
        ("drifted", "warning"),
        ("region", "warning"),
        ("region", "critical"),
        ("prediction", "warning"),
        ("prediction", "critical"),
    }
    counts, _ = rules_fixture.window_counts("few")
    assert psi(rules_fixture.baseline_counts("few"), counts) > DEFAULT_THRESHOLDS.psi
    assert counts.sum() < DEFAULT_THRESHOLDS.min_count  # drifted, but too few values


def test_promtool_checks_and_unit_tests_pass():
    promtool = require_tool("promtool")
    for args in (
        ["check", "rules", "boxkite-rules.yml"],
        ["test", "rules", "boxkite-rules_test.yml"],
        ["test", "rules", "boxkite-quality-rules_test.yml"],
    ):
        result = subprocess.run(
            [promtool, *args], cwd=DASHBOARDS, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout + result.stderr
