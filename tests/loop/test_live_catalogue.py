"""The live catalogue and "watched means watched", through the API handler on the tiny published version.

The tiny version gets a saved video tower whose embedding of a new video is its category's direction, so a
video added in a user's favourite category must come first for that user.
"""

from __future__ import annotations

import io
import json
import time
import uuid

import numpy as np
import pytest

from recsys import artifacts
from recsys.aws import client
from recsys.event_processing import EventApplier
from recsys.serving.http_server import LocalContext, proxy_event
from recsys.serving.video_tower import VideoTower
from recsys.storage import get_npz
from tests.serving.conftest import CATEGORIES


def _tower_arrays(settings, version: str, category_of: dict[str, str]) -> dict[str, np.ndarray]:
    emb = get_npz(
        settings, settings.names.bucket("models"), artifacts.two_tower_key(version, "video_embeddings.npz")
    )
    ids = emb["video_ids"].astype(str).tolist()
    table = np.zeros((len(CATEGORIES) + 1, artifacts.EMBEDDING_DIM), dtype=np.float32)
    for i, cat in enumerate(CATEGORIES):
        rows = [j for j, v in enumerate(ids) if category_of[v] == cat]
        direction = emb["embeddings"][rows].mean(axis=0)
        table[i + 1] = direction / np.linalg.norm(direction)
    dim = artifacts.EMBEDDING_DIM
    return {
        "dense_kernel": np.vstack([np.eye(dim), np.zeros((3, dim))]).astype(np.float32),
        "dense_bias": np.zeros(dim, dtype=np.float32),
        "collaborative": np.asarray(False),
        "use_features": np.asarray(True),
        "reference_ts": np.asarray(int(time.time()), dtype=np.int64),
        "duration_edges": np.asarray([60.0]),
        "age_edges_days": np.asarray([1.0]),
        "pop_edges": np.asarray([0.0]),
        "categories": np.asarray(CATEGORIES, dtype=str),
        "category_table": table,
        "duration_table": np.zeros((2, 1), dtype=np.float32),
        "age_table": np.zeros((2, 1), dtype=np.float32),
        "pop_table": np.zeros((2, 1), dtype=np.float32),
    }


@pytest.fixture()
def live(local_stack, tiny_world, service):
    """The tiny version with a video tower; every live catalogue change is undone afterwards."""
    buf = io.BytesIO()
    np.savez(buf, **_tower_arrays(local_stack, tiny_world.version, tiny_world.category_of))
    client("s3", local_stack).put_object(
        Bucket=local_stack.names.bucket("models"),
        Key=artifacts.two_tower_key(tiny_world.version, "video_tower.npz"),
        Body=buf.getvalue(),
    )
    yield service
    ddb = client("dynamodb", local_stack)
    table = local_stack.names.table("live_catalogue")
    for item in ddb.scan(TableName=table).get("Items", []):
        ddb.delete_item(TableName=table, Key={"video_id": item["video_id"]})


def _call(service, method: str, path: str, query: str = "", body: dict | None = None):
    from recsys.serving.api import create_app

    event = proxy_event(
        method, path, query, {"Content-Type": "application/json"}, json.dumps(body) if body else None
    )
    result = create_app(service).resolve(event, LocalContext())
    return result["statusCode"], json.loads(result["body"])


def _recommended(service, user: str, k: int = 10) -> list[str]:
    status, body = _call(service, "GET", f"/recommendations/{user}", f"k={k}")
    assert status == 200, body
    return [i["video_id"] for i in body["items"]]


def test_the_saved_video_tower_embeds_a_new_video_from_its_category(local_stack, tiny_world, live):
    tower = VideoTower.load(local_stack, tiny_world.version)
    music = tower.embed("music", 300.0, int(time.time()))
    model = live.models.current()
    sims = model.video_embeddings @ music
    assert {tiny_world.category_of[model.video_ids[i]] for i in np.argsort(-sims)[:5]} == {"music"}


def test_an_added_video_is_served_at_once_and_a_removed_one_never_again(local_stack, tiny_world, live):
    from recsys.serving.service import RecommendationService, ServingConfig
    from recsys.serving.tracking import InferenceTracker

    user = next(u for u in tiny_world.user_ids if tiny_world.preferred[u] == "music")
    new_video = f"live-{uuid.uuid4().hex[:8]}"
    assert new_video not in _recommended(live, user, 30)

    status, body = _call(
        live, "POST", "/videos", body={"video_id": new_video, "category": "music", "duration": 240}
    )
    assert status == 201, body
    assert body["status"] == "active" and body["model_version"] == tiny_world.version
    # 30 items leave room for every music video (diversity caps a category at half the list).
    assert new_video in _recommended(live, user, 30)
    # Another serving process sees it within its poll interval (here: at once), through the shared cache.
    other = RecommendationService(
        local_stack,
        ServingConfig(poll_interval_s=0.2),
        tracker=InferenceTracker(local_stack, background=False),
    )
    other.live.poll_interval_s = 0.0
    assert new_video in _recommended(other, user, 30)
    status, body = _call(live, "POST", "/videos", body={"video_id": "x y", "category": "music"})
    assert status == 422

    shown = _recommended(live, user, 30)  # cached now (same request shape)
    old_video = shown[1]
    for video in (new_video, old_video):
        status, body = _call(live, "DELETE", f"/videos/{video}")
        assert status == 200 and body["status"] == "removed", body
    for svc in (live, other):
        for k in (10, 30, 50):
            got = _recommended(svc, user, k)
            assert new_video not in got and old_video not in got
    status, body = _call(live, "DELETE", "/videos/never-existed")
    assert status == 404


def test_engaged_videos_since_training_are_never_recommended(local_stack, tiny_world, service):
    from recsys.serving.service import RecommendationService, ServingConfig
    from recsys.serving.tracking import InferenceTracker

    user = tiny_world.user_ids[5]
    favourite = tiny_world.preferred[user]
    candidates = [v for v in tiny_world.video_ids if tiny_world.category_of[v] == favourite]
    candidates = [v for v in candidates if v not in tiny_world.watched[user]][:8]
    now = time.time()
    events = [
        {
            "event_id": uuid.uuid4().hex,
            "user_id": user,
            "video_id": v,
            "event_type": "view",
            "timestamp": now + i,
        }
        for i, v in enumerate(candidates)
    ]
    assert len(EventApplier(local_stack).apply_events(events).applied) == len(events)
    # Recent activity reaches back only 2 events here; the engaged set holds the rest.
    narrow = RecommendationService(
        local_stack, ServingConfig(activity_limit=2, poll_interval_s=0.2),
        tracker=InferenceTracker(local_stack, background=False),
    )  # fmt: skip
    got = [i["video_id"] for i in narrow.recommend(user, k=30, use_cache=False)["items"]]
    assert got and not set(got) & set(candidates)
    assert not set(got) & set(tiny_world.watched[user])
