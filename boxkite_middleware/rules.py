"""Prometheus recording and alert rules computing fleet-wide drift, as YAML.

``dashboards/boxkite-rules.yml`` is this module's output with the defaults; run
``boxkite-middleware rules --window 6h,7d`` for other windows (``--interval`` for another
step).

The rules do in PromQL what :mod:`.drift` does in numpy, over every replica and
worker, in two stages so that their cost does not grow with replicas × window:

1. **Stage 1** (every ``interval``, 1m by default) reads each replica's raw counters
   once, at the two latest instants aligned to the interval, and records their
   difference summed over replicas and workers (``boxkite:feature_bucket:increase1m``):
   one replica-free series per model, column and bin. A counter lower than an interval
   before was reset; its current value is then the increase, as ``increase()`` counts it.
2. **Stage 2** sums stage 1's samples over each window (``sum_over_time``), so a window
   reads ``window / interval`` samples of the replica-free series whatever the number
   of replicas, and a second window (24h) costs no more raw reads than the first.

Consecutive evaluations share an aligned instant, so their differences add up: a
window's count is exactly what the counters gained between the aligned instants at its
edges (between the last scrapes before them), without the extrapolation of
``increase()``. See docs/rules-scaling.md for what is lost (a new replica's first
interval, an evaluation Prometheus skipped).

Then, per window: the baseline by ``max`` (every replica exports the same one, so never
``sum``); per-bin counts taken apart from cumulative buckets by joining on the
baseline's ``bin`` and ``next`` labels; shares floored at :data:`~.drift.EPSILON` and
renormalised; PSI, KL, JS and binned KS, per model and feature or output.

To add a counter family (quality rules, say): one :func:`stage1_rule` for it and one
:func:`window_rule` per window, then rules over the windowed series as below.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from .drift import DEFAULT_THRESHOLDS, EPSILON, DriftThresholds
from .schema import (
    ACTUAL,
    BIN,
    CATEGORY,
    LE,
    MODEL,
    NEXT,
    OUTPUTS,
    PREDICTED,
    PREDICTION_ABS_ERROR,
    PREDICTION_ERROR,
    PREDICTION_OUTCOME,
    PREDICTION_OVERESTIMATE,
    PREDICTION_SQUARED_ERROR,
    QUALITY_ALERT,
    ROLES,
    Role,
    baseline_quality,
    drift_alert,
    recorded,
    recorded_prefix,
    recorded_quality,
)

WINDOWS = ("1h", "24h")
"""Windows of the shipped rules; alerts use the first."""

INTERVAL = "1m"
"""How often the drift group runs, which is also stage 1's step."""

CRITICAL = DriftThresholds(psi=0.5, ks=0.25, min_count=DEFAULT_THRESHOLDS.min_count)
"""Critical alert thresholds; the warning ones are :data:`~.drift.DEFAULT_THRESHOLDS`,
the same that mark a row ``drifted`` in the offline report."""

