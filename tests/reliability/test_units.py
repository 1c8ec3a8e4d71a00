"""The pieces degradation rests on: redaction, once-per-interval logging, stale secrets, strict bodies."""

from __future__ import annotations

import logging

import pytest

from recsys.errors import UnavailableError
from recsys.secrets import SecretStore
from recsys.serving.request_guard import RequestRefused, check_body
from recsys.serving.resilience import DependencyMonitor, ThrottledLog, degradation, redact


@pytest.mark.parametrize(
    "text",
    [
        'Could not connect to the endpoint URL: "http://127.0.0.1:4566/"',
        "Error 111 connecting to 10.0.3.7:6379. Connection refused.",
        "redis://:s3cr3t-token@cache.internal:6379/0 refused",
        "auth_token=s3cr3t-token; password: s3cr3t-token",
        "x-api-key: s3cr3t-token",
    ],
)
def test_redact_leaves_no_endpoint_or_secret(text):
    out = redact(text)
    for leak in ("127.0.0.1", "10.0.3.7", "s3cr3t-token", "cache.internal", "http://"):
        assert leak not in out


def test_a_failing_dependency_is_logged_once_per_interval(caplog):
    now = [0.0]
    throttled = ThrottledLog(logging.getLogger("t"), interval_s=30, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t"):
        logged = [throttled.warning("dynamodb", "down") for _ in range(1000)]
        now[0] = 31.0
        throttled.warning("dynamodb", "down")
    assert sum(logged) == 1 and len(caplog.records) == 2
    assert "999 more" in caplog.records[1].getMessage()


def test_monitor_guards_notes_the_request_and_remembers_the_failure():
    monitor = DependencyMonitor(recent_s=30, clock=lambda: 0.0)

    def boom():
        raise ConnectionError("http://127.0.0.1:1/ refused")

    with degradation() as missing:
        assert monitor.guard("dynamodb", boom, []) == []
    assert missing == {"dynamodb"}
    assert "127.0.0.1" not in monitor.recent()["dynamodb"]
    assert monitor.guard("dynamodb", lambda: [1], []) == [1]  # outside a request: no error either


class _FlakySecrets:
    def __init__(self):
        self.up = True

    def get_secret_value(self, SecretId, **_stage):
        if not self.up:
            raise ConnectionError("endpoint unreachable")
        return {"SecretString": '{"external_api_key": "k1"}'}


def test_secrets_serve_the_last_value_while_secrets_manager_is_down():
    now = [0.0]
    backend = _FlakySecrets()
    store = SecretStore(backend, ttl_s=10, clock=lambda: now[0])
    assert store.get_json("s")["external_api_key"] == "k1"
    backend.up, now[0] = False, 100.0
    assert store.get_json("s")["external_api_key"] == "k1"
    with pytest.raises(UnavailableError):
        SecretStore(backend).get_json("s")  # never read: a clean error, not a traceback


@pytest.mark.parametrize("method", ["GET", "DELETE", "HEAD"])
def test_only_bodies_of_writes_are_checked(method):
    check_body({"httpMethod": method, "body": "not json", "headers": {"Content-Type": "text/plain"}})


def test_a_body_without_content_type_is_still_checked():
    with pytest.raises(RequestRefused) as refused:
        check_body({"httpMethod": "POST", "body": "[1, 2]", "headers": {}})
    assert refused.value.status == 422


def test_health_on_aws_shows_details_only_to_key_holders():
    """On AWS /health is public; a caller without the API key sees the status, not the dependencies."""
    import json

    from recsys.config import load_settings
    from recsys.serving.api import create_app
    from recsys.serving.http_server import LocalContext, proxy_event

    class Service:
        settings = load_settings("dev")  # resource names unresolved: no key can be read, none matches

        @staticmethod
        def health():
            return {
                "status": "degraded", "model_version": "v1", "registry_version": "v1", "degraded": ["cache"],
                "detail": None, "model": {"version": "v1"},
                "dependencies": {"cache": {"status": "down", "detail": "get: ConnectionError"}},
            }  # fmt: skip

    result = create_app(Service()).resolve(
        proxy_event("GET", "/health", "", {"x-api-key": "guess"}), LocalContext()
    )
    body = json.loads(result["body"])
    assert result["statusCode"] == 200 and body["status"] == "degraded"
    assert body["dependencies"] is None and body["model"] is None and body["degraded"] == []


def test_request_headers_reach_the_handler_alike_from_wsgi_and_asgi_and_never_a_proxy_from_the_environment():
    from recsys.serving.asgi import request_headers
    from recsys.serving.wsgi import _headers

    environ = {"HTTP_X_API_KEY": "k", "HTTP_PROXY": "http://evil:1", "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": "2", "PATH": "/usr/bin", "HTTP_ACCEPT": "a, b"}  # fmt: skip
    from_wsgi = _headers(environ)
    assert "Proxy" not in from_wsgi  # httpoxy: granian puts the process environment in the WSGI environ
    raw = [(b"x-api-key", b"k"), (b"content-type", b"application/json"), (b"content-length", b"2"),
           (b"accept", b"a"), (b"accept", b"b")]  # fmt: skip
    assert request_headers(raw) == from_wsgi == {
        "X-Api-Key": "k", "Content-Type": "application/json", "Content-Length": "2", "Accept": "a, b",
    }  # fmt: skip
