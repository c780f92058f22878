"""The framework-free core: a baseline, its counts, and their exposition.

The WSGI and ASGI middleware, the Boxkite-compatible service and offline users
all count through a :class:`Monitor`; none of them keeps counts of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .baseline import FEATURE, NUMERIC, OUTPUT, Baseline, Column
from .counting import Layout, MemoryStore, Recorder, Store
from .drift import DriftReport, DriftThresholds, compare
from .exposition import Exposition, make_registry, render
from .multiprocess import FileStore, env_multiprocess_dir
from .schema import REASONS, Reason


class Monitor:
    """Counts feature and prediction values into a baseline's bins.

    >>> monitor = Monitor("baseline.json", model="diabetes")
    >>> monitor.observe({"age": 0.03, "bmi": -0.01}, {"prediction": 151.2})
    >>> body, headers = monitor.render()

    ``models`` (name -> baseline) replaces ``baseline`` and ``model`` for an app
    serving several models: their counts share one store, and every call that
    names a column takes the model (the first one by default). ``routes`` are the
    route paths that count requests, for every model, or (model, path) pairs;
    ``feedback`` the (model, output) pairs that ground truth is counted for.

    With ``PROMETHEUS_MULTIPROC_DIR`` set (or ``multiprocess_dir`` given), every
    process's :meth:`render` reports the totals of all processes, past and present;
    ``shared=False`` keeps the counts in this process whatever the environment.
    """

    def __init__(
        self,
        baseline: Baseline | str | os.PathLike[str] | None = None,
        model: str = "default",
        routes: Sequence[str | tuple[str, str]] = (),
        multiprocess_dir: str | os.PathLike[str] | None = None,
        models: Mapping[str, Baseline | str | os.PathLike[str]] | None = None,
        shared: bool = True,
        feedback: Sequence[tuple[str, str]] = (),
    ) -> None:
        if (models is None) == (baseline is None):
            raise ValueError("give either a baseline (and model name) or models")
        named = models if models is not None else {model: baseline}
        self.baselines = {
            name: b if isinstance(b, Baseline) else Baseline.load(b) for name, b in named.items()
        }
        self.model = next(iter(self.baselines))
        pairs: list[tuple[str, str]] = []
        for r in routes:
            pairs += [r] if isinstance(r, tuple) else [(name, r) for name in self.baselines]
        # A path configured once per method is one `route` label: one set of counters.
        pairs = list(dict.fromkeys(pairs))
        self._layout = Layout(self.baselines, pairs, feedback)
        self._route_index = {pair: i for i, pair in enumerate(pairs)}
        directory = (multiprocess_dir or env_multiprocess_dir()) if shared else None
        store: Store = (
            FileStore(directory, self._layout.key, self._layout.size)
            if directory
            else MemoryStore(self._layout.size)
        )
        self._recorder = Recorder(self._layout, store)
        self._exposition = Exposition(self._layout)
        self.registry = make_registry(self._exposition, self._recorder.snapshot)

    @property
    def baseline(self) -> Baseline:
        """The baseline of the first (usually the only) model."""
        return self.baselines[self.model]

    @property
    def key(self) -> str:
        """What identifies this layout of counts, e.g. in multi-process file names."""
        return self._layout.key

    @property
    def store_file(self) -> str | None:
        """This process's counts file in multi-process mode (None in memory)."""
        return getattr(self._recorder.store, "name", None)

    def column_index(self, role: str, name: str, model: str | None = None) -> int:
        """Index of a feature or output, for :meth:`record`; KeyError if unknown."""
        return self._layout.column_index(model or self.model, role, name)

    def column(self, index: int) -> tuple[str, Column]:
        """The model and baseline column behind a :meth:`column_index`."""
        slots = self._layout.columns[index]
        return slots.model, slots.column

    def route_index(self, route: str, model: str | None = None) -> int:
        """Index of a (model, route) pair given at construction, for :meth:`record`."""
        return self._route_index[(model or self.model, route)]

    def record(self, route: int | None, rows: int, columns: Sequence[tuple[int, Any]]) -> None:
        """Count ``rows`` rows of extracted columns (index, one value per row); ``route``
        None counts values only, with no request or row counters."""
        self._recorder.observe(route, rows, columns)

    def quality_index(self, output: str, model: str | None = None) -> int:
        """Index of an output given ``feedback`` at construction, for :meth:`record_feedback`."""
        return self._layout.quality_index(model or self.model, output)

    def record_feedback(
        self, route: int, rows: int, outputs: Sequence[tuple[int, Sequence[Any], Sequence[Any]]]
    ) -> None:
        """Count ground truth: per output (quality index), the predictions and the truths."""
        self._recorder.feedback(route, rows, outputs)

    def compile_counter(self, columns: Sequence[tuple[int, str]]) -> Callable[[Any, Any], None]:
        """A generated ``count(buf, doc)`` for columns read by top-level key, for
        :meth:`record_compiled` (the single-record hot path)."""
        return self._layout.compile_counter(columns)

    def record_compiled(
        self, route: int, counts: Sequence[tuple[Callable[[Any, Any], None], Any]]
    ) -> None:
        """Count one row with compiled counters, each given its parsed document."""
        self._recorder.observe_compiled(route, counts)

    def count_error(self, route: int, reason: Reason) -> None:
        """Count a request to ``route`` whose body could not be observed."""
        self._recorder.error(route, reason)

    def _pairs(
        self, features: Mapping[str, Any] | None, predictions: Any, model: str | None
    ) -> list[tuple[int, Any]]:
        model = model or self.model
        outputs = self.baselines[model].output_names
        pairs = [(self._index(FEATURE, n, model), v) for n, v in (features or {}).items()]
        if predictions is not None:
            if not isinstance(predictions, Mapping):
                if len(outputs) != 1:
                    raise ValueError("the baseline has several outputs: pass a dict of them")
                predictions = {outputs[0]: predictions}
            pairs += [(self._index(OUTPUT, n, model), v) for n, v in predictions.items()]
        return pairs

    def _index(self, role: str, name: str, model: str) -> int:
        try:
            return self._layout.column_index(model, role, name)
        except KeyError:
            raise ValueError(f"{role} {name!r} is not in the baseline of {model}") from None

    def observe(
        self,
        features: Mapping[str, Any] | None = None,
        predictions: Any = None,
        model: str | None = None,
    ) -> None:
        """Count one row: feature name -> value, and the prediction(s) for it."""
        pairs = self._pairs(features, predictions, model)
        self._recorder.observe(None, 1, [(i, (v,)) for i, v in pairs])

    def observe_batch(
        self,
        features: Mapping[str, Sequence[Any]] | None = None,
        predictions: Any = None,
        model: str | None = None,
    ) -> None:
        """Count many rows: feature name -> one value per row (likewise predictions)."""
        pairs = self._pairs(features, predictions, model)
        lengths = {len(v) for _, v in pairs}
        if len(lengths) > 1:
            raise ValueError(f"columns of one batch differ in length: {sorted(lengths)}")
        self._recorder.observe(None, lengths.pop() if lengths else 0, pairs)

    def snapshot(self) -> np.ndarray:
        """Every count, over all processes (for tests and tools that read raw slots)."""
        return self._recorder.snapshot()

    def describe_counts(self, values: np.ndarray) -> list[str]:
        """One line per non-zero slot of ``values`` (e.g. a difference of snapshots)."""
        lines = []
        for s in self._layout.columns:
            column, name = s.column, f"{s.model}: {s.column.role} {s.column.name}"
            labels = column.le if column.kind == NUMERIC else column.categories
            for i, label in enumerate(labels):
                if values[s.start + i]:
                    what = f"le={label}" if column.kind == NUMERIC else f"category={label}"
                    lines.append(f"{name} {what} +{values[s.start + i]:g}")
            if values[s.missing]:
                lines.append(f"{name} missing +{values[s.missing]:g}")
        for i, (model, route) in enumerate(self._layout.routes):
            requests, rows, errors = self._layout.route_slots(i)
            if values[requests]:
                lines.append(f"{model}: route {route} requests +{values[requests]:g}")
            if values[rows]:
                lines.append(f"{model}: route {route} rows +{values[rows]:g}")
            for reason in REASONS:
                if values[errors + reason]:
                    lines.append(
                        f"{model}: route {route} error reason={reason.label} "
                        f"+{values[errors + reason]:g}"
                    )
        return lines

    def counts(self, model: str | None = None) -> dict[tuple[str, str], tuple[np.ndarray, float]]:
        """Current (role, name) -> (counts per bin, missing) of a model, over all processes."""
        model = model or self.model
        values = self._recorder.snapshot()
        return {
            (s.column.role, s.column.name): (values[s.start : s.start + s.bins], values[s.missing])
            for s in self._layout.columns
            if s.model == model
        }

    def drift(
        self, thresholds: DriftThresholds | None = None, model: str | None = None
    ) -> DriftReport:
        """Drift of everything counted so far against the baseline."""
        model = model or self.model
        current = self.counts(model)
        return DriftReport(
            compare(c, *current[(c.role, c.name)], thresholds)
            for c in self.baselines[model].columns
        )

    def render(
        self,
        accept: str | None = None,
        accept_encoding: str | None = None,
        names: Sequence[str] | None = None,
        extra: Callable[[str | None, list[str] | None], bytes] | None = None,
    ) -> tuple[bytes, list[tuple[str, str]]]:
        """The ``/metrics`` response body and headers for these request headers;
        ``extra(accept, names)`` adds families of others in the same format."""
        return render(
            self._exposition, self._recorder.snapshot, accept, accept_encoding, names, extra
        )
