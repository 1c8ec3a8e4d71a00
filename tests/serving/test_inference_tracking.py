"""Inference tracking writes every served answer to the tracking table, in full batches while answers keep coming."""

from __future__ import annotations

import time
import uuid

from recsys.aws import client
from recsys.feature_store.online import BATCH_WRITE_SIZE
from recsys.local.processes import wait_until
from recsys.serving.tracking import InferenceTracker, tracking_item


def _items(n: int) -> list[dict]:
    shown = [{"video_id": "v1", "rank": 1, "score": 0.5, "source": "popular"}]
    return [
        tracking_item(uuid.uuid4().hex, f"user-{i}", "v-test", "model", shown, {"k": 1}, time.time())
        for i in range(n)
    ]


def _stored(settings, items: list[dict]) -> int:
    ddb = client("dynamodb", settings)
    table = settings.names.table("inference_tracking")
    return sum(
        "Item" in ddb.get_item(TableName=table, Key={"recommendation_id": {"S": i["recommendation_id"]}})
        for i in items
    )


def test_full_batches_are_written_and_the_rest_waits_for_the_next_flush(local_stack):
    tracker = InferenceTracker(local_stack, background=False)
    items = _items(2 * BATCH_WRITE_SIZE + 10)
    for item in items:
        tracker.record(item)
    assert tracker.flush(full_batches_only=True) == 2 * BATCH_WRITE_SIZE
    assert tracker.pending() == 10
    assert _stored(local_stack, items) == 2 * BATCH_WRITE_SIZE
    assert tracker.flush() == 10
    assert tracker.pending() == 0
    assert _stored(local_stack, items) == len(items)


def test_the_tracking_thread_writes_a_filled_batch_at_once_and_keeps_the_rest_queued(local_stack):
    tracker = InferenceTracker(local_stack, flush_interval_s=3600)  # the rest is never due within the test
    items = _items(BATCH_WRITE_SIZE + 5)
    for item in items:
        tracker.record(item)
    assert wait_until(lambda: tracker.written == BATCH_WRITE_SIZE, timeout_s=30, interval_s=0.01)
    assert tracker.pending() == 5  # a filled batch went out; the 5 wait for more (or the interval)
    assert tracker.flush() == 5  # what a shutdown does
    assert _stored(local_stack, items) == len(items)


def test_a_partial_batch_is_written_once_no_batch_fills_within_the_interval(local_stack):
    tracker = InferenceTracker(local_stack, flush_interval_s=0.05)
    items = _items(3)
    for item in items:
        tracker.record(item)
    assert wait_until(lambda: tracker.written == 3, timeout_s=30, interval_s=0.01)
    assert tracker.pending() == 0
    assert _stored(local_stack, items) == 3