_UNITS = {"y": 365 * 86_400_000, "w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000}
_UNITS |= {"m": 60_000, "s": 1000, "ms": 1}
_DURATION = re.compile(r"(\d+)(ms|[ywdhms])")


def duration_ms(text: str) -> int:
    """A Prometheus duration (``1h``, ``1h30m``, ``90s``) in milliseconds."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    total = sum(int(n) * _UNITS[u] for n, u in parts)
    if total <= 0:
        raise ValueError(f"not a positive duration: {text!r}")
    return total


def format_ms(ms: int) -> str:
    """Milliseconds as a Prometheus duration, largest units first (``59m59s999ms``)."""
    out = []
    for unit in ("d", "h", "m", "s", "ms"):
        n, ms = divmod(ms, _UNITS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out) or "0s"


def check_windows(windows: Sequence[str], interval: str) -> None:
    step = duration_ms(interval)
    if len(set(windows)) != len(windows) or not windows:
        raise ValueError(f"give one or more distinct windows, not {list(windows)}")
    for window in windows:
        if duration_ms(window) % step or duration_ms(window) <= step:
            raise ValueError(f"window {window} is not a multiple (> 1) of the interval {interval}")


def stage1_rule(record: str, counter: str, by: str, interval: str) -> dict[str, str]:
    """``record``: what ``counter`` gained over the last whole ``interval``, summed by ``by``.

    One read of each raw series: a subquery takes the counter at the two latest instants
    aligned to the interval (absolute multiples of it, so consecutive evaluations share
    one and their gains add up exactly), and ``irate`` their difference, per second of
    the interval, which ``* interval`` turns back into a count. ``irate`` treats a
    counter lower than before as reset and counts its current value. A series absent at
    the earlier instant (a new replica, a scrape gap) contributes from the next
    evaluation on.
    """
    seconds = duration_ms(interval) / 1000
    span = format_ms(2 * duration_ms(interval))
    return {
        "record": record,
        "expr": f"sum by ({by}) (irate({counter}[{span}:{interval}])) * {seconds:g}",
    }


def window_rule(record: str, stage1: str, window: str, interval: str) -> dict[str, str]:
    """``record``: the sum of ``stage1``'s samples over ``window``.

    The range is one millisecond short of the window so that it holds exactly
    ``window / interval`` evaluations both where ranges are closed at the start
    (Prometheus 2) and where they are open (Prometheus 3).
    """
    check_windows([window], interval)
    span = format_ms(duration_ms(window) - 1)
    return {"record": record, "expr": f"sum_over_time({stage1}[{span}])"}


def _decumulate(cumulative: str, by: str) -> str:
    """Per-bin counts from cumulative buckets that carry ``bin`` and ``next`` labels."""
    shifted = f'label_replace({cumulative}{{next!=""}}, "bin", "$1", "next", "(.+)")'
    # group_left keeps the left side's labels (le), so `or` only adds the first bin.
    return f"({cumulative} - on({by}, bin) group_left() {shifted}) or {cumulative}"


def _categories_as_bins(series: str) -> str:
    return f'label_replace({series}, "bin", "$1", "category", "(.*)")'


def _names(role: Role, window: str) -> dict[str, str]:
    r = recorded_prefix(role)
    return {
        "bucket": f"{r}_bucket:increase{window}",
        "category": f"{r}_category:increase{window}",
        "missing": f"{r}_missing:increase{window}",
    }


def _stage1_rules(role: Role, interval: str) -> list[dict[str, str]]:
    by = f"{MODEL}, {role.label}"
    names = _names(role, interval)
    return [
        stage1_rule(names["bucket"], f"{role.value()}_bucket", f"{by}, {LE}", interval),
        stage1_rule(names["category"], f"{role.category()}_total", f"{by}, {CATEGORY}", interval),
        stage1_rule(names["missing"], f"{role.missing()}_total", by, interval),
    ]


def _baseline_rules(role: Role) -> list[dict[str, str]]:
    """The baseline, once per model and column whatever the number of replicas."""
    by = f"{MODEL}, {role.label}"
    base = recorded_prefix(role, baseline=True)

    def share(counts: str) -> str:
        return f"{counts} / on({by}) group_left() (sum by ({by}) ({counts}) > 0)"

    return [
        {
            "record": f"{base}_bucket",
            "expr": f"max by ({by}, {LE}, {BIN}, {NEXT}) ({role.value(baseline=True)}_bucket)",
        },
        {
            "record": f"{base}_bin_count",
            "expr": f"sum without (next) ({_decumulate(f'{base}_bucket', by)}) or "
            + _categories_as_bins(f"max by ({by}, {CATEGORY}) ({role.category(baseline=True)})"),
        },
        {"record": f"{base}_bin_share", "expr": share(f"{base}_bin_count")},
        {
            "record": f"{base}_bin_share_smoothed",
            "expr": f"clamp_min({base}_bin_share, {EPSILON}) / on({by}) group_left() "
            f"sum by ({by}) (clamp_min({base}_bin_share, {EPSILON}))",
        },
    ]


def _window_rules(role: Role, window: str, interval: str) -> list[dict[str, str]]:
    by = f"{MODEL}, {role.label}"
    cur, base = recorded_prefix(role), recorded_prefix(role, baseline=True)
    w = f":{window}"
    names, stage1 = _names(role, window), _names(role, interval)

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
        # Stage 2: the window's counts, all replicas and workers, from stage 1's samples.
        *(window_rule(names[k], stage1[k], window, interval) for k in names),
        # Runtime buckets labelled with the baseline's bin index (joined on `le` within
        # histogram-typed series, which Prometheus normalises alike).
        {
            "record": cum_cur,
            "expr": f"{names['bucket']} * on({by}, le) group_left(bin, next) ({cum_base} * 0 + 1)",
        },
        {
            "record": f"{cur}_bin_count{w}",
            "expr": f"sum without (next) ({_decumulate(cum_cur, by)}) or "
            + _categories_as_bins(names["category"]),
        },
        {"record": f"{cur}_bin_share{w}", "expr": share(f"{cur}_bin_count{w}")},
        {"record": sc, "expr": smoothed(f"{cur}_bin_share{w}")},
        {"record": f"{cur}_count{w}", "expr": f"sum by ({by}) ({cur}_bin_count{w})"},
        {
            "record": f"{cur}_missing_share{w}",
            "expr": f"{names['missing']} / on({by}) (({names['missing']} + on({by}) "
            f"{cur}_count{w}) > 0)",
        },
        {
            "record": recorded(role, "psi", window),
            "expr": f"sum by ({by}) (({sc} - on({by}, bin) {sb}) * on({by}, bin) "
            f"ln({sc} / on({by}, bin) {sb}))",
        },
        {
            "record": recorded(role, "kl", window),
            "expr": f"sum by ({by}) ({sb} * on({by}, bin) ln({sb} / on({by}, bin) {sc}))",
        },
        {
            "record": recorded(role, "js", window),
            "expr": f"sqrt(clamp(0.5 * sum by ({by}) ({sb} * on({by}, bin) "
            f"log2({sb} / on({by}, bin) {mid})) + 0.5 * sum by ({by}) ({sc} * on({by}, bin) "
            f"log2({sc} / on({by}, bin) {mid})), 0, 1))",
        },
        {
            "record": recorded(role, "ks", window),
            "expr": f"max by ({by}) (abs("
            f"(sum without (next) ({cum_cur}) / on({by}) group_left() "
            f"(max by ({by}) ({cum_cur}) > 0)) - on({by}, bin) "
            f"(sum without (next) ({cum_base}) / on({by}) group_left() "
            f"(max by ({by}) ({cum_base}) > 0))))",
        },
    ]


def _alert(role: Role, window: str, severity: str, limits: DriftThresholds) -> dict:
    r, label = role.word, role.label
    cur = recorded_prefix(role)
    psi, ks = recorded(role, "psi", window), recorded(role, "ks", window)
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
        "alert": drift_alert(role),
        "expr": f"({psi} >= {limits.psi} or {ks} >= {limits.ks}) "
        f"and on(model, {label}) {cur}_count:{window} >= {limits.min_count}",
        "for": "10m",
        "labels": {"severity": severity},
        "annotations": {
            "summary": f"{what} {{{{ $labels.{label} }}}} of model {{{{ $labels.model }}}} "
            f"drifted from its baseline ({severity})",
            "description": (
                f"Over the last {window}"
                + value(": PSI ", psi)
                + value(", KS ", ks)
                + f" (thresholds: PSI {limits.psi}, KS {limits.ks}, "
                f"at least {limits.min_count} values in the window)."
            ),
        },
    }


@dataclass(frozen=True)
class QualityLimits:
    """When live quality counts as a drop from the baseline's (``BoxkiteQualityDrop``).

    ``error_ratio``: MAE or RMSE this many times the baseline's (1.2: 20% worse);
    ``accuracy_drop``: accuracy this much below the baseline's, in absolute terms;
    ``min_count``: labelled predictions needed in the window (at 100, a 5-point drop
    in accuracy is about one standard error: the alert's ``for`` adds the rest).
    """

    error_ratio: float = 1.2
    accuracy_drop: float = 0.05
    min_count: int = 100


QUALITY = QualityLimits()

_FEEDBACK_COUNTERS = {  # stage-1 name -> (counter, extra labels)
    "count": (f"{PREDICTION_ERROR}_count", ""),
    "abs": (f"{PREDICTION_ABS_ERROR}_total", ""),
    "squared": (f"{PREDICTION_SQUARED_ERROR}_total", ""),
    "over": (f"{PREDICTION_OVERESTIMATE}_total", ""),
    "outcome": (f"{PREDICTION_OUTCOME}_total", f", {PREDICTED}, {ACTUAL}"),
}


def _feedback_names(window: str) -> dict[str, str]:
    return {
        k: f"{recorded_prefix(OUTPUTS)}_feedback_{k}:increase{window}" for k in _FEEDBACK_COUNTERS
    }


def _quality_stage1(interval: str) -> list[dict[str, str]]:
    by = f"{MODEL}, {OUTPUTS.label}"
    names = _feedback_names(interval)
    return [
        stage1_rule(names[k], counter, by + extra, interval)
        for k, (counter, extra) in _FEEDBACK_COUNTERS.items()
    ]


def _quality_window(window: str, interval: str) -> list[dict[str, str]]:
    """Live quality over ``window`` from the feedback counters, as :mod:`.quality` does."""
    by = f"{MODEL}, {OUTPUTS.label}"
    names, stage1 = _feedback_names(window), _feedback_names(interval)
    n = f"({names['count']} > 0)"
    outcome = names["outcome"]
    correct = f"{recorded_prefix(OUTPUTS)}_feedback_correct:increase{window}"
    # The diagonal of the outcome matrix: cells whose `actual` equals their `predicted`,
    # found by joining with a copy that carries `predicted` in `actual`.
    diagonal = (
        f"{outcome} and on({by}, {PREDICTED}, {ACTUAL}) label_replace(sum by ({by}, "
        f'{PREDICTED}) ({outcome}), "{ACTUAL}", "$1", "{PREDICTED}", "(.*)")'
    )

    def per_class(label: str) -> str:
        def as_category(series: str) -> str:
            return (
                f"sum by ({by}, {CATEGORY}) "
                f'(label_replace({series}, "{CATEGORY}", "$1", "{label}", "(.*)"))'
            )

        return f"{as_category(correct)} / on({by}, {CATEGORY}) ({as_category(outcome)} > 0)"

    return [
        *(window_rule(names[k], stage1[k], window, interval) for k in names),
        {
            "record": recorded_quality("feedback_count", window),
            "expr": f"{names['count']} or sum by ({by}) ({outcome})",
        },
        {"record": recorded_quality("mae", window), "expr": f"{names['abs']} / {n}"},
        {"record": recorded_quality("rmse", window), "expr": f"sqrt({names['squared']} / {n})"},
        {
            # Σe = Σmax(e, 0) - Σmax(-e, 0) = 2 Σmax(e, 0) - Σ|e|
            "record": recorded_quality("bias", window),
            "expr": f"(2 * {names['over']} - {names['abs']}) / {n}",
        },
        {"record": correct, "expr": diagonal},
        {
            "record": recorded_quality("accuracy", window),
            "expr": f"sum by ({by}) ({correct}) / (sum by ({by}) ({outcome}) > 0)",
        },
        {"record": recorded_quality("precision", window), "expr": per_class(PREDICTED)},
        {"record": recorded_quality("recall", window), "expr": per_class(ACTUAL)},
    ]


def _quality_alert(window: str, limits: QualityLimits) -> dict:
    by = f"{MODEL}, {OUTPUTS.label}"

    def baseline(measure: str) -> str:
        return f"max by ({by}) ({baseline_quality(measure)})"

    worse = " or ".join(
        [
            *(
                f"{recorded_quality(m, window)} > on({by}) {limits.error_ratio} * {baseline(m)}"
                for m in ("mae", "rmse")
            ),
            f"{recorded_quality('accuracy', window)} < on({by}) "
            f"{baseline('accuracy')} - {limits.accuracy_drop}",
        ]
    )
    return {
        "alert": QUALITY_ALERT,
        # max by: MAE and RMSE both worse make one alert, not two of the same labels
        "expr": f"max by ({by}) ({worse}) and on({by}) "
        f"{recorded_quality('feedback_count', window)} >= {limits.min_count}",
        "for": "15m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "Output {{ $labels.output }} of model {{ $labels.model }} is doing "
            "worse than at training time",
            "description": f"Over the last {window}, from labelled predictions "
            f"(feedback): MAE or RMSE above {limits.error_ratio} x the baseline's, or "
            f"accuracy more than {limits.accuracy_drop} below it, with at least "
            f"{limits.min_count} labels in the window.",
        },
    }


def stage1_records(interval: str = INTERVAL) -> list[dict[str, str]]:
    """Stage 1 alone: what ``promtool tsdb create-blocks-from rules`` backfills."""
    return [rule for role in ROLES for rule in _stage1_rules(role, interval)] + _quality_stage1(
        interval
    )


def rules(
    windows: Sequence[str] = WINDOWS,
    warning: DriftThresholds = DEFAULT_THRESHOLDS,
    critical: DriftThresholds = CRITICAL,
    interval: str = INTERVAL,
    quality: QualityLimits = QUALITY,
) -> dict:
    """The rule groups as a dict, ready for ``yaml.safe_dump``.

    One recording group (stage 1 first: rules of a group run in order at the same
    timestamp, so stage 2 sees this evaluation's stage-1 samples), then the alerts over
    the first window.
    """
    windows = [windows] if isinstance(windows, str) else list(windows)
    check_windows(windows, interval)
    recording = stage1_records(interval)
    recording += [rule for role in ROLES for rule in _baseline_rules(role)]
    recording += [
        rule
        for window in windows
        for role in ROLES
        for rule in _window_rules(role, window, interval)
    ]
    recording += [rule for window in windows for rule in _quality_window(window, interval)]
    alerts = [
        _alert(role, windows[0], severity, limits)
        for role in ROLES
        for severity, limits in (("warning", warning), ("critical", critical))
    ]
    alerts.append(_quality_alert(windows[0], quality))
    return {
        "groups": [
            {"name": "boxkite-drift", "interval": interval, "rules": recording},
            {"name": f"boxkite-drift-alerts-{windows[0]}", "rules": alerts},
        ]
    }


def rules_yaml(
    windows: Sequence[str] = WINDOWS,
    warning: DriftThresholds = DEFAULT_THRESHOLDS,
    critical: DriftThresholds = CRITICAL,
    interval: str = INTERVAL,
) -> str:
    windows = [windows] if isinstance(windows, str) else list(windows)
    header = (
        "# Generated by boxkite_middleware.rules (boxkite-middleware rules); do not edit.\n"
        f"# Drift over {', '.join(windows)} windows across every replica, in two stages "
        f"(docs/rules-scaling.md): every {interval}, the replicas' counters summed into "
        "replica-free increases; per window, their sum over the window.\n"
        f"# Alerts over {windows[0]}; warning: PSI >= {warning.psi} "
        f"or KS >= {warning.ks}, critical: PSI >= {critical.psi} or KS >= {critical.ks}, "
        f"both with at least {warning.min_count} values in the window.\n"
        f"# Quality from feedback routes (docs/ground-truth.md): {QUALITY_ALERT} when MAE or "
        f"RMSE exceed {QUALITY.error_ratio} x the baseline's or accuracy falls more than "
        f"{QUALITY.accuracy_drop} below it, with at least {QUALITY.min_count} labels.\n"
    )
    body = yaml.safe_dump(
        rules(windows, warning, critical, interval), sort_keys=False, width=10_000
    )
    return header + body
