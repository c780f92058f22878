"""Added CPU cost per request of the middleware, against the bare app and its peers.

    pip install -e ".[bench]" && python benchmarks/request_overhead.py [--quick]

One request = a POST of one record of 10 features, answered with one prediction,
driven in-process exactly as a server would (ASGI messages in an event loop; a
direct WSGI call for Flask), so the numbers are the middleware's own cost, not
the network's. Every variant runs interleaved with the others, several times;
the table gives medians of the time per request and the *added* cost over the
bare app, then ratios:

- vs a minimal body tap written here (buffer and replay the request, parse both
  bodies with orjson, 4 histogram observes): the floor for reading bodies at all;
- vs starlette_exporter / prometheus-fastapi-instrumentator (ASGI) and
  prometheus-flask-exporter (WSGI), which only time requests, bodies unread.
"""

import argparse
import asyncio
import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
from prometheus_client import CollectorRegistry, Histogram

from boxkite_middleware import Baseline, BoxkiteASGIMiddleware, BoxkiteWSGIMiddleware

FEATURES = [f"f{i}" for i in range(10)]
RECORD = json.dumps({f: 0.1 * i for i, f in enumerate(FEATURES)}).encode()


def _config(directory: Path) -> dict:
    rng = np.random.default_rng(0)
    baseline = Baseline.from_training(
        {f: rng.normal(size=2000) for f in FEATURES}, rng.normal(size=2000)
    )
    baseline.save(directory / "baseline.json")
    return {
        "baseline": str(directory / "baseline.json"),
        "model": "bench",
        "routes": [
            {
                "path": "/predict",
                "features": {f: f"$.{f}" for f in FEATURES},
                "predictions": {"prediction": "$.result"},
            }
        ],
    }


# --- the minimal taps: the least any body-reading middleware must do ----------------------------


class MinimalASGITap:
    def __init__(self, app):
        self.app = app
        registry = CollectorRegistry()
        self.hist = Histogram("tap", "tap", ["name"], registry=registry)
        self.children = [self.hist.labels(str(i)) for i in range(4)]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/predict":
            return await self.app(scope, receive, send)
        chunks, messages = [], []
        while True:
            message = await receive()
            messages.append(message)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        out: list[bytes] = []

        async def replay():
            return messages.pop(0) if messages else await receive()

        async def tap(message):
            if message["type"] == "http.response.body":
                out.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay, tap)
        request, response = orjson.loads(b"".join(chunks)), orjson.loads(b"".join(out))
        values = list(request.values())[:3] + [response["result"]]
        for child, value in zip(self.children, values):
            child.observe(value)


class MinimalWSGITap:
    def __init__(self, app):
        self.app = app
        registry = CollectorRegistry()
        hist = Histogram("tap", "tap", ["name"], registry=registry)
        self.children = [hist.labels(str(i)) for i in range(4)]

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"] != "/predict":
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        out = b"".join(self.app(environ, start_response))
        request, response = orjson.loads(body), orjson.loads(out)
        values = list(request.values())[:3] + [response["result"]]
        for child, value in zip(self.children, values):
            child.observe(value)
        return [out]


# --- the apps ------------------------------------------------------------------------------------


def _score(doc: dict) -> float:
    return sum(doc.values())


def starlette_app():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def predict(request):
        return JSONResponse({"result": _score(await request.json())})

    return Starlette(routes=[Route("/predict", predict, methods=["POST"])])


def fastapi_app():
    from fastapi import FastAPI, Request

    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request):
        return {"result": _score(await request.json())}

    return app


def flask_app():
    from flask import Flask, request

    app = Flask("bench")

    @app.post("/predict")
    def predict():
        return {"result": _score(request.get_json())}

    return app


