"""Equivalence fuzzing: with or without the middleware, every reply is the same.

Random methods, paths (observed or not), content types and encodings, and bodies
of every awkward kind, against apps that echo, raise, stream, answer 204/304 or
HEAD, in every supported framework. The reply (status, headers, body bytes) or
the exception must be identical, and only the app's own exceptions may escape.
500 examples per framework (3,000) by default; `pytest -m slow` runs 2,000
per framework (12,000 in all).
"""

import gzip
import json
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .apps.model_apps import ASGI_APPS, WSGI_APPS
from .middleware_setup import make_baseline, write_config
from .protocol import Client

FRAMEWORKS = [(name, "wsgi", f) for name, f in WSGI_APPS.items()] + [
    (name, "asgi", f) for name, f in ASGI_APPS.items()
]
DEEP = b"[" * 10_000 + b"]" * 10_000
BOMB = gzip.compress(b"0" * 20_000_000)  # 20 MB of zeros in ~20 kB

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
record = st.fixed_dictionaries(
    {},
    optional={
        "age": st.floats(-1, 1) | st.none() | st.text(max_size=3) | st.booleans(),
        "bmi": st.floats(allow_nan=False) | st.integers(-(10**30), 10**30),
        "region": st.sampled_from(["eu", "us", "apac", "", "mars"]) | st.integers(),
    },
)
bodies = st.one_of(
    record.map(lambda r: json.dumps(r).encode()),
    st.lists(record, max_size=5).map(lambda rows: json.dumps({"instances": rows}).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),  # invalid JSON, invalid UTF-8
    st.sampled_from(
        [
            b"",
            b"{",
            b'{"age": NaN}',
            b'{"age": Infinity}',
            b'{"age": 1e999}',
            b'{"age": ' + b"9" * 400 + b"}",
            b"\xff\xfe{}",
            DEEP,
            b"null",
            b"[]",
        ]
    ),
)
encodings = st.sampled_from(
    [None, None, "gzip", "gzip-truncated", "bomb", "deflate", "br", "identity"]
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/vnd.api+json",
        "text/plain",
        "application/x-www-form-urlencoded",
        None,
    ]
)
paths = st.sampled_from(
    [
        "/predict",
        "/batch",
        "/echo",
        "/stream",
        "/raise",
        "/status/204",
        "/status/304",
        "/status/500",
        "/flat",
        "/v1/models/m:predict",
        "/v2/models/m/infer",
        "/invocations",
        "/not-observed",
    ]
)
methods = st.sampled_from(["POST", "POST", "PUT", "GET", "HEAD", "DELETE"])


def _encode(body: bytes, encoding: str | None) -> tuple[bytes, str | None]:
    if encoding == "gzip":
        return gzip.compress(body), "gzip"
    if encoding == "gzip-truncated":
        return gzip.compress(body)[:-4], "gzip"
    if encoding == "bomb":
        return BOMB, "gzip"
    if encoding == "deflate":
        return zlib.compress(body), "deflate"
    return body, encoding


def _outcome(client: Client, method, path, body, headers, chunked):
    try:
        return client.request(method, path, body, headers, chunked=chunked)
    except Exception as exc:  # only the app's own exceptions, the same with or without us
        return ("raised", type(exc).__name__, str(exc))


def _fuzz(pair, method, path, body, content_type, encoding, chunked):
    client, plain = pair
    body, content_encoding = _encode(body, encoding)
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if content_encoding is not None:
        headers["Content-Encoding"] = content_encoding
    ours = _outcome(client, method, path, body, headers, chunked)
    theirs = _outcome(plain, method, path, body, headers, chunked)
    if isinstance(theirs, tuple):
        assert ours == theirs
    else:
        assert not isinstance(ours, tuple), ours
        assert (ours.status, ours.headers, ours.body) == (
            theirs.status,
            theirs.headers,
            theirs.body,
        )


@pytest.fixture(scope="module", params=FRAMEWORKS, ids=[f[0] for f in FRAMEWORKS])
def pair(request, tmp_path_factory):
    _, kind, factory = request.param
    config = write_config(tmp_path_factory.mktemp("fuzz"), make_baseline())
    return Client(factory(config), kind), Client(factory(None), kind)


def _check_counters_sane(client: Client):
    """Every count is a finite, non-negative whole number after all that.

    (``_sum`` may overflow to infinity on values near 1e308, as in any client library.)
    """
    reply = client.request("GET", "/metrics")
    assert reply.status == 200
    for line in reply.body.decode().splitlines():
        if line.startswith("#") or "_sum{" in line or not line.startswith("boxkite_"):
            continue
        value = float(line.rsplit(" ", 1)[1])
        assert value >= 0 and value == int(value), line


FUZZ = dict(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


@settings(max_examples=500, **FUZZ)
@given(methods, paths, bodies, content_types, encodings, st.booleans())
def test_replies_are_identical_with_and_without_the_middleware(
    pair, method, path, body, content_type, encoding, chunked
):
    _fuzz(pair, method, path, body, content_type, encoding, chunked)


@pytest.mark.slow
@settings(max_examples=2000, **FUZZ)
@given(methods, paths, bodies, content_types, encodings, st.booleans())
def test_replies_are_identical_long_run(pair, method, path, body, content_type, encoding, chunked):
    _fuzz(pair, method, path, body, content_type, encoding, chunked)


def test_after_fuzzing_the_counters_are_sane(pair):
    _check_counters_sane(pair[0])
