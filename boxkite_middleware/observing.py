"""The request flow the WSGI and ASGI adapters share: which requests to observe,
and observing them.

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
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from .baseline import FEATURE, NUMERIC, OUTPUT, Baseline
from .config import MODEL_SEGMENT, Config, RouteConfig, load_config
from .extract import (
    Extractor,
    FeedbackExtractor,
    PathExtractor,
    ShapeError,
    build_extractor,
)
from .monitor import Monitor
from .schema import OTHER, Reason
from .v2binary import INFERENCE_HEADER, BinaryError, read_binary

log = logging.getLogger("boxkite_middleware")


class Unusable(Exception):
    """A body the middleware cannot observe; ``args[0]`` is the :class:`Reason`."""


def is_json(content_type: str | None) -> bool:
    """True for JSON media types, and for a missing Content-Type (try it anyway)."""
    if not content_type or content_type == "application/json":
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


class BodyHeaders(NamedTuple):
    """What a message's headers say about how to read its body."""

    content_type: str | None = None
    content_encoding: str | None = None
    # The V2 binary tensor extension: the length of the JSON part before the tensors.
    inference_header: str | None = None


def body_headers(headers: Iterable[tuple[Any, Any]]) -> BodyHeaders:
    """The :class:`BodyHeaders` of response headers, given as str or bytes pairs.

    Runs once per observed response: names are compared without decoding them, and
    only the values that matter are decoded.
    """
    content_type = content_encoding = inference = None
    for name, value in headers:
        lower = name.lower()
        if type(lower) is bytes:
            if lower == b"content-type":
                content_type = value.decode("latin-1")
            elif lower == b"content-encoding":
                content_encoding = value.decode("latin-1")
            elif lower == _INFERENCE_HEADER:
                inference = value.decode("latin-1")
        elif lower == "content-type":
            content_type = value
        elif lower == "content-encoding":
            content_encoding = value
        elif lower == INFERENCE_HEADER:
            inference = value
    return BodyHeaders(content_type, content_encoding, inference)


_INFERENCE_HEADER = INFERENCE_HEADER.encode("latin-1")


def decode(body: bytes, encoding: str | None, limit: int) -> bytes:
    """``body`` without its Content-Encoding, never more than ``limit`` bytes of output."""
    if not encoding or encoding == "identity":
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise Unusable(Reason.CONTENT_ENCODING)
    inflater = zlib.decompressobj(wbits=47)  # gzip or zlib, detected from the header
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise Unusable(Reason.CONTENT_ENCODING) from None
    if len(out) > limit:
        raise Unusable(Reason.BODY_TOO_LARGE)  # a bomb, or just big: skipped either way
    if not inflater.eof:
        raise Unusable(Reason.CONTENT_ENCODING)  # truncated
    return out


@dataclass(frozen=True)
class Target:
    """Where a route's requests for one model are counted, and how they are read."""

    monitor: Monitor
    route: int  # the (model, route) pair's index in the monitor
    extractor: Extractor
    feedback: bool = False  # ground truth, not a prediction
    # Generated counters for a request of one object read by top-level keys: (features,
    # outputs or None). The common single-record route skips columns and loops.
    compiled: tuple[Callable[[Any, Any], None], Callable[[Any, Any], None] | None] | None = None


class Route:
    """One configured route: where it matches, and its :class:`Target` per model."""

    __slots__ = ("path", "methods", "pattern", "targets", "fixed", "unknown", "respond")

    def __init__(
        self,
        path: str,
        methods: tuple[str, ...],
        targets: dict[str, Target],
        unknown: Target | None,
        respond: bool = False,
    ) -> None:
        self.path = path  # as written in the config: the `route` label
        self.respond = respond  # answer 204 here; the app has no such route
        self.methods = frozenset(methods)
        self.targets = targets
        # A route for one model needs no look-up per request.
        self.fixed = next(iter(targets.values())) if unknown is None else None
        self.unknown = unknown  # counts requests for models that are not configured
        self.pattern = (
            re.compile(
                "".join(
                    ("(?P<model>[^/]+)" if part == MODEL_SEGMENT else "[^/]+")
                    if part.startswith("{")
                    else re.escape(part)
                    for part in re.split(r"(\{[^}]+\})", path)
                )
            )
            if "{" in path
            else None
        )

    def target(self, path: str) -> Target | None:
        """The target of a request to ``path``; None for a model that is not configured."""
        if self.fixed is not None:
            return self.fixed
        match = self.pattern.fullmatch(path)  # type: ignore[union-attr]
        return self.targets.get(match.group("model")) if match else None


