"""Stream processing against the local stack: the event processor Lambda's code and the local events worker.

- a Kinesis batch is applied once: activity, user and video features, the engaged set; malformed records
  go to the dead-letter prefix with their reason and do not fail the batch; the same batch again changes
  nothing;
- 10,000 events posted concurrently (the interaction path of the API) are each delivered to S3 raw once and applied
  once, also when the worker is killed (SIGKILL) mid-way and started again.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from recsys import raw_events
from recsys.aws import client
from recsys.feature_store.online import OnlineFeatureStore
from recsys.local.processes import wait_until
from recsys.serving.http_server import LocalContext

ROOT = Path(__file__).resolve().parents[2]


def _record(data: bytes, seq: str) -> dict:
    return {
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "p", "sequenceNumber": seq,
                    "data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": time.time()},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"shardId-000000000000:{seq}",
        "eventName": "aws:kinesis:record", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/events",
    }  # fmt: skip


def _snapshot(settings, users: list[str], videos: list[str]) -> dict:
    store = OnlineFeatureStore(settings)
    return {
        "users": store.get_users(users),
        "videos": store.get_videos(videos),
        "engaged": [store.activity_and_engaged(u, 100) for u in users],
    }


def test_a_batch_is_applied_once_and_malformed_records_are_dead_lettered(local_stack, tiny_world):
    import lambdas.event_processor.handler as handler_module

    run = uuid.uuid4().hex[:8]
    user_a, user_b = f"sp-{run}-a", f"sp-{run}-b"
    known = f"sp-{run}-known"
    new_video = f"sp-{run}-new"
    now = time.time()
    OnlineFeatureStore(local_stack).put_videos(
        [{"video_id": known, "category": "gaming", "duration": 300.0, "interaction_count": 5,
          "embedding": [0.5] * 64, "model_version": tiny_world.version}]
    )  # fmt: skip

    def event(user, video, kind, **extra):
        return {"event_id": uuid.uuid4().hex, "user_id": user, "video_id": video, "event_type": kind,
                "timestamp": now, **extra}  # fmt: skip

    good = [
        event(user_a, known, "like"),
        event(user_a, new_video, "view", category="cooking"),
        event(user_a, new_video, "skip"),
        event(user_b, known, "view"),
    ]
    bad = [
        b"{not json",
        json.dumps({"user_id": user_a, "video_id": known, "timestamp": now}).encode(),  # no event_id
        json.dumps(event(user_a, known, "teleport")).encode(),
        json.dumps(event(user_a, known, "view", category="x" * 20_000)).encode(),  # oversize
    ]
    records = [_record(json.dumps(e).encode(), str(100 + i)) for i, e in enumerate(good)]
    records += [_record(data, str(200 + i)) for i, data in enumerate(bad)]
    video_before = OnlineFeatureStore(local_stack).get_videos([known])[0]

    result = handler_module.handler({"Records": records}, LocalContext())
    assert result["batchItemFailures"] == []

    letters = {
        d["sequence"]: d
        for d in raw_events.dead_letters(local_stack)
        if d["sequence"] in {"200", "201", "202", "203"}
    }
    assert sorted(letters) == ["200", "201", "202", "203"]
    assert letters["200"]["reason"] == "not JSON"
    assert "event_id" in letters["201"]["reason"]
    assert "teleport" in letters["202"]["reason"]
    assert "larger than" in letters["203"]["reason"]

    store = OnlineFeatureStore(local_stack)
    a, b = store.get_users([user_a, user_b])
    assert a["interaction_count"] == 2  # the like and the view; a skip weighs 0
    assert a["total_weight"] == pytest.approx(3.0)  # like 2 + view 1
    assert a["category_affinity"] == {
        "gaming": pytest.approx(2 / 3, abs=1e-3),
        "cooking": pytest.approx(1 / 3, abs=1e-3),
    }
    assert a["top_category"] == "gaming"
    assert b["interaction_count"] == 1
    known_after, new_after = store.get_videos([known, new_video])
    assert known_after["interaction_count"] == video_before["interaction_count"] + 2
    assert known_after["embedding"] == video_before["embedding"]  # the rest of the item is kept
    assert (
        new_after["category"] == "cooking" and new_after["interaction_count"] == 1
    )  # a skip is no engagement
    activity, engaged = store.activity_and_engaged(user_a, 10)
    assert len(activity) == 3
    assert engaged == [known, new_video]

    before = _snapshot(local_stack, [user_a, user_b], [known, new_video])
    again = handler_module.handler({"Records": records}, LocalContext())
    assert again["batchItemFailures"] == []
    assert _snapshot(local_stack, [user_a, user_b], [known, new_video]) == before


def test_an_event_answering_a_recommendation_marks_the_impression_engaged(local_stack, service, tiny_world):
    from recsys.event_processing import EventApplier

    user = tiny_world.user_ids[0]
    response = service.recommend(user, k=5, use_cache=False)
    service.tracker.flush()
    shown = response["items"][1]["video_id"]
    event = {"event_id": uuid.uuid4().hex, "user_id": user, "video_id": shown, "event_type": "click",
             "timestamp": time.time(), "recommendation_id": response["recommendation_id"]}  # fmt: skip
    result = EventApplier(local_stack).apply_events([event])
    assert result.applied == [event["event_id"]]
    item = client("dynamodb", local_stack).get_item(
        TableName=local_stack.names.table("inference_tracking"),
        Key={"recommendation_id": {"S": response["recommendation_id"]}},
    )["Item"]
    assert item["engaged_video_ids"]["SS"] == [shown]


def _worker(env: dict, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "recsys.cli.main", "events", "worker", "--env", "local", "--batch-size", "250"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _checkpoints(settings) -> dict:
    path = settings.home / "stream-worker" / "checkpoints.json"
    try:
        return next(iter(json.loads(path.read_text()).values()), {})
    except (FileNotFoundError, ValueError):
        return {}


def _drained(settings) -> bool:
    from recsys.local.stream_worker import StreamWorker

    lag = StreamWorker(settings).lag()
    return all(n == 0 for per_shard in lag.values() for n in per_shard.values())


JSON = {"Content-Type": "application/json"}


def test_10000_posted_events_are_delivered_and_applied_exactly_once_across_a_worker_crash(
    local_stack, service, tmp_path
):
    from recsys.serving.api import create_app
    from recsys.serving.http_server import proxy_event

    run = uuid.uuid4().hex[:8]
    users = [f"load-{run}-u{i}" for i in range(50)]
    videos = [f"load-{run}-v{j}" for j in range(40)]
    kinds = ["view", "like", "skip", "share"]
    bodies = [
        {
            "user_id": users[i % 50],
            "video_id": videos[(i * 7) % 40],
            "event_type": kinds[i % 4],
            "category": "news",
        }
        for i in range(10_000)
    ]
    posted: list[str] = []
    posted_by_body: list[str | None] = [None] * len(bodies)

    def post(slot: int) -> list[str]:
        # POST /interactions through the API's resolver, 8 at once (one resolver per thread, as the
        # server's request slots have): concurrent PutRecord calls, concurrent activity writes.
        app = create_app(service)
        ids = []
        for b in bodies[slot::8]:
            answer = app.resolve(proxy_event("POST", "/interactions", headers=JSON, body=json.dumps(b)), None)
            assert answer["statusCode"] == 202, answer
            ids.append(json.loads(answer["body"])["event_id"])
        return ids

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = _worker(env, tmp_path / "worker.log")
    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(post, slot) for slot in range(8)]
            # Kill the worker (no chance to clean up) once it has applied some of the events.
            assert wait_until(
                lambda: "processor" in _checkpoints(local_stack), timeout_s=120, interval_s=0.05
            )
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
            for slot, future in enumerate(futures):
                ids = future.result()
                posted += ids
                for j, event_id in enumerate(ids):
                    posted_by_body[slot + 8 * j] = event_id
        assert len(set(posted)) == 10_000
        worker = _worker(env, tmp_path / "worker.log")
        assert wait_until(lambda: _drained(local_stack), timeout_s=240, interval_s=0.5), (
            "the worker did not catch up"
        )
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)

    # Each event is in S3 raw exactly once (delivered objects are overwritten, never duplicated).
    delivered = Counter(
        e.get("event_id") for e in raw_events.iter_events(local_stack, raw_events.event_keys(local_stack))
    )
    assert all(delivered[i] == 1 for i in posted), [i for i in posted if delivered[i] != 1][:5]
    stream = local_stack.names.firehose["raw_events"]
    keys = [k for k in raw_events.event_keys(local_stack) if f"/{stream}-1-" in k]  # the worker's objects
    assert keys and all(
        re.fullmatch(rf"events/date=\d{{4}}-\d\d-\d\d/hour=\d\d/{stream}-1-[\d-]+-shardId-\d+-\d+\.gz", k)
        for k in keys
    )

    # Each event is applied exactly once: counters equal what the posted events add up to.
    weight = {"view": 1.0, "like": 2.0, "skip": 0.0, "share": 3.0}
    want_count: Counter = Counter()
    want_weight: defaultdict = defaultdict(float)
    want_video: Counter = Counter()
    for body in bodies:
        if weight[body["event_type"]] > 0:
            want_count[body["user_id"]] += 1
            want_weight[body["user_id"]] += weight[body["event_type"]]
        if body["event_type"] != "skip":
            want_video[body["video_id"]] += 1
    store = OnlineFeatureStore(local_stack)
    for user, item in zip(users, store.get_users(users), strict=True):
        if item["interaction_count"] != want_count[user]:
            rows = client("dynamodb", local_stack).query(
                TableName=local_stack.names.table("user_activity"),
                KeyConditionExpression="user_id = :u", ExpressionAttributeValues={":u": {"S": user}},
            )["Items"]  # fmt: skip
            have = {r["event_ts"]["S"].rsplit("#", 1)[-1] for r in rows}
            mine = [i for i, b in zip(posted_by_body, bodies, strict=True) if b["user_id"] == user]
            pytest.fail(
                f"{user}: interaction_count {item['interaction_count']}, want {want_count[user]}; "
                f"{len(rows)} activity items, {sum('applied_at' in r for r in rows)} marked applied, "
                f"missing {[i for i in mine if i not in have]}; worker log: "
                f"{(tmp_path / 'worker.log').read_text()[-2000:]}"
            )
        assert item["interaction_count"] == want_count[user]
        assert item["total_weight"] == pytest.approx(want_weight[user])
    for video, item in zip(videos, store.get_videos(videos), strict=True):
        assert item["interaction_count"] == want_video[video]
    ddb = client("dynamodb", local_stack)
    activity = 0
    for user in users:
        pages = ddb.get_paginator("query").paginate(
            TableName=local_stack.names.table("user_activity"),
            KeyConditionExpression="user_id = :u AND event_ts < :e",
            ExpressionAttributeValues={":u": {"S": user}, ":e": {"S": "~"}},
            Select="COUNT",
        )
        activity += sum(p["Count"] for p in pages)
    assert activity == 10_000


def test_a_glue_table_describes_the_raw_event_partitions(local_stack):
    from recsys.aws import client as aws_client

    table = aws_client("glue", local_stack).get_table(
        DatabaseName=local_stack.names.glue_database, Name="raw_events"
    )
    table = table["Table"]
    location = f"s3://{raw_events.bucket(local_stack)}/events/"
    assert table["StorageDescriptor"]["Location"] == location
    assert (
        table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
        == "org.openx.data.jsonserde.JsonSerDe"
    )
    assert [k["Name"] for k in table["PartitionKeys"]] == ["date", "hour"]
    assert {c["Name"] for c in table["StorageDescriptor"]["Columns"]} >= {
        "event_id",
        "user_id",
        "video_id",
        "timestamp",
    }
    assert table["Parameters"]["projection.enabled"] == "true"
    assert table["Parameters"]["storage.location.template"] == location + "date=${date}/hour=${hour}/"


def test_engagements_are_counted_once_for_the_version_that_showed_them(local_stack):
    from recsys.event_processing import EventApplier
    from recsys.serving.live_metrics import read_signals
    from recsys.serving.tracking import InferenceTracker, tracking_item

    run = uuid.uuid4().hex[:8]
    version, user, rid = f"v-engaged-{run}", f"eng-{run}", uuid.uuid4().hex
    shown = [{"video_id": f"ev-{run}-{i}", "rank": i + 1, "score": 0.5} for i in range(4)]
    tracker = InferenceTracker(local_stack, background=False)
    tracker.record(tracking_item(rid, user, version, "model", shown, {"k": 4}, time.time(), variant="canary"))
    tracker.flush()

    def event(video: str, kind: str) -> dict:
        return {"event_id": uuid.uuid4().hex, "user_id": user, "video_id": video, "event_type": kind,
                "timestamp": time.time(), "recommendation_id": rid}  # fmt: skip

    first = [event(shown[0]["video_id"], "click"), event(shown[0]["video_id"], "like")]
    assert len(EventApplier(local_stack).apply_events(first).applied) == 2
    EventApplier(local_stack).apply_events(first)  # redelivered: nothing new
    EventApplier(local_stack).apply_events([event(shown[2]["video_id"], "watch")])
    EventApplier(local_stack).apply_events([event(f"ev-{run}-not-shown", "click")])
    signals = read_signals(local_stack, version, time.time() - 120)
    assert signals.engaged == 2  # two of the items shown, each counted once


def test_events_dated_before_a_users_erasure_never_write_the_user_back(local_stack, tiny_world):
    from recsys.event_processing import EventApplier
    from recsys.serving.forget import forget_user

    user, video = f"erased-{uuid.uuid4().hex[:8]}", tiny_world.video_ids[0]

    def event(ts: float, kind: str = "like") -> dict:
        return {"event_id": uuid.uuid4().hex, "user_id": user, "video_id": video, "event_type": kind,
                "timestamp": ts}  # fmt: skip

    before = time.time()
    assert EventApplier(local_stack).apply_events([event(before)]).applied  # applied, then forgotten
    in_flight = event(before + 0.001, "view")  # on the stream when the user asked to be forgotten
    report = forget_user(local_stack, user)
    assert report["activity"] == 2 and report["features"] == 1  # the event and the engaged set
    result = EventApplier(local_stack).apply_events([in_flight])
    assert (result.applied, result.erased) == ([], 1)
    store = OnlineFeatureStore(local_stack)
    assert store.activity_and_engaged(user, 10) == ([], [])
    assert "interaction_count" not in (store.get_users([user])[0] or {})
    later = event(time.time() + 1, "view")  # a new event after the erasure is the user's again
    assert EventApplier(local_stack).apply_events([later]).applied == [later["event_id"]]
    [kept] = store.activity_and_engaged(user, 10)[0]
    assert (kept["event_type"], float(kept["timestamp"])) == ("view", pytest.approx(later["timestamp"]))


@pytest.mark.parametrize("step", ["PutItem", "Query", "BatchWriteItem"])
def test_an_event_applied_during_an_erasure_leaves_nothing_behind(local_stack, tiny_world, step):
    """The stream processor commits an event of the user just before each of the erasure's DynamoDB calls
    (tombstone, key queries, deletes): whatever it wrote is found and deleted, or it drops the event."""
    from recsys.event_processing import EventApplier
    from recsys.serving.forget import forget_user

    user = f"erasing-{step}-{uuid.uuid4().hex[:8]}"
    in_flight = {"event_id": uuid.uuid4().hex, "user_id": user, "video_id": tiny_world.video_ids[0],
                 "event_type": "like", "timestamp": time.time() - 5}  # fmt: skip
    store = OnlineFeatureStore(local_stack)
    store.record_activity(in_flight)  # as the API does, before the stream delivers it
    applied: list[int] = []

    def processor_commits_first(model, **_kwargs) -> None:
        if model.name == step and not applied:
            applied.append(len(EventApplier(local_stack).apply_events([in_flight]).applied))

    events = client("dynamodb", local_stack).meta.events  # the client the erasure uses
    events.register("before-call.dynamodb", processor_commits_first, unique_id="erasure-race")
    try:
        forget_user(local_stack, user)
    finally:
        events.unregister("before-call.dynamodb", unique_id="erasure-race")
    assert applied == [1 if step == "PutItem" else 0]  # before the tombstone it is applied, after it dropped
    assert store.activity_and_engaged(user, 10) == ([], [])
    assert "interaction_count" not in (store.get_users([user])[0] or {})


def test_a_processor_that_keeps_its_users_between_batches_never_overwrites_another_writer(
    local_stack, tiny_world
):
    """One applier across batches with the local worker's user cache: a returning user's items are not read
    again, yet a deployment's rewrite and an erasure made in between are kept, not overwritten."""
    from recsys.event_processing import EventApplier, UserItemCache
    from recsys.serving.forget import forget_user

    user, video = f"kept-{uuid.uuid4().hex[:8]}", tiny_world.video_ids[0]
    applier = EventApplier(local_stack, user_items=UserItemCache())
    tables_read: list[str] = []
    read = applier._batch_get

    def counted(table, keys, attributes):
        if keys:
            tables_read.append(table)
        return read(table, keys, attributes)

    applier._batch_get = counted
    start = time.time() - 60

    def apply(offset: float, kind: str = "like"):
        event = {"event_id": uuid.uuid4().hex, "user_id": user, "video_id": video, "event_type": kind,
                 "timestamp": start + offset}  # fmt: skip
        tables_read.clear()
        return applier.apply_events([event])

    assert apply(0).applied
    users_table = local_stack.names.table("user_features")
    assert users_table in tables_read  # a new user is read
    assert apply(1).applied and users_table not in tables_read  # a returning one is not
    store = OnlineFeatureStore(local_stack)
    assert store.get_users([user])[0]["interaction_count"] == 2

    # A deployment rewrites the user's features meanwhile: the next event is added to them.
    store.put_users(
        [{"user_id": user, "interaction_count": 40, "total_weight": 50.0, "model_version": "v-next"}]
    )
    result = apply(2, "view")
    assert result.applied and result.conflicts == 1
    rewritten = store.get_users([user])[0]
    assert (rewritten["interaction_count"], rewritten["model_version"]) == (41, "v-next")

    # An erasure meanwhile: an event dated before it never writes the user back.
    forget_user(local_stack, user)
    result = apply(3)
    assert (result.applied, result.erased) == ([], 1)
    assert store.activity_and_engaged(user, 10) == ([], [])
    assert "interaction_count" not in (store.get_users([user])[0] or {})

    lambda_applier = EventApplier(local_stack)  # the Lambda's: not tied to a shard, it keeps nothing
    event = {"event_id": uuid.uuid4().hex, "user_id": user, "video_id": video, "event_type": "view",
             "timestamp": time.time() + 1}  # fmt: skip
    assert lambda_applier.apply_events([event]).applied and len(lambda_applier.user_items) == 0


