"""`GET /recommendations/{user_id}` answered without Powertools' routing gives what the routed path gives.

Each request goes to two resolvers over the same recording service: one with the direct route (as served),
one without it (every request routed and validated by Powertools). The service must be called with the same
arguments, and the answers (status, JSON body, content type) must be equal, for plainly valid requests (which
the direct route answers) and for every other form (which it leaves to Powertools).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from recsys.errors import UnavailableError
from recsys.serving.api import create_app
from recsys.serving.direct_route import RecommendationQuery, recommendation_query
from recsys.serving.http_server import proxy_event

_ANSWER = {
    "user_id": "u1",
    "variant": "production",
    "model_version": "v1",
    "recommendation_id": "r1",
    "source": "model",
    "items": [
        {"video_id": "101", "score": 0.125, "rank": 1, "category": "music", "reason": "trending",
         "source": "popularity"},
        {"video_id": "102", "score": 1e-07, "rank": 2, "category": "news", "reason": "x", "source": None},
    ],
    "generated_at": 1796290804.575664,
}  # fmt: skip


class _RecordingService:
    """Answers every recommendation request with `answer` (or raises it) and records the arguments."""

    def __init__(self, answer: Any) -> None:
        from recsys.config import load_settings

        self.settings = load_settings("local")
        self.answer = answer
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def recommend(self, user_id, **kwargs):
        self.calls.append((user_id, kwargs))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _both(query: str, path: str = "/recommendations/u1", answer: Any = _ANSWER, method: str = "GET"):
    """(direct result, routed result, direct service calls, routed service calls) of one request."""
    results, calls = [], []
    for direct in (True, False):
        service = _RecordingService(answer)
        app = create_app(service)
        if not direct:
            app.direct = None
        results.append(app.resolve(proxy_event(method, path, query, {}, None), None))
        calls.append(service.calls)
    return (*results, *calls)


def _seen(result: dict[str, Any]) -> tuple[int, Any, str]:
    headers = {**(result.get("multiValueHeaders") or {}), **(result.get("headers") or {})}
    content_type = headers.get("Content-Type")
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    return result["statusCode"], json.loads(result["body"]), content_type


PLAIN = ["", "k=5", "k=100", "k=1&category=music", "exclude_watched=false", "exclude_watched=1&k=20",
         "category=a%20b&exclude_watched=0"]  # fmt: skip
UNUSUAL = ["k=05", "k=+5", "k=5.0", "k=0", "k=101", "k=1000", "k=abc", "k=", "category=", "category=" + "x" * 65,
           "exclude_watched=True", "exclude_watched=yes", "exclude_watched=maybe", "k=5&k=6", "other=1",
           "category=a&category=b"]  # fmt: skip


@pytest.mark.parametrize("query", PLAIN + UNUSUAL)
def test_the_direct_route_answers_as_the_routed_path(query):
    direct, routed, direct_calls, routed_calls = _both(query)
    assert _seen(direct) == _seen(routed)
    assert direct_calls == routed_calls
    assert direct["headers"]["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("query", PLAIN)
def test_plain_requests_take_the_direct_route_and_others_do_not(query):
    event = proxy_event("GET", "/recommendations/u1", query, {}, None)
    assert isinstance(recommendation_query(event), RecommendationQuery)


@pytest.mark.parametrize("query", UNUSUAL)
def test_unusual_requests_are_left_to_the_resolver(query):
    assert recommendation_query(proxy_event("GET", "/recommendations/u1", query, {}, None)) is None


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/recommendations/bad%20id"), ("GET", "/recommendations/" + "u" * 129), ("GET", "/recommendations/"),
     ("GET", "/recommendations/u1/"), ("POST", "/recommendations/u1"), ("DELETE", "/recommendations/u1"),
     ("GET", "/recommendationsX/u1")],
)  # fmt: skip
def test_other_paths_and_methods_are_left_to_the_resolver_and_answered_alike(method, path):
    assert recommendation_query(proxy_event(method, path, "", {}, None)) is None
    direct, routed, _, _ = _both("", path=path, method=method)
    assert _seen(direct) == _seen(routed)


def test_the_query_read_is_the_one_the_service_gets():
    read = recommendation_query(
        proxy_event(
            "GET", "/recommendations/a.b:c@d-e_f", "k=7&category=news&exclude_watched=false", {}, None
        )
    )
    assert read == RecommendationQuery("a.b:c@d-e_f", 7, "news", False)
    assert recommendation_query(
        proxy_event("GET", "/recommendations/u", "", {}, None)
    ) == RecommendationQuery("u")


@pytest.mark.parametrize(
    "answer",
    [
        UnavailableError("no model deployed", hint="run the pipeline"),  # 503 with Retry-After
        {**_ANSWER, "items": [{**_ANSWER["items"][0], "rank": 0}]},  # does not fit its model: 500
        {**_ANSWER, "source": "guess"},
        RuntimeError("a bug"),  # 500 internal
    ],
)
def test_errors_are_answered_alike(answer):
    direct, routed, _, _ = _both("k=3", answer=answer)
    assert _seen(direct) == _seen(routed)
    assert direct["statusCode"] in (500, 503)
    if direct["statusCode"] == 503:
        retry = {**(routed.get("multiValueHeaders") or {}), **routed["headers"]}["Retry-After"]
        assert direct["headers"]["Retry-After"] == (retry[0] if isinstance(retry, list) else retry)
