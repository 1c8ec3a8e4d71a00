"""Hostile input through the real Lambda handler: every bad request is a 4xx in the API's error shape, and
whatever is accepted is stored (the activity item exists, the stream record is valid JSON)."""

from __future__ import annotations

import json

import pytest

from recsys.serving.http_server import LocalContext, proxy_event, result_bytes

JSON = {"Content-Type": "application/json"}
EVENT = '{"user_id": "bad-input-user", "video_id": "1001"'


@pytest.fixture()
def call(service):
    """Invoke a resolver over the session's service with a proxy event; returns (status, headers, body)."""
    from recsys.serving.api import create_app

    app = create_app(service)

    def invoke(method: str, path: str, query: str = "", body: str | None = None, headers=None):
        event = proxy_event(method, path, query, JSON if headers is None else headers, body)
        status, got, data = result_bytes(app.resolve(event, LocalContext()))
        return status, got, json.loads(data) if data else None

    return invoke


BAD_BODIES = [
    ("timestamp NaN", EVENT + ', "timestamp": NaN}', 400),
    ("timestamp Infinity", EVENT + ', "timestamp": Infinity}', 400),
    ("timestamp -Infinity", EVENT + ', "timestamp": -Infinity}', 400),
    ("timestamp 1e400 (inf as a float)", EVENT + ', "timestamp": 1e400}', 422),
    ("timestamp 10^400 (an integer)", EVENT + f', "timestamp": {10**400}}}', 422),
    ("timestamp negative", EVENT + ', "timestamp": -1}', 422),
    ("timestamp in the future", EVENT + ', "timestamp": 99999999999}', 422),
    ("timestamp year 9999", EVENT + ', "timestamp": "9999-01-01T00:00:00Z"}', 422),
    ("timestamp not a date", EVENT + ', "timestamp": "yesterday"}', 422),
    ("watch_time NaN", EVENT + ', "watch_time": NaN}', 400),
    ("watch_time 1e400", EVENT + ', "watch_time": 1e400}', 422),
    ("watch_time negative", EVENT + ', "watch_time": -5}', 422),
    ("watch_time a year", EVENT + ', "watch_time": 31536000}', 422),
    ("watch_time a string", EVENT + ', "watch_time": "10"}', 422),
    ("user_id of 5000 digits", '{"user_id": ' + "9" * 5000 + ', "video_id": 1}', 400),
    ("user_id of 300 digits", '{"user_id": ' + "9" * 300 + ', "video_id": 1}', 422),
    ("user_id 2^63", '{"user_id": 9223372036854775808, "video_id": 1}', 422),
    ("user_id a float", '{"user_id": 1.5, "video_id": 1}', 422),
    ("user_id empty", '{"user_id": "", "video_id": 1}', 422),
    ("user_id with a space", '{"user_id": "a b", "video_id": 1}', 422),
    ("user_id of 200 characters", '{"user_id": "' + "u" * 200 + '", "video_id": 1}', 422),
    ("user_id null", '{"user_id": null, "video_id": 1}', 422),
    ("user_id an object", '{"user_id": {"a": 1}, "video_id": 1}', 422),
    ("video_id missing", '{"user_id": 1}', 422),
    ("event_type unknown", EVENT + ', "event_type": "purchase"}', 422),
    ("category empty", EVENT + ', "category": ""}', 422),
    ("an unknown field", EVENT + ', "admin": true}', 422),
    ("a JSON array of events", "[" + EVENT + "}, " + EVENT + "}]", 422),
    ("a JSON string", '"hello"', 422),
    ("a JSON number", "42", 422),
    ("JSON null", "null", 422),
    ("8,000 nested arrays", "[" * 8000 + "]" * 8000, 400),
    ("20 nested objects", '{"a":' * 20 + "1" + "}" * 20, 400),
    ("unterminated JSON", EVENT, 400),
    ("not JSON", "user_id=1&video_id=2", 400),
    ("duplicate braces", EVENT + "}}", 400),
]


@pytest.mark.parametrize(
    ("body", "status"), [(b, s) for _, b, s in BAD_BODIES], ids=[n for n, _, _ in BAD_BODIES]
)
def test_bad_interaction_bodies_are_refused_with_a_4xx(call, body, status):
    got, headers, answer = call("POST", "/interactions", body=body)
    assert got == status, answer
    assert set(answer) == {"error"} and answer["error"]["code"] and answer["error"]["message"]
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("content_type", "status"),
    [("text/plain", 415), ("multipart/form-data; boundary=x", 415), ("application/x-www-form-urlencoded", 415),
     ("application/xml", 415), ("application/json; charset=utf-8", 202), ("application/merge-patch+json", 415)],
)  # fmt: skip
def test_content_types(call, tiny_world, content_type, status):
    got, _, answer = call("POST", "/interactions", body=EVENT + "}", headers={"Content-Type": content_type})
    assert got == status, answer


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/recommendations/1", "k=" + "9" * 5000, 422),
        ("/recommendations/1", "k=0", 422),
        ("/recommendations/1", "k=1e3", 422),
        ("/recommendations/1", "k=NaN", 422),
        ("/recommendations/1", "exclude_watched=maybe", 422),
        ("/recommendations/1", "category=" + "c" * 65, 422),
        ("/recommendations/" + "u" * 129, "", 422),
        ("/recommendations/a%20b", "", 422),
        ("/cached/" + "9" * 5000, "", 422),
        ("/users/1", "", 403),  # erasing needs the operator key
        ("/nowhere", "", 404),
    ],
)
def test_bad_queries_and_paths_are_4xx(call, tiny_world, path, query, status):
    method = "DELETE" if path.startswith("/users/") else "GET"
    got, _, answer = call(method, path, query)
    assert got == status, answer
    assert set(answer) == {"error"}


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "TRACE", "PUT", "PATCH"])
def test_other_methods_get_a_json_405(call, tiny_world, method):
    got, headers, answer = call(method, "/interactions", body=None)
    assert got == 405 and answer["error"]["code"] == "method_not_allowed"
    assert headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [("timestamp", 1e-300, 0.0), ("watch_time", 1e-300, 0.0), ("watch_time", 12.3456789, 12.346)],
)
def test_what_is_accepted_is_stored(call, service, tiny_world, field, value, stored):
    """Tiny numbers DynamoDB cannot hold are kept to the precision the stores keep, not accepted then lost."""
    user = f"stored-{field}-{value}"
    body = json.dumps({"user_id": user, "video_id": tiny_world.video_ids[0], field: value})
    got, _, answer = call("POST", "/interactions", body=body)
    assert got == 202, answer
    activity = service.store.recent_activity(user, 5)
    assert len(activity) == 1 and float(activity[0][field]) == pytest.approx(stored)
