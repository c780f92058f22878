"""Drift reports from ``/metrics`` pages or from Prometheus, with no baseline file.

Every endpoint exports the baseline next to the runtime counts, so a few scrapes
are enough: runtime counts are summed over the pages (replicas), the baseline is
read from them (every replica exports the same one), and both go through the
same :func:`~.drift.compare` as the offline report. From Prometheus, the same
series are read over a window with ``increase``.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from .baseline import CATEGORICAL, NUMERIC, Column
from .drift import DriftReport, DriftThresholds, compare
from .quality import Quality, QualityReport, QualityRow
from .schema import (
    ACTUAL,
    CATEGORY,
    CLASS_MEASURES,
    FEEDBACK_MISSING,
    LE,
    MODEL,
    OTHER,
    OUTPUTS,
    PREDICTED,
    PREDICTION_ABS_ERROR,
    PREDICTION_ERROR,
    PREDICTION_OUTCOME,
    PREDICTION_SQUARED_ERROR,
    QUALITY_MEASURES,
    ROLES,
    Role,
    baseline_quality,
)


@dataclass
class _Side:
    """Counts per column of one model, from the baseline or the runtime families."""

    bins: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    kinds: dict[tuple[str, str], str] = field(default_factory=dict)
    missing: dict[tuple[str, str], float] = field(default_factory=dict)
    sums: dict[tuple[str, str], float] = field(default_factory=dict)

    def add(self, key: tuple[str, str], kind: str, label: str, count: float) -> None:
        self.kinds.setdefault(key, kind)
        bins = self.bins.setdefault(key, {})
        bins[label] = bins.get(label, 0.0) + count


def _sample_kinds() -> dict[str, tuple[bool, Role, str]]:
    """Sample name -> (is the baseline's, role, what) for every value family."""
    kinds = {}
    for role in ROLES:
        for baseline in (False, True):
            total = "" if baseline else "_total"
            kinds[f"{role.value(baseline)}_bucket"] = (baseline, role, "bucket")
            kinds[f"{role.value(baseline)}_sum"] = (baseline, role, "sum")
            kinds[f"{role.category(baseline)}{total}"] = (baseline, role, "category")
            kinds[f"{role.missing(baseline)}{total}"] = (baseline, role, "missing")
    return kinds


_SAMPLES = _sample_kinds()
Models = dict[str, tuple[_Side, _Side]]  # model -> (baseline side, runtime side)


def _add(
    models: Models, name: str, labels: dict[str, str], value: float, sign: float = 1.0
) -> None:
    """Count one sample of a boxkite family into its model's baseline or runtime side."""
    kind = _SAMPLES.get(name)
    if kind is None:
        return
    is_baseline, role, what = kind
    sides = models.setdefault(labels[MODEL], (_Side(), _Side()))
    side = sides[0] if is_baseline else sides[1]
    key = (role.role, labels[role.label])
    if what == "bucket":
        side.add(key, NUMERIC, labels[LE], sign * value)
    elif what == "sum":
        side.sums[key] = side.sums.get(key, 0.0) + sign * value
    elif what == "category":
        side.add(key, CATEGORICAL, labels[CATEGORY], sign * value)
    else:
        side.missing[key] = side.missing.get(key, 0.0) + sign * value


def _read(texts: Iterable[str], models: Models | None = None, sign: float = 1.0) -> Models:
    """Add the runtime counts of every page, and the baseline of the first page having it."""
    models = {} if models is None else models
    has_baseline = {m for m, (base, _) in models.items() if base.kinds}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                kind = _SAMPLES.get(s.name)
                if kind is None:
                    continue
                if kind[0] and (sign < 0 or s.labels.get(MODEL) in has_baseline):
                    continue  # every replica exports the same baseline: read it once
                _add(models, s.name, s.labels, s.value, sign)
        has_baseline = {m for m, (base, _) in models.items() if base.kinds}
    return models


def _per_bin(bins: dict[str, float], kind: str, order: list[str]) -> np.ndarray:
    counts = np.array([bins.get(label, 0.0) for label in order])
    return np.diff(counts, prepend=0.0) if kind == NUMERIC else counts


def _report(models: Models, model: str | None, thresholds: DriftThresholds | None) -> DriftReport:
    if not models:
        raise ValueError("no boxkite_* series found")
    if model is None:
        if len(models) > 1:
            raise ValueError(f"several models, choose one of: {', '.join(sorted(models))}")
        model = next(iter(models))
    if model not in models:
        raise ValueError(f"no series of model {model!r} (found: {', '.join(sorted(models))})")
    baseline, runtime = models[model]
    rows = []
    for key, kind in baseline.kinds.items():
        role, name = key
        labels = list(baseline.bins[key])
        if kind == NUMERIC:
            labels.sort(key=float)  # "+Inf" sorts last
        counts = _per_bin(baseline.bins[key], kind, labels)
        edges = np.array([float(le) for le in labels[:-1]]) if kind == NUMERIC else np.empty(0)
        column = Column(
            name,
            role,
            kind,
            np.rint(counts).astype(np.int64),
            int(baseline.missing.get(key, 0)),
            edges=edges,
            categories=tuple(labels) if kind == CATEGORICAL else (),
            sum=baseline.sums.get(key, 0.0),
        )
        current = np.maximum(_per_bin(runtime.bins.get(key, {}), kind, labels), 0.0)
        rows.append(compare(column, current, max(runtime.missing.get(key, 0.0), 0.0), thresholds))
    return DriftReport(rows)


@dataclass
class _Feedback:
    """Ground-truth counts of one output, summed over pages, and its baseline's figures."""

    buckets: dict[str, float] = field(default_factory=dict)
    sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # e, |e|, e²
    outcomes: dict[tuple[str, str], float] = field(default_factory=dict)
    missing: float = 0.0
    baseline: dict[str, Any] = field(default_factory=dict)


_RUNTIME_QUALITY = {
    f"{PREDICTION_ERROR}_bucket",
    f"{PREDICTION_ERROR}_sum",
    f"{PREDICTION_ABS_ERROR}_total",
    f"{PREDICTION_SQUARED_ERROR}_total",
    f"{PREDICTION_OUTCOME}_total",
    f"{FEEDBACK_MISSING}_total",
}
_BASELINE_QUALITY = {baseline_quality(m): m for m in (*QUALITY_MEASURES, *CLASS_MEASURES)}


def _add_feedback(
    into: dict[tuple[str, str], _Feedback],
    name: str,
    labels: dict[str, str],
    value: float,
    sign: float = 1.0,
) -> None:
    if name not in _RUNTIME_QUALITY and name not in _BASELINE_QUALITY:
        return
    side = into.setdefault((labels[MODEL], labels[OUTPUTS.label]), _Feedback())
    v = sign * value
    if name in _BASELINE_QUALITY:
        if sign > 0:  # every replica exports the same baseline
            measure = _BASELINE_QUALITY[name]
            if measure in CLASS_MEASURES:
                side.baseline.setdefault(measure, {})[labels[CATEGORY]] = value
            else:
                side.baseline[measure] = value
    elif name.endswith("_bucket"):
        side.buckets[labels["le"]] = side.buckets.get(labels["le"], 0.0) + v
    elif name == f"{PREDICTION_ERROR}_sum":
        side.sums[0] += v
    elif name == f"{PREDICTION_ABS_ERROR}_total":
        side.sums[1] += v
    elif name == f"{PREDICTION_SQUARED_ERROR}_total":
        side.sums[2] += v
    elif name == f"{PREDICTION_OUTCOME}_total":
        pair = (labels[PREDICTED], labels[ACTUAL])
        side.outcomes[pair] = side.outcomes.get(pair, 0.0) + v
    else:
        side.missing += v


def _read_feedback(
    texts: Iterable[str], into: dict[tuple[str, str], _Feedback] | None = None, sign: float = 1.0
) -> dict[tuple[str, str], _Feedback]:
    into = {} if into is None else into
    for text in texts:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                _add_feedback(into, s.name, s.labels, s.value, sign)
    return into


def _quality(sides: dict[tuple[str, str], _Feedback], model: str | None) -> QualityReport:
    models = {m for m, _ in sides}
    if model is None and len(models) > 1:
        raise ValueError(f"several models, choose one of: {', '.join(sorted(models))}")
    rows = []
    for (m, output), side in sides.items():
        if model is not None and m != model:
            continue
        if side.buckets:
            labels = sorted(side.buckets, key=float)
            counts = np.diff([side.buckets[le] for le in labels], prepend=0.0)
            quality = Quality(
                "numeric",
                int(side.missing),
                edges=np.array([float(le) for le in labels[:-1]]),
                counts=counts,  # from Prometheus: extrapolated by increase(), not whole
                error_sum=side.sums[0],
                abs_sum=side.sums[1],
                squared_sum=side.sums[2],
            )
        elif side.outcomes:
            classes = sorted({c for pair in side.outcomes for c in pair}, key=lambda c: c == OTHER)
            index = {c: i for i, c in enumerate(classes)}
            confusion = np.zeros((len(classes), len(classes)))
            for (predicted, actual), count in side.outcomes.items():
                confusion[index[predicted], index[actual]] = count
            quality = Quality(
                "categorical", int(side.missing), classes=tuple(classes), confusion=confusion
            )
        else:
            continue
        rows.append(
            QualityRow(
                output,
                quality.kind,
                quality.n,
                quality.missing,
                quality.metrics(),
                side.baseline,
                quality,
            )
        )
    return QualityReport(rows)


def quality_from_texts(texts: Iterable[str], model: str | None = None) -> QualityReport:
    """Live quality from the feedback counters of these pages (empty without feedback)."""
    return _quality(_read_feedback(texts), model)


def quality_between(
    before: Iterable[str], after: Iterable[str], model: str | None = None
) -> QualityReport:
    """Quality of the feedback counted between two sets of scrapes of the same servers."""
    return _quality(_read_feedback(before, _read_feedback(after), sign=-1.0), model)


def quality_from_urls(urls: Iterable[str], model: str | None = None) -> QualityReport:
    return quality_from_texts([fetch(u) for u in urls], model)


def report_from_texts(
    texts: Iterable[str], model: str | None = None, thresholds: DriftThresholds | None = None
) -> DriftReport:
    """The drift report of ``model`` (the only one, if None) over these exposition texts."""
    return _report(_read(texts), model, thresholds)


def report_between(
    before: Iterable[str],
    after: Iterable[str],
    model: str | None = None,
    thresholds: DriftThresholds | None = None,
) -> DriftReport:
    """Drift of what was counted between two sets of scrapes of the same servers."""
    return _report(_read(before, _read(after), sign=-1.0), model, thresholds)


def report_from_prometheus(
    base_url: str,
    window: str = "1h",
    model: str | None = None,
    thresholds: DriftThresholds | None = None,
    timeout: float = 30.0,
) -> DriftReport:
    """Drift over the last ``window`` of every replica Prometheus scrapes.

    Reads the raw ``boxkite_*`` series, so the recording rules need not be installed.
    """
    models: Models = {}
    at = time.time()
    for role in ROLES:
        by = f"{MODEL}, {role.label}"
        runtime = [
            (f"{role.value()}_bucket", f", {LE}"),
            (f"{role.category()}_total", f", {CATEGORY}"),
            (f"{role.missing()}_total", ""),
        ]
        baseline = [
            (f"{role.value(baseline=True)}_bucket", f", {LE}"),
            (f"{role.value(baseline=True)}_sum", ""),
            (role.category(baseline=True), f", {CATEGORY}"),
            (role.missing(baseline=True), ""),
        ]
        queries = [
            (name, f"sum by ({by}{extra}) (increase({name}[{window}]))") for name, extra in runtime
        ] + [(name, f"max by ({by}{extra}) ({name})") for name, extra in baseline]
        for name, promql in queries:
            for result in _query(base_url, promql, timeout, at):
                _add(models, name, result["metric"], float(result["value"][1]))
    return _report(models, model, thresholds)


def quality_from_prometheus(
    base_url: str, window: str = "1h", model: str | None = None, timeout: float = 30.0
) -> QualityReport:
    """Live quality over the last ``window``, from the raw feedback counters."""
    by = f"{MODEL}, {OUTPUTS.label}"
    sides: dict[tuple[str, str], _Feedback] = {}
    at = time.time()
    queries = [
        (f"{PREDICTION_ERROR}_bucket", f"sum by ({by}, le) (increase({{name}}[{window}]))"),
        (f"{PREDICTION_ERROR}_sum", f"sum by ({by}) (increase({{name}}[{window}]))"),
        (f"{PREDICTION_ABS_ERROR}_total", f"sum by ({by}) (increase({{name}}[{window}]))"),
        (f"{PREDICTION_SQUARED_ERROR}_total", f"sum by ({by}) (increase({{name}}[{window}]))"),
        (
            f"{PREDICTION_OUTCOME}_total",
            f"sum by ({by}, {PREDICTED}, {ACTUAL}) (increase({{name}}[{window}]))",
        ),
        (f"{FEEDBACK_MISSING}_total", f"sum by ({by}) (increase({{name}}[{window}]))"),
    ]
    queries += [
        (name, f"max by ({by}{', ' + CATEGORY if m in CLASS_MEASURES else ''}) ({{name}})")
        for name, m in _BASELINE_QUALITY.items()
    ]
    for name, template in queries:
        for result in _query(base_url, template.format(name=name), timeout, at):
            _add_feedback(sides, name, result["metric"], float(result["value"][1]))
    return _quality(sides, model)


def _query(base_url: str, promql: str, timeout: float, at: float) -> list[dict[str, Any]]:
    """An instant query at time ``at``: every query of one report at the same instant, so
    ``increase()`` extrapolates every series alike and ratios of them stay exact."""
    params = {"query": promql, "time": f"{at:.3f}"}
    url = f"{base_url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())["data"]["result"]


def fetch(url: str, timeout: float = 10.0) -> str:
    """The text of one ``/metrics`` page."""
    request = urllib.request.Request(url, headers={"Accept": "text/plain"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return response.read().decode("utf-8")


def report_from_urls(
    urls: Iterable[str], model: str | None = None, thresholds: DriftThresholds | None = None
) -> DriftReport:
    """Drift since start-up, summed over the replicas behind ``urls``."""
    return report_from_texts([fetch(u) for u in urls], model, thresholds)