def test_the_user_item_cache_stays_within_its_bound_dropping_the_least_recently_used() -> None:
    from recsys.event_processing import UserItemCache

    cache = UserItemCache(max_cost=10)
    cache.put("user", "a", {"user_id": "a"})  # cost 1
    cache.put("engaged", "a", {"user_id": "a", "video_ids": ["v1", "v2", "v3"]})  # cost 4
    cache.put("user", "b", {"user_id": "b"})  # cost 1: 6 in all
    assert cache.get("user", "a") == {"user_id": "a"}  # now the most recently used
    cache.put("engaged", "b", {"user_id": "b", "video_ids": ["v1", "v2", "v3", "v4"]})  # 11: one out
    assert cache.get("engaged", "a") is None and len(cache) == 3
    assert cache.get("user", "a") and cache.get("user", "b") and cache.get("engaged", "b")
    cache.put("user", "a", None)  # known gone: forgotten
    assert cache.get("user", "a") is None and len(cache) == 2
    cache.put(
        "engaged", "c", {"user_id": "c", "video_ids": [f"v{i}" for i in range(20)]}
    )  # over the bound alone
    assert len(cache) == 0


def test_a_batch_of_many_groups_is_applied_once_when_another_writer_changes_a_video_midway(local_stack):
    """A batch spans several transactions. Another writer changes a shared video just before the second one
    commits: that transaction is cancelled and retried, and every event still counts once, beside the other
    writer's change."""
    from recsys.event_processing import EventApplier

    run = uuid.uuid4().hex[:8]
    users = [f"many-{run}-{i}" for i in range(60)]
    videos = [f"many-{run}-v{i}" for i in range(3)]
    store = OnlineFeatureStore(local_stack)
    store.put_videos([{"video_id": v, "category": "music", "interaction_count": 10} for v in videos])
    start = time.time() - 60
    events = [
        {"event_id": uuid.uuid4().hex, "user_id": users[i % len(users)], "video_id": videos[i % len(videos)],
         "event_type": "view", "timestamp": start + i * 0.001}
        for i in range(180)
    ]  # fmt: skip
    applier = EventApplier(local_stack)
    sent: list[int] = []

    def another_writer_first(**_kwargs) -> None:  # runs as each transaction is sent
        sent.append(len(sent))
        if len(sent) == 2:
            [video] = store.get_videos([videos[0]])
            store.put_videos([{**video, "interaction_count": video["interaction_count"] + 1000,
                               "rev": int(video.get("rev") or 0) + 1}])  # fmt: skip

    hooks = applier.ddb.meta.events
    hooks.register("before-call.dynamodb.TransactWriteItems", another_writer_first, unique_id="midway")
    try:
        result = applier.apply_events(events)
    finally:
        hooks.unregister("before-call.dynamodb.TransactWriteItems", unique_id="midway")
    assert sorted(result.applied) == sorted(e["event_id"] for e in events) and not result.failed
    assert result.conflicts == 1 and result.transactions >= 3
    per_video = Counter(e["video_id"] for e in events)
    stored = {v["video_id"]: v["interaction_count"] for v in store.get_videos(videos)}
    assert stored == {v: 10 + per_video[v] + (1000 if v == videos[0] else 0) for v in videos}
    per_user = Counter(e["user_id"] for e in events)
    assert [u["interaction_count"] for u in store.get_users(users)] == [per_user[u] for u in users]

    again = EventApplier(local_stack).apply_events(events)  # a replay changes nothing
    assert again.applied == [] and again.duplicates == len(events)
    assert {v["video_id"]: v["interaction_count"] for v in store.get_videos(videos)} == stored


