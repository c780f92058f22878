"""Driving WSGI and ASGI applications exactly as a server does, in-process.

The servers' side of PEP 3333 and ASGI 3 is small; doing it here lets a test
send a chunked body, split a body into several ASGI messages, and see every
header byte, against the real frameworks.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    messages: list[dict[str, Any]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def same_as(self, other: Reply) -> bool:
        return (self.status, self.headers, self.body) == (other.status, other.headers, other.body)


def call_wsgi(
    app,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict | None = None,
    chunked: bool = False,
    query: str = "",
) -> Reply:
    headers = dict(headers or {})
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "HTTP_HOST": "testserver",
    }
    if chunked:
        environ["wsgi.input_terminated"] = True
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    elif body or method in ("POST", "PUT"):
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            environ[f"HTTP_{key}"] = value
    captured: dict[str, Any] = {}
    written: list[bytes] = []

    def start_response(status, response_headers, exc_info=None):
        captured["status"] = status
        captured["headers"] = list(response_headers)
        return written.append

    iterable = app(environ, start_response)
    try:
        for chunk in iterable:
            written.append(chunk)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return Reply(int(captured["status"].split()[0]), captured["headers"], b"".join(written))


def call_asgi(
    app,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict | None = None,
    chunks: Iterable[bytes] | None = None,
    query: str = "",
) -> Reply:
    """One request; ``chunks`` splits the body over several ``http.request`` messages."""
    parts = list(chunks) if chunks is not None else [body]
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if chunks is None and (body or method in ("POST", "PUT")):
        raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver"), *raw_headers],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    messages = [
        {"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
        for i, p in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def receive():
        if messages:
            return messages.pop(0)
        await done.wait()  # like a server: disconnect only once the response is over
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    async def run():
        try:
            await app(scope, receive, send)
        finally:
            done.set()

    asyncio.run(run())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers_out = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]]
    return Reply(start["status"], headers_out, body_out, sent)


class Client:
    """The same request API over a WSGI or an ASGI app."""

    def __init__(self, app, kind: str) -> None:
        self.app, self.kind = app, kind

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict | None = None,
        chunked: bool = False,
        query: str = "",
    ) -> Reply:
        if self.kind == "wsgi":
            return call_wsgi(self.app, method, path, body, headers, chunked=chunked, query=query)
        chunks = [body[i : i + 7] for i in range(0, len(body), 7)] or [b""] if chunked else None
        return call_asgi(self.app, method, path, body, headers, chunks=chunks, query=query)

    def post_json(self, path: str, doc: Any, **kwargs) -> Reply:
        import json

        return self.request(
            "POST", path, json.dumps(doc).encode(), {"Content-Type": "application/json"}, **kwargs
        )
