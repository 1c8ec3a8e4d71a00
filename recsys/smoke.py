"""`recsys smoke-test`: a few real calls against a running API, each checked against its contract."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Check:
    """One call and whether its answer met the contract."""

    name: str
    method: str
    path: str
    status: int | None
    ok: bool
    latency_ms: float
    detail: str = ""
    body: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("body")
        return d


class ApiClient:
    """A tiny JSON-over-HTTP client (stdlib only, so the smoke test runs anywhere)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: Any = None) -> tuple[int | None, Any, float]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.api_key:
            req.add_header("x-api-key", self.api_key)
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            return None, str(getattr(exc, "reason", exc)), (time.perf_counter() - start) * 1000
        elapsed = (time.perf_counter() - start) * 1000
        try:
            parsed = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            parsed = raw.decode(errors="replace")
        return status, parsed, elapsed


def _check(client: ApiClient, name: str, method: str, path: str, expect, body: Any = None) -> Check:
    status, parsed, ms = client.call(method, path, body)
    if status is None:
        return Check(name, method, path, None, False, ms, f"no answer: {parsed}")
    try:
        ok, detail = expect(status, parsed)
    except (KeyError, TypeError, IndexError) as exc:
        ok, detail = False, f"unexpected body ({exc.__class__.__name__}: {exc})"
    return Check(name, method, path, status, ok, ms, detail, parsed)


def known_user(settings) -> str | None:
    """A user id the production model was trained on (None when no model is deployed)."""
    import io

    import numpy as np

    from recsys.artifacts import NPZ_IDS_USER, two_tower_key
    from recsys.errors import NotFoundError
    from recsys.registry import ModelRegistry
    from recsys.storage import get_bytes

    production = ModelRegistry(settings).production()
    if production is None:
        return None
    try:
        data = get_bytes(
            settings,
            settings.names.bucket("models"),
            two_tower_key(production.version, "user_embeddings.npz"),
        )
    except NotFoundError:
        return None
    ids = np.load(io.BytesIO(data), allow_pickle=False)[NPZ_IDS_USER]
    return str(ids[0]) if len(ids) else None


def run_smoke_test(base_url: str, user_id: str = "1", k: int = 5, api_key: str | None = None) -> list[Check]:
    """Health, recommendations (known and new user), an interaction, the cache, and one bad request."""
    api = ApiClient(base_url, api_key)
    checks = [
        _check(
            api,
            "health",
            "GET",
            "/health",
            lambda s, b: (
                s == 200 and b["status"] in ("ok", "healthy", "degraded"),
                f"status={b['status']} model={b.get('model_version')}",
            ),
        ),
    ]
    recs = _check(
        api,
        "recommendations",
        "GET",
        f"/recommendations/{user_id}?k={k}",
        lambda s, b: (
            s == 200 and len(b["items"]) == k and str(b["user_id"]) == str(user_id),
            f"{len(b['items'])} items, source={b['source']}, top={b['items'][0]['video_id'] if b['items'] else None}",
        ),
    )
    checks.append(recs)
    new_user = f"smoke-{uuid.uuid4().hex[:8]}"
    checks.append(
        _check(
            api,
            "cold start",
            "GET",
            f"/recommendations/{new_user}?k={k}",
            lambda s, b: (
                s == 200 and b["source"] == "popular" and len(b["items"]) == k,
                f"source={b['source']}, {len(b['items'])} items",
            ),
        )
    )
    video = recs.body["items"][0]["video_id"] if recs.ok else "1"
    rec_id = recs.body.get("recommendation_id") if recs.ok else None
    event = {"user_id": user_id, "video_id": video, "event_type": "view", "watch_time": 12.5}
    if rec_id:
        event["recommendation_id"] = rec_id
    checks.append(
        _check(
            api,
            "interaction",
            "POST",
            "/interactions",
            lambda s, b: (s == 202 and bool(b.get("event_id")), f"event_id={b.get('event_id')}"),
            body=event,
        )
    )
    checks.append(
        _check(
            api,
            "cached",
            "GET",
            f"/cached/{user_id}",
            lambda s, b: (
                s in (200, 404),
                "precomputed" if s == 200 else "no precomputed entry (run the batch job)",
            ),
        )
    )
    checks.append(
        _check(
            api,
            "bad input",
            "GET",
            f"/recommendations/{user_id}?k=0",
            lambda s, b: (400 <= s < 500 and "error" in b, f"{s} {b['error']['code']}"),
        )
    )
    return checks
