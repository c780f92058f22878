"""Model quality from ground truth: the baseline's, and the same numbers from any rows.

Labels arrive after the predictions; a feedback route counts, per output, the
errors (numeric) or the predicted/actual pairs (categorical) into the bins kept
here. From those counts alone come MAE, RMSE and bias, or accuracy and per-class
precision and recall, so the baseline, the offline report, the counters on
``/metrics`` and the Prometheus rules all compute them the same way.

A pair counts when both the prediction and the truth are usable values by the
rules of :mod:`.binning`; otherwise it is *missing*.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client.utils import floatToGoString

from .binning import category_key, to_floats

NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass(frozen=True, eq=False)
class Quality:
    """Counts behind one output's quality.

    Numeric: errors (prediction - truth) per bin of ``edges`` (``le`` semantics, as
    for values), and the sums of e, |e| and e². Categorical: ``confusion[p, a]``
    counts pairs predicted ``classes[p]`` whose truth was ``classes[a]``.
    """

    kind: str
    missing: int = 0
    edges: np.ndarray = field(default_factory=lambda: np.empty(0))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    error_sum: float = 0.0
    abs_sum: float = 0.0
    squared_sum: float = 0.0
    classes: tuple[str, ...] = ()
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))

    @property
    def le(self) -> tuple[str, ...]:
        """Error bucket labels exactly as exposed at runtime, ``+Inf`` last."""
        return tuple(floatToGoString(e) for e in self.edges) + ("+Inf",)

    @property
    def n(self) -> int | float:
        """Pairs counted (missing ones excluded); a float when the counts are estimates
        (``increase()`` over a window extrapolates)."""
        total = self.counts.sum() if self.kind == NUMERIC else self.confusion.sum()
        return int(total) if float(total).is_integer() else float(total)

    def metrics(self) -> dict[str, Any]:
        """MAE, RMSE and bias; or accuracy and per-class precision and recall."""
        n = self.n
        if self.kind == NUMERIC:
            if not n:
                return {"n": 0, "mae": None, "rmse": None, "bias": None}
            return {
                "n": n,
                "mae": self.abs_sum / n,
                "rmse": math.sqrt(self.squared_sum / n),
                "bias": self.error_sum / n,
            }
        diagonal = np.diag(self.confusion).astype(np.float64)
        predicted = self.confusion.sum(axis=1)
        actual = self.confusion.sum(axis=0)
        return {
            "n": n,
            "accuracy": float(diagonal.sum() / n) if n else None,
            "precision": {
                c: float(diagonal[i] / predicted[i]) if predicted[i] else None
                for i, c in enumerate(self.classes)
            },
            "recall": {
                c: float(diagonal[i] / actual[i]) if actual[i] else None
                for i, c in enumerate(self.classes)
            },
        }

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "missing": self.missing}
        if self.kind == NUMERIC:
            out.update(
                edges=[float(e) for e in self.edges],
                counts=[int(c) for c in self.counts],
                error_sum=self.error_sum,
                abs_sum=self.abs_sum,
                squared_sum=self.squared_sum,
            )
        else:
            out.update(classes=list(self.classes), confusion=self.confusion.tolist())
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Quality:
        kind = data["kind"]
        if kind == NUMERIC:
            edges = np.asarray(data["edges"], dtype=np.float64)
            counts = np.asarray(data["counts"], dtype=np.int64)
            if len(counts) != len(edges) + 1 or (np.diff(edges) <= 0).any():
                raise ValueError("quality: needs increasing edges and len(edges) + 1 counts")
            return cls(
                kind,
                int(data["missing"]),
                edges=edges,
                counts=counts,
                error_sum=float(data["error_sum"]),
                abs_sum=float(data["abs_sum"]),
                squared_sum=float(data["squared_sum"]),
            )
        if kind == CATEGORICAL:
            classes = tuple(data["classes"])
            confusion = np.asarray(data["confusion"], dtype=np.int64)
            if confusion.shape != (len(classes), len(classes)):
                raise ValueError("quality: the confusion matrix must be classes x classes")
            return cls(kind, int(data["missing"]), classes=classes, confusion=confusion)
        raise ValueError(f"quality: unknown kind {kind!r}")


def numeric_errors(predictions: Any, truth: Any) -> tuple[np.ndarray, int]:
    """Finite errors (prediction - truth) of the usable pairs, and the missing count."""
    p, t = to_floats(_list(predictions)), to_floats(_list(truth))
    if len(p) != len(t):
        raise ValueError(f"{len(p)} predictions for {len(t)} truths")
    errors = p - t
    usable = np.isfinite(errors)
    return errors[usable], int(len(errors) - usable.sum())


def numeric_quality(errors: np.ndarray, missing: int, edges: np.ndarray) -> Quality:
    counts = np.bincount(np.searchsorted(edges, errors, side="left"), minlength=len(edges) + 1)
    return Quality(
        NUMERIC,
        missing,
        edges=edges,
        counts=counts.astype(np.int64),
        error_sum=float(errors.sum()),
        abs_sum=float(np.abs(errors).sum()),
        squared_sum=float(np.square(errors).sum()),
    )


def categorical_quality(predictions: Any, truth: Any, classes: Sequence[str]) -> Quality:
    """Confusion counts over ``classes`` (the output's categories, ``__other__`` last)."""
    p, t = _list(predictions), _list(truth)
    if len(p) != len(t):
        raise ValueError(f"{len(p)} predictions for {len(t)} truths")
    index = {c: i for i, c in enumerate(classes)}
    other = len(classes) - 1
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    missing = 0
    for predicted, actual in zip(p, t):
        pk, ak = category_key(predicted), category_key(actual)
        if pk is None or ak is None:
            missing += 1
        else:
            confusion[index.get(pk, other), index.get(ak, other)] += 1
    return Quality(CATEGORICAL, missing, classes=tuple(classes), confusion=confusion)


def merge_quality(parts: Sequence[Quality]) -> Quality:
    """The quality of all rows from the qualities of their chunks (same bins)."""
    first = parts[0]
    if first.kind == NUMERIC:
        return Quality(
            NUMERIC,
            sum(q.missing for q in parts),
            edges=first.edges,
            counts=np.sum([q.counts for q in parts], axis=0),
            error_sum=sum(q.error_sum for q in parts),
            abs_sum=sum(q.abs_sum for q in parts),
            squared_sum=sum(q.squared_sum for q in parts),
        )
    return Quality(
        CATEGORICAL,
        sum(q.missing for q in parts),
        classes=first.classes,
        confusion=np.sum([q.confusion for q in parts], axis=0),
    )


def _list(values: Any) -> Sequence[Any]:
    if isinstance(values, np.ndarray):
        return values.reshape(-1) if values.ndim == 2 and 1 in values.shape else values
    if hasattr(values, "to_numpy"):  # a pandas Series
        return values.to_numpy()
    return values if isinstance(values, (list, tuple)) else list(values)


@dataclass(frozen=True)
class QualityRow:
    """Quality of one output on some rows, next to the baseline's."""

    name: str
    kind: str
    n: int
    missing: int
    metrics: dict[str, Any]
    baseline: dict[str, Any]
    quality: Quality | None = None  # the counts behind ``metrics``

    def figures(self) -> dict[str, Any]:
        """Flat figures for display: scalars, per-class ones as ``precision[c]``, and the
        confusion matrix (rows actual, columns predicted)."""
        out: dict[str, Any] = {"n": self.n, "missing": self.missing}
        base: dict[str, Any] = {}
        for source, target in ((self.metrics, out), (self.baseline, base)):
            for key, value in source.items():
                if isinstance(value, dict):
                    target.update({f"{key}[{c}]": v for c, v in value.items()})
                elif key != "n":
                    target[key] = value
        out["baseline"] = base
        q = self.quality
        if q is not None and q.kind == CATEGORICAL:
            out["confusion"] = {"labels": list(q.classes), "matrix": q.confusion.T.tolist()}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "n": self.n,
            "missing": self.missing,
            **{k: v for k, v in self.metrics.items() if k != "n"},
            "baseline": {k: v for k, v in self.baseline.items() if k != "n"},
        }


class QualityReport:
    """Quality per output: ``report["score"].metrics["mae"]``; prints as a table."""

    def __init__(self, rows: Iterable[QualityRow]) -> None:
        self.rows = list(rows)

    def __iter__(self) -> Iterator[QualityRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> QualityRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [row.to_dict() for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        """Output name -> figures, the shape the HTML report's quality block takes."""
        return {row.name: row.figures() for row in self.rows}

    def __str__(self) -> str:
        def num(value: Any) -> str:
            return "-" if value is None else f"{value:.4f}"

        lines = [f"{'output':12} {'kind':11} {'n':>7}  {'measure':9} {'now':>10} {'baseline':>10}"]
        for row in self.rows:
            measures = ("mae", "rmse", "bias") if row.kind == NUMERIC else ("accuracy",)
            for i, measure in enumerate(measures):
                head = f"{row.name:12} {row.kind:11} {row.n:>7}" if i == 0 else " " * 32
                lines.append(
                    f"{head}  {measure:9} {num(row.metrics.get(measure)):>10} "
                    f"{num(row.baseline.get(measure)):>10}"
                )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)
