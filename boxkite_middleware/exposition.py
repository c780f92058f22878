"""Metric families of a monitor, and their rendering for a scrape.

Families are plain data built once from the layout: a name, a type, and for
every sample its labels and the position of its value in the count array.
Collection fills in the numbers; rendering turns families into bytes.

Rendering goes through prometheus_client's encoders, so content negotiation
(Prometheus text or OpenMetrics) and gzip behave exactly as with its own
``/metrics`` handlers. Because every scrape has the same series in the same
order, the text an encoder produces is cached as a template after the first
scrape in each format and only the numbers are re-formatted (with
prometheus_client's own float formatting): the output is byte-identical to the
encoder's, at a fraction of the cost.

Samples are added to :class:`prometheus_client.Metric` directly because
``HistogramMetricFamily`` drops ``_sum`` when the first bucket bound is negative,
and features are often negative.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Metric
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.utils import floatToGoString

from .baseline import NUMERIC
from .counting import Layout
from .schema import (
    ACTUAL,
    BASELINE_PREDICTION_ERROR,
    BASELINE_ROWS,
    BIN,
    CATEGORY,
    CLASS_MEASURES,
    FEEDBACK_MISSING,
    MODEL,
    NEXT,
    OBSERVATION_ERRORS,
    OBSERVED_REQUESTS,
    OBSERVED_ROWS,
    OUTPUTS,
    PREDICTED,
    PREDICTION_ABS_ERROR,
    PREDICTION_ERROR,
    PREDICTION_OUTCOME,
    PREDICTION_OVERESTIMATE,
    PREDICTION_SQUARED_ERROR,
    QUALITY_MEASURES,
    REASON,
    REASONS,
    ROLES,
    ROUTE,
    baseline_quality,
)

_HELP = {
    "value": "Runtime {role} values, counted into the baseline's bins.",
    "category": "Runtime {role} values per baseline category; unseen ones count as __other__.",
    "missing": "Runtime {role} values that were absent, null, NaN, infinite or of the wrong type.",
    "baseline_value": "Training-time {role} values in the same bins (same le labels as runtime).",
    "baseline_category": "Training-time count of each {role} category.",
    "baseline_missing": "Training-time count of missing {role} values.",
}


@dataclass
class Family:
    """One metric family: every sample's name, labels and index in the derived counts."""

    name: str
    type: str
    help: str
    samples: list[tuple[str, dict[str, str], int]]

    def metric(self, derived: Sequence[float]) -> Metric:
        metric = Metric(self.name, self.help, self.type)
        for name, labels, index in self.samples:
            metric.add_sample(name, labels, derived[index])
        return metric


def _bin_labels(i: int, buckets: int) -> dict[str, str]:
    """``bin`` (1-based) and ``next`` labels of the baseline's buckets.

    They let the recording rules take per-bin counts apart from cumulative buckets by
    joining on ``bin``, a label Prometheus never rewrites, instead of matching ``le``
    text across metric types (Prometheus 3 normalises ``le`` of histograms only).
    """
    labels = {BIN: str(i + 1)}
    if i + 1 < buckets:
        labels[NEXT] = str(i + 2)
    return labels


def _column_families(layout: Layout, baseline: bool) -> list[Family]:
    kind, doc, total = ("gauge", "baseline_", "") if baseline else ("counter", "", "_total")
    families = []
    for role in ROLES:
        value_name = role.value(baseline)
        category_name = role.category(baseline)
        missing_name = role.missing(baseline)
        value = Family(value_name, "histogram", _HELP[f"{doc}value"].format(role=role.word), [])
        cat = Family(category_name, kind, _HELP[f"{doc}category"].format(role=role.word), [])
        missing = Family(missing_name, kind, _HELP[f"{doc}missing"].format(role=role.word), [])
        for slots in layout.columns:
            column = slots.column
            if column.role != role.role:
                continue
            labels = {MODEL: slots.model, role.label: column.name}
            if column.kind == NUMERIC:
                for i, le in enumerate(column.le):
                    bucket = dict(labels, le=le)
                    if baseline:
                        bucket.update(_bin_labels(i, len(column.le)))
                    value.samples.append((f"{value_name}_bucket", bucket, slots.start + i))
                last_bin = slots.start + slots.bins - 1
                value.samples.append((f"{value_name}_count", labels, last_bin))
                value.samples.append((f"{value_name}_sum", labels, slots.sum))
            else:
                for i, category in enumerate(column.categories):
                    cat.samples.append(
                        (
                            f"{category_name}{total}",
                            dict(labels, **{CATEGORY: category}),
                            slots.start + i,
                        )
                    )
            missing.samples.append((f"{missing_name}{total}", labels, slots.missing))
        families += [f for f in (value, cat, missing) if f.samples]
    return families


