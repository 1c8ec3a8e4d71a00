"""RecommendationService against the local stack: retrieval, rules, cold start, activity, cache, reload."""

from __future__ import annotations

import time
import uuid

import pytest

from recsys.errors import NotFoundError, ValidationError
from recsys.events import InteractionEvent
from recsys.serving.cache import USER_STATE_FIELD, RecommendationCache
from recsys.serving.service import RecommendationService, ServingConfig
from recsys.serving.tracking import InferenceTracker
from tests.serving.conftest import CATEGORIES, PER_CATEGORY, promote, publish_tiny_version


def test_known_user_gets_k_items_of_their_taste_without_watched(service, tiny_world):
    user = tiny_world.user_ids[0]
    resp = service.recommend(user, k=10, use_cache=False)
    assert resp["source"] == "model"
    assert resp["model_version"] == tiny_world.version
    ids = [i["video_id"] for i in resp["items"]]
    assert len(ids) == 10 == len(set(ids))
    assert not set(ids) & set(tiny_world.watched[user])
    assert [i["rank"] for i in resp["items"]] == list(range(1, 11))
    top = resp["items"][0]
    assert top["category"] == tiny_world.preferred[user]
    assert top["reason"].startswith("because you watched ")  # the watched video nearest to it
    assert top["source"] in ("two_tower", "item_item", "recent")
    # diversity: at most half of k from one category, the rest filled up
    cats = [i["category"] for i in resp["items"]]
    assert max(cats.count(c) for c in set(cats)) <= 5


def test_exclude_watched_false_allows_history(service, tiny_world):
    user = tiny_world.user_ids[1]
    resp = service.recommend(
        user, k=PER_CATEGORY, category=tiny_world.preferred[user], exclude_watched=False, use_cache=False
    )
    ids = {i["video_id"] for i in resp["items"]}
    assert set(tiny_world.watched[user]) <= ids
    assert {i["category"] for i in resp["items"]} == {tiny_world.preferred[user]}


def test_category_filter_and_fill_up_to_catalogue_size(service, tiny_world):
    user = tiny_world.user_ids[2]
    other = next(c for c in CATEGORIES if c != tiny_world.preferred[user])
    resp = service.recommend(user, k=50, category=other, use_cache=False)
    # only PER_CATEGORY videos exist in that category; all come back (nothing watched there)
    assert len(resp["items"]) == PER_CATEGORY
    assert {i["category"] for i in resp["items"]} == {other}


def test_k_items_whenever_catalogue_allows(service, tiny_world):
    resp = service.recommend(tiny_world.user_ids[3], k=60, use_cache=False)
    assert len(resp["items"]) == 60
    assert len({i["video_id"] for i in resp["items"]}) == 60


def test_new_user_gets_cold_start(service, tiny_world):
    resp = service.recommend(f"new-{uuid.uuid4().hex[:8]}", k=8, use_cache=False)
    assert resp["source"] == "popular"
    assert len(resp["items"]) == 8
    assert resp["items"][0]["reason"].startswith(("popular", "new"))
    assert {i["source"] for i in resp["items"]} <= {"trending", "popular"}
    by_cat = service.recommend(f"new-{uuid.uuid4().hex[:8]}", k=5, category="music", use_cache=False)
    assert {i["category"] for i in by_cat["items"]} == {"music"}
    assert by_cat["items"][0]["reason"].startswith("popular in music")


def test_interactions_move_recommendations_at_once(service, tiny_world):
    user = tiny_world.user_ids[0]  # prefers CATEGORIES[0]
    target = "news"
    before = service.recommend(user, k=10)
    assert before["source"] == "model"
    again = service.recommend(user, k=10)
    assert again["source"] == "cache"
    news = [v for v in tiny_world.video_ids if tiny_world.category_of[v] == target][:4]
    for v in news:
        service.record_interaction(InteractionEvent(user_id=int(user), video_id=int(v), event_type="like"))
    after = service.recommend(user, k=10)
    assert after["source"] == "model"  # the interaction invalidated the cache
    count = lambda r: sum(i["category"] == target for i in r["items"])  # noqa: E731
    assert count(after) > count(before)
    assert not set(news) & {i["video_id"] for i in after["items"]}  # just watched: excluded


def test_user_unknown_to_model_with_activity_gets_vector(service, tiny_world):
    user = f"fresh-{uuid.uuid4().hex[:8]}"
    vids = [v for v in tiny_world.video_ids if tiny_world.category_of[v] == "sports"][:3]
    for v in vids:
        service.record_interaction(InteractionEvent(user_id=user, video_id=v))
    resp = service.recommend(user, k=5, use_cache=False)
    assert resp["source"] == "model"
    assert resp["items"][0]["category"] == "sports"
    assert not set(vids) & {i["video_id"] for i in resp["items"]}