def asgi_variants(config: dict, factory: Callable) -> dict[str, Callable]:
    from starlette.middleware import Middleware

    def with_middleware(cls, **kwargs):
        app = factory()
        app.user_middleware.insert(0, Middleware(cls, **kwargs))
        return app

    variants = {
        "bare": factory(),
        "minimal tap": MinimalASGITap(factory()),
        "boxkite": with_middleware(BoxkiteASGIMiddleware, config=config),
    }
    try:
        from starlette_exporter import PrometheusMiddleware

        variants["starlette_exporter"] = with_middleware(
            PrometheusMiddleware, app_name=f"b{id(factory)}"
        )
    except ImportError:
        pass
    try:
        from prometheus_fastapi_instrumentator import Instrumentator

        app = factory()
        Instrumentator(registry=CollectorRegistry()).instrument(app)
        variants["fastapi-instrumentator"] = app
    except ImportError:
        pass
    return variants


def wsgi_variants(config: dict) -> dict[str, Callable]:
    bare = flask_app()
    tapped = flask_app()
    ours = flask_app()
    ours.wsgi_app = BoxkiteWSGIMiddleware(ours.wsgi_app, config=config)
    variants = {
        "bare": bare.wsgi_app,
        "minimal tap": MinimalWSGITap(tapped.wsgi_app),
        "boxkite": ours.wsgi_app,
    }
    try:
        from prometheus_flask_exporter import PrometheusMetrics

        peer = flask_app()
        PrometheusMetrics(peer, registry=CollectorRegistry())
        variants["prometheus-flask-exporter"] = peer.wsgi_app
    except ImportError:
        pass
    return variants


# --- driving -------------------------------------------------------------------------------------


def asgi_timer(app, n: int) -> float:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "root_path": "",
        "query_string": b"",
        "server": ("bench", 80),
        "client": ("127.0.0.1", 1),
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(RECORD)).encode()),
        ],
    }

    async def run() -> float:
        async def send(message):
            pass

        start = time.perf_counter()
        for _ in range(n):
            sent = False

            async def receive():
                nonlocal sent
                if sent:
                    await asyncio.sleep(3600)
                sent = True
                return {"type": "http.request", "body": RECORD, "more_body": False}

            await app(dict(scope), receive, send)
        return (time.perf_counter() - start) / n

    # Lifespan-less start-up: Starlette builds its middleware stack on the first call.
    return asyncio.run(run())


def wsgi_timer(app, n: int) -> float:
    base = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/predict",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(RECORD)),
    }

    def start_response(status, headers, exc_info=None):
        return None

    start = time.perf_counter()
    for _ in range(n):
        environ = dict(base)
        environ["wsgi.input"] = io.BytesIO(RECORD)
        result = app(environ, start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return (time.perf_counter() - start) / n


def measure(variants: dict[str, Callable], timer: Callable, n: int, repeats: int):
    for app in variants.values():
        timer(app, 20)  # warm up: build middleware stacks, caches
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, app in variants.items():
            samples[name].append(timer(app, n))
    return {name: statistics.median(v) for name, v in samples.items()}


def report(title: str, times: dict[str, float]) -> None:
    bare = times["bare"]
    added = {name: t - bare for name, t in times.items()}
    print(f"\n{title}: median us per request (added over the bare app)")
    for name, t in times.items():
        extra = "" if name == "bare" else f"  (+{added[name] * 1e6:.1f})"
        print(f"  {name:28} {t * 1e6:8.1f}{extra}")
    ours = added["boxkite"]
    for name in added:
        if name not in ("bare", "boxkite") and added[name] > 0:
            print(f"  ratio boxkite / {name:19} {ours / added[name]:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny N, for smoke tests")
    args = parser.parse_args()
    n, repeats = (50, 2) if args.quick else (3000, 7)
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp))
        report(
            "Starlette (ASGI)",
            measure(asgi_variants(config, starlette_app), asgi_timer, n, repeats),
        )
        report(
            "FastAPI (ASGI)", measure(asgi_variants(config, fastapi_app), asgi_timer, n, repeats)
        )
        report("Flask (direct WSGI call)", measure(wsgi_variants(config), wsgi_timer, n, repeats))


if __name__ == "__main__":
    main()
