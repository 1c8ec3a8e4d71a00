"""`recsys serve --require-key`: every route but /health needs the api-keys secret's key, as API Gateway does."""

from __future__ import annotations

import json

from recsys.secrets import api_key
from recsys.serving.http_server import LocalContext, proxy_event


def test_require_key_guards_every_route_but_health(service, tiny_world):
    from recsys.cli.serve import _build

    _, handler, _ = _build(service.settings, 1, verbose=False, require_key=True, quiet=True)
    key = api_key(service.settings, "external_api_key")
    user = tiny_world.user_ids[-2]  # a user and k no other test asks for: its cached answer meets no one

    def status(path: str, headers: dict) -> tuple[int, dict]:
        result = handler(proxy_event("GET", path, "k=17", headers), LocalContext())
        return result["statusCode"], json.loads(result["body"])

    assert status(f"/recommendations/{user}", {})[0] == 403
    code, body = status(f"/recommendations/{user}", {"x-api-key": "wrong"})
    assert code == 403 and body["error"]["code"] == "forbidden" and key not in json.dumps(body)
    assert status(f"/recommendations/{user}", {"X-Api-Key": key})[0] == 200
    assert status("/health", {})[0] == 200
