"""``/metrics`` on a port of its own, for when the app's port must not expose it.

A daemon thread in the process that builds the middleware. With several worker
processes and ``PROMETHEUS_MULTIPROC_DIR``, the first process to bind the port
serves the totals of all of them (gunicorn ``--preload`` makes that the master,
which outlives its workers); the others log that the port is taken and go on.
"""

from __future__ import annotations

import errno
import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core import Core

log = logging.getLogger("boxkite_middleware")


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


def start(core: Core, host: str, port: int) -> Any:
    """The running metrics server, or None if the port is taken."""
    from .wsgi import metrics_app

    path = core.config.metrics_path or "/metrics"

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != path:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Not Found\n"]
        return metrics_app(core, environ, start_response)

    try:
        return serve(app, host, port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        log.info("boxkite: metrics port %s is taken, presumably by another worker", port)
        return None
