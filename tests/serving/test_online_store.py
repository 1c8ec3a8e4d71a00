"""The online feature store against the local stack: aligned batched reads, Decimal-safe writes, activity."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from recsys.errors import ValidationError
from recsys.feature_store.online import OnlineFeatureStore


def test_batched_reads_are_aligned_with_missing_as_none(local_stack):
    store = OnlineFeatureStore(local_stack)
    prefix = uuid.uuid4().hex[:6]
    ids = [f"{prefix}-{i}" for i in range(230)]  # more than one BatchGetItem chunk
    written = store.put_videos(
        [{"video_id": v, "category": "music", "popularity": np.float64(0.25), "interaction_count": np.int64(3),
          "embedding": np.arange(4, dtype=np.float32), "avg_watch_ratio": float("nan")} for v in ids]
    )  # fmt: skip
    assert written == 230
    wanted = [ids[5], "missing", ids[5], ids[229]]
    got = store.get_videos(wanted)
    assert [g and g["video_id"] for g in got] == [ids[5], None, ids[5], ids[229]]
    assert got[0]["popularity"] == 0.25 and got[0]["embedding"] == [0.0, 1.0, 2.0, 3.0]
    assert "avg_watch_ratio" not in got[0]  # NaN is not stored
    slim = store.get_videos([ids[0]], attributes=["category", "popularity"])[0]
    assert set(slim) == {"video_id", "category", "popularity"}


def test_writes_need_keys(local_stack):
    with pytest.raises(ValidationError, match="lacks its key"):
        OnlineFeatureStore(local_stack).put_users([{"interaction_count": 1}])


def test_recent_activity_newest_first_and_idempotent(local_stack):
    store = OnlineFeatureStore(local_stack)
    user = f"act-{uuid.uuid4().hex[:6]}"
    now = time.time()
    for i in range(4):
        store.record_activity(
            {"user_id": user, "video_id": f"v{i}", "event_id": f"e{i}", "timestamp": now + i}
        )
    store.record_activity(
        {"user_id": user, "video_id": "v3", "event_id": "e3", "timestamp": now + 3}
    )  # again
    recent = store.recent_activity(user, 10)
    assert [a["video_id"] for a in recent] == ["v3", "v2", "v1", "v0"]
    assert [a["video_id"] for a in store.recent_activity(user, 2)] == ["v3", "v2"]
    with pytest.raises(ValidationError, match="lacks 'event_id'"):
        store.record_activity({"user_id": user, "video_id": "v9", "timestamp": now})


def test_numbers_below_what_dynamodb_holds_are_stored_as_zero(local_stack):
    """A valid float too small for a DynamoDB number (e.g. a duration of 5e-324) is 0, not a refused item."""
    from recsys.feature_store.online import OnlineFeatureStore

    video = f"tiny-{uuid.uuid4().hex[:8]}"
    store = OnlineFeatureStore(local_stack)
    store.put_videos(
        [{"video_id": video, "duration": 5e-324, "popularity": -1e-200, "avg_watch_ratio": 1e-120}]
    )
    [got] = store.get_videos([video])
    assert got["duration"] == 0.0 and got["popularity"] == 0.0 and got["avg_watch_ratio"] == 1e-120


def test_new_activity_written_together_keeps_what_the_stream_processor_stored(local_stack):
    """The API's grouped activity write (one transaction) never replaces the processor's copy of an event
    (it carries `applied_at`, the exactly-once marker): that event stays as the processor wrote it, and the
    group's other events are still written."""
    from recsys.feature_store.online import activity_item, serialize_item

    store = OnlineFeatureStore(local_stack)
    user = f"grp-{uuid.uuid4().hex[:6]}"
    now = time.time()
    events = [
        {"user_id": user, "video_id": f"v{i}", "event_id": f"e{i}", "timestamp": now + i} for i in range(5)
    ]
    applied = {**activity_item(events[2]), "applied_at": 123.0}
    store._ddb.put_item(TableName=store.activity_table, Item=serialize_item(applied))
    store.record_new_activity(events)
    recent = store.recent_activity(user, 10)
    assert [a["video_id"] for a in recent] == ["v4", "v3", "v2", "v1", "v0"]
    assert [a.get("applied_at") for a in recent] == [None, None, 123.0, None, None]
    store.record_new_activity(events[:3])  # again: nothing changes, nothing doubles
    assert store.recent_activity(user, 10) == recent