def _route_families(layout: Layout) -> list[Family]:
    requests = Family(OBSERVED_REQUESTS, "counter", "Requests whose bodies were observed.", [])
    rows = Family(
        OBSERVED_ROWS, "counter", "Rows observed (a batch request counts each of its rows).", []
    )
    errors = Family(
        OBSERVATION_ERRORS, "counter", "Requests whose body could not be observed, by reason.", []
    )
    for i, (model, route) in enumerate(layout.routes):
        labels = {MODEL: model, ROUTE: route}
        req, row, err = layout.route_slots(i)
        requests.samples.append((f"{OBSERVED_REQUESTS}_total", labels, req))
        rows.samples.append((f"{OBSERVED_ROWS}_total", labels, row))
        for reason in REASONS:
            errors.samples.append(
                (
                    f"{OBSERVATION_ERRORS}_total",
                    dict(labels, **{REASON: reason.label}),
                    err + reason,
                )
            )
    return [requests, rows, errors] if layout.routes else []


def _quality_families(layout: Layout) -> list[Family]:
    """Runtime ground-truth families: errors of numeric outputs, outcomes of categorical."""
    error = Family(PREDICTION_ERROR, "histogram", "Prediction minus truth, from feedback.", [])
    absolute = Family(PREDICTION_ABS_ERROR, "counter", "Sum of |prediction - truth|.", [])
    squared = Family(PREDICTION_SQUARED_ERROR, "counter", "Sum of (prediction - truth)^2.", [])
    over = Family(
        PREDICTION_OVERESTIMATE, "counter", "Sum of max(prediction - truth, 0): for the bias.", []
    )
    outcome = Family(
        PREDICTION_OUTCOME, "counter", "Feedback pairs by predicted and actual category.", []
    )
    missing = Family(
        FEEDBACK_MISSING, "counter", "Feedback whose prediction or truth was unusable.", []
    )
    for q in layout.quality:
        labels = {MODEL: q.model, OUTPUTS.label: q.column.name}
        if q.numeric:
            le = q.column.quality.le  # type: ignore[union-attr]
            for i, bound in enumerate(le):
                error.samples.append(
                    (f"{PREDICTION_ERROR}_bucket", dict(labels, le=bound), q.start + i)
                )
            error.samples.append((f"{PREDICTION_ERROR}_count", labels, q.start + q.bins - 1))
            error.samples.append((f"{PREDICTION_ERROR}_sum", labels, q.missing + 1))
            absolute.samples.append((f"{PREDICTION_ABS_ERROR}_total", labels, q.missing + 2))
            squared.samples.append((f"{PREDICTION_SQUARED_ERROR}_total", labels, q.missing + 3))
            over.samples.append((f"{PREDICTION_OVERESTIMATE}_total", labels, q.missing + 4))
        else:
            classes = q.column.categories
            for i, predicted in enumerate(classes):
                for j, actual in enumerate(classes):
                    outcome.samples.append(
                        (
                            f"{PREDICTION_OUTCOME}_total",
                            dict(labels, **{PREDICTED: predicted, ACTUAL: actual}),
                            q.start + i * len(classes) + j,
                        )
                    )
        missing.samples.append((f"{FEEDBACK_MISSING}_total", labels, q.missing))
    return [f for f in (error, absolute, squared, over, outcome, missing) if f.samples]


