"""Boxkite's ``ModelMonitoringService``, so Boxkite tutorial code runs after one import change.

Boxkite wrote its baseline as Prometheus text and kept live metrics in a
registry of its own; here both sides are a :class:`~.monitor.Monitor`, so a
service and the middleware produce the same series.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .baseline import FEATURE, OUTPUT, Baseline
from .exposition import query_names
from .monitor import Monitor

DEFAULT_BASELINE_PATH = "./baseline.json"
_ROUTE = "log_prediction"  # the `route` label of the requests counted here


class ModelMonitoringService:
    """Log predictions from handler code and export them for Prometheus.

    Usage, as in Boxkite::

        ModelMonitoringService.export_text(features=zip(names, X_train.T), path="baseline.json")
        monitor = ModelMonitoringService(baseline="baseline.json")
        pid = monitor.log_prediction(request_body=body, features=row, output=score)
        body, content_type = monitor.export_http(params=args, headers=headers)

    ``features`` given to :meth:`log_prediction` are values in the baseline's
    feature order, like Boxkite's feature vector.
    """

    def __init__(
        self,
        baseline: str | os.PathLike[str] | Baseline | None = None,
        model: str = "default",
        histogram_file: str | os.PathLike[str] | None = None,
        multiprocess_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        source = baseline if baseline is not None else histogram_file
        self.monitor = Monitor(
            source if source is not None else DEFAULT_BASELINE_PATH,
            model=model,
            routes=(_ROUTE,),
            multiprocess_dir=multiprocess_dir,
        )
        baseline = self.monitor.baseline
        self._features = [self.monitor.column_index(FEATURE, n) for n in baseline.feature_names]
        # Boxkite had one output: the first of the baseline's, if it has any.
        outputs = baseline.output_names
        self._output = self.monitor.column_index(OUTPUT, outputs[0]) if outputs else None
        self._route = self.monitor.route_index(_ROUTE)

    def log_prediction(self, request_body: Any, features: Sequence[Any], output: Any) -> str:
        """Count one prediction; returns an id for it, as Boxkite did.

        ``request_body`` is accepted for compatibility and never stored: raw request
        data does not belong in metrics.
        """
        del request_body
        if len(features) != len(self._features):
            raise ValueError(
                f"got {len(features)} features, the baseline has {len(self._features)}"
            )
        columns: list[tuple[int, Sequence[Any]]] = [
            (i, (v,)) for i, v in zip(self._features, features)
        ]
        if self._output is not None:
            columns.append((self._output, (output,)))
        self.monitor.record(self._route, 1, columns)
        return str(uuid.uuid4())

    def export_http(
        self,
        params: Mapping[str, Sequence[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[bytes, str]:
        """(body, content type) for a ``/metrics`` handler; honours ``Accept`` and ``name[]``."""
        accept = None
        if headers:
            accept = next((v for k, v in headers.items() if k.lower() == "accept"), None)
        body, response_headers = self.monitor.render(accept, None, query_names(params))
        return body, dict(response_headers)["Content-Type"]

    @classmethod
    def export_text(
        cls,
        features: Iterable[tuple[str, Sequence[Any]]],
        inference: Sequence[Any] | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> Baseline:
        """Build a baseline from (name, values) columns and predictions, and save it."""
        predictions = None if inference is None or len(inference) == 0 else list(inference)
        baseline = Baseline.from_training(list(features), predictions)
        baseline.save(path or DEFAULT_BASELINE_PATH)
        return baseline
