"""The Lambda handler end to end (API Gateway proxy events): every endpoint and every bad-input case."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from recsys.serving.http_server import LocalContext, proxy_event


@pytest.fixture()
def handler_module(service, monkeypatch):
    """The real Lambda handler module, its app serving the test's service (as its cold start would)."""
    import lambdas.api.handler as handler_module
    from recsys.serving.api import create_app

    monkeypatch.setattr(handler_module, "app", create_app(service, handler_module.metrics))
    return handler_module


@pytest.fixture()
def call(handler_module):
    """Invoke the real Lambda handler with a proxy event; returns (status, parsed body)."""

    def invoke(method: str, path: str, query: str = "", body: str | None = None, headers=None):
        event = proxy_event(method, path, query, headers or {"Content-Type": "application/json"}, body)
        result = handler_module.handler(event, LocalContext())
        return result["statusCode"], json.loads(result["body"]) if result.get("body") else None

    return invoke


def _assert_error(status: int, body: dict, expected_status: int) -> None:
    assert status == expected_status, body
    assert set(body) == {"error"}
    assert body["error"]["code"] and body["error"]["message"]


def test_health(call, tiny_world):
    status, body = call("GET", "/health")
    assert status == 200
    assert body["status"] == "healthy"
    assert body["model_version"] == tiny_world.version
    assert body["dependencies"]["store"]["status"] == "ok"
    assert body["dependencies"]["cache"]["status"] == "ok"


def test_recommendations_contract(call, tiny_world):
    status, body = call("GET", f"/recommendations/{tiny_world.user_ids[7]}", "k=7&exclude_watched=true")
    assert status == 200, body
    assert set(body) >= {"user_id", "model_version", "recommendation_id", "source", "items"}
    assert body["source"] in ("model", "cache")
    assert len(body["items"]) == 7
    assert set(body["items"][0]) == {"video_id", "score", "rank", "category", "reason", "source"}
    status, body = call("GET", "/recommendations/12345", "category=music&k=3")
    assert status == 200 and body["source"] in ("popular", "cache")
    assert {i["category"] for i in body["items"]} == {"music"}


def test_interactions_accepted_with_int_and_str_ids(call, tiny_world):
    status, body = call(
        "POST", "/interactions", body=json.dumps({"user_id": 12345, "video_id": 101, "category": "gaming"})
    )
    assert status == 202 and body["status"] == "accepted" and len(body["event_id"]) == 32
    payload = {
        "user_id": "u-7",
        "video_id": tiny_world.video_ids[0],
        "event_type": "like",
        "watch_time": 12.5,
        "timestamp": "2026-01-01T10:00:00Z",
        "recommendation_id": "abc",
    }
    status, body = call("POST", "/interactions", body=json.dumps(payload))
    assert status == 202, body


def test_cached_endpoint(call, service, tiny_world):
    from recsys.serving.batch import fill_cache

    user = tiny_world.user_ids[8]
    assert fill_cache(service, [user], k=5) == 1
    status, body = call("GET", f"/cached/{user}")
    assert status == 200, body
    assert body["source"] == "precomputed" and len(body["items"]) == 5
    status, body = call("GET", f"/cached/nobody-{uuid.uuid4().hex[:6]}")
    _assert_error(status, body, 404)


