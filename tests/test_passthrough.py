"""Pass-through guarantees that need a hand-written app to see what the app sees."""

import asyncio
import io
import json

from boxkite_middleware import BoxkiteASGIMiddleware, BoxkiteWSGIMiddleware

from .middleware_setup import make_baseline, scrape, value
from .protocol import call_asgi, call_wsgi

BASELINE = make_baseline()


def _config(tmp_path, **overrides):
    BASELINE.save(tmp_path / "baseline.json")
    config = {
        "baseline": str(tmp_path / "baseline.json"),
        "max_body_bytes": 64,
        "routes": [{"path": "/predict", "features": {"age": "$.age"}}],
    }
    config.update(overrides)
    return config


def test_wsgi_unconfigured_routes_get_the_servers_own_stream(tmp_path):
    seen = {}

    def app(environ, start_response):
        seen["input"] = environ["wsgi.input"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    wrapped = BoxkiteWSGIMiddleware(app, config=_config(tmp_path))
    stream = io.BytesIO(b'{"age": 1}')
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/other",
        "wsgi.input": stream,
        "CONTENT_LENGTH": "10",
        "CONTENT_TYPE": "application/json",
    }
    assert b"".join(wrapped(environ, lambda *a: None)) == b"ok"
    assert seen["input"] is stream and stream.tell() == 0  # not read, not wrapped


def test_asgi_unconfigured_routes_get_the_servers_own_receive(tmp_path):
    seen = {}

    async def app(scope, receive, send):
        seen["receive"], seen["send"] = receive, send

    wrapped = BoxkiteASGIMiddleware(app, config=_config(tmp_path))

    async def receive():
        return {"type": "http.request", "body": b"{}"}

    async def send(message):
        pass

    scope = {"type": "http", "method": "POST", "path": "/other", "headers": []}
    asyncio.run(wrapped(scope, receive, send))
    assert seen == {"receive": receive, "send": send}


def test_chunked_body_over_the_limit_still_reaches_the_app_whole(tmp_path):
    body = json.dumps({"age": 0.1, "pad": "y" * 500}).encode()  # over max_body_bytes=64

    def wsgi(environ, start_response):
        data = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [data]

    async def asgi(scope, receive, send):
        data = b""
        while True:
            message = await receive()
            data += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": data})

    headers = {"Content-Type": "application/json"}
    w = BoxkiteWSGIMiddleware(wsgi, config=_config(tmp_path))
    assert call_wsgi(w, "POST", "/predict", body, headers, chunked=True).body == body
    a = BoxkiteASGIMiddleware(asgi, config=_config(tmp_path))
    chunks = [body[i : i + 10] for i in range(0, len(body), 10)]
    assert call_asgi(a, "POST", "/predict", headers=headers, chunks=chunks).body == body
    for middleware, call in ((w, call_wsgi), (a, call_asgi)):
        samples = scrape(call(middleware, "GET", "/metrics").body.decode())
        assert value(samples, "boxkite_observation_errors_total", reason="body_too_large") == 1


