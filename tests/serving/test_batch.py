"""Batch recommendations (blocks of users) give the API's answer for each user."""

from __future__ import annotations

import uuid

import pytest

from recsys.events import InteractionEvent
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


@pytest.mark.parametrize(("k", "category", "exclude_watched"), [(10, None, True), (30, None, False),
                                                                 (5, "music", True)])  # fmt: skip
def test_batch_equals_api_for_every_user(service, tiny_world, monkeypatch, k, category, exclude_watched):
    active = tiny_world.user_ids[4]
    other = next(v for v in tiny_world.video_ids if tiny_world.category_of[v] != tiny_world.preferred[active])
    service.record_interaction(InteractionEvent(user_id=int(active), video_id=int(other), event_type="like"))
    newcomer = f"new-{uuid.uuid4().hex[:8]}"  # cold start
    stranger = str(900_000 + int(uuid.uuid4().int % 1000))  # unknown to the model, with activity
    service.record_interaction(
        InteractionEvent(user_id=int(stranger), video_id=int(other), event_type="view")
    )
    users = [*tiny_world.user_ids, newcomer, stranger]
    results = [r for block in recommend_blocks(service, users, k, category, exclude_watched, users_per_block=7)
               for r in block]  # fmt: skip
    assert [r.user_id for r in results] == users
    for r in results:
        source, items = _api(service, r.user_id, k, category, exclude_watched)
        assert r.source == source, r.user_id
        _same(r.items, items)
    assert {r.source for r in results} == {"model", "popular"}


def test_worker_processes_give_the_answers_of_one_process(service, tiny_world):
    newcomer = f"new-{uuid.uuid4().hex[:8]}"
    users = [*tiny_world.user_ids, newcomer]
    one = [r for b in recommend_blocks(service, users, 8, users_per_block=5, processes=1) for r in b]
    forked = [r for b in recommend_blocks(service, users, 8, users_per_block=5, processes=2) for r in b]
    assert [r.user_id for r in forked] == users
    assert [(r.user_id, r.source, r.items) for r in forked] == [(r.user_id, r.source, r.items) for r in one]
    assert any(r.items for r in forked)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_file_output_holds_every_row_of_the_answers(service, tiny_world, tmp_path, suffix):
    import polars as pl

    from recsys.serving.batch import recommend_many, write_recommendations

    users = [*tiny_world.user_ids, f"new-{uuid.uuid4().hex[:8]}"]
    out = tmp_path / f"recs{suffix}"
    n = write_recommendations(service, users, 6, out, processes=2)
    frame = (
        pl.read_parquet(out)
        if suffix == ".parquet"
        else pl.read_csv(out, schema_overrides={"user_id": pl.Utf8, "video_id": pl.Utf8})
    )
    expected = recommend_many(service, users, 6)
    assert n == frame.height == len(expected) > 0
    got = frame.select(["user_id", "rank", "video_id", "source", "model_version"]).rows()
    assert got == [
        (r["user_id"], r["rank"], r["video_id"], r["source"], r["model_version"]) for r in expected
    ]
    assert set(frame["user_id"]) == set(users)


def test_unknown_category_gives_nothing_like_the_api(service, tiny_world):
    [block] = list(recommend_blocks(service, tiny_world.user_ids[:3], 5, "no-such-category"))
    assert all(r.items == [] and r.source == "popular" for r in block)
    assert _api(service, tiny_world.user_ids[0], 5, "no-such-category") == ("popular", [])


def test_precompute_step_fills_cached_for_the_deployed_version(service, tiny_world, local_stack):
    from recsys.stages.table import stage

    out = stage("precompute_cache").run({"version": tiny_world.version, "k": 4, "max_users": 5}, local_stack)
    assert (out["status"], out["users"], out["k"]) == ("filled", 5, 4)
    # the five most active users (longest training history, then model order) can be read back
    filled = [u for u in tiny_world.user_ids if len(tiny_world.watched[u]) == 2][:5]
    for user in filled:
        cached = service.cached(user)
        assert cached["model_version"] == tiny_world.version and len(cached["items"]) == 4
        assert [i["video_id"] for i in cached["items"]] == [i["video_id"] for i in _api(service, user, 4)[1]]
    skipped = stage("precompute_cache").run({"version": "v20990101-000000-ffffff"}, local_stack)
    assert (skipped["status"], skipped["users"]) == ("skipped", 0)


def test_many_users_read_by_one_scan_equal_one_query_each(service, tiny_world):
    from recsys.feature_store.bulk import activity_and_engaged_many

    active, video = str(800_000 + int(uuid.uuid4().int % 1000)), tiny_world.video_ids[3]  # nobody else's user
    for kind in ("view", "like", "share"):
        service.record_interaction(
            InteractionEvent(user_id=int(active), video_id=int(video), event_type=kind)
        )
    users = [*tiny_world.user_ids, active, "nobody-here"]
    for limit in (2, 20):
        scanned = activity_and_engaged_many(service.store, users, limit, scan=True)
        queried = activity_and_engaged_many(service.store, users, limit, scan=False)
        assert scanned == queried
        assert len(scanned[active][0]) == min(limit, 3) and scanned["nobody-here"] == ([], [])


def test_a_small_activity_table_is_scanned_once_instead_of_a_query_per_user():
    from recsys.feature_store import bulk

    class Store:
        activity_table = "activity"

        def __init__(self, items):
            self.items = items

        def approximate_items(self, table):
            return self.items

    assert bulk._scan_is_cheaper(Store(None), 5_000)  # many users: always one Scan
    assert bulk._scan_is_cheaper(Store(1_000), 600)  # few events since training
    assert not bulk._scan_is_cheaper(Store(1_000_000), 600)  # a big table: a Query per user
    assert not bulk._scan_is_cheaper(Store(None), 600)  # count unknown: the default
    assert not bulk._scan_is_cheaper(Store(0), 10)  # a handful of users never asks