def _baseline_quality(layout: Layout) -> list[Metric]:
    """The baseline's error bins and quality, for the outputs that get feedback."""
    error = Metric(
        BASELINE_PREDICTION_ERROR, "Training-time prediction - truth in the same bins.", "histogram"
    )
    gauges = {
        m: Metric(baseline_quality(m), f"Training-time {m} of the output.", "gauge")
        for m in (*QUALITY_MEASURES, *CLASS_MEASURES)
    }
    for q in layout.quality:
        quality = q.column.quality
        assert quality is not None or not q.numeric
        labels = {MODEL: q.model, OUTPUTS.label: q.column.name}
        if quality is None:
            continue  # categorical output of a baseline built without truth
        metrics = quality.metrics()
        if q.numeric:
            running = np.cumsum(quality.counts)
            for i, bound in enumerate(quality.le):
                bucket = dict(labels, le=bound, **_bin_labels(i, len(quality.le)))
                error.add_sample(f"{BASELINE_PREDICTION_ERROR}_bucket", bucket, float(running[i]))
            error.add_sample(f"{BASELINE_PREDICTION_ERROR}_count", labels, float(running[-1]))
            error.add_sample(f"{BASELINE_PREDICTION_ERROR}_sum", labels, quality.error_sum)
            for m in ("mae", "rmse", "bias"):
                if metrics[m] is not None:
                    gauges[m].add_sample(baseline_quality(m), labels, metrics[m])
            continue
        if metrics["accuracy"] is not None:
            gauges["accuracy"].add_sample(baseline_quality("accuracy"), labels, metrics["accuracy"])
        for m in CLASS_MEASURES:
            for category, value in metrics[m].items():
                if value is not None:
                    gauges[m].add_sample(
                        baseline_quality(m), dict(labels, **{CATEGORY: category}), value
                    )
    return [m for m in (error, *gauges.values()) if m.samples]


class Exposition:
    """Families of one layout, filled from a snapshot of its counts."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.families = (
            _column_families(layout, baseline=False)
            + _quality_families(layout)
            + _route_families(layout)
        )
        self._index = np.array([i for f in self.families for _, _, i in f.samples], dtype=np.intp)
        # Histogram buckets are cumulative: per numeric column, bins become running totals.
        histograms = [(s.start, s.bins) for s in layout.columns if s.sum >= 0]
        histograms += [(q.start, q.bins) for q in layout.quality if q.numeric]
        bins = [np.arange(start, start + n) for start, n in histograms]
        starts = [np.full(n, start) for start, n in histograms]
        self._bin_slots = np.concatenate(bins) if bins else np.empty(0, dtype=np.intp)
        self._bin_starts = np.concatenate(starts) if starts else np.empty(0, dtype=np.intp)
        self._mask = np.zeros(layout.size)
        self._mask[self._bin_slots] = 1.0
        baseline_values = self._derive(self._baseline_values())
        self.baseline = [f.metric(baseline_values) for f in _column_families(layout, baseline=True)]
        rows = Metric(BASELINE_ROWS, "Rows in the training data of the baseline.", "gauge")
        for model, baseline in layout.models.items():
            if baseline.columns:  # not the stand-in that counts requests for unknown models
                rows.add_sample(BASELINE_ROWS, {MODEL: model}, float(baseline.rows))
        self.baseline.append(rows)
        self.baseline += _baseline_quality(layout)
        self._templates: dict[str, _Template] = {}

    def _baseline_values(self) -> np.ndarray:
        values = np.zeros(self.layout.size)
        for slots in self.layout.columns:
            column = slots.column
            values[slots.start : slots.start + slots.bins] = column.counts
            values[slots.missing] = column.missing
            if slots.sum >= 0:
                values[slots.sum] = column.sum
        return values

    def _derive(self, values: np.ndarray) -> np.ndarray:
        running = np.concatenate(([0.0], np.cumsum(np.where(self._mask, values, 0.0))))
        derived = values.astype(np.float64, copy=True)
        derived[self._bin_slots] = running[self._bin_slots + 1] - running[self._bin_starts]
        return derived

    def collect_from(self, values: np.ndarray) -> list[Metric]:
        """Runtime families with ``values``, then the baseline families."""
        derived = self._derive(values).tolist()
        return [f.metric(derived) for f in self.families] + self.baseline

    def encode(
        self, values: np.ndarray, encoder: Callable[[Any], bytes], content_type: str
    ) -> bytes:
        """What ``encoder`` makes of these families, via a cached template."""
        template = self._templates.get(content_type)
        if template is None:
            zeros = self.collect_from(np.zeros(self.layout.size))
            template = _Template(encoder(_Families(zeros)), len(self._index))
            self._templates[content_type] = template
        return template.fill(self._derive(values)[self._index].tolist())


_EOF = b"# EOF\n"  # OpenMetrics' last line: one, after every family


class _Families:
    """The minimal collector an encoder accepts."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> list[Metric]:
        return self._metrics