def test_interactions_posted_at_once_are_each_stored_and_reflected(service, tiny_world):
    """Posts that arrive together share one put onto the stream and one write per store: every one of them
    still gets its own record, lands in the activity table and in its user's cached state."""
    from concurrent.futures import ThreadPoolExecutor

    users = [f"burst-{uuid.uuid4().hex[:6]}-{i}" for i in range(4)]
    for user in users:  # a stored state for each, read from DynamoDB once
        service.store.record_activity(
            {
                "user_id": user,
                "video_id": tiny_world.video_ids[0],
                "event_id": uuid.uuid4().hex,
                "timestamp": 1.0,
            }
        )
        service.recommend(user, k=5)
    posts = [(users[i % 4], tiny_world.video_ids[1 + i]) for i in range(40)]
    with ThreadPoolExecutor(16) as pool:
        records = list(
            pool.map(
                lambda p: service.record_interaction(InteractionEvent(user_id=p[0], video_id=p[1])), posts
            )
        )
    assert [(r["user_id"], r["video_id"]) for r in records] == posts
    assert len({r["event_id"] for r in records}) == 40
    for user in users:
        mine = {r["event_id"] for r in records if r["user_id"] == user}
        event_ids = lambda items: {str(a["event_ts"]).rsplit("#", 1)[1] for a in items}  # noqa: E731
        assert mine <= event_ids(service.store.recent_activity(user, 50))  # in DynamoDB
        _, state, _ = service.cache.lookup_for_store(user, "any")
        assert mine <= event_ids(state["activity"])  # and written through into the cached state


