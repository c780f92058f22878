"""What the WSGI and ASGI adapters share: which requests to observe, observing them,
and answering ``/metrics``.

The adapters only move bytes (replaying the request body to the app, passing the
response through); every decision and all parsing, extraction and counting is
here, once. An :class:`Exchange` is one observed request/response pair: the
adapter feeds it chunks and calls :meth:`Exchange.finish` once the response has
been handed to the server, so the client never waits for the counting.
"""

from __future__ import annotations

import logging
import os
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from .access import FORBIDDEN, UNAUTHORIZED
from .baseline import FEATURE, OUTPUT
from .config import Config, load_config
from .extract import Columns, Extractor, ShapeError, build_extractor
from .monitor import Monitor

log = logging.getLogger("boxkite_middleware")

_NO_BODY_METHODS = frozenset({"GET", "HEAD"})
_METHOD_NOT_ALLOWED = b"Method Not Allowed\n"


class Unusable(Exception):
    """A body the middleware cannot observe; ``args[0]`` is the error reason."""


def is_json(content_type: str | None) -> bool:
    """True for JSON media types, and for a missing Content-Type (try it anyway)."""
    if not content_type or content_type == "application/json":
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


def content_headers(headers: Iterable[tuple[Any, Any]]) -> tuple[str | None, str | None]:
    """Content-Type and Content-Encoding of response headers, as str or bytes pairs."""
    content_type = content_encoding = None
    for name, value in headers:
        if isinstance(name, bytes):
            name, value = name.decode("latin-1"), value.decode("latin-1")
        lower = name.lower()
        if lower == "content-type":
            content_type = value
        elif lower == "content-encoding":
            content_encoding = value
    return content_type, content_encoding


def decode(body: bytes, encoding: str | None, limit: int) -> bytes:
    """``body`` without its Content-Encoding, never more than ``limit`` bytes of output."""
    if not encoding or encoding == "identity":
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise Unusable("content_encoding")
    inflater = zlib.decompressobj(wbits=47)  # gzip or zlib, detected from the header
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise Unusable("content_encoding") from None
    if len(out) > limit:
        raise Unusable("body_too_large")  # a bomb, or just big: skipped either way
    if not inflater.eof:
        raise Unusable("content_encoding")  # truncated
    return out


class Route:
    """One configured route: where it matches and how its bodies are read."""

    __slots__ = ("index", "path", "methods", "pattern", "extractor")

    def __init__(
        self, index: int, path: str, methods: tuple[str, ...], extractor: Extractor
    ) -> None:
        self.index = index
        self.path = path  # as written in the config: the `route` label
        self.methods = frozenset(methods)
        self.extractor = extractor
        self.pattern = (
            re.compile(
                "".join(
                    "[^/]+" if part.startswith("{") else re.escape(part)
                    for part in re.split(r"(\{[^}]+\})", path)
                )
            )
            if "{" in path
            else None
        )