def test_asgi_disconnect_reaches_the_app_after_the_replay(tmp_path):
    events = []

    async def app(scope, receive, send):
        events.append(await receive())
        events.append(await receive())  # waits for the client to go away

    wrapped = BoxkiteASGIMiddleware(app, config=_config(tmp_path))
    messages = [
        {"type": "http.request", "body": b'{"age": 0.2}', "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def receive():
        return messages.pop(0)

    async def send(message):
        raise AssertionError("the app sent nothing")

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "headers": [(b"content-type", b"application/json")],
    }
    asyncio.run(wrapped(scope, receive, send))
    assert [e["type"] for e in events] == ["http.request", "http.disconnect"]
    assert events[0]["body"] == b'{"age": 0.2}'
    samples = scrape(call_asgi(wrapped, "GET", "/metrics").body.decode())
    # the app never answered, but the features arrived whole and count
    assert value(samples, "boxkite_feature_value_count", feature="age") == 1


def test_asgi_streaming_response_is_not_buffered(tmp_path):
    order = []

    async def app(scope, receive, send):
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        for part in (b'{"a"', b": 1}"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            order.append(("app sent", part))
        await send({"type": "http.response.body", "body": b""})

    wrapped = BoxkiteASGIMiddleware(app, config=_config(tmp_path))

    async def run():
        async def receive():
            return {"type": "http.request", "body": b'{"age": 1}'}

        async def send(message):
            order.append(("server got", message.get("body")))

        scope = {"type": "http", "method": "POST", "path": "/predict", "headers": []}
        await wrapped(scope, receive, send)

    asyncio.run(run())
    # each chunk reached the server before the app produced the next one
    assert order == [
        ("server got", None),
        ("server got", b'{"a"'),
        ("app sent", b'{"a"'),
        ("server got", b": 1}"),
        ("app sent", b": 1}"),
        ("server got", b""),
    ]


def test_metrics_path_null_mounts_nothing_and_custom_path(tmp_path):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"the app's own /metrics"]

    off = BoxkiteWSGIMiddleware(app, config=_config(tmp_path, metrics={"path": None}))
    assert call_wsgi(off, "GET", "/metrics").body == b"the app's own /metrics"
    custom = BoxkiteWSGIMiddleware(app, config=_config(tmp_path, metrics={"path": "/-/drift"}))
    assert b"boxkite_feature_value" in call_wsgi(custom, "GET", "/-/drift").body
    assert call_wsgi(custom, "GET", "/metrics").body == b"the app's own /metrics"


def test_instances_keep_separate_counts(tmp_path):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    a = BoxkiteWSGIMiddleware(app, config=_config(tmp_path))
    b = BoxkiteWSGIMiddleware(app, config=_config(tmp_path))
    call_wsgi(a, "POST", "/predict", b'{"age": 0.1}', {"Content-Type": "application/json"})
    count = {
        name: value(
            scrape(call_wsgi(m, "GET", "/metrics").body.decode()),
            "boxkite_feature_value_count",
            feature="age",
        )
        for name, m in (("a", a), ("b", b))
    }
    assert count == {"a": 1, "b": 0}


def test_observation_memory_is_bounded_by_the_body_limit(tmp_path):
    from boxkite_middleware.observing import BodyHeaders, Observer

    observer = Observer(
        _config(
            tmp_path,
            routes=[
                {
                    "path": "/predict",
                    "features": {"age": "$.age"},
                    "predictions": {"prediction": "$.result"},
                }
            ],
        )
    )
    route = observer.routes[0]
    exchange = observer.begin(route, route.path, BodyHeaders("application/json"), None)
    assert exchange.add_request(b'{"age": 0.1, "pad": "') is True
    assert exchange.add_request(b"x" * 100) is False  # over 64 bytes: stop buffering
    assert exchange.request == []
    exchange.finish()
    route = observer.routes[0]
    exchange = observer.begin(route, route.path, BodyHeaders("application/json"), None)
    exchange.add_request(b'{"age": 0.1}')
    exchange.start_response(200, BodyHeaders("application/json"))
    for _ in range(1000):  # a long streamed response: never held beyond the limit
        exchange.add_response(b'{"result": 1.0, "pad": "' + b"y" * 50 + b'"}')
        assert exchange.response is None or sum(map(len, exchange.response)) <= 64
    exchange.finish()
    counts = observer.monitor.counts()
    assert counts[("feature", "age")][0].sum() == 1  # the second request's feature
    assert counts[("output", "prediction")][1] == 1  # its unreadable output: missing
    errors = scrape(observer.monitor.render()[0].decode())["boxkite_observation_errors_total"]
    # one for each side: the first request's body, the second one's response
    assert sum(v for k, v in errors.items() if ("reason", "body_too_large") in k) == 2
