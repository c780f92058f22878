"""How many series one replica exports, from its baselines and routes.

Prometheus's cost grows with the series it scrapes (memory, disk) and the rules' with
the series they read (docs/rules-scaling.md): this is the number to multiply by the
replicas. ``boxkite-middleware check CONFIG`` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .baseline import NUMERIC, Baseline, Column
from .config import Config
from .schema import OTHER, REASONS

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
    routes: int  # observed requests, rows and errors per reason, per model and route
    widest: tuple[str, int] = ("", 0)  # the column with the most series, and how many

    @property
    def total(self) -> int:
        return self.columns + self.baseline + self.routes

    def __str__(self) -> str:
        return (
            f"{self.total:,} series per replica (features and outputs {self.columns:,}, "
            f"baseline {self.baseline:,}, routes {self.routes:,})"
        )


def series_per_replica(
    models: Baseline | Mapping[str, Baseline],
    routes: int | Sequence[str | tuple[str, str]] = 0,
) -> SeriesCount:
    """Series of boxkite's families on one replica's ``/metrics`` (a registry served
    alongside, such as prometheus_client's default one, comes on top).

    ``models``: one baseline, or model name -> baseline. ``routes``: route paths (each
    counted for every model), (model, path) pairs, or their number; each distinct pair
    carries request, row and per-reason error counters.
    """
    named = {"default": models} if isinstance(models, Baseline) else dict(models)
    if isinstance(routes, int):
        pairs = routes
    else:
        pairs = len({r if isinstance(r, tuple) else (m, r) for r in routes for m in named})
    per_column = [
        (f"{c.role} {c.name}" + (f" of model {m}" if len(named) > 1 else ""), column_series(c))
        for m, baseline in named.items()
        for c in baseline.columns
    ]
    columns = sum(n for _, n in per_column)
    return SeriesCount(
        columns=columns,
        # + boxkite_baseline_rows per model (not for the stand-in of unknown models)
        baseline=columns + sum(1 for b in named.values() if b.columns),
        routes=pairs * (2 + len(REASONS)),
        widest=max(per_column, key=lambda p: p[1], default=("", 0)),
    )


def series_of_config(config: Config) -> SeriesCount:
    """:func:`series_per_replica` for a loaded config, with the pairs the middleware
    counts: a route naming its model counts for it; a route whose path picks the model
    counts for every model, and for ``__other__`` (requests naming no configured model)."""
    pairs: list[tuple[str, str]] = []
    for route in config.routes:
        for model in [route.model] if route.model else list(config.models) + [OTHER]:
            pairs.append((model, route.path))
    models = dict(config.models)
    if any(route.model is None for route in config.routes):
        models[OTHER] = Baseline([])
    return series_per_replica(models, pairs)