def test_applying_a_batch_drops_the_cached_answers_of_its_users_and_writes_their_state_through(
    service, tiny_world, monkeypatch
):
    from recsys.event_processing import EventApplier

    users = tiny_world.user_ids[20:23]
    for user in users:
        service.cache.invalidate(user)
        service.recommend(user, k=4, track=False)
    shown = {u: service.recommend(u, k=4, track=False) for u in users}
    assert {answer["source"] for answer in shown.values()} == {"cache"}
    events = [  # events that did not come through this API (another producer): only the stream has them
        {"event_id": uuid.uuid4().hex, "user_id": user, "video_id": shown[user]["items"][0]["video_id"],
         "event_type": "view", "timestamp": time.time() - 5}
        for user in users[:2]
    ]  # fmt: skip
    reads: list[str] = []
    store_read = service.store.activity_and_engaged
    monkeypatch.setattr(
        service.store, "activity_and_engaged", lambda u, n: reads.append(u) or store_read(u, n)
    )
    assert len(EventApplier(service.settings, cache=service.cache).apply_events(events).applied) == 2
    after = [service.recommend(u, k=4, track=False) for u in users]
    assert [a["source"] for a in after] == ["model", "model", "cache"]  # the third user had no event
    assert reads == []  # the users' states in Redis took the events: no DynamoDB read
    for event, answer in zip(events, after, strict=False):
        assert event["video_id"] not in [i["video_id"] for i in answer["items"]]  # what they watched is out
        _, state = service.cache.lookup(event["user_id"], "another request shape")
        assert (
            state["activity"][0]["event_ts"].endswith(event["event_id"])
            and event["video_id"] in state["engaged"]
        )


