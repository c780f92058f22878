"""Drift between two count vectors over the same bins: PSI, binned KS, KL and JS.

One implementation for the offline report, the command line and the tests that
check the Prometheus recording rules, so every place agrees on the numbers.

Smoothing: PSI, KL and JS use shares floored at :data:`EPSILON` and renormalised
to sum to 1, so an empty bin on either side gives a large but finite value
(the Prometheus rules apply the same floor). KS uses the raw shares.

Why a minimum count: with no drift at all, PSI over ``k`` bins between samples of
``n`` and ``m`` values is about ``(k - 1) * (1/n + 1/m)``; 10 bins and 100 values
already give ~0.09. And a KS *p-value* on millions of rows flags differences too
small to matter. So drift is flagged on effect size (PSI, KS), and only once the
current window holds :attr:`DriftThresholds.min_count` values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EPSILON = 1e-4
"""Floor for a bin's share before renormalising (PSI, KL, JS)."""


@dataclass(frozen=True)
class DriftThresholds:
    """When a column counts as drifted.

    ``psi``: 0.1 is the customary "moderate shift", 0.25 "major"; 0.2 sits between.
    ``ks``: largest gap between the two binned CDFs; at ``min_count`` = 500 values
    the 95% noise level of KS is about 0.06, so 0.1 is a real shift.
    """

    psi: float = 0.2
    ks: float = 0.1
    min_count: int = 500


DEFAULT_THRESHOLDS = DriftThresholds()