def test_cached_entries_of_both_stored_forms_read_back(call, service, tiny_world):
    import time

    from recsys.aws import client
    from recsys.feature_store.online import serialize_item

    fresh, older, broken = tiny_world.user_ids[9], tiny_world.user_ids[10], tiny_world.user_ids[11]
    from recsys.serving.batch import fill_cache

    assert fill_cache(service, [fresh], k=3) == 1
    ddb = client("dynamodb", service.settings)
    stored = ddb.get_item(TableName=service.precomputed_table, Key={"user_id": {"S": fresh}})["Item"]
    assert set(stored["items_json"]) == {"S"} and "items" not in stored  # one JSON attribute
    version = service.models.current().version
    entry = {"recommendation_id": "r1", "model_version": version, "k": 1, "generated_at": time.time(),
             "expires_at": int(time.time()) + 3600}  # fmt: skip
    item = {"video_id": tiny_world.video_ids[0], "score": 0.5, "rank": 1, "category": "music", "reason": "x",
            "source": "popularity"}  # fmt: skip
    ddb.put_item(
        TableName=service.precomputed_table, Item=serialize_item({**entry, "user_id": older, "items": [item]})
    )
    ddb.put_item(
        TableName=service.precomputed_table,
        Item=serialize_item({**entry, "user_id": broken, "items_json": "{"}),
    )
    status, body = call("GET", f"/cached/{older}")  # written as a list of maps by an older fill
    assert status == 200 and body["source"] == "precomputed" and body["items"] == [item]
    status, body = call("GET", f"/cached/{broken}")  # unreadable: computed now instead of a 500
    assert status == 200 and body["source"] != "precomputed" and body["items"]


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "expected"),
    [
        ("POST", "/interactions", "", "{not json", 400),
        ("POST", "/interactions", "", json.dumps({"video_id": 1}), 422),  # missing user_id
        ("POST", "/interactions", "", json.dumps({"user_id": [1], "video_id": 1}), 422),  # wrong type
        ("POST", "/interactions", "", json.dumps({"user_id": 1.5, "video_id": 1}), 422),  # float id
        ("POST", "/interactions", "", json.dumps({"user_id": 1, "video_id": 1, "event_type": "x"}), 422),
        ("POST", "/interactions", "", json.dumps({"user_id": 1, "video_id": 1, "watch_time": -3}), 422),
        ("POST", "/interactions", "", json.dumps({"user_id": 1, "video_id": 1, "surprise": True}), 422),
        ("POST", "/interactions", "", json.dumps([1, 2]), 422),
        ("POST", "/interactions", "", "", 422),
        (
            "POST",
            "/interactions",
            "",
            json.dumps({"user_id": 1, "video_id": 1, "category": "x" * 17000}),
            413,
        ),
        ("GET", "/recommendations/1", "k=0", None, 422),
        ("GET", "/recommendations/1", "k=101", None, 422),
        ("GET", "/recommendations/1", "k=abc", None, 422),
        ("GET", "/recommendations/1", "exclude_watched=maybe", None, 422),
        ("GET", "/recommendations/bad%20id", "", None, 422),
        ("GET", "/nowhere", "", None, 404),
        ("GET", "/recommendations", "", None, 404),
        ("DELETE", "/recommendations/1", "", None, 405),
        ("GET", "/interactions", "", None, 405),
        ("POST", "/health", "", "{}", 405),
    ],
)
def test_bad_input_is_a_json_4xx(call, tiny_world, method, path, query, body, expected):
    status, payload = call(method, path, query, body)
    _assert_error(status, payload, expected)


def test_openapi_describes_every_route(handler_module):
    from recsys.serving.api import openapi_json

    spec = json.loads(openapi_json(handler_module.app))
    assert {"/health", "/recommendations/{user_id}", "/cached/{user_id}", "/interactions"} <= set(
        spec["paths"]
    )


def _schema_names(operation: dict) -> dict[str, str]:
    return {
        status: response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for status, response in operation["responses"].items()
    }


def test_openapi_lists_each_route_response_model_and_the_error_shape():
    from recsys.serving.api import create_app, openapi_json

    spec = json.loads(openapi_json(create_app(_StubService(**_GOOD))))
    paths = spec["paths"]
    recs = _schema_names(paths["/recommendations/{user_id}"]["get"])
    assert recs.pop("200") == "RecommendationResponse"
    cached = _schema_names(paths["/cached/{user_id}"]["get"])
    assert cached.pop("200") == "CachedRecommendations" and "404" in cached
    health = _schema_names(paths["/health"]["get"])
    assert (health.pop("200"), health.pop("503")) == ("HealthResponse", "HealthResponse")
    accepted = _schema_names(paths["/interactions"]["post"])
    assert accepted.pop("202") == "InteractionAccepted" and {"400", "413"} <= set(accepted)
    for errors in (recs, cached, health, accepted):  # every other status has the API's one error shape
        assert {"422", "500"} <= set(errors) and set(errors.values()) == {"ErrorResponse"}
    schemas = spec["components"]["schemas"]
    assert set(schemas["RecommendationItem"]["required"]) == {
        "video_id",
        "score",
        "rank",
        "category",
        "reason",
    }
    assert schemas["ErrorResponse"]["properties"]["error"]["$ref"].endswith("/ErrorDetail")


class _StubService:
    """A service whose answers are whatever the test says (no local stack)."""

    def __init__(self, **answers):
        from recsys.config import load_settings

        self.answers = answers
        self.settings = load_settings("local")

    def _answer(self, name):
        value = self.answers[name]
        return value() if callable(value) else value

    def recommend(self, user_id, **kwargs):
        return self._answer("recommend")

    def cached(self, user_id):
        return self._answer("cached")

    def health(self):
        return self._answer("health")

    def record_interaction(self, event):
        return self._answer("record_interaction")


_ITEM = {
    "video_id": "101",
    "score": 0.5,
    "rank": 1,
    "category": "music",
    "reason": "trending",
    "source": "popular",
}
_GOOD = {
    "recommend": {
        "user_id": "u1",
        "variant": "canary",
        "model_version": "v1",
        "recommendation_id": "r1",
        "source": "model",
        "items": [_ITEM],
        "generated_at": 1.0,
        "degraded": False,
    },
    "cached": {
        "user_id": "u1",
        "variant": "production",
        "model_version": "v1",
        "recommendation_id": "r1",
        "source": "precomputed",
        "items": [_ITEM],
        "generated_at": 1.0,
        "degraded": False,
    },
    "health": {
        "status": "unhealthy",
        "model_version": None,
        "registry_version": None,
        "canary": None,
        "degraded": ["store"],
        "detail": None,
        "model": {},
        "dependencies": {"store": {"status": "down", "detail": "x"}},
    },
    "record_interaction": {"event_id": "e" * 32},
}
_ROUTES = {
    "recommend": ("GET", "/recommendations/u1", None),
    "cached": ("GET", "/cached/u1", None),
    "health": ("GET", "/health", None),
    "record_interaction": ("POST", "/interactions", json.dumps({"user_id": 1, "video_id": 2})),
}


