"""``boxkite-middleware demo``: drift detection end to end, in one command.

Trains the Boxkite tutorial's model (scikit-learn's diabetes data and a linear
regression; a synthetic data set and numpy least squares when scikit-learn is
absent), snapshots the baseline, serves the model behind the WSGI middleware on
a free 127.0.0.1 port, sends baseline-like and then drifted traffic over HTTP,
and prints the drift report of each phase from the server's own ``/metrics``.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .baseline import Baseline
from .drift import DriftReport
from .html_report import write as write_html
from .quality import QualityReport
from .readback import fetch, quality_between, report_between
from .scraping import serve as serve_in_thread
from .wsgi import BoxkiteWSGIMiddleware

SHIFTED = ("bmi", "bp")
FEEDBACK_SHARE = 0.5  # of the predictions whose labels arrive later
NEW_PATIENTS = 80.0  # how much faster the drifted phase's patients progress
PHASE_FILES = ("boxkite-demo-phase1.html", "boxkite-demo-phase2-drifted.html")
"""The HTML report of each phase, written into ``html_dir``."""


def _data() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    try:
        from sklearn.datasets import load_diabetes
    except ImportError:
        rng = np.random.default_rng(7)
        names = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
        x = rng.normal(0, 0.05, (442, len(names)))
        y = 150 + x @ rng.normal(300, 200, len(names)) + rng.normal(0, 40, 442)
        return x, y, names, "a synthetic stand-in for the diabetes data (no scikit-learn)"
    bunch = load_diabetes()
    return bunch.data, bunch.target, list(bunch.feature_names), "scikit-learn's diabetes data"


def _fit(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    try:
        from sklearn.linear_model import LinearRegression
    except ImportError:
        design = np.column_stack([x, np.ones(len(x))])
        weights = np.linalg.lstsq(design, y, rcond=None)[0]
        return lambda rows: rows @ weights[:-1] + weights[-1]
    return LinearRegression().fit(x, y).predict


def model_app(predict: Callable[[np.ndarray], np.ndarray], names: list[str]):
    """The model server: a plain WSGI app with an ordinary predict handler."""

    def app(environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        path = environ.get("PATH_INFO", "")
        try:
            doc = json.loads(environ["wsgi.input"].read(length))
            if path == "/predict":
                out: Any = {"result": float(predict(np.array([[doc[n] for n in names]]))[0])}
            elif path == "/v1/models/diabetes:predict":
                out = {"predictions": predict(np.array(doc["instances"], dtype=float)).tolist()}
            else:
                start_response("404 Not Found", [("Content-Type", "application/json")])
                return [b'{"error": "not found"}']
        except (ValueError, KeyError, TypeError):
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [b'{"error": "bad request"}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(out).encode()]

    return app


def _post(url: str, doc: Any) -> None:
    request = urllib.request.Request(
        url, json.dumps(doc).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


def _send(base: str, rows: np.ndarray, names: list[str]) -> None:
    """Half the rows one by one, the rest in batches of 50 (the kserve-v1 route)."""
    half = len(rows) // 2
    for row in rows[:half]:
        _post(f"{base}/predict", dict(zip(names, row.tolist())))
    for start in range(half, len(rows), 50):
        _post(
            f"{base}/v1/models/diabetes:predict", {"instances": rows[start : start + 50].tolist()}
        )


def _feedback(base: str, predictions: np.ndarray, truth: np.ndarray, share: float) -> int:
    """Labels arriving later for a share of the predictions, as another system would
    post them: what the model answered and what was true, in batches."""
    chosen = np.random.default_rng(2).random(len(truth)) < share
    items = [
        {"prediction": float(p), "truth": float(t)}
        for p, t in zip(predictions[chosen], truth[chosen])
    ]
    for start in range(0, len(items), 100):
        _post(f"{base}/feedback", {"items": items[start : start + 100]})
    return len(items)


def _html(
    report: DriftReport,
    html_dir: str | Path | None,
    phase: int,
    what: str,
    out: Callable[[str], None],
    quality: QualityReport | None = None,
) -> None:
    """Write one phase's HTML report and say where; a blank line closes the phase."""
    if html_dir is not None:
        path = Path(html_dir) / PHASE_FILES[phase]
        write_html(
            report,
            str(path),
            title=f"boxkite demo, phase {phase + 1}: {what}",
            source="the demo server's /metrics, counts of this phase only",
            quality=quality.to_dict() if quality is not None else None,
        )
        out(f"HTML report: {path.resolve()}")
    out("")


