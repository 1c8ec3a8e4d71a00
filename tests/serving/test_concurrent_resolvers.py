"""Two requests resolved at once on two threads each read their own request (the local server's slots)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from recsys.serving.api import ApiResolver


def _event(path: str) -> dict:
    return {
        "httpMethod": "GET", "path": path, "resource": path, "headers": {}, "queryStringParameters": None,
        "multiValueHeaders": {}, "multiValueQueryStringParameters": None, "pathParameters": None,
        "body": None, "isBase64Encoded": False, "requestContext": {"stage": "local", "requestId": path},
    }  # fmt: skip


def test_each_resolver_reads_its_own_request_while_another_thread_resolves():
    both_started = threading.Barrier(2, timeout=10)
    resolvers = []
    for _ in range(2):
        app = ApiResolver()

        @app.get("/users/<user>")
        def who(user: str, app: ApiResolver = app) -> dict:
            both_started.wait()  # the other request has been taken in by now
            return {"route_user": user, "request_path": app.current_event.path}

        resolvers.append(app)
    with ThreadPoolExecutor(2) as pool:
        requests = [_event("/users/a"), _event("/users/b")]
        answers = list(pool.map(lambda app, event: app.resolve(event, None), resolvers, requests))
    bodies = [json.loads(a["body"]) for a in answers]
    assert bodies == [
        {"route_user": "a", "request_path": "/users/a"},
        {"route_user": "b", "request_path": "/users/b"},
    ]
