"""The framework-free core: a baseline, its counts, and their exposition.

The WSGI and ASGI middleware, the Boxkite-compatible service and offline users
all count through a :class:`Monitor`; none of them keeps counts of its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .baseline import FEATURE, OUTPUT, Baseline
from .counting import Layout, MemoryStore, Recorder, Store
from .drift import DriftReport, DriftThresholds, compare
from .exposition import Exposition, make_registry, render
from .multiprocess import FileStore, env_multiprocess_dir


class Monitor:
    """Counts feature and prediction values into a baseline's bins.

    >>> monitor = Monitor("baseline.json", model="diabetes")
    >>> monitor.observe({"age": 0.03, "bmi": -0.01}, {"prediction": 151.2})
    >>> body, headers = monitor.render()

    With ``PROMETHEUS_MULTIPROC_DIR`` set (or ``multiprocess_dir`` given), every
    process's :meth:`render` reports the totals of all processes, past and present.
    """

    def __init__(
        self,
        baseline: Baseline | str | os.PathLike[str],
        model: str = "default",
        routes: Sequence[str] = (),
        multiprocess_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.baseline = baseline if isinstance(baseline, Baseline) else Baseline.load(baseline)
        self.model = model
        self.layout = Layout(self.baseline, model, routes)
        directory = multiprocess_dir or env_multiprocess_dir()
        store: Store = (
            FileStore(directory, self.layout.key, self.layout.size)
            if directory
            else MemoryStore(self.layout.size)
        )
        self.recorder = Recorder(self.layout, store)
        self.exposition = Exposition(self.layout)
        self.registry = make_registry(self.exposition, self.recorder.snapshot)
        self._features = {
            n: self.layout.column_index(FEATURE, n) for n in self.baseline.feature_names
        }
        self._outputs = {n: self.layout.column_index(OUTPUT, n) for n in self.baseline.output_names}

    def _pairs(self, features: Mapping[str, Any] | None, predictions: Any) -> list[tuple[int, Any]]:
        pairs = [(_index(self._features, n, FEATURE), v) for n, v in (features or {}).items()]
        if predictions is not None:
            if not isinstance(predictions, Mapping):
                if len(self._outputs) != 1:
                    raise ValueError("the baseline has several outputs: pass a dict of them")
                predictions = {next(iter(self._outputs)): predictions}
            pairs += [(_index(self._outputs, n, OUTPUT), v) for n, v in predictions.items()]
        return pairs

    def observe(self, features: Mapping[str, Any] | None = None, predictions: Any = None) -> None:
        """Count one row: feature name -> value, and the prediction(s) for it."""
        self.recorder.observe(None, 1, [(i, (v,)) for i, v in self._pairs(features, predictions)])

    def observe_batch(
        self, features: Mapping[str, Sequence[Any]] | None = None, predictions: Any = None
    ) -> None:
        """Count many rows: feature name -> one value per row (likewise predictions)."""
        pairs = self._pairs(features, predictions)
        lengths = {len(v) for _, v in pairs}
        if len(lengths) > 1:
            raise ValueError(f"columns of one batch differ in length: {sorted(lengths)}")
        self.recorder.observe(None, lengths.pop() if lengths else 0, pairs)

    def counts(self) -> dict[tuple[str, str], tuple[np.ndarray, float]]:
        """Current (role, name) -> (counts per bin, missing), over all processes."""
        values = self.recorder.snapshot()
        return {
            (s.column.role, s.column.name): (values[s.start : s.start + s.bins], values[s.missing])
            for s in self.layout.columns
        }

    def drift(self, thresholds: DriftThresholds | None = None) -> DriftReport:
        """Drift of everything counted so far against the baseline."""
        current = self.counts()
        return DriftReport(
            compare(c, *current[(c.role, c.name)], thresholds) for c in self.baseline.columns
        )

    def render(
        self,
        accept: str | None = None,
        accept_encoding: str | None = None,
        names: Sequence[str] | None = None,
    ) -> tuple[bytes, list[tuple[str, str]]]:
        """The ``/metrics`` response body and headers for these request headers."""
        return render(self.exposition, self.recorder.snapshot, accept, accept_encoding, names)


def _index(indexes: Mapping[str, int], name: str, role: str) -> int:
    try:
        return indexes[name]
    except KeyError:
        raise ValueError(f"{role} {name!r} is not in the baseline") from None
