"""The training-time snapshot that runtime histograms are compared against.

A baseline fixes, per feature and model output, the bins every later count uses:
quantile edges for numbers, the most frequent categories for everything else.
It is one versioned JSON file so the same bins travel from a notebook to every
replica of the model server.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from numbers import Real
from typing import Any

import numpy as np
import orjson
from prometheus_client.utils import floatToGoString

from .binning import bin_floats, category_codes, category_key, to_floats
from .drift import DriftReport, DriftThresholds, compare
from .quality import (
    Quality,
    QualityReport,
    QualityRow,
    categorical_quality,
    numeric_errors,
    numeric_quality,
)
from .schema import FEATURES, OTHER, OUTPUTS

SCHEMA_VERSION = 1
FORMAT = "boxkite-middleware/baseline"
NUMERIC = "numeric"
CATEGORICAL = "categorical"
FEATURE = FEATURES.role
OUTPUT = OUTPUTS.role
DEFAULT_BINS = 10
DEFAULT_MAX_CATEGORIES = 50


class BaselineError(ValueError):
    """A baseline file or training input that cannot be used."""


@dataclass(frozen=True, eq=False)
class Column:
    """The baseline distribution of one feature or model output.

    ``counts`` are per bin, not cumulative: ``len(edges) + 1`` bins for a numeric
    column (bin ``i`` is ``edges[i-1] < v <= edges[i]``), one per category for a
    categorical one, with ``__other__`` last.
    """

    name: str
    role: str
    kind: str
    counts: np.ndarray
    missing: int = 0
    edges: np.ndarray = field(default_factory=lambda: np.empty(0))
    categories: tuple[str, ...] = ()
    sum: float = 0.0
    quality: Quality | None = None  # outputs built with ground truth

    @property
    def n(self) -> int:
        """Values counted into bins (missing ones excluded)."""
        return int(self.counts.sum())

    @property
    def le(self) -> tuple[str, ...]:
        """Bucket labels exactly as exposed at runtime, ``+Inf`` last."""
        return tuple(floatToGoString(e) for e in self.edges) + ("+Inf",)

    @property
    def labels(self) -> tuple[str, ...]:
        """One label per bin: the ``le`` bound or the category."""
        return self.le if self.kind == NUMERIC else self.categories

    def count(self, values: Iterable[Any]) -> tuple[np.ndarray, int, float]:
        """Counts of ``values`` in this column's bins, the missing count and the sum.

        The same rule the middleware applies at serving time.
        """
        if self.kind == NUMERIC:
            return bin_floats(self.edges, to_floats(values))
        values = values if isinstance(values, (list, tuple, np.ndarray)) else list(values)
        index = {c: i for i, c in enumerate(self.categories)}
        codes, missing = category_codes(index, len(self.categories) - 1, values)
        counts = np.bincount(codes[codes >= 0], minlength=len(self.categories))
        return counts.astype(np.int64), missing, 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == NUMERIC:
            out["edges"] = [float(e) for e in self.edges]
            out["sum"] = self.sum
        else:
            out["categories"] = list(self.categories)
        out["counts"] = [int(c) for c in self.counts]
        out["missing"] = self.missing
        if self.quality is not None:
            out["quality"] = self.quality.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], role: str) -> Column:
        name = data["name"]
        kind = data["kind"]
        counts = np.asarray(data["counts"], dtype=np.int64)
        missing = int(data.get("missing", 0))
        if not isinstance(name, str) or not name:
            raise BaselineError("every column needs a non-empty string 'name'")
        if (counts < 0).any() or missing < 0:
            raise BaselineError(f"{role} {name!r}: counts must not be negative")
        if kind == NUMERIC:
            edges = np.asarray(data["edges"], dtype=np.float64)
            if edges.ndim != 1 or not np.isfinite(edges).all() or (np.diff(edges) <= 0).any():
                raise BaselineError(f"{role} {name!r}: edges must be finite and increasing")
            if len(counts) != len(edges) + 1:
                raise BaselineError(f"{role} {name!r}: needs len(edges) + 1 counts")
            return cls(
                name,
                role,
                kind,
                counts,
                missing,
                edges=edges,
                sum=float(data["sum"]),
                quality=_quality(data, role, name),
            )
        if kind == CATEGORICAL:
            categories = tuple(data["categories"])
            if not categories or categories[-1] != OTHER or len(set(categories)) != len(categories):
                raise BaselineError(
                    f"{role} {name!r}: categories must be unique strings ending in {OTHER!r}"
                )
            if not all(isinstance(c, str) for c in categories) or len(counts) != len(categories):
                raise BaselineError(f"{role} {name!r}: needs one count per category")
            quality = _quality(data, role, name)
            if quality is not None and quality.classes != categories:
                raise BaselineError(f"{role} {name!r}: quality classes differ from categories")
            return cls(name, role, kind, counts, missing, categories=categories, quality=quality)
        raise BaselineError(f"{role} {name!r}: unknown kind {kind!r}")


def _quality(data: Mapping[str, Any], role: str, name: str) -> Quality | None:
    if "quality" not in data:
        return None
    try:
        quality = Quality.from_dict(data["quality"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BaselineError(f"{role} {name!r}: {exc}") from None
    if quality.kind != data["kind"]:
        raise BaselineError(f"{role} {name!r}: quality of another kind")
    return quality


def with_quality(column: Column, predictions: Any, truth: Any, bins: int) -> Column:
    """``column`` (an output) with the quality of ``predictions`` against ``truth``."""
    if column.kind == NUMERIC:
        errors, missing = numeric_errors(predictions, truth)
        quality = numeric_quality(errors, missing, quantile_edges(errors, bins))
    else:
        quality = categorical_quality(predictions, truth, column.categories)
    return replace(column, quality=quality)


def _infer_kind(values: np.ndarray) -> str:
    kind = values.dtype.kind
    if kind in "iuf":
        return NUMERIC
    if kind in "bUS":
        return CATEGORICAL
    if kind == "O":
        present = [v for v in values if category_key(v) is not None]
        numbers = all(isinstance(v, Real) and not isinstance(v, (bool, np.bool_)) for v in present)
        return NUMERIC if present and numbers else CATEGORICAL
    raise BaselineError(f"values of dtype {values.dtype} are neither numbers nor categories")


def quantile_edges(finite: np.ndarray, bins: int) -> np.ndarray:
    """Data-valued quantile edges; every bin they make holds training mass.

    Edges are actual training values (``inverted_cdf``), so the bin that closes at an
    edge holds at least that value; an edge at the maximum would leave the open last
    bin empty and is dropped, unless the feature is constant.
    """
    if finite.size == 0:
        return np.empty(0)
    quantiles = np.quantile(finite, np.arange(1, bins) / bins, method="inverted_cdf")
    edges = np.unique(quantiles) + 0.0  # + 0.0 turns -0.0 into 0.0 for the label
    top = finite.max()
    kept = edges[edges < top]
    return kept if kept.size else np.array([top + 0.0])


def _build_column(
    name: str, role: str, values: Any, *, categorical: bool, bins: int, max_categories: int
) -> Column:
    array = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if array.ndim != 1:
        array = array.reshape(-1) if array.ndim == 2 and 1 in array.shape else array
    if array.ndim != 1:
        raise BaselineError(f"{role} {name!r}: expected one value per row, got shape {array.shape}")
    kind = CATEGORICAL if categorical else _infer_kind(array)
    if kind == NUMERIC:
        floats = to_floats(array)
        edges = quantile_edges(floats[np.isfinite(floats)], bins)
        counts, missing, total = bin_floats(edges, floats)
        return Column(name, role, kind, counts, missing, edges=edges, sum=total)
    keys = Counter(category_key(v) for v in array)
    missing = keys.pop(None, 0)
    return categorical_column(name, role, keys, missing, max_categories)


def categorical_column(
    name: str, role: str, tally: Counter[str], missing: int, max_categories: int
) -> Column:
    """The top ``max_categories`` of ``tally`` (ties by name), the rest as ``__other__``."""
    ranked = sorted(
        ((k, c) for k, c in tally.items() if k != OTHER), key=lambda item: (-item[1], item[0])
    )
    kept = ranked[:max_categories]
    other = tally.get(OTHER, 0) + sum(c for _, c in ranked[max_categories:])
    categories = tuple(k for k, _ in kept) + (OTHER,)
    counts = np.array([c for _, c in kept] + [other], dtype=np.int64)
    return Column(name, role, CATEGORICAL, counts, missing, categories=categories)


def _named_columns(data: Any, names: Sequence[str] | None, what: str) -> list[tuple[str, Any]]:
    """(name, values) pairs from a DataFrame, a mapping, pairs, or a 2-D array + names."""
    if hasattr(data, "columns") and hasattr(data, "__getitem__"):  # pandas / polars frame
        return [(str(c), data[c].to_numpy()) for c in data.columns]
    if isinstance(data, Mapping):
        return [(str(k), v) for k, v in data.items()]
    array = data if isinstance(data, np.ndarray) else None
    if array is None:
        items = list(data)
        if items and all(
            isinstance(i, tuple) and len(i) == 2 and isinstance(i[0], str) for i in items
        ):
            return [(name, values) for name, values in items]
        array = np.asarray(items, dtype=object if _ragged(items) else None)
    if array.ndim == 1 and what == "predictions":
        return [("prediction", array)]
    if array.ndim != 2:
        raise BaselineError(f"{what}: expected a DataFrame, a dict or a 2-D array")
    if names is None:
        if what == "predictions" and array.shape[1] == 1:
            return [("prediction", array[:, 0])]
        needs = "output_names" if what == "predictions" else "feature_names"
        raise BaselineError(f"{what}: a 2-D array needs {needs}")
    if len(names) != array.shape[1]:
        raise BaselineError(f"{what}: {len(names)} names for {array.shape[1]} columns")
    return [(str(n), array[:, i]) for i, n in enumerate(names)]


def _ragged(items: list[Any]) -> bool:
    try:
        np.asarray(items)
    except ValueError:
        return True
    return False


class Baseline:
    """Bins and training counts of every feature and output of one model.

    Build it with :meth:`from_training`, ship it with :meth:`save`, and the
    middleware counts live traffic into exactly these bins.
    """

    def __init__(
        self,
        features: Sequence[Column],
        outputs: Sequence[Column] = (),
        rows: int | None = None,
        created: str | None = None,
    ) -> None:
        self.features = tuple(features)
        self.outputs = tuple(outputs)
        names = [c.name for c in self.features]
        if len(set(names)) != len(names):
            raise BaselineError("feature names must be unique")
        if len({c.name for c in self.outputs}) != len(self.outputs):
            raise BaselineError("output names must be unique")
        if rows is None:
            first = (self.features + self.outputs)[:1]
            rows = first[0].n + first[0].missing if first else 0
        self.rows = rows
        self.created = created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.features + self.outputs

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]

    @property
    def output_names(self) -> list[str]:
        return [c.name for c in self.outputs]

    def feature(self, name: str) -> Column:
        return _find(self.features, name, FEATURE)

    def output(self, name: str) -> Column:
        return _find(self.outputs, name, OUTPUT)

    @classmethod
    def from_training(
        cls,
        features: Any,
        predictions: Any = None,
        feature_names: Sequence[str] | None = None,
        categorical: Iterable[str] | None = None,
        bins: int = DEFAULT_BINS,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        output_names: Sequence[str] | None = None,
        truth: Any = None,
    ) -> Baseline:
        """Snapshot training features (and the model's predictions on them).

        ``features``: a DataFrame, a dict of name -> 1-D values, pairs of (name,
        values), or a 2-D array with ``feature_names``. ``predictions``: a 1-D array
        (one output named ``prediction``), a dict of output name -> values, a
        DataFrame, or a 2-D array (a classifier's probabilities) with ``output_names``.
        ``truth``: what was true for those rows, in the same forms as ``predictions``
        (held-out rows are best); the baseline then keeps each output's quality.
        Strings and bools are categorical; numbers stay numeric unless named in
        ``categorical``.
        """
        if bins < 2:
            raise BaselineError("bins must be at least 2")
        if max_categories < 1:
            raise BaselineError("max_categories must be at least 1")
        forced = set(categorical or ())
        feature_cols = _named_columns(features, feature_names, "features")
        output_cols = (
            [] if predictions is None else _named_columns(predictions, output_names, "predictions")
        )
        unknown = forced - {n for n, _ in feature_cols + output_cols}
        if unknown:
            raise BaselineError(f"categorical names not in the data: {sorted(unknown)}")
        lengths = {len(v) for _, v in feature_cols + output_cols}
        if len(lengths) > 1:
            raise BaselineError(f"columns have different lengths: {sorted(lengths)}")

        def build(name: str, role: str, values: Any) -> Column:
            return _build_column(
                name,
                role,
                values,
                categorical=name in forced,
                bins=bins,
                max_categories=max_categories,
            )

        outputs = [build(n, OUTPUT, v) for n, v in output_cols]
        if truth is not None:
            if predictions is None:
                raise BaselineError("truth needs the predictions it is compared with")
            truths = dict(_named_columns(truth, [n for n, _ in output_cols], "predictions"))
            if len(output_cols) == 1 and "prediction" in truths:
                truths = {output_cols[0][0]: truths["prediction"]}
            unknown = set(truths) - {n for n, _ in output_cols}
            if unknown:
                raise BaselineError(f"truth for outputs the predictions lack: {sorted(unknown)}")
            values = dict(output_cols)
            outputs = [
                with_quality(c, values[c.name], truths[c.name], bins) if c.name in truths else c
                for c in outputs
            ]
        return cls(
            [build(n, FEATURE, v) for n, v in feature_cols],
            outputs,
            rows=lengths.pop() if lengths else 0,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "created": self.created,
            "rows": self.rows,
            "features": [c.to_dict() for c in self.features],
            "outputs": [c.to_dict() for c in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Baseline:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BaselineError(f"not a boxkite-middleware baseline (expected format {FORMAT!r})")
        version = data.get("schema_version")
        if not isinstance(version, int) or version < 1:
            raise BaselineError(f"invalid schema_version {version!r}")
        if version > SCHEMA_VERSION:
            raise BaselineError(
                f"schema_version {version} was written by a newer boxkite-middleware; "
                f"this one reads up to {SCHEMA_VERSION}: upgrade the package"
            )
        try:
            return cls(
                [Column.from_dict(c, FEATURE) for c in data["features"]],
                [Column.from_dict(c, OUTPUT) for c in data.get("outputs", [])],
                rows=int(data["rows"]),
                created=data.get("created"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, BaselineError):
                raise
            raise BaselineError(f"corrupt baseline: {type(exc).__name__}: {exc}") from exc

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the baseline as one JSON file (atomically: a reader never sees half)."""
        tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Baseline:
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise BaselineError(f"{os.fspath(path)}: cannot read baseline: {exc.strerror}") from exc
        try:
            return cls.from_dict(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise BaselineError(
                f"{os.fspath(path)}: corrupt baseline (invalid JSON: {exc})"
            ) from exc
        except BaselineError as exc:
            raise BaselineError(f"{os.fspath(path)}: {exc}") from exc

    def drift(
        self,
        features: Any,
        predictions: Any = None,
        thresholds: DriftThresholds | None = None,
    ) -> DriftReport:
        """Compare current data (same forms as :meth:`from_training`) with this baseline.

        A bare 2-D array of features may omit names: the baseline's order is assumed.
        Columns the current data does not have are left out of the report.
        """
        current: list[tuple[Column, Any]] = []
        for name, values in _named_columns(features, self.feature_names, "features"):
            current.append((self.feature(name), values))
        if predictions is not None:
            names = self.output_names if len(self.outputs) != 1 else None
            for name, values in _named_columns(predictions, names, "predictions"):
                if len(self.outputs) == 1 and name == "prediction":
                    name = self.outputs[0].name
                current.append((self.output(name), values))
        rows = []
        for column, values in current:
            counts, missing, _ = column.count(values)
            rows.append(compare(column, counts, missing, thresholds))
        return DriftReport(rows)

    def quality(self, truth: Any, predictions: Any) -> QualityReport:
        """Quality of ``predictions`` against ``truth`` (same forms as for
        :meth:`from_training`), per output, next to the baseline's own."""
        names = self.output_names if len(self.outputs) != 1 else None
        truths = dict(_named_columns(truth, names, "predictions"))
        rows = []
        for name, values in _named_columns(predictions, names, "predictions"):
            if len(self.outputs) == 1 and name == "prediction":
                name = self.outputs[0].name
            column = self.output(name)
            true = truths.get(name, truths.get("prediction") if len(self.outputs) == 1 else None)
            if true is None:
                continue
            if column.kind == NUMERIC:
                edges = column.quality.edges if column.quality is not None else np.empty(0)
                now = numeric_quality(*numeric_errors(values, true), edges)
            else:
                now = categorical_quality(values, true, column.categories)
            base = column.quality.metrics() if column.quality is not None else {}
            rows.append(QualityRow(name, column.kind, now.n, now.missing, now.metrics(), base, now))
        return QualityReport(rows)


def _find(columns: Sequence[Column], name: str, role: str) -> Column:
    for column in columns:
        if column.name == name:
            return column
    known = ", ".join(c.name for c in columns) or "none"
    raise BaselineError(f"{role} {name!r} is not in the baseline (it has: {known})")