def run(
    requests: int = 600,
    serve: bool = False,
    port: int = 0,
    out: Callable[[str], None] = print,
    render: Callable[[DriftReport], str] = str,
    html_dir: str | Path | None = None,
) -> int:
    """Run the demo; returns the exit code (0 when the drifted phase was detected).

    With ``html_dir``, each phase's report is also written there as HTML.
    """
    started = time.perf_counter()
    x, y, names, source = _data()
    predict = _fit(x, y)
    baseline = Baseline.from_training(dict(zip(names, x.T)), predict(x), truth=y)
    with tempfile.TemporaryDirectory(prefix="boxkite-demo-") as tmp:
        baseline.save(Path(tmp) / "baseline.json")
        config = {
            "model": "diabetes",
            "baseline": str(Path(tmp) / "baseline.json"),
            "routes": [
                {
                    "path": "/predict",
                    "features": {n: f"$.{n}" for n in names},
                    "predictions": {"prediction": "$.result"},
                },
                {"path": "/v1/models/diabetes:predict", "preset": "kserve-v1"},
            ],
            "feedback": [
                {
                    "path": "/feedback",
                    "respond": True,  # the model server has no such route: answered here
                    "predictions": {"prediction": "$.items[*].prediction"},
                    "truth": {"prediction": "$.items[*].truth"},
                }
            ],
        }
        app = BoxkiteWSGIMiddleware(model_app(predict, names), config=config)
        server = serve_in_thread(app, "127.0.0.1", port)
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            out(
                f"Trained a linear regression on {source} ({len(x)} rows); baseline of "
                f"{len(names)} features and 1 output."
            )
            out(
                f"Model server with the middleware: {base} (POST /predict, "
                f"POST /v1/models/diabetes:predict; labels at POST /feedback)\n"
            )
            rng = np.random.default_rng(1)
            start = [fetch(f"{base}/metrics")]
            picked = rng.integers(0, len(x), requests)
            normal = x[picked]
            _send(base, normal, names)
            labelled = _feedback(base, predict(normal), y[picked], FEEDBACK_SHARE)
            middle = [fetch(f"{base}/metrics")]
            out(f"Phase 1: {requests} requests drawn like the training data")
            first = report_between(start, middle)
            out(render(first))
            quality = quality_between(start, middle)
            out(f"Quality from {labelled} labels that arrived later:\n{quality}")
            what = f"{requests} requests like the training data"
            _html(first, html_dir, 0, what, out, quality)
            picked = rng.integers(0, len(x), requests)
            drifted = x[picked].copy()
            for name in SHIFTED:
                drifted[:, names.index(name)] += rng.uniform(0.02, 0.05, requests)
            _send(base, drifted, names)
            # The new patients progress faster than the model, trained before them, says.
            labelled = _feedback(base, predict(drifted), y[picked] + NEW_PATIENTS, FEEDBACK_SHARE)
            end = [fetch(f"{base}/metrics")]
            second = report_between(middle, end)
            out(
                f"Phase 2: {requests} requests with {' and '.join(SHIFTED)} shifted up "
                "(new patients)"
            )
            out(render(second))
            quality = quality_between(middle, end)
            out(f"Quality from {labelled} labels that arrived later:\n{quality}")
            what = f"{requests} requests, {' and '.join(SHIFTED)} shifted up"
            _html(second, html_dir, 1, what, out, quality)
            out(f"Metrics for Prometheus: {base}/metrics")
            out(f"Done in {time.perf_counter() - started:.1f} s.")
            if serve:
                out("Serving until Ctrl-C (point Prometheus at the URL above).")
                with contextlib.suppress(KeyboardInterrupt):
                    threading.Event().wait()
            return 0 if {r.name for r in second.drifted} >= set(SHIFTED) else 1
        finally:
            server.shutdown()
            server.server_close()
