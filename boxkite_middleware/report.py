"""Drift straight from ``/metrics`` pages, with no Prometheus and no baseline file.

Every endpoint exports the baseline next to the runtime counts, so a few scrapes
are enough: runtime counts are summed over the pages (replicas), the baseline is
read from them (every replica exports the same one), and both go through the
same :func:`~.drift.compare` as the offline report.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from .baseline import CATEGORICAL, FEATURE, NUMERIC, OUTPUT, Column
from .drift import DriftReport, DriftThresholds, compare

_ROLES = {"feature": FEATURE, "prediction": OUTPUT}
_LABEL = {"feature": "feature", "prediction": "output"}


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


def _read(texts: Iterable[str]) -> dict[str, tuple[_Side, _Side]]:
    """model -> (baseline side, runtime side summed over all texts)."""
    models: dict[str, tuple[_Side, _Side]] = {}
    has_baseline: set[str] = set()  # every replica exports the same baseline: read it once
    for text in texts:
        read_now: set[str] = set()
        for family in text_string_to_metric_families(text):
            name = family.name
            is_baseline = name.startswith("boxkite_baseline_")
            stem = name.removeprefix("boxkite_baseline_" if is_baseline else "boxkite_")
            role, _, what = stem.partition("_")
            if role not in _ROLES or what not in ("value", "category", "missing"):
                continue
            for s in family.samples:
                if is_baseline and s.labels["model"] in has_baseline:
                    continue
                if is_baseline:
                    read_now.add(s.labels["model"])
                sides = models.setdefault(s.labels["model"], (_Side(), _Side()))
                side = sides[0] if is_baseline else sides[1]
                key = (_ROLES[role], s.labels[_LABEL[role]])
                if what == "value" and s.name.endswith("_bucket"):
                    side.add(key, NUMERIC, s.labels["le"], s.value)
                elif what == "value" and s.name.endswith("_sum"):
                    side.sums[key] = side.sums.get(key, 0.0) + s.value
                elif what == "category":
                    side.add(key, CATEGORICAL, s.labels["category"], s.value)
                elif what == "missing":
                    side.missing[key] = side.missing.get(key, 0.0) + s.value
        has_baseline |= read_now
    return models


def _per_bin(bins: dict[str, float], kind: str, order: list[str]) -> np.ndarray:
    counts = np.array([bins.get(label, 0.0) for label in order])
    return np.diff(counts, prepend=0.0) if kind == NUMERIC else counts


def report_from_texts(
    texts: Iterable[str], model: str | None = None, thresholds: DriftThresholds | None = None
) -> DriftReport:
    """The drift report of ``model`` (the only one, if None) over these exposition texts."""
    models = _read(texts)
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
            counts.astype(np.int64),
            int(baseline.missing.get(key, 0)),
            edges=edges,
            categories=tuple(labels) if kind == CATEGORICAL else (),
            sum=baseline.sums.get(key, 0.0),
        )
        current = _per_bin(runtime.bins.get(key, {}), kind, labels)
        rows.append(compare(column, current, runtime.missing.get(key, 0.0), thresholds))
    return DriftReport(rows)


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
