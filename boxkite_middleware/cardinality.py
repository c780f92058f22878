"""How many series one replica exports, from its baselines and routes.

Prometheus's cost grows with the series it scrapes (memory, disk) and the rules' with
the series they read (docs/rules-scaling.md): this is the number to multiply by the
replicas. ``boxkite-middleware check CONFIG`` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

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


def quality_series(column: Column) -> tuple[int, int]:
    """(runtime, baseline) series of an output that feedback routes bring labels for.

    Numeric: the error histogram (a bucket per ``le``, ``_count``, ``_sum``), the |e|,
    e² and max(e, 0) sums and the missing counter; the baseline's error histogram and
    its MAE, RMSE and bias. Categorical: a counter per (predicted, actual) pair of
    categories and the missing counter; the baseline's accuracy and each defined
    per-class precision and recall.
    """
    quality = column.quality
    if column.kind == NUMERIC:
        buckets = len(quality.le) if quality is not None else 0
        return buckets + 6, (buckets + 5 if quality is not None else 0)
    runtime = len(column.categories) ** 2 + 1
    if quality is None:
        return runtime, 0
    metrics = quality.metrics()
    defined = sum(v is not None for m in ("precision", "recall") for v in metrics[m].values())
    return runtime, 1 + defined


@dataclass(frozen=True)
class SeriesCount:
    columns: int  # runtime series of the features and outputs
    baseline: int  # boxkite_baseline_* series (the same for every replica)
    routes: int  # observed requests, rows and errors per reason, per model and route
    widest: tuple[str, int] = ("", 0)  # the column with the most series, and how many
    quality: int = 0  # ground truth (feedback) series, runtime and baseline

    @property
    def total(self) -> int:
        return self.columns + self.baseline + self.routes + self.quality

    def __str__(self) -> str:
        quality = f", ground truth {self.quality:,}" if self.quality else ""
        return (
            f"{self.total:,} series per replica (features and outputs {self.columns:,}, "
            f"baseline {self.baseline:,}, routes {self.routes:,}{quality})"
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
    every = [*config.routes, *config.feedback]
    pairs: list[tuple[str, str]] = []
    for route in every:
        for model in [route.model] if route.model else list(config.models) + [OTHER]:
            pairs.append((model, route.path))
    models = dict(config.models)
    if any(route.model is None for route in every):
        models[OTHER] = Baseline([])
    count = series_per_replica(models, pairs)
    labelled = {
        (model, output)
        for route in config.feedback
        for model in ([route.model] if route.model else config.models)
        for output in route.predictions
    }
    quality = sum(sum(quality_series(config.models[m].output(o))) for m, o in sorted(labelled))
    return replace(count, quality=quality)