def test_users_who_watched_the_same_video_share_its_writes(local_stack):
    """Three groups of 15 users, ids interleaved; each user watches their group's popular video, then one of
    their own. A batch is applied with each user's events in order, users of a popular video side by side,
    so each popular video's item is written in at most two transactions (5 in all, 9 in user-id order), and
    every count is right."""
    from recsys.event_processing import EventApplier, transaction_order

    run = uuid.uuid4().hex[:8]
    users = [f"share-{run}-{i:02d}" for i in range(45)]
    popular = [f"share-{run}-hot{g}" for g in range(3)]
    start = time.time() - 60
    events = []
    for i, user in enumerate(users):
        for step, video in enumerate([popular[i % 3], f"share-{run}-own{i}"]):
            events.append({"event_id": uuid.uuid4().hex, "user_id": user, "video_id": video, "event_type": "view",
                           "timestamp": start + step + i * 0.001})  # fmt: skip
    ordered = transaction_order(list(reversed(events)))
    for i, user in enumerate(users):  # a user's events together, in the order they came (reversed here)
        mine = [n for n, e in enumerate(ordered) if e["user_id"] == user]
        assert mine == list(range(mine[0], mine[0] + 2))
        assert [ordered[n]["video_id"] for n in mine] == [f"share-{run}-own{i}", popular[i % 3]]
    for video in popular:  # a popular video's users side by side
        seen = [n for n, e in enumerate(ordered) if e["video_id"] == video]
        assert seen == list(range(seen[0], seen[0] + 30, 2))

    writes: Counter = Counter()

    def count_video_writes(params, **_kwargs) -> None:
        for entry in params["TransactItems"]:
            item = entry.get("Put", {}).get("Item", {})
            if item.get("video_id", {}).get("S") in popular and "event_ts" not in item:
                writes[item["video_id"]["S"]] += 1

    applier = EventApplier(local_stack)
    hooks = applier.ddb.meta.events
    hooks.register(
        "before-parameter-build.dynamodb.TransactWriteItems", count_video_writes, unique_id="count"
    )
    try:
        result = applier.apply_events(events)
    finally:
        hooks.unregister("before-parameter-build.dynamodb.TransactWriteItems", unique_id="count")
    assert len(result.applied) == len(events) and not result.failed
    assert max(writes.values()) <= 2 and sum(writes.values()) <= 5
    stored = OnlineFeatureStore(local_stack).get_videos(popular)
    assert {v["video_id"]: v["interaction_count"] for v in stored} == dict.fromkeys(popular, 15)


