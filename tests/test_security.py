"""Protected /metrics, and no request data in metrics or logs."""

import base64
import logging

import httpx
import pytest

from boxkite_middleware import BoxkiteASGIMiddleware, BoxkiteWSGIMiddleware, ConfigError, observing
from boxkite_middleware.config import load_config

from .middleware_setup import make_baseline, scrape
from .protocol import call_asgi, call_wsgi

BASELINE = make_baseline()


def _plain_wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"result": 1.0}']


async def _plain_asgi(scope, receive, send):
    await receive()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"result": 1.0}'})


def _config(tmp_path, **metrics):
    BASELINE.save(tmp_path / "baseline.json")
    return {
        "baseline": str(tmp_path / "baseline.json"),
        "metrics": metrics,
        "routes": [
            {
                "path": "/predict",
                "features": {"age": "$.age", "region": "$.region"},
                "predictions": {"prediction": "$.result"},
            }
        ],
    }


ADAPTERS = [
    (BoxkiteWSGIMiddleware, _plain_wsgi, call_wsgi),
    (BoxkiteASGIMiddleware, _plain_asgi, call_asgi),
]


@pytest.mark.parametrize("middleware, app, call", ADAPTERS, ids=["wsgi", "asgi"])
def test_bearer_token_from_the_environment(tmp_path, monkeypatch, middleware, app, call):
    monkeypatch.setenv("SCRAPE_TOKEN", "s3cret-t0ken")
    wrapped = middleware(app, config=_config(tmp_path, bearer_token_env="SCRAPE_TOKEN"))
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "s3cret-t0ken"},
        {"Authorization": "Bearer s3cret-t0ke"},
    ):
        refused = call(wrapped, "GET", "/metrics", headers=headers)
        assert refused.status == 401 and refused.body == b"Unauthorized\n"
        assert refused.header("WWW-Authenticate") == "Bearer"
        assert b"boxkite" not in refused.body
    ok = call(wrapped, "GET", "/metrics", headers={"Authorization": "Bearer s3cret-t0ken"})
    assert ok.status == 200 and b"boxkite_feature_value_bucket" in ok.body


@pytest.mark.parametrize("middleware, app, call", ADAPTERS, ids=["wsgi", "asgi"])
def test_basic_auth_and_allow_list(tmp_path, monkeypatch, middleware, app, call):
    monkeypatch.setenv("SCRAPE_AUTH", "prometheus:pa:ss")
    good = "Basic " + base64.b64encode(b"prometheus:pa:ss").decode()
    wrapped = middleware(
        app, config=_config(tmp_path, basic_auth_env="SCRAPE_AUTH", allow=["127.0.0.0/8", "::1"])
    )
    denied = call(wrapped, "GET", "/metrics")
    assert denied.status == 401 and denied.header("WWW-Authenticate") == 'Basic realm="metrics"'
    assert call(wrapped, "GET", "/metrics", headers={"Authorization": good}).status == 200
    elsewhere = middleware(
        app, config=_config(tmp_path, basic_auth_env="SCRAPE_AUTH", allow=["10.0.0.0/8"])
    )
    forbidden = call(elsewhere, "GET", "/metrics", headers={"Authorization": good})
    assert forbidden.status == 403 and forbidden.body == b"Forbidden\n"
    # the app's own routes are not affected
    assert (
        call(
            elsewhere, "POST", "/predict", b'{"age": 1}', {"Content-Type": "application/json"}
        ).status
        == 200
    )


def test_secrets_stay_out_of_the_config_file(tmp_path, monkeypatch):
    BASELINE.save(tmp_path / "baseline.json")
    path = tmp_path / "boxkite.yaml"
    path.write_text(
        "baseline: baseline.json\nmetrics:\n  path: /metrics\n  token: abc\n"
        "routes: [{path: /p, preset: flat}]\n"
    )
    with pytest.raises(ConfigError, match=r"boxkite.yaml:4: secrets do not belong"):
        load_config(str(path))
    path.write_text(
        "baseline: baseline.json\nmetrics:\n  bearer_token_env: NOT_SET_ANYWHERE\n"
        "routes: [{path: /p, preset: flat}]\n"
    )
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError, match=r"boxkite.yaml:3: environment variable 'NOT_SET"):
        load_config(str(path))
    path.write_text(
        "baseline: baseline.json\nmetrics:\n  allow:\n    - 10.0.0.0/8\n"
        "    - not-an-ip\nroutes: [{path: /p, preset: flat}]\n"
    )
    with pytest.raises(ConfigError, match=r"boxkite.yaml:5: 'not-an-ip' is not an IP"):
        load_config(str(path))


def test_metrics_on_a_port_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRAPE_TOKEN", "tok")
    config = _config(tmp_path, port=0, host="127.0.0.1", bearer_token_env="SCRAPE_TOKEN")
    wrapped = BoxkiteWSGIMiddleware(_plain_wsgi, config=config)
    server = wrapped.metrics_server
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        call_wsgi(
            wrapped, "POST", "/predict", b'{"age": 0.01}', {"Content-Type": "application/json"}
        )
        assert httpx.get(f"{url}/metrics").status_code == 401
        reply = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer tok"})
        assert reply.status_code == 200
        samples = scrape(reply.text)
        assert sum(samples["boxkite_feature_value_count"].values()) == 1
        assert httpx.get(f"{url}/other").status_code == 404
        # the app's port no longer answers /metrics itself
        assert call_wsgi(wrapped, "GET", "/metrics").body == b'{"result": 1.0}'
    finally:
        server.shutdown()
        server.server_close()


def test_request_values_never_reach_labels_or_logs(tmp_path, caplog, monkeypatch):
    wrapped = BoxkiteWSGIMiddleware(_plain_wsgi, config=_config(tmp_path))
    secret = "patient-name-Jane-Doe-1987"
    call_wsgi(
        wrapped,
        "POST",
        "/predict",
        f'{{"age": 0.1, "region": "{secret}"}}'.encode(),
        {"Content-Type": "application/json"},
    )

    def boom(body, *args):
        raise ValueError(f"cannot use {body!r}")  # a bug quoting the data it choked on

    monkeypatch.setattr(observing, "_parse", boom)
    with caplog.at_level(logging.DEBUG, logger="boxkite_middleware"):
        reply = call_wsgi(
            wrapped,
            "POST",
            "/predict",
            f'{{"region": "{secret}"}}'.encode(),
            {"Content-Type": "application/json"},
        )
    assert reply.status == 200
    assert "ValueError" in caplog.text and secret not in caplog.text
    body = call_wsgi(wrapped, "GET", "/metrics").body.decode()
    assert secret not in body
    samples = scrape(body)
    assert (
        sum(
            v
            for k, v in samples["boxkite_observation_errors_total"].items()
            if ("reason", "internal") in k
        )
        == 1
    )
