"""A bare WSGI app that counts through a Monitor, for multi-process tests.

POST /observe with {"x": number} counts it; GET /metrics renders. Every response
names the worker's pid so tests can see that workers were recycled.
"""

import json
import os

from boxkite_middleware import Baseline, Monitor

monitor = Monitor(
    Baseline.load(os.environ["BOXKITE_TEST_BASELINE"]), model="mp", routes=["/observe"]
)
ROUTE = monitor.route_index("/observe")
X = monitor.column_index("feature", "x")


def app(environ, start_response):
    pid = ("X-Worker-Pid", str(os.getpid()))
    if environ["PATH_INFO"] == "/metrics":
        body, headers = monitor.render(environ.get("HTTP_ACCEPT"))
        start_response("200 OK", headers + [pid])
        return [body]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    value = json.loads(environ["wsgi.input"].read(length))["x"]
    monitor.record(ROUTE, 1, [(X, (value,))])
    start_response("200 OK", [("Content-Type", "text/plain"), pid])
    return [b"ok"]
