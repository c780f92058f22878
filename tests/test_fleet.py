"""Fleet-wide drift in a real Prometheus: three replicas, the shipped rules and dashboard.

Two gunicorn servers (two workers each) and one uvicorn/FastAPI server receive the
same known, partly drifted traffic; a real Prometheus on 127.0.0.1 scrapes them and
evaluates the shipped rules. The rules' first stage sums the replicas' counter
differences between consecutive multiples of the interval, which add up exactly (no
extrapolation), so the recorded PSI/KS/KL/JS must equal the offline report on the same
data, in every window, and the counts the rows sent.

The rules are generated exactly as shipped except for the group's interval, 2s instead
of 1m (the group's interval is also stage 1's step), so that the test waits seconds,
not minutes, for the first stage to cover the traffic.
"""

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from boxkite_middleware import Baseline
from boxkite_middleware.dashboard import QUALITY_PANELS, dashboard, queries
from boxkite_middleware.readback import report_from_prometheus
from boxkite_middleware.rules import WINDOWS, rules_yaml

from .apps.model_apps import model
from .helpers import fleet, poll, query
from .middleware_setup import make_baseline, write_config

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parent.parent
ROWS_PER_REPLICA = 600
INTERVAL = "2s"
BEFORE = "4s"  # two intervals


def _traffic(seed: int = 12) -> list[dict]:
    rng = np.random.default_rng(seed)
    n = ROWS_PER_REPLICA
    return [
        {"age": float(a), "bmi": float(b), "region": str(r)}
        for a, b, r in zip(
            rng.normal(0.06, 0.05, n),  # shifted: drift
            rng.normal(0.0, 0.05, n),  # as at training time
            rng.choice(["eu", "us", "apac", "mars"], n, p=[0.2, 0.2, 0.4, 0.2]),
        )
    ]  # a new mix and a newcomer


def _send(url: str, rows: list[dict]) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for row in rows[:150]:
            assert client.post("/predict", json=row).status_code == 200
        for start in range(150, len(rows), 150):
            batch = {"instances": rows[start : start + 150]}
            assert client.post("/batch", json=batch).status_code == 200


def _value(prom: str, promql: str) -> dict[str, float]:
    return {
        json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in query(prom, promql)
    }


def test_rules_and_dashboard_over_three_replicas(tmp_path):
    baseline: Baseline = make_baseline()
    config = write_config(tmp_path, baseline)
    rules = tmp_path / "boxkite-rules.yml"
    shipped = yaml.safe_load((ROOT / "dashboards" / "boxkite-rules.yml").read_text())
    ours = yaml.safe_load(rules_yaml(interval=INTERVAL))

    def names(rule_set: dict) -> list[list[str]]:
        return [[r.get("record", r.get("alert")) for r in g["rules"]] for g in rule_set["groups"]]

    # the same rules, the stage-1 names aside
    interval = [[n.replace("increase1m", f"increase{INTERVAL}") for n in g] for g in names(shipped)]
    assert interval == names(ours)
    rules.write_text(rules_yaml(interval=INTERVAL))
    rows = _traffic()
    with fleet(tmp_path, config, str(rules)) as (urls, prom):
        # every replica scraped once before any traffic: all windows start from zero
        poll(
            lambda: (
                len(query(prom, "boxkite_baseline_rows")) == 3
                and len(query(prom, 'boxkite_feature_value_count{feature="age"} == 0')) == 3
            )
        )
        # ... and two intervals ago too: every evaluation from now on finds each replica at
        # both instants it reads (the two latest multiples of the interval), so stage 1
        # counts every row sent after this
        poll(
            lambda: (
                len(query(prom, f'boxkite_feature_value_count{{feature="age"}} offset {BEFORE}'))
                == 3
            )
        )
        for url in urls:
            _send(url, rows)
        total = 3 * ROWS_PER_REPLICA
        poll(lambda: _value(prom, "sum(boxkite_observed_rows_total)") == {"{}": total})
        # exact totals across replicas and workers
        assert _value(prom, 'sum(boxkite_feature_value_count{feature="age"})') == {"{}": total}
        requests = 150 + len(range(150, ROWS_PER_REPLICA, 150))
        assert _value(prom, "sum(boxkite_observed_requests_total)") == {"{}": 3 * requests}
        assert _value(prom, 'sum(boxkite_feature_category_total{category="__other__"})') == {
            "{}": 3 * sum(r["region"] == "mars" for r in rows)
        }
        # the rules, evaluated after that scrape, against the offline report
        for window in WINDOWS:
            poll(
                lambda w=window: (
                    _value(prom, f"boxkite:feature_count:{w}")
                    and min(_value(prom, f"boxkite:feature_count:{w}").values()) >= total
                )
            )
        # exactly the rows sent: stage 1 neither loses nor extrapolates any
        for count in _value(prom, "boxkite:feature_count:1h").values():
            assert count == pytest.approx(total, rel=1e-12)
        everything = {k: [r[k] for r in rows] * 3 for k in ("age", "bmi", "region")}
        offline = baseline.drift(everything, [model(r) for r in rows] * 3)
        for row in offline:
            role, label = (
                ("feature", "feature") if row.role == "feature" else ("prediction", "output")
            )
            for metric in ("psi", "ks", "kl", "js"):
                for window in WINDOWS:
                    got = query(prom, f'boxkite:{role}_{metric}:{window}{{{label}="{row.name}"}}')
                    if getattr(row, metric) is None:
                        assert got == [], (row.name, metric)
                        continue
                    assert float(got[0]["value"][1]) == pytest.approx(
                        getattr(row, metric), rel=1e-6, abs=1e-9
                    ), (row.name, metric, window)
        assert {r.name for r in offline.drifted} == {"age", "region", "prediction"}
        # the command line's Prometheus report reads the raw series: the same numbers
        from_prometheus = report_from_prometheus(prom, "1h")
        for row in offline:
            assert from_prometheus[row.name].psi == pytest.approx(row.psi, rel=1e-6)
            assert from_prometheus[row.name].drifted == row.drifted
        flagged = poll(
            lambda: {
                a["labels"].get("feature") or a["labels"].get("output")
                for a in httpx.get(f"{prom}/api/v1/alerts").json()["data"]["alerts"]
                if a["labels"]["severity"] == "warning"
            }
        )
        assert flagged == {"age", "region", "prediction"}
        # every query of every dashboard panel returns data (the quality row needs
        # feedback, which this fleet does not get: tests/test_fleet_quality.py checks it)
        board = dashboard()
        empty = []
        for title, expr in queries(board):
            if title in QUALITY_PANELS:
                continue
            promql = (
                expr.replace("$model", "toy")
                .replace("$feature", "age")
                .replace("$output", "prediction")
                .replace("$__rate_interval", "10m")
            )
            if not query(prom, promql):
                empty.append((title, promql))
        assert empty == []
        for variable in board["templating"]["list"][1:]:
            metric = variable["query"].removeprefix("label_values(").rsplit(",", 1)[0]
            assert query(prom, metric.replace("$model", "toy")), variable["name"]
