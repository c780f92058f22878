"""ASGI adapter: FastAPI, Starlette, any ASGI 3 application (pure ASGI, no BaseHTTPMiddleware)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from .config import Config
from .mount import mount
from .observing import BodyHeaders, Exchange, body_headers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BoxkiteASGIMiddleware:
    """Observe the JSON bodies of configured routes and serve ``/metrics``.

    Usage::

        app.add_middleware(BoxkiteASGIMiddleware, config="boxkite.yaml")

    The config is loaded when the middleware is built, which Starlette does at
    application start-up: a bad config fails the start, not a request. On
    observed routes the request body is read, then replayed to the app once,
    after which the app's ``receive`` is the server's again (disconnects still
    arrive). Response messages are passed on as they come; values are counted
    after the last body message has been sent.
    """

    def __init__(
        self,
        app: ASGIApp,
        config: Config | Mapping[str, Any] | str | os.PathLike[str],
        multiprocess_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.app = app
        parts = mount(config, multiprocess_dir)
        self.observer = parts.observer
        self.metrics = parts.endpoint
        self.metrics_path = parts.metrics_path
        self.metrics_server = parts.metrics_server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == self.metrics_path:
            await self._metrics(scope, method, send)
            return
        route = self.observer.route_for(method, path)
        if route is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])  # servers send header names in lower case
        length = headers.get(b"content-length")
        exchange = self.observer.begin(
            route,
            path,
            BodyHeaders(
                _text(headers.get(b"content-type")),
                _text(headers.get(b"content-encoding")),
                _text(headers.get(b"inference-header-content-length")),
            ),
            None if length is None else _int(length),
        )
        if exchange is None:
            if route.respond:  # a feedback route the app does not have: answered here
                await _no_content(send)
            else:
                await self.app(scope, receive, send)
            return
        # Drain the body (up to the size limit) into the exchange, keeping the messages.
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # http.disconnect: the client is gone
                exchange.request_incomplete()
                break
            if not exchange.add_request(message.get("body", b"")):
                break  # over the limit: the app reads the rest from the server itself
            if not message.get("more_body", False):
                break
        if route.respond:
            exchange.finish()
            await _no_content(send)
            return
        tap = _Tap(messages, receive, send, exchange)
        try:
            await self.app(scope, tap.receive, tap.send)
        finally:
            exchange.finish()  # no-op if the last body message already finished it

    async def _metrics(self, scope: Scope, method: str, send: Send) -> None:
        headers = dict(scope["headers"])
        client = scope.get("client")
        status, response_headers, body = self.metrics.respond(
            method,
            scope.get("query_string", b"").decode("latin-1"),
            lambda name: _text(headers.get(name.encode("latin-1"))),
            client[0] if client else None,
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response_headers
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _no_content(send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _int(value: bytes) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


class _Tap:
    """The app's side of the server for one observed request.

    ``receive`` gives the messages already read, once, then the server's own;
    ``send`` passes each response message on at once, copying body bytes into the
    exchange, and counts after the last one.
    """

    __slots__ = ("_messages", "_receive", "_send", "_exchange")

    def __init__(
        self, messages: list[Message], receive: Receive, send: Send, exchange: Exchange
    ) -> None:
        self._messages = messages
        self._receive = receive
        self._send = send
        self._exchange = exchange

    async def receive(self) -> Message:
        if self._messages:
            return self._messages.pop(0)
        return await self._receive()

    async def send(self, message: Message) -> None:
        kind = message["type"]
        exchange = self._exchange
        if kind == "http.response.body":
            exchange.add_response(message.get("body", b""))
            await self._send(message)
            if not message.get("more_body", False):
                exchange.finish()
            return
        if kind == "http.response.start":
            exchange.start_response(message["status"], body_headers(message.get("headers", ())))
        await self._send(message)
