"""Batch recommendations (blocks of users) give the API's answer for each user."""

from __future__ import annotations

import uuid

import pytest

from recsys.events import InteractionEvent
from recsys.serving import batch
from recsys.serving.batch import recommend_blocks


def _api(service, user, k, category=None, exclude_watched=True):
    resp = service.recommend(user, k=k, category=category, exclude_watched=exclude_watched, use_cache=False,
                             track=False)  # fmt: skip
    return resp["source"], resp["items"]


def _same(batch_items, api_items):
    assert [i["video_id"] for i in batch_items] == [i["video_id"] for i in api_items]
    assert [(i["rank"], i["category"], i["reason"]) for i in batch_items] == [
        (i["rank"], i["category"], i["reason"]) for i in api_items
    ]
    assert [i["score"] for i in batch_items] == pytest.approx([i["score"] for i in api_items], abs=1e-5)


@pytest.mark.parametrize("scan", [False, True])
@pytest.mark.parametrize(("k", "category", "exclude_watched"), [(10, None, True), (30, None, False),
                                                                 (5, "music", True)])  # fmt: skip
def test_batch_equals_api_for_every_user(service, tiny_world, monkeypatch, scan, k, category, exclude_watched):
    active = tiny_world.user_ids[4]
    other = next(v for v in tiny_world.video_ids if tiny_world.category_of[v] != tiny_world.preferred[active])
    service.record_interaction(InteractionEvent(user_id=int(active), video_id=int(other), event_type="like"))
    newcomer = f"new-{uuid.uuid4().hex[:8]}"  # cold start
    stranger = str(900_000 + int(uuid.uuid4().int % 1000))  # unknown to the model, with activity
    service.record_interaction(InteractionEvent(user_id=int(stranger), video_id=int(other), event_type="view"))
    users = [*tiny_world.user_ids, newcomer, stranger]
    if scan:
        monkeypatch.setattr(batch, "SCAN_FROM_USERS", 1)
    results = [r for block in recommend_blocks(service, users, k, category, exclude_watched, users_per_block=7)
               for r in block]  # fmt: skip
    assert [r.user_id for r in results] == users
    for r in results:
        source, items = _api(service, r.user_id, k, category, exclude_watched)
        assert r.source == source, r.user_id
        _same(r.items, items)
    assert {r.source for r in results} == {"model", "popular"}


def test_unknown_category_gives_nothing_like_the_api(service, tiny_world):
    [block] = list(recommend_blocks(service, tiny_world.user_ids[:3], 5, "no-such-category"))
    assert all(r.items == [] and r.source == "popular" for r in block)
    assert _api(service, tiny_world.user_ids[0], 5, "no-such-category") == ("popular", [])