class Core:
    """The framework-free middleware, built from a validated config."""

    def __init__(
        self,
        config: Config | Mapping[str, Any] | str | os.PathLike[str],
        multiprocess_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = load_config(config)
        self.monitor = Monitor(
            self.config.baseline,
            model=self.config.model,
            routes=[r.path for r in self.config.routes],
            multiprocess_dir=multiprocess_dir,
        )
        layout = self.monitor.layout
        features = {n: layout.column_index(FEATURE, n) for n in self.config.baseline.feature_names}
        outputs = {n: layout.column_index(OUTPUT, n) for n in self.config.baseline.output_names}
        self.routes = [
            Route(i, r.path, r.methods, build_extractor(r, features, outputs))
            for i, r in enumerate(self.config.routes)
        ]
        self._exact: dict[str, list[Route]] = {}
        for route in self.routes:
            if route.pattern is None:
                self._exact.setdefault(route.path, []).append(route)
        self._patterns = [r for r in self.routes if r.pattern is not None]
        # With a port of its own, /metrics is not on the app's paths at all.
        self.metrics_path = self.config.metrics_path if self.config.metrics_port is None else None
        self.metrics_server = None
        if self.config.metrics_port is not None:
            from .metrics_server import start

            self.metrics_server = start(self, self.config.metrics_host, self.config.metrics_port)
        self.limit = self.config.max_body_bytes
        self.recorder = self.monitor.recorder

    def route_for(self, method: str, path: str) -> Route | None:
        """The route observing this request, if any. HEAD is never observed."""
        for route in self._exact.get(path, ()):
            if method in route.methods:
                return route
        for route in self._patterns:
            if method in route.methods and route.pattern.fullmatch(path):  # type: ignore[union-attr]
                return route
        return None

    def exchange(
        self,
        route: Route,
        content_type: str | None,
        content_encoding: str | None,
        content_length: int | None,
    ) -> Exchange | None:
        """Start observing a request; None (error counted) when its body can't be used,
        in which case the adapter passes the request through untouched."""
        if not is_json(content_type):
            self.recorder.error(route.index, "content_type")
            return None
        if content_length is not None and content_length > self.limit:
            self.recorder.error(route.index, "body_too_large")
            return None
        encoding = content_encoding.strip().lower() or None if content_encoding else None
        if encoding is not None and encoding not in ("identity", "gzip", "x-gzip", "deflate"):
            self.recorder.error(route.index, "content_encoding")
            return None
        return Exchange(self, route, encoding)

    def metrics(
        self, method: str, query: str, header: Callable[[str], str | None], client: str | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and body of a request to the metrics path.

        ``header(name)`` gives a request header by lower-case name; ``client`` is the
        peer address, for the allow-list.
        """
        access = self.config.metrics_access
        if access is not None:
            refused = access.refuse(client, header("authorization"))
            if refused == 403:
                return 403, _plain(FORBIDDEN), FORBIDDEN
            if refused == 401:
                return (
                    401,
                    [("WWW-Authenticate", access.challenge), *_plain(UNAUTHORIZED)],
                    UNAUTHORIZED,
                )
        if method not in _NO_BODY_METHODS:
            return 405, [("Allow", "GET, HEAD"), *_plain(_METHOD_NOT_ALLOWED)], _METHOD_NOT_ALLOWED
        names = parse_qs(query).get("name[]") if query else None
        body, headers = self.monitor.render(header("accept"), header("accept-encoding"), names)
        headers.append(("Content-Length", str(len(body))))
        return 200, headers, b"" if method == "HEAD" else body


def _plain(body: bytes) -> list[tuple[str, str]]:
    return [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]


class Exchange:
    """One observed request and its response, fed by an adapter chunk by chunk."""

    __slots__ = (
        "core",
        "route",
        "encoding",
        "request",
        "request_size",
        "request_error",
        "status",
        "response",
        "response_size",
        "response_type",
        "response_encoding",
        "done",
    )

    def __init__(self, core: Core, route: Route, encoding: str | None) -> None:
        self.core = core
        self.route = route
        self.encoding = encoding
        self.request: list[bytes] = []
        self.request_size = 0
        self.request_error: str | None = None
        self.status: int | None = None
        self.response: list[bytes] | None = None
        self.response_size = 0
        self.response_type: str | None = None
        self.response_encoding: str | None = None
        self.done = False

    def add_request(self, chunk: bytes) -> bool:
        """Keep a chunk of the request body; False once over the limit (stop feeding)."""
        self.request_size += len(chunk)
        if self.request_size > self.core.limit:
            self.request_error = "body_too_large"
            self.request = []
            return False
        self.request.append(chunk)
        return True

    def request_incomplete(self) -> None:
        """The body did not arrive whole (client gone, read failed)."""
        self.request_error = self.request_error or "incomplete"

    def start_response(
        self, status: int, content_type: str | None, content_encoding: str | None
    ) -> None:
        self.status = status
        if 200 <= status < 300 and self.route.extractor.has_outputs:
            self.response = []
            self.response_type = content_type
            if content_encoding:
                self.response_encoding = content_encoding.strip().lower() or None

    def add_response(self, chunk: bytes) -> None:
        if self.response is not None:
            self.response_size += len(chunk)
            if self.response_size > self.core.limit:
                self.response = None  # unobservable: the outputs count as missing
            else:
                self.response.append(chunk)

    def finish(self) -> None:
        """Parse, extract and count. Never raises: a failure here is counted, not thrown."""
        if self.done:
            return
        self.done = True
        try:
            self._observe()
        except Exception as exc:  # a bug of ours must never reach the app or the server
            # Where, not what: an exception's message may quote the request's data.
            frame = exc.__traceback__
            while frame is not None and frame.tb_next is not None:
                frame = frame.tb_next
            where = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else "?"
            log.error(
                "boxkite: %s while observing a request to %s, at %s (message withheld)",
                type(exc).__name__,
                self.route.path,
                where,
            )
            self.core.recorder.error(self.route.index, "internal")

    def _observe(self) -> None:
        route, recorder = self.route, self.core.recorder
        if self.request_error is not None:
            recorder.error(route.index, self.request_error)
            return
        try:
            body = b"".join(self.request)
            if self.encoding is not None:
                body = decode(body, self.encoding, self.core.limit)
            doc = orjson.loads(body)
            rows, columns = route.extractor.request(doc)
            if self.status is not None and 200 <= self.status < 300 and route.extractor.has_outputs:
                rows, outputs = self._outputs(rows)
                columns = columns + outputs
        except Unusable as exc:
            recorder.error(route.index, exc.args[0])
            return
        except orjson.JSONDecodeError:
            recorder.error(route.index, "invalid_json")
            return
        except ShapeError:
            recorder.error(route.index, "shape")
            return
        if rows is not None:
            recorder.observe(route.index, rows, columns)

    def _outputs(self, rows: int | None) -> tuple[int | None, Columns]:
        extractor = self.route.extractor
        doc = self._response_doc()
        if doc is _UNUSABLE:
            return rows, extractor.missing_outputs(rows) if rows is not None else []
        return extractor.response(doc, rows)

    def _response_doc(self) -> Any:
        if self.response is None or not is_json(self.response_type):
            return _UNUSABLE
        try:
            body = b"".join(self.response)
            if self.response_encoding is not None:
                body = decode(body, self.response_encoding, self.core.limit)
            return orjson.loads(body)
        except (Unusable, orjson.JSONDecodeError):
            return _UNUSABLE


_UNUSABLE = object()
