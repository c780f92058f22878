"""Prometheus recording and alert rules computing fleet-wide drift, as YAML.

``dashboards/boxkite-rules.yml`` is this module's output with the defaults; run
``boxkite-middleware rules --window 6h`` for another window or thresholds.

The rules do in PromQL what :mod:`.drift` does in numpy, over every replica and
worker: window counts by ``increase``, summed over replicas; the baseline by
``max`` (every replica exports the same one, so never ``sum``); per-bin counts
taken apart from cumulative buckets by joining on the baseline's ``bin`` and
``next`` labels; shares floored at :data:`~.drift.EPSILON` and renormalised;
then PSI, KL, JS and binned KS, per model and feature or output.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from .drift import DEFAULT_THRESHOLDS, EPSILON, DriftThresholds


@dataclass(frozen=True)
class _Role:
    name: str  # feature / prediction: the metric names
    label: str  # feature / output: the label naming the column


ROLES = (_Role("feature", "feature"), _Role("prediction", "output"))

CRITICAL = DriftThresholds(psi=0.5, ks=0.25, min_count=DEFAULT_THRESHOLDS.min_count)
"""Critical alert thresholds; the warning ones are :data:`~.drift.DEFAULT_THRESHOLDS`,
the same that mark a row ``drifted`` in the offline report."""


def _decumulate(cumulative: str, by: str) -> str:
    """Per-bin counts from cumulative buckets that carry ``bin`` and ``next`` labels."""
    shifted = f'label_replace({cumulative}{{next!=""}}, "bin", "$1", "next", "(.+)")'
    # group_left keeps the left side's labels (le), so `or` only adds the first bin.
    return f"({cumulative} - on({by}, bin) group_left() {shifted}) or {cumulative}"


def _categories_as_bins(series: str) -> str:
    return f'label_replace({series}, "bin", "$1", "category", "(.*)")'


def _role_rules(role: _Role, window: str) -> list[dict[str, str]]:
    r, by = role.name, f"model, {role.label}"
    cur, base = f"boxkite:{r}", f"boxkite:baseline_{r}"
    w = f":{window}"

    def share(counts: str) -> str:
        return f"{counts} / on({by}) group_left() (sum by ({by}) ({counts}) > 0)"

    def smoothed(shares: str) -> str:
        floored = f"clamp_min({shares}, {EPSILON})"
        return f"{floored} / on({by}) group_left() sum by ({by}) ({floored})"

    sc, sb = f"{cur}_bin_share_smoothed{w}", f"{base}_bin_share_smoothed"
    mid = f"(({sb} + on({by}, bin) {sc}) / 2)"
    cum_cur = f"{cur}_bucket_indexed:increase{window}"
    cum_base = f"{base}_bucket"
    return [
        # Runtime cumulative buckets in the window, all replicas and workers.
        {
            "record": f"{cur}_bucket:increase{window}",
            "expr": f"sum by ({by}, le) (increase(boxkite_{r}_value_bucket[{window}]))",
        },
        # The baseline, once per model and column whatever the number of replicas.
        {
            "record": cum_base,
            "expr": f"max by ({by}, le, bin, next) (boxkite_baseline_{r}_value_bucket)",
        },
        # Runtime buckets labelled with the baseline's bin index (joined on `le` within
        # histogram-typed series, which Prometheus normalises alike).
        {
            "record": cum_cur,
            "expr": f"{cur}_bucket:increase{window} * on({by}, le) group_left(bin, next) "
            f"({cum_base} * 0 + 1)",
        },
        {
            "record": f"{cur}_bin_count{w}",
            "expr": f"sum without (next) ({_decumulate(cum_cur, by)}) or "
            + _categories_as_bins(
                f"sum by ({by}, category) (increase(boxkite_{r}_category_total[{window}]))"
            ),
        },
        {
            "record": f"{base}_bin_count",
            "expr": f"sum without (next) ({_decumulate(cum_base, by)}) or "
            + _categories_as_bins(f"max by ({by}, category) (boxkite_baseline_{r}_category)"),
        },
        {"record": f"{cur}_bin_share{w}", "expr": share(f"{cur}_bin_count{w}")},
        {"record": f"{base}_bin_share", "expr": share(f"{base}_bin_count")},
        {"record": sc, "expr": smoothed(f"{cur}_bin_share{w}")},
        {"record": sb, "expr": smoothed(f"{base}_bin_share")},
        {"record": f"{cur}_count{w}", "expr": f"sum by ({by}) ({cur}_bin_count{w})"},
        {
            "record": f"{cur}_missing_share{w}",
            "expr": f"sum by ({by}) (increase(boxkite_{r}_missing_total[{window}])) / "
            f"((sum by ({by}) (increase(boxkite_{r}_missing_total[{window}])) + "
            f"{cur}_count{w}) > 0)",
        },
        {
            "record": f"{cur}_psi{w}",
            "expr": f"sum by ({by}) (({sc} - on({by}, bin) {sb}) * on({by}, bin) "
            f"ln({sc} / on({by}, bin) {sb}))",
        },
        {
            "record": f"{cur}_kl{w}",
            "expr": f"sum by ({by}) ({sb} * on({by}, bin) ln({sb} / on({by}, bin) {sc}))",
        },
        {
            "record": f"{cur}_js{w}",
            "expr": f"sqrt(clamp(0.5 * sum by ({by}) ({sb} * on({by}, bin) "
            f"log2({sb} / on({by}, bin) {mid})) + 0.5 * sum by ({by}) ({sc} * on({by}, bin) "
            f"log2({sc} / on({by}, bin) {mid})), 0, 1))",
        },
        {
            "record": f"{cur}_ks{w}",
            "expr": f"max by ({by}) (abs("
            f"(sum without (next) ({cum_cur}) / on({by}) group_left() "
            f"(max by ({by}) ({cum_cur}) > 0)) - on({by}, bin) "
            f"(sum without (next) ({cum_base}) / on({by}) group_left() "
            f"(max by ({by}) ({cum_base}) > 0))))",
        },
    ]


def _alert(role: _Role, window: str, severity: str, limits: DriftThresholds) -> dict:
    r, label = role.name, role.label
    cur = f"boxkite:{r}"
    what = "Feature" if r == "feature" else "Prediction output"

    def value(text: str, series: str) -> str:
        # Rendered when the alert fires; nothing when the series is absent (KS of a
        # categorical column).
        return (
            f"{{{{ with printf \"{series}{{model='%s',{label}='%s'}}\" $labels.model "
            f'$labels.{label} | query }}}}{text}{{{{ . | first | value | printf "%.3f" }}}}'
            "{{ end }}"
        )

    return {
        "alert": f"Boxkite{'Feature' if r == 'feature' else 'Prediction'}Drift",
        "expr": f"({cur}_psi:{window} >= {limits.psi} or {cur}_ks:{window} >= {limits.ks}) "
        f"and on(model, {label}) {cur}_count:{window} >= {limits.min_count}",
        "for": "10m",
        "labels": {"severity": severity},
        "annotations": {
            "summary": f"{what} {{{{ $labels.{label} }}}} of model {{{{ $labels.model }}}} "
            f"drifted from its baseline ({severity})",
            "description": (
                f"Over the last {window}"
                + value(": PSI ", f"{cur}_psi:{window}")
                + value(", KS ", f"{cur}_ks:{window}")
                + f" (thresholds: PSI {limits.psi}, KS {limits.ks}, "
                f"at least {limits.min_count} values in the window)."
            ),
        },
    }


def rules(
    window: str = "1h",
    warning: DriftThresholds = DEFAULT_THRESHOLDS,
    critical: DriftThresholds = CRITICAL,
) -> dict:
    """The rule groups as a dict, ready for ``yaml.safe_dump``."""
    recording = [rule for role in ROLES for rule in _role_rules(role, window)]
    alerts = [
        _alert(role, window, severity, limits)
        for role in ROLES
        for severity, limits in (("warning", warning), ("critical", critical))
    ]
    return {
        "groups": [
            {"name": f"boxkite-drift-{window}", "rules": recording},
            {"name": f"boxkite-drift-alerts-{window}", "rules": alerts},
        ]
    }


def rules_yaml(
    window: str = "1h",
    warning: DriftThresholds = DEFAULT_THRESHOLDS,
    critical: DriftThresholds = CRITICAL,
) -> str:
    header = (
        "# Generated by boxkite_middleware.rules (boxkite-middleware rules); do not edit.\n"
        f"# Drift over a {window} window across every replica; warning: PSI >= {warning.psi} "
        f"or KS >= {warning.ks}, critical: PSI >= {critical.psi} or KS >= {critical.ks}, "
        f"both with at least {warning.min_count} values in the window.\n"
    )
    body = yaml.safe_dump(rules(window, warning, critical), sort_keys=False, width=10_000)
    return header + body
