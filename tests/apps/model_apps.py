"""One toy model server written for several frameworks, with and without the middleware.

Every framework routes every path to the same handler, so a test can compare
frameworks and the middleware's effect request by request. The handler reads the
body through the framework's own API (Flask ``get_data``, Starlette ``body()``,
Django ``request.body``), which is what the pass-through guarantees are about.
"""

import json
from typing import Any

from boxkite_middleware import BoxkiteASGIMiddleware, BoxkiteWSGIMiddleware

FEATURES = ("age", "bmi", "region")


def model(row: dict[str, Any]) -> float:
    age, bmi = row.get("age"), row.get("bmi")
    age = age if isinstance(age, (int, float)) and not isinstance(age, bool) else 0.0
    bmi = bmi if isinstance(bmi, (int, float)) and not isinstance(bmi, bool) else 0.0
    return round(2.0 * age + bmi, 6)


def _rows_from_v2(doc: dict) -> list[dict]:
    tensor = doc["inputs"][0]
    data, width = tensor["data"], len(FEATURES)
    if data and isinstance(data[0], list):
        return [dict(zip(FEATURES, r)) for r in data]
    return [dict(zip(FEATURES, data[i : i + width])) for i in range(0, len(data), width)]


def _rows(doc: Any, key: str) -> list[dict]:
    rows = doc[key]
    return [r if isinstance(r, dict) else dict(zip(FEATURES, r)) for r in rows]


def handle(method: str, path: str, body: bytes, content_type: str | None):
    """(status, content type, list of body chunks) for a request."""
    if path == "/raise":
        raise RuntimeError("handler failed")
    if path == "/echo":
        return 200, content_type or "application/octet-stream", [body]
    if path.startswith("/status/"):
        status = int(path.rsplit("/", 1)[1])
        body = [] if status in (204, 304) else [b'{"result": 1.0}']  # no body allowed
        return status, "application/json", body
    if method in ("GET", "HEAD"):
        return 200, "text/plain; charset=utf-8", [b"hello"]
    try:
        doc = json.loads(body)
    except ValueError:
        return 400, "application/json", [b'{"error": "invalid json"}']
    try:
        if path == "/predict":
            out: Any = {"result": model(doc)}
        elif path == "/stream":
            result = json.dumps(model(doc)).encode()
            return 200, "application/json", [b'{"result": ', result, b"}"]
        elif path == "/batch":
            out = {"predictions": [model(r) for r in doc["instances"]]}
        elif path == "/flat":
            out = {"prediction": model(doc)}
        elif path.startswith("/v1/models/"):
            out = {"predictions": [model(r) for r in _rows(doc, "instances")]}
        elif path.startswith("/v2/models/"):
            preds = [model(r) for r in _rows_from_v2(doc)]
            out = {
                "model_name": "m",
                "outputs": [
                    {"name": "predict", "shape": [len(preds)], "datatype": "FP64", "data": preds}
                ],
            }
        elif path == "/invocations":
            if "dataframe_split" in doc:
                split = doc["dataframe_split"]
                rows = [dict(zip(split["columns"], r)) for r in split["data"]]
            else:
                key = next(k for k in ("dataframe_records", "instances", "inputs") if k in doc)
                rows = _rows(doc, key)
            out = {"predictions": [model(r) for r in rows]}
        else:
            return 404, "application/json", [b'{"error": "not found"}']
    except (KeyError, TypeError, IndexError, AttributeError):
        return 422, "application/json", [b'{"error": "bad shape"}']
    return 200, "application/json", [json.dumps(out).encode()]


# --- WSGI -------------------------------------------------------------------------------------


def wsgi_app(config=None):
    def app(environ, start_response):
        method = environ["REQUEST_METHOD"]
        length = environ.get("CONTENT_LENGTH")
        stream = environ["wsgi.input"]
        body = stream.read(int(length)) if length else stream.read()
        status, content_type, chunks = handle(
            method, environ["PATH_INFO"], body, environ.get("CONTENT_TYPE")
        )
        start_response(f"{status} X", [("Content-Type", content_type)])
        return [] if method == "HEAD" else chunks

    return BoxkiteWSGIMiddleware(app, config=config) if config else app


def flask_app(config=None):
    from flask import Flask, Response, request

    app = Flask("model")

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT"])
    @app.route("/<path:path>", methods=["GET", "POST", "PUT"])
    def catch_all(path):
        status, content_type, chunks = handle(
            request.method, "/" + path, request.get_data(), request.content_type
        )
        if len(chunks) > 1:
            return Response(iter(chunks), status=status, content_type=content_type)
        return Response(b"".join(chunks), status=status, content_type=content_type)

    if config:
        app.wsgi_app = BoxkiteWSGIMiddleware(app.wsgi_app, config=config)
    return app


_django_ready = False


def django_app(config=None):
    global _django_ready
    import django
    from django.conf import settings

    if not _django_ready:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[],
            SECRET_KEY="test",
            DATA_UPLOAD_MAX_MEMORY_SIZE=None,
            USE_TZ=True,
        )
        django.setup()
        _django_ready = True
    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    return BoxkiteWSGIMiddleware(app, config=config) if config else app


def _django_view(request):
    from django.http import HttpResponse, StreamingHttpResponse

    status, content_type, chunks = handle(
        request.method, request.path, request.body, request.META.get("CONTENT_TYPE")
    )
    if len(chunks) > 1:
        return StreamingHttpResponse(iter(chunks), status=status, content_type=content_type)
    return HttpResponse(b"".join(chunks), status=status, content_type=content_type)


def _urlpatterns():
    try:
        from django.urls import re_path
    except ImportError:  # django is a test dependency only
        return []
    return [re_path(r"^.*$", _django_view)]


urlpatterns = _urlpatterns()


# --- ASGI -------------------------------------------------------------------------------------


def asgi_app(config=None):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode() or None
        status, media, chunks = handle(scope["method"], scope["path"], body, content_type)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", media.encode())],
            }
        )
        for i, chunk in enumerate(chunks):
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1}
            )
        if not chunks:
            await send({"type": "http.response.body", "body": b""})

    return BoxkiteASGIMiddleware(app, config=config) if config else app


def _starlette_endpoint():
    from starlette.responses import Response, StreamingResponse

    async def endpoint(request):
        status, content_type, chunks = handle(
            request.method,
            request.url.path,
            await request.body(),
            request.headers.get("content-type"),
        )
        if len(chunks) > 1:

            async def stream():
                for chunk in chunks:
                    yield chunk

            return StreamingResponse(stream(), status_code=status, media_type=content_type)
        return Response(b"".join(chunks), status_code=status, media_type=content_type)

    return endpoint


def starlette_app(config=None):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    middleware = [Middleware(BoxkiteASGIMiddleware, config=config)] if config else []
    return Starlette(
        routes=[Route("/{path:path}", _starlette_endpoint(), methods=["GET", "POST", "PUT"])],
        middleware=middleware,
    )


def fastapi_app(config=None):
    from fastapi import FastAPI, Request

    app = FastAPI()
    endpoint = _starlette_endpoint()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT"])
    async def catch_all(request: Request):
        return await endpoint(request)

    if config:
        app.add_middleware(BoxkiteASGIMiddleware, config=config)
    return app


WSGI_APPS = {"bare-wsgi": wsgi_app, "flask": flask_app, "django": django_app}
ASGI_APPS = {"bare-asgi": asgi_app, "starlette": starlette_app, "fastapi": fastapi_app}