@pytest.fixture()
def stub_call():
    """Call a fresh app (no metrics) whose service is a stub; returns (status, parsed body)."""
    from recsys.serving.api import create_app

    def invoke(name: str, **answers):
        app = create_app(_StubService(**{**_GOOD, **answers}))
        method, path, body = _ROUTES[name]
        result = app.resolve(proxy_event(method, path, "", {"Content-Type": "application/json"}, body), None)
        return result["statusCode"], json.loads(result["body"])

    return invoke


def test_stub_responses_that_fit_their_models_pass_unchanged(stub_call):
    assert stub_call("recommend") == (200, _GOOD["recommend"])
    assert stub_call("cached") == (200, _GOOD["cached"])
    assert stub_call("health") == (503, _GOOD["health"])  # unhealthy: 503 with the health model
    assert stub_call("record_interaction") == (202, {"event_id": "e" * 32, "status": "accepted"})


@pytest.mark.parametrize(
    ("name", "payload", "field"),
    [
        ("recommend", {**_GOOD["recommend"], "items": [{**_ITEM, "rank": 0}]}, "items.0.rank"),
        ("recommend", {k: v for k, v in _GOOD["recommend"].items() if k != "source"}, "source"),
        ("recommend", {**_GOOD["recommend"], "source": "guess"}, "source"),
        ("recommend", {**_GOOD["recommend"], "variant": "beta"}, "variant"),
        ("cached", {**_GOOD["cached"], "items": [{"video_id": "101"}]}, "items.0.score"),
        ("health", {**_GOOD["health"], "status": "great"}, "status"),
        ("recommend", ["not", "an", "object"], "response"),
    ],
)
def test_a_response_that_does_not_fit_its_model_is_a_500_not_a_wrong_200(stub_call, name, payload, field):
    """A malformed payload from the service is our bug: a 500 in the API's error shape naming the field."""
    status, body = stub_call(name, **{name: payload})
    _assert_error(status, body, 500)
    assert body["error"]["code"] == "internal"
    assert "did not fit its schema" in body["error"]["message"] and field in body["error"]["message"]


def test_an_interaction_record_without_event_id_is_a_500(stub_call):
    status, body = stub_call("record_interaction", record_interaction={"event_id": None})
    _assert_error(status, body, 500)


def test_handler_import_loads_no_tensorflow_or_catboost():
    code = (
        "import sys, lambdas.api.handler, lambdas.event_processor.handler\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'catboost', 'keras', 'polars'))\n"
        "print(','.join(bad))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""


def test_redis_down_through_the_handler(local_stack, tiny_world, monkeypatch, handler_module):
    from recsys.config import load_settings
    from recsys.local.processes import free_port
    from recsys.serving.api import create_app
    from recsys.serving.cache import RecommendationCache
    from recsys.serving.service import RecommendationService, ServingConfig
    from recsys.serving.tracking import InferenceTracker

    monkeypatch.setenv("RECSYS_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    dead = RecommendationCache(load_settings("local"), timeout_s=0.1)
    service = RecommendationService(local_stack, ServingConfig(), cache=dead,
                                    tracker=InferenceTracker(local_stack, background=False))  # fmt: skip
    monkeypatch.setattr(handler_module, "app", create_app(service))
    for path in (
        f"/recommendations/{tiny_world.user_ids[13]}",
        "/recommendations/someone-new",
        "/health",
    ):
        result = handler_module.handler(proxy_event("GET", path, "k=4"), LocalContext())
        assert result["statusCode"] == 200, result
    assert json.loads(result["body"])["status"] == "degraded"
    body = {"user_id": "x1", "video_id": tiny_world.video_ids[0]}
    result = handler_module.handler(
        proxy_event("POST", "/interactions", body=json.dumps(body)), LocalContext()
    )
    assert result["statusCode"] == 202


def test_stream_unavailable_is_503_and_nothing_is_written(call, local_stack, monkeypatch):
    from recsys.feature_store.online import OnlineFeatureStore

    monkeypatch.setitem(local_stack.names.streams, "events", "no-such-stream")
    user = f"nostream-{uuid.uuid4().hex[:6]}"
    status, body = call("POST", "/interactions", body=json.dumps({"user_id": user, "video_id": 5}))
    _assert_error(status, body, 503)
    assert body["error"]["code"] == "unavailable"
    assert OnlineFeatureStore(local_stack).recent_activity(user, 5) == []