class _Template:
    """Encoder output cut around the values of the runtime samples, which come first."""

    def __init__(self, text: bytes, samples: int) -> None:
        text_ = text.decode("utf-8")
        self.chunks: list[str] = []
        position = line_start = 0
        while len(self.chunks) < samples:
            line_end = text_.index("\n", line_start)
            line = text_[line_start:line_end]
            if line and not line.startswith("#"):
                value_start = line_start + line.rindex(" ") + 1
                self.chunks.append(text_[position:value_start])
                position = line_end
            line_start = line_end + 1
        self.tail = text_[position:]

    def fill(self, values: list[float]) -> bytes:
        parts = [chunk + floatToGoString(v) for chunk, v in zip(self.chunks, values)]
        parts.append(self.tail)
        return "".join(parts).encode("utf-8")


class _SnapshotCollector:
    """A prometheus_client collector reading a fresh snapshot on every collect."""

    def __init__(self, exposition: Exposition, snapshot: Callable[[], np.ndarray]) -> None:
        self._exposition = exposition
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        return self._exposition.collect_from(self._snapshot())

    def describe(self) -> Iterable[Metric]:
        # Names only, so that restricted registries (``name[]``) find this collector.
        return self._exposition.collect_from(np.zeros(self._exposition.layout.size))


def make_registry(exposition: Exposition, snapshot: Callable[[], np.ndarray]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(exposition, snapshot))
    return registry


def render(
    exposition: Exposition,
    snapshot: Callable[[], np.ndarray],
    accept: str | None = None,
    accept_encoding: str | None = None,
    names: Sequence[str] | None = None,
    extra: Callable[[str | None, list[str] | None], bytes] | None = None,
) -> tuple[bytes, list[tuple[str, str]]]:
    """Body and headers of a scrape, negotiated like prometheus_client's own handlers.

    ``names``: the ``name[]`` query parameters, to restrict the output to some series.
    ``extra(accept, names)``: more families in the same format, without ``# EOF``.
    """
    encoder, content_type = choose_encoder(accept or "")
    if names:
        body = encoder(make_registry(exposition, snapshot).restricted_registry(names))
    else:
        body = exposition.encode(snapshot(), encoder, content_type)
    if extra is not None:
        more = extra(accept, list(names) if names else None)
        if more:
            eof = body.endswith(_EOF)
            body = (body[: -len(_EOF)] if eof else body) + more + (_EOF if eof else b"")
    headers = [("Content-Type", content_type)]
    if gzip_accepted(accept_encoding or ""):
        body = gzip.compress(body, compresslevel=6)
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Vary", "Accept, Accept-Encoding"))
    return body, headers


def query_names(params: Mapping[str, Sequence[str]] | None) -> list[str] | None:
    """The ``name[]`` filter of a scrape's query parameters, if any."""
    return list(params.get("name[]", [])) or None if params else None
