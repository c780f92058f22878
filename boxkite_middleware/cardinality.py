"""How many series one replica exports, from its baseline and routes.

Prometheus's cost grows with the series it scrapes (memory, disk) and the rules' with
the series they read (docs/rules-scaling.md): this is the number to multiply by the
replicas. ``boxkite-middleware check CONFIG`` prints it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .baseline import NUMERIC, Baseline, Column
from .counting import ERROR_REASONS

GUIDANCE_ABOVE = 5_000
"""Series per replica above which ``check`` points to the guidance."""


def column_series(column: Column) -> int:
    """Runtime series of one feature or output; its baseline series are as many.

    Numeric: a bucket per ``le`` (the baseline's bins, ``+Inf`` included), ``_count``,
    ``_sum`` and the missing counter. Categorical: a counter per category (``__other__``
    included) and the missing counter.
    """
    if column.kind == NUMERIC:
        return len(column.le) + 3
    return len(column.categories) + 1


@dataclass(frozen=True)
class SeriesCount:
    columns: int  # runtime series of the features and outputs
    baseline: int  # boxkite_baseline_* series (the same for every replica)
    routes: int  # observed requests, rows and errors per reason, per route
    widest: tuple[str, int] = ("", 0)  # the column with the most series, and how many

    @property
    def total(self) -> int:
        return self.columns + self.baseline + self.routes

    def __str__(self) -> str:
        return (
            f"{self.total:,} series per replica (features and outputs {self.columns:,}, "
            f"baseline {self.baseline:,}, routes {self.routes:,})"
        )


def series_per_replica(baseline: Baseline, routes: int | Sequence[str] = 0) -> SeriesCount:
    """Series on one replica's ``/metrics`` (boxkite's families; any other registry
    served alongside, such as prometheus_client's default one, comes on top).

    ``routes``: the configured route paths (or their number); each distinct path
    carries its own request, row and per-reason error counters.
    """
    n_routes = routes if isinstance(routes, int) else len(set(routes))
    per_column = [(f"{c.role} {c.name}", column_series(c)) for c in baseline.columns]
    columns = sum(n for _, n in per_column)
    return SeriesCount(
        columns=columns,
        baseline=columns + 1,  # + boxkite_baseline_rows
        routes=n_routes * (2 + len(ERROR_REASONS)),
        widest=max(per_column, key=lambda p: p[1], default=("", 0)),
    )