def test_draining_one_consumer_leaves_the_stream_to_the_other_and_a_second_drain_finishes_it(local_stack):
    from recsys.events import InteractionEvent, publish_interaction
    from recsys.local.stream_worker import StreamWorker

    worker = StreamWorker(local_stack)
    worker.drain()  # whatever earlier tests left on the stream
    run = uuid.uuid4().hex[:8]
    users = [f"drain-{run}-u{i}" for i in range(6)]
    store = OnlineFeatureStore(local_stack)
    for i in range(30):
        event = InteractionEvent(user_id=users[i % 6], video_id=f"drain-{run}-v{i % 5}", event_type="view")
        publish_interaction(local_stack, event, store)

    assert worker.drain(("processor",)) == 30
    applied = {u["user_id"]: u for u in store.get_users(users)}
    assert all(applied.get(u, {}).get("interaction_count") == 5 for u in users)
    lag = worker.lag()
    assert sum(lag["processor"].values()) == 0
    assert sum(lag["firehose"].values()) == 30  # not delivered to S3 raw yet: it waits for the next drain

    assert worker.drain() == 30
    assert all(n == 0 for per_shard in worker.lag().values() for n in per_shard.values())
    stats = worker.stats.to_dict()
    assert stats["delivered"] >= 30 and stats["fetch_s"] > 0 and stats["handle_s"] > 0
    with pytest.raises(ValueError, match="unknown consumer"):
        worker.consume("archive", worker.shards()[0])