class Observer:
    """Which requests to observe and how: the framework-free middleware, built from a
    validated config. Building one starts nothing; the adapters own any server."""

    def __init__(
        self,
        config: Config | Mapping[str, Any] | str | os.PathLike[str],
        multiprocess_dir: str | os.PathLike[str] | None = None,
        shared: bool = True,
    ) -> None:
        self.config = config = load_config(config)
        models = dict(config.models)
        every = [*config.routes, *config.feedback]
        pairs = [(name, r.path) for r in every for name in ([r.model] if r.model else models)]
        feedback = list(
            dict.fromkeys(
                (name, output)
                for r in config.feedback
                for name in ([r.model] if r.model else models)
                for output in r.predictions
            )
        )
        picking = [r.path for r in every if r.model is None]
        if picking:
            # Requests naming a model that is not configured are counted under __other__,
            # so no series is ever named after request text.
            models[OTHER] = Baseline([])
            pairs += [(OTHER, path) for path in picking]
        self.monitor = Monitor(
            models=models,
            routes=pairs,
            multiprocess_dir=multiprocess_dir,
            shared=shared,
            feedback=feedback,
        )
        self.routes = [self._route(r) for r in every]
        self._exact: dict[str, list[Route]] = {}
        for route in self.routes:
            if route.pattern is None:
                self._exact.setdefault(route.path, []).append(route)
        self._patterns = [r for r in self.routes if r.pattern is not None]
        self.limit = config.max_body_bytes

    def _route(self, route: RouteConfig) -> Route:
        monitor = self.monitor
        targets = {}
        for name in [route.model] if route.model else self.config.models:
            if route.truth:
                outputs_of = [
                    (monitor.quality_index(n, name), path, route.truth[n])
                    for n, path in route.predictions.items()
                ]
                targets[name] = Target(
                    monitor,
                    monitor.route_index(route.path, name),
                    FeedbackExtractor(outputs_of),
                    feedback=True,
                )
                continue
            baseline = self.config.models[name]
            features = {n: monitor.column_index(FEATURE, n, name) for n in baseline.feature_names}
            outputs = {n: monitor.column_index(OUTPUT, n, name) for n in baseline.output_names}
            numeric = {
                monitor.column_index(c.role, c.name, name)
                for c in baseline.columns
                if c.kind == NUMERIC
            }
            extractor = build_extractor(route, features, outputs, numeric)
            keys = extractor.top_level_keys() if isinstance(extractor, PathExtractor) else None
            compiled = None
            if keys is not None:
                compiled = (
                    monitor.compile_counter(keys[0]),
                    monitor.compile_counter(keys[1]) if keys[1] else None,
                )
            targets[name] = Target(
                monitor, monitor.route_index(route.path, name), extractor, compiled=compiled
            )
        unknown = None
        if route.model is None:
            unknown = Target(monitor, monitor.route_index(route.path, OTHER), Extractor())
        return Route(route.path, route.methods, targets, unknown, route.respond)

    def route_for(self, method: str, path: str) -> Route | None:
        """The route observing this request, if any. HEAD is never observed."""
        for route in self._exact.get(path, ()):
            if method in route.methods:
                return route
        for route in self._patterns:
            if method in route.methods and route.pattern.fullmatch(path):  # type: ignore[union-attr]
                return route
        return None

    def begin(
        self, route: Route, path: str, headers: BodyHeaders, content_length: int | None
    ) -> Exchange | None:
        """The :class:`Exchange` observing this request, or None when its path or headers
        already say it can't be observed: the error is counted and the adapter passes
        the request through untouched."""
        target = route.target(path)
        if target is None:
            unknown = route.unknown
            unknown.monitor.count_error(unknown.route, Reason.UNKNOWN_MODEL)  # type: ignore[union-attr]
            return None
        binary = _header_length(headers.inference_header)
        reason = None
        if binary is None and not is_json(headers.content_type):
            reason = Reason.CONTENT_TYPE
        elif content_length is not None and content_length > self.limit:
            reason = Reason.BODY_TOO_LARGE
        encoding = _encoding(headers.content_encoding)
        if encoding is not None and encoding not in _DECODED:
            reason = Reason.CONTENT_ENCODING
        if reason is not None:
            target.monitor.count_error(target.route, reason)
            return None
        return Exchange(self.limit, target, route.path, encoding, binary)


_DECODED = ("identity", "gzip", "x-gzip", "deflate")


def _encoding(value: str | None) -> str | None:
    return value.strip().lower() or None if value else None


def _header_length(value: str | None) -> int | None:
    """The JSON part's length of a V2 binary body, or None for a plain JSON body."""
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return -1  # binary, but unreadable: counted as a shape error
    return length if length >= 0 else -1


