"""The scrape flow: answering ``/metrics`` on the app's port, or on a port of its own.

Both adapters hand requests for the metrics path to one :class:`MetricsEndpoint`
(access rules, 405, ``name[]``), so a scrape is answered the same whatever the
framework. The separate port is a plain WSGI app served from a daemon thread,
started explicitly by the adapter that was configured with one.

The endpoint also shows the app's own prometheus_client metrics (KServe's, an
instrumentator's), which would otherwise be hidden behind the middleware's path.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

from .metrics_auth import FORBIDDEN, UNAUTHORIZED, MetricsAccess
from .monitor import Monitor
from .multiprocess import env_multiprocess_dir

log = logging.getLogger("boxkite_middleware")

_NO_BODY_METHODS = frozenset({"GET", "HEAD"})
_METHOD_NOT_ALLOWED = b"Method Not Allowed\n"
_EOF = b"# EOF\n"

Response = tuple[int, list[tuple[str, str]], bytes]


def app_registry(multiprocess_dir: str | os.PathLike[str] | None = None) -> CollectorRegistry:
    """The app's own prometheus_client metrics: the default registry, or in multi-process
    mode every worker's, through prometheus_client's collector over the same directory."""
    directory = multiprocess_dir or env_multiprocess_dir()
    if not directory:
        return REGISTRY
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=os.fspath(directory))
    return registry


class MetricsEndpoint:
    """GET and HEAD of the metrics, behind the configured access rules."""

    def __init__(
        self,
        monitor: Monitor,
        access: MetricsAccess | None = None,
        extra: CollectorRegistry | None = None,
    ) -> None:
        self.monitor = monitor
        self.access = access
        self.extra = extra  # shown after boxkite's families, e.g. :func:`app_registry`

    def respond(
        self, method: str, query: str, header: Callable[[str], str | None], client: str | None
    ) -> Response:
        """Status, headers and body of a request to the metrics path.

        ``header(name)`` gives a request header by lower-case name; ``client`` is the
        peer address, for the allow-list.
        """
        access = self.access
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
        accept = header("accept")
        body, headers = self.monitor.render(accept, header("accept-encoding"), names, self._extra)
        headers.append(("Content-Length", str(len(body))))
        return 200, headers, b"" if method == "HEAD" else body

    def _extra(self, accept: str | None, names: list[str] | None) -> bytes:
        """The app's own families in the negotiated format, without a closing ``# EOF``."""
        if self.extra is None:
            return b""
        registry = self.extra.restricted_registry(names) if names else self.extra
        encoder, _ = choose_encoder(accept or "")
        try:
            text = encoder(registry)
        except Exception:  # someone else's collector: never let it break our scrape
            log.exception("boxkite: the app's own metrics could not be collected")
            return b""
        return text[: -len(_EOF)] if text.endswith(_EOF) else text

    def wsgi(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        """The endpoint as a WSGI app (the WSGI adapter's and the separate port's)."""
        status, headers, body = self.respond(
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("QUERY_STRING", ""),
            lambda name: environ.get("HTTP_" + name.upper().replace("-", "_")),
            environ.get("REMOTE_ADDR"),
        )
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]


def _plain(body: bytes) -> list[tuple[str, str]]:
    return [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]


def serve(app: Any, host: str, port: int) -> Any:
    """Serve a WSGI app from a daemon thread, without an access log; returns the server
    (``server_port`` is the bound port; ``shutdown()`` stops it)."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any) -> None:  # scrapes every 15 s need no access log
            pass

    server = make_server(host, port, app, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, name="boxkite-server", daemon=True)
    thread.start()
    return server


def start_metrics_port(endpoint: MetricsEndpoint, path: str, host: str, port: int) -> Any:
    """Serve ``endpoint`` at ``path`` on a port of its own; None if the port is taken.

    With several worker processes and ``PROMETHEUS_MULTIPROC_DIR``, the first process
    to bind serves the totals of all of them (gunicorn ``--preload`` makes that the
    master, which outlives its workers); the others log that the port is taken.
    """

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != path:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Not Found\n"]
        return endpoint.wsgi(environ, start_response)

    try:
        return serve(app, host, port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        log.info("boxkite: metrics port %s is taken, presumably by another worker", port)
        return None