def _shares(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def smoothed_shares(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    """Shares floored at :data:`EPSILON`, renormalised to sum to 1."""
    floored = np.maximum(_shares(counts), EPSILON)
    return floored / floored.sum()


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index: sum of (a - e) * ln(a / e) over bins."""
    e, a = smoothed_shares(expected), smoothed_shares(actual)
    return float(np.sum((a - e) * np.log(a / e)))


def kl(expected: Sequence[float], actual: Sequence[float]) -> float:
    """KL(expected || actual) in nats: how surprised the baseline is by today."""
    e, a = smoothed_shares(expected), smoothed_shares(actual)
    return float(np.sum(e * np.log(e / a)))


def js(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Jensen-Shannon distance, base 2: symmetric, in [0, 1]."""
    e, a = smoothed_shares(expected), smoothed_shares(actual)
    m = (e + a) / 2
    divergence = 0.5 * np.sum(e * np.log2(e / m)) + 0.5 * np.sum(a * np.log2(a / m))
    return float(math.sqrt(min(max(divergence, 0.0), 1.0)))


def ks(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Binned Kolmogorov-Smirnov: largest gap between the CDFs at the bin edges.

    Equals ``scipy.stats.ks_2samp``'s statistic when every value lies on an edge
    and is otherwise a lower bound of it.
    """
    gap = np.cumsum(_shares(expected)) - np.cumsum(_shares(actual))
    return float(np.max(np.abs(gap))) if gap.size else 0.0


@dataclass(frozen=True)
class Bins:
    """Both distributions of one column, bin by bin, so a report can draw them.

    ``labels`` are the runtime ``le`` bounds (``+Inf`` last) of a numeric column or
    its categories (``__other__`` last). Shares are of the values counted into bins
    (raw, unsmoothed), so each side sums to 1 unless it is empty.
    """

    labels: tuple[str, ...]
    baseline: tuple[float, ...]
    current: tuple[float, ...]
    baseline_n: int
    baseline_missing_share: float


@dataclass(frozen=True)
class DriftRow:
    """Drift of one feature or output. Metrics are None when either side is empty.

    ``bins`` and ``thresholds`` say what the numbers were computed from; they are
    not part of :meth:`DriftReport.to_dicts` (whose keys are a stable contract).
    """

    name: str
    role: str
    kind: str
    n: int
    missing_share: float
    psi: float | None
    ks: float | None
    kl: float | None
    js: float | None
    drifted: bool
    bins: Bins | None = field(default=None, repr=False, compare=False)
    thresholds: DriftThresholds = field(default=DEFAULT_THRESHOLDS, repr=False, compare=False)

    @property
    def unseen_share(self) -> float | None:
        """Current share of ``__other__`` (categories the baseline did not keep)."""
        if self.kind != "categorical" or self.bins is None or not self.bins.labels:
            return None
        return self.bins.current[-1]


ROW_FIELDS = ("name", "role", "kind", "n", "missing_share", "psi", "ks", "kl", "js", "drifted")
"""The keys of :meth:`DriftReport.to_dicts`, in order."""


def compare(
    column: Any,
    counts: Sequence[float] | np.ndarray,
    missing: float = 0,
    thresholds: DriftThresholds | None = None,
) -> DriftRow:
    """Drift of current ``counts`` (over ``column``'s bins) against the baseline column."""
    limits = thresholds or DEFAULT_THRESHOLDS
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != column.counts.shape:
        raise ValueError(f"{column.name}: {counts.size} counts for {column.counts.size} bins")
    n = int(round(counts.sum()))
    rows = n + missing
    missing_share = float(missing / rows) if rows else 0.0
    base_rows = column.n + column.missing
    bins = Bins(
        tuple(column.labels),
        tuple(_shares(column.counts).tolist()),
        tuple(_shares(counts).tolist()),
        column.n,
        column.missing / base_rows if base_rows else 0.0,
    )
    extra = {"bins": bins, "thresholds": limits}
    if n == 0 or column.n == 0:
        return DriftRow(
            column.name,
            column.role,
            column.kind,
            n,
            missing_share,
            None,
            None,
            None,
            None,
            False,
            **extra,
        )
    p = psi(column.counts, counts)
    k = ks(column.counts, counts) if column.kind == "numeric" else None
    drifted = n >= limits.min_count and (p >= limits.psi or (k is not None and k >= limits.ks))
    return DriftRow(
        column.name,
        column.role,
        column.kind,
        n,
        missing_share,
        p,
        k,
        kl(column.counts, counts),
        js(column.counts, counts),
        drifted,
        **extra,
    )


class DriftReport:
    """One :class:`DriftRow` per feature and output; prints as a table."""

    def __init__(self, rows: Iterable[DriftRow], thresholds: DriftThresholds | None = None) -> None:
        self.rows = list(rows)
        self.thresholds = thresholds or (
            self.rows[0].thresholds if self.rows else DEFAULT_THRESHOLDS
        )

    def __iter__(self) -> Iterator[DriftRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> DriftRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    @property
    def drifted(self) -> list[DriftRow]:
        return [r for r in self.rows if r.drifted]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [{key: getattr(r, key) for key in ROW_FIELDS} for r in self.rows]

    def to_html(
        self, title: str = "Drift report", quality: Any = None, source: str | None = None
    ) -> str:
        """One self-contained HTML page (inline SVG and CSS, no network at view time).

        ``quality``: an optional mapping of model-quality figures to show above the
        drift sections (see :func:`~.html_report.render`).
        """
        from .html_report import render

        return render(self, title=title, quality=quality, source=source)

    def __str__(self) -> str:
        header = ("name", "role", "kind", "n", "missing", "psi", "ks", "kl", "js", "drifted")

        def num(x: float | None, fmt: str = ".4f") -> str:
            return "-" if x is None else format(x, fmt)

        table = [header] + [
            (
                r.name,
                r.role,
                r.kind,
                str(r.n),
                f"{r.missing_share:.1%}",
                num(r.psi),
                num(r.ks),
                num(r.kl),
                num(r.js),
                "DRIFT" if r.drifted else "ok",
            )
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines = [
            "  ".join(
                cell.ljust(w) if i < 3 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths))
            )
            for row in table
        ]
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self) -> str:
        return f"<DriftReport {len(self.rows)} rows, {len(self.drifted)} drifted>"