class Exchange:
    """One observed request and its response, fed by an adapter chunk by chunk."""

    __slots__ = (
        "limit",
        "target",
        "path",
        "encoding",
        "binary",
        "request",
        "request_size",
        "request_error",
        "status",
        "response",
        "response_size",
        "response_headers",
        "done",
    )

    def __init__(
        self, limit: int, target: Target, path: str, encoding: str | None, binary: int | None
    ) -> None:
        self.limit = limit
        self.target = target
        self.path = path  # the configured route, for logs
        self.encoding = encoding
        self.binary = binary
        self.request: list[bytes] = []
        self.request_size = 0
        self.request_error: Reason | None = None
        self.status: int | None = None
        self.response: list[bytes] | None = None
        self.response_size = 0
        self.response_headers = BodyHeaders()
        self.done = False

    def add_request(self, chunk: bytes) -> bool:
        """Keep a chunk of the request body; False once over the limit (stop feeding)."""
        self.request_size += len(chunk)
        if self.request_size > self.limit:
            self.request_error = Reason.BODY_TOO_LARGE
            self.request = []
            return False
        self.request.append(chunk)
        return True

    def request_incomplete(self) -> None:
        """The body did not arrive whole (client gone, read failed)."""
        self.request_error = self.request_error or Reason.INCOMPLETE

    def start_response(self, status: int, headers: BodyHeaders) -> None:
        self.status = status
        if 200 <= status < 300 and self.target.extractor.has_outputs:
            self.response = []
            self.response_headers = headers

    def add_response(self, chunk: bytes) -> None:
        if self.response is not None:
            self.response_size += len(chunk)
            if self.response_size > self.limit:
                self.response = None  # unobservable: the outputs count as missing
                self.response_size = -1
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
                self.path,
                where,
            )
            self.target.monitor.count_error(self.target.route, Reason.INTERNAL)

    def _observe(self) -> None:
        target = self.target
        monitor, route, extractor = target.monitor, target.route, target.extractor
        if self.request_error is not None:
            monitor.count_error(route, self.request_error)
            return
        try:
            doc = _parse(b"".join(self.request), self.encoding, self.binary, self.limit)
            if target.feedback:
                rows, truths = extractor.feedback(doc)  # type: ignore[attr-defined]
                monitor.record_feedback(route, rows, truths)
                return
            if target.compiled is not None:
                self._observe_compiled(doc, *target.compiled)
                return
            rows, columns = extractor.request(doc)
        except Unusable as exc:
            monitor.count_error(route, exc.args[0])
            return
        except ShapeError:
            monitor.count_error(route, Reason.SHAPE)
            return
        if self.status is not None and 200 <= self.status < 300 and extractor.has_outputs:
            # An unreadable response never costs the request its features: the outputs
            # count as missing and the response's error is counted next to them.
            try:
                rows, outputs = extractor.response(self._response_doc(), rows)
                columns = columns + outputs
            except Unusable as exc:
                monitor.count_error(route, exc.args[0])
                columns = columns + extractor.missing_outputs(rows or 0)
            except ShapeError:
                monitor.count_error(route, Reason.SHAPE)
                columns = columns + extractor.missing_outputs(rows or 0)
        if rows is not None:
            monitor.record(route, rows, columns)

    def _observe_compiled(
        self,
        doc: Any,
        features: Callable[[Any, Any], None],
        outputs: Callable[[Any, Any], None] | None,
    ) -> None:
        """One row read by top-level keys, counted by generated code; the same outcome
        as the general path (an unreadable response: outputs missing, error counted)."""
        target = self.target
        if outputs is None or self.status is None or not 200 <= self.status < 300:
            target.monitor.record_compiled(target.route, ((features, doc),))
            return
        try:
            response = self._response_doc()
        except Unusable as exc:
            target.monitor.count_error(target.route, exc.args[0])
            response = None  # every output counts as missing
        target.monitor.record_compiled(target.route, ((features, doc), (outputs, response)))

    def _response_doc(self) -> Any:
        if self.response is None:
            raise Unusable(Reason.BODY_TOO_LARGE)
        headers = self.response_headers
        binary = _header_length(headers.inference_header)
        if binary is None and not is_json(headers.content_type):
            raise Unusable(Reason.CONTENT_TYPE)
        encoding = _encoding(headers.content_encoding)
        if encoding is not None and encoding not in _DECODED:
            raise Unusable(Reason.CONTENT_ENCODING)
        return _parse(b"".join(self.response), encoding, binary, self.limit)


def _parse(body: bytes, encoding: str | None, binary: int | None, limit: int) -> Any:
    """A body as JSON (or V2 binary) data; :class:`Unusable` when it can't be read."""
    if encoding is not None:
        body = decode(body, encoding, limit)
    if binary is not None:
        try:
            return read_binary(body, binary)
        except BinaryError:
            raise Unusable(Reason.SHAPE) from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Unusable(Reason.INVALID_JSON) from None