def test_a_batch_that_fails_midway_is_checkpointed_before_the_failure_and_resumed_there(local_stack):
    from recsys.event_processing import EventApplier, UserItemCache
    from recsys.events import InteractionEvent, publish_interaction
    from recsys.local.stream_worker import StreamWorker

    class FailsFromTheThirdRecordOnce(EventApplier):  # the store refusing writes midway, as a throttled table
        armed = False

        def apply_records(self, records):
            if not self.armed or len(records) < 3:
                return super().apply_records(records)
            self.armed = False
            result = super().apply_records(records[:2])  # the rest is never written
            result.failed.update({r.sequence: "injected: the store refused the write" for r in records[2:]})
            return result

    applier = FailsFromTheThirdRecordOnce(local_stack, user_items=UserItemCache())
    worker = StreamWorker(local_stack, applier=applier)
    worker.drain()  # whatever earlier tests left on the stream
    run = uuid.uuid4().hex[:8]
    store = OnlineFeatureStore(local_stack)
    for i in range(5):
        publish_interaction(
            local_stack, InteractionEvent(user_id=f"mid-{run}", video_id=f"mid-{run}-v{i}"), store
        )
    shard = next(s for s, pending in worker.lag()["processor"].items() if pending)  # the user's shard
    failed_before = worker.stats.failed_batches
    applier.armed = True

    assert worker.consume("processor", shard) == 2  # the two before the failure
    assert sum(worker.lag()["processor"].values()) == 3
    assert store.get_users([f"mid-{run}"])[0]["interaction_count"] == 2
    assert worker.consume("processor", shard) == 3  # read again from the failed record
    assert sum(worker.lag()["processor"].values()) == 0
    assert worker.stats.failed_batches == failed_before + 1
    assert store.get_users([f"mid-{run}"])[0]["interaction_count"] == 5  # the retry applied the other three