def test_redis_down_serves_uncached(local_stack, tiny_world, monkeypatch):
    from recsys.config import load_settings
    from recsys.local.processes import free_port

    monkeypatch.setenv("RECSYS_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    dead = load_settings("local")
    svc = RecommendationService(
        local_stack,
        ServingConfig(),
        cache=RecommendationCache(dead, timeout_s=0.1),
        tracker=InferenceTracker(local_stack, background=False),
    )
    for _ in range(2):
        resp = svc.recommend(tiny_world.user_ids[4], k=5)
        assert resp["source"] == "model" and len(resp["items"]) == 5
    assert svc.recommend("nobody-at-all", k=3)["source"] == "popular"
    health = svc.health()
    assert health["status"] == "degraded"
    assert health["dependencies"]["cache"]["status"] == "down"
    assert health["dependencies"]["store"]["status"] == "ok"


def test_tracking_records_every_response(service, tiny_world, local_stack):
    from recsys.aws import client
    from recsys.feature_store.online import deserialize_item
    from recsys.serving.tracking import shown_items

    resp = service.recommend(tiny_world.user_ids[5], k=4)
    assert service.tracker.flush() >= 1
    item = client("dynamodb", local_stack).get_item(
        TableName=local_stack.names.table("inference_tracking"),
        Key={"recommendation_id": {"S": resp["recommendation_id"]}},
    )["Item"]
    assert item["user_id"]["S"] == tiny_world.user_ids[5]
    shown = shown_items(deserialize_item(item))
    assert [i["video_id"] for i in shown] == [i["video_id"] for i in resp["items"]]
    assert [i["rank"] for i in shown] == [1, 2, 3, 4]


def test_bad_requests_are_validation_errors(service):
    with pytest.raises(ValidationError):
        service.recommend("1", k=0)
    with pytest.raises(ValidationError):
        service.recommend("1", k=101)
    with pytest.raises(NotFoundError):
        service.cached("never-computed")


def test_hot_reload_picks_up_new_production_version(service, tiny_world, local_stack):
    user = tiny_world.user_ids[6]
    assert service.recommend(user, k=3, use_cache=False)["model_version"] == tiny_world.version
    new = publish_tiny_version(local_stack, "v20260102-000000-bbbbbb", seed=1, flip=True)
    promote(local_stack, new.version)
    try:
        seen = None
        for _ in range(100):  # bounded: the poll interval is 0.2 s in this fixture
            seen = service.recommend(user, k=3, use_cache=False)["model_version"]
            if seen == new.version:
                break
            time.sleep(0.1)
        assert seen == new.version
        top = service.recommend(user, k=3, use_cache=False)["items"][0]
        assert top["category"] == new.preferred[user]
    finally:
        promote(local_stack, tiny_world.version)
        publish_tiny_version(local_stack, tiny_world.version)  # restore the online features


def test_a_users_state_is_read_from_dynamodb_once_then_kept_in_redis_through_their_interactions(
    service, tiny_world, monkeypatch
):
    user = tiny_world.user_ids[12]
    assert service.cache.enabled
    service.cache.invalidate(user)
    reads: list[str] = []
    store_read = service.store.activity_and_engaged
    monkeypatch.setattr(
        service.store, "activity_and_engaged", lambda u, n: reads.append(u) or store_read(u, n)
    )
    first = service.recommend(user, k=5, track=False)
    second = service.recommend(user, k=6, track=False)  # another request shape: computed, state from Redis
    assert (first["source"], second["source"], reads) == ("model", "model", [user])
    liked = []
    for video in [i["video_id"] for i in second["items"]][:2]:  # the user likes what they were shown
        service.record_interaction(
            InteractionEvent(user_id=int(user), video_id=int(video), event_type="like")
        )
        liked.append(video)
        after = service.recommend(user, k=6, track=False)  # computed afresh: the cached answer was dropped
        assert after["source"] == "model"
        assert not set(liked) & {i["video_id"] for i in after["items"]}  # what they just liked is left out
    assert reads == [user]  # the interactions went into the stored state: no DynamoDB read since the first
    # The stored state is what DynamoDB answers (the API recorded the activity; the engaged set there waits
    # for the stream processor, and serving leaves out both)
    _, stored = service.cache.lookup(user, "another request shape")
    activity, _engaged = store_read(user, service.config.activity_limit)
    assert stored["activity"] == activity
    assert [a["video_id"] for a in activity[:2]] == liked[::-1]
    assert set(liked) <= set(stored["engaged"])


def test_recorded_events_keep_the_stored_state_in_time_order_bounded_once_each(service, tiny_world):
    user = tiny_world.user_ids[14]
    cache = RecommendationCache(service.settings, activity_limit=3)
    cache.invalidate(user)
    now = time.time()

    def event(i: int, video: str, at: float) -> dict:
        return {
            "event_id": f"e{i}",
            "user_id": user,
            "video_id": video,
            "event_type": "view",
            "timestamp": at,
        }

    assert cache.record_events({user: [event(0, "a", now)]})  # no state stored: nothing to write into
    assert cache.lookup(user, "shape") == (None, None)
    cache.set_many(user, {USER_STATE_FIELD: {"activity": [], "engaged": ["x"]}, "shape": {"items": []}})
    redis_client, key = cache._redis(), cache._key(user)
    ttl = redis_client.pttl(key)
    late = event(3, "c", now - 60)  # arrives last, happened first
    assert cache.record_events({user: [event(1, "a", now), event(2, "b", now + 1), late, event(1, "a", now)]})
    answer, state = cache.lookup(user, "shape")
    assert answer is None  # the cached answer went
    assert [a["video_id"] for a in state["activity"]] == ["b", "a", "c"]  # newest first, a repeat once
    assert state["engaged"] == ["x", "b", "c", "a"]  # as the stream processor keeps it: newest last
    assert 0 < redis_client.pttl(key) <= ttl  # never kept past the TTL it was read with
    cache.record_events({user: [event(4, "d", now + 2)]})
    assert [a["video_id"] for a in cache.lookup(user, "shape")[1]["activity"]] == ["d", "b", "a"]  # bounded
    # The stream processor applying what the API already wrote through: the answers go, the state stays as is
    cache.set_many(user, {"shape": {"items": [1]}})
    written = redis_client.hget(key, USER_STATE_FIELD)
    assert cache.record_events({user: [event(4, "d", now + 2), event(2, "b", now + 1)]})
    assert redis_client.hget(key, USER_STATE_FIELD) == written and cache.lookup(user, "shape")[0] is None


def test_a_state_rewritten_meanwhile_is_dropped_not_overwritten(service, tiny_world, monkeypatch):
    user = tiny_world.user_ids[15]
    cache = RecommendationCache(service.settings)
    cache.set_many(user, {USER_STATE_FIELD: {"activity": [], "engaged": []}})
    redis_client = cache._redis()
    real_pipeline = redis_client.pipeline
    made = []

    def pipeline(*args, **kwargs):  # another writer stores a new state right after this one's read
        pipe = real_pipeline(*args, **kwargs)
        if not made:
            execute = pipe.execute

            def execute_then_rewrite():
                out = execute()
                redis_client.hset(cache._key(user), USER_STATE_FIELD, b'{"activity":[],"engaged":["z"]}')
                return out

            pipe.execute = execute_then_rewrite
        made.append(pipe)
        return pipe

    monkeypatch.setattr(redis_client, "pipeline", pipeline)
    event = {
        "event_id": "e9",
        "user_id": user,
        "video_id": "v",
        "event_type": "view",
        "timestamp": time.time(),
    }
    assert cache.record_events({user: [event]})
    assert cache.lookup(user, "shape") == (None, None)  # neither state kept: the next miss reads DynamoDB


def test_recorded_events_take_one_round_trip_and_survive_a_redis_that_lost_its_scripts(service, tiny_world):
    users = tiny_world.user_ids[19:22]
    cache = RecommendationCache(service.settings)
    redis_client = cache._redis()

    def script_commands() -> int:  # SCRIPT EXISTS, LOAD, ... (Redis 7 counts each subcommand apart)
        stats = redis_client.info("commandstats")
        return sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_script"))

    for user in users:
        cache.set_many(user, {"shape": {"items": [1]}})
    redis_client.script_flush()  # a restarted Redis holds no script
    event = {"event_id": "e", "video_id": "v", "event_type": "view", "timestamp": time.time()}
    assert cache.record_events({user: [{**event, "user_id": user}] for user in users})
    assert all(cache.lookup(user, "shape")[0] is None for user in users)  # every cached answer dropped

    for user in users:
        cache.set_many(user, {"shape": {"items": [1]}})
    before = script_commands()
    assert cache.record_events({user: [{**event, "user_id": user}] for user in users})
    assert all(cache.lookup(user, "shape")[0] is None for user in users)
    assert script_commands() == before  # no SCRIPT EXISTS before each pipeline: the script is run by its hash


def test_one_lookup_gives_the_cached_answer_or_else_the_users_state(service, tiny_world):
    user = tiny_world.user_ids[13]
    cache = service.cache
    cache.invalidate(user)
    assert cache.lookup(user, "shape") == (None, None)  # nothing stored yet
    state = {"activity": [{"video_id": "1", "event_type": "like"}], "engaged": ["1"]}
    assert cache.set_many(user, {USER_STATE_FIELD: state})
    assert cache.lookup(user, "shape") == (None, state)  # a miss brings the state with it
    assert cache.set(user, "shape", {"items": [1, 2]})
    assert cache.lookup(user, "shape") == ({"items": [1, 2]}, None)  # a hit: the answer alone
    cache.invalidate(user)
    assert cache.lookup(user, "shape") == (None, None)


def test_an_event_the_state_cannot_hold_drops_the_state_not_the_write(service, tiny_world):
    user = tiny_world.user_ids[16]
    cache = RecommendationCache(service.settings)
    cache.set_many(user, {USER_STATE_FIELD: {"activity": [], "engaged": []}})
    broken = {"event_id": "e1", "user_id": user, "event_type": "view", "timestamp": time.time()}  # no video
    assert cache.record_events({user: [broken]})  # Redis answered: not a Redis failure
    assert cache.lookup(user, "shape") == (None, None)  # the next miss reads DynamoDB instead
    assert cache.set_many(user, {"shape": {"items": []}})  # and Redis is still in use


def test_a_stored_state_is_never_kept_past_one_ttl_by_answers_stored_later(service, tiny_world):
    user = tiny_world.user_ids[17]
    cache = RecommendationCache(service.settings, ttl_s=300)
    cache.invalidate(user)
    redis_client, key = cache._redis(), cache._key(user)
    assert cache.set_many(user, {"shape": {"items": []}})  # a new hash gets the TTL
    assert 290 < redis_client.ttl(key) <= 300
    cache.set_many(user, {USER_STATE_FIELD: {"activity": [], "engaged": []}})
    redis_client.expire(key, 40)  # time passes
    assert cache.set_many(user, {"another shape": {"items": []}})  # an answer added later does not extend it
    assert redis_client.ttl(key) <= 40
    assert cache.set_many(user, {USER_STATE_FIELD: {"activity": [], "engaged": []}})  # a state read just now
    assert redis_client.ttl(key) > 290


def test_what_a_request_computed_while_an_interaction_landed_is_not_cached(service, tiny_world, monkeypatch):
    user = tiny_world.user_ids[18]
    video = service.recommend(user, k=5, track=False, use_cache=False)["items"][0][
        "video_id"
    ]  # about to be liked
    service.cache.invalidate(user)
    store_read = service.store.activity_and_engaged

    def read_then_like(u, n):  # the request reads the user's activity, then the like lands while it computes
        found = store_read(u, n)
        monkeypatch.setattr(service.store, "activity_and_engaged", store_read)
        service.record_interaction(
            InteractionEvent(user_id=int(user), video_id=int(video), event_type="like")
        )
        return found

    monkeypatch.setattr(service.store, "activity_and_engaged", read_then_like)
    service.recommend(user, k=5, track=False)  # computed from the activity before the like: not stored
    after = service.recommend(user, k=5, track=False)
    assert after["source"] == "model"  # computed again, not the answer from before the like
    assert video not in [i["video_id"] for i in after["items"]]
    _, state = service.cache.lookup(user, "another request shape")
    assert video in [a["video_id"] for a in state["activity"]]  # the state, read again, holds the like
