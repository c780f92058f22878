"""WSGI adapter: Flask, Django, Falcon, any PEP 3333 application."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .config import Config
from .mount import mount
from .observing import BodyHeaders, Exchange, body_headers

_CHUNK = 64 * 1024


class BoxkiteWSGIMiddleware:
    """Observe the JSON bodies of configured routes and serve ``/metrics``.

    Usage::

        app.wsgi_app = BoxkiteWSGIMiddleware(app.wsgi_app, config="boxkite.yaml")

    Requests to other paths go straight to the app, unbuffered. On observed
    routes the app reads exactly the body the client sent, and the response
    streams through unchanged; values are counted when the server closes the
    response iterable, after the client has it.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        config: Config | Mapping[str, Any] | str | os.PathLike[str],
        multiprocess_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.app = app
        parts = mount(config, multiprocess_dir)
        self.observer = parts.observer
        self.metrics = parts.endpoint
        self.metrics_path = parts.metrics_path
        self.metrics_server = parts.metrics_server

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == self.metrics_path:
            return self.metrics.wsgi(environ, start_response)
        route = self.observer.route_for(method, path)
        if route is None:
            return self.app(environ, start_response)
        exchange = self.observer.begin(
            route,
            path,
            BodyHeaders(
                environ.get("CONTENT_TYPE"),
                environ.get("HTTP_CONTENT_ENCODING"),
                environ.get("HTTP_INFERENCE_HEADER_CONTENT_LENGTH"),
            ),
            _content_length(environ),
        )
        if route.respond:  # a feedback route the app does not have: answer it here
            if exchange is not None:
                _buffer_request(environ, exchange)
                exchange.finish()
            start_response("204 No Content", [])
            return []
        if exchange is None:
            return self.app(environ, start_response)
        _buffer_request(environ, exchange)
        tap = _ResponseTap(exchange, start_response)
        try:
            iterable = self.app(environ, tap.start_response)
        except BaseException:
            exchange.finish()  # the features arrived; the server will answer 500
            raise
        return tap.wrap(iterable)


def _content_length(environ: Mapping[str, Any]) -> int | None:
    try:
        return int(environ["CONTENT_LENGTH"])
    except (KeyError, ValueError):
        return None


def _buffer_request(environ: dict[str, Any], exchange: Exchange) -> None:
    """Read the body for the exchange and put an identical stream back for the app."""
    stream = environ["wsgi.input"]
    length = _content_length(environ)
    chunks: list[bytes] = []
    if length is None and not environ.get("wsgi.input_terminated"):
        length = 0  # PEP 3333: without Content-Length there is no readable body
    remaining = length if length is not None else -1
    whole = False  # every byte of the body is in `chunks`
    try:
        while remaining != 0:
            chunk = stream.read(_CHUNK if remaining < 0 else min(remaining, _CHUNK))
            if not chunk:
                if remaining > 0:
                    exchange.request_incomplete()
                else:
                    whole = True
                break
            chunks.append(chunk)
            remaining -= len(chunk) if remaining > 0 else 0
            if not exchange.add_request(chunk):
                break  # over the limit (chunked): the rest is left for the app to read
        else:
            whole = True
    except Exception:
        exchange.request_incomplete()  # the app's own read will fail the same way
    body = b"".join(chunks)
    # The usual case, all read: a plain in-memory stream. Otherwise the bytes read, then
    # whatever the server's stream still holds (or raises).
    environ["wsgi.input"] = io.BytesIO(body) if whole else _Replay(body, stream)


class _Replay(io.RawIOBase):
    """The bytes already read, then whatever is left in the original stream."""

    def __init__(self, prefix: bytes, rest: Any) -> None:
        self._prefix = io.BytesIO(prefix)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self._prefix.read() + self._rest.read()
        data = self._prefix.read(size)
        return data if data else self._rest.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        line = self._prefix.readline(-1 if size is None else size)
        if line.endswith(b"\n") or (size is not None and 0 <= size <= len(line)):
            return line
        more = -1 if size is None or size < 0 else size - len(line)
        return line + self._rest.readline(more)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class _ResponseTap:
    """Copies the response into the exchange as it passes; counts on ``close()``."""

    __slots__ = ("exchange", "_start_response", "_write")

    def __init__(self, exchange: Exchange, start_response: Callable) -> None:
        self.exchange = exchange
        self._start_response = start_response
        self._write: Callable[[bytes], Any] | None = None

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None):
        try:
            code = int(status[:3])
        except ValueError:
            code = 500
        self.exchange.start_response(code, body_headers(headers))
        self._write = self._start_response(status, headers, exc_info)
        return self.write

    def write(self, data: bytes) -> None:  # the legacy write() path of PEP 3333
        self.exchange.add_response(data)
        self._write(data)  # type: ignore[misc]

    def wrap(self, iterable: Iterable[bytes]) -> Iterable[bytes]:
        return _ClosingIterable(iterable, self.exchange)


class _ClosingIterable:
    """Streams the app's iterable chunk by chunk (never ``list()``-ed) and closes it;
    counts once the server has taken the last chunk, or on ``close()``."""

    def __init__(self, iterable: Iterable[bytes], exchange: Exchange) -> None:
        self._iterable = iterable
        self._exchange = exchange

    def __iter__(self) -> Iterator[bytes]:
        add = self._exchange.add_response
        for chunk in self._iterable:
            add(chunk)
            yield chunk
        # Asked for more after the last chunk: the server has written them all. Count now
        # rather than wait for close(), which some clients (test clients) call late or never.
        self._exchange.finish()

    def close(self) -> None:
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            self._exchange.finish()
