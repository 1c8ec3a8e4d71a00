"""The processing Lambda: Kinesis records -> user activity, with partial batch failures."""

from __future__ import annotations

import base64
import json
import time
import uuid

from recsys.feature_store.online import OnlineFeatureStore
from recsys.serving.http_server import LocalContext


def _record(data: bytes, seq: str) -> dict:
    return {
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "p", "sequenceNumber": seq,
                    "data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": time.time()},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"shardId-000:{seq}",
        "eventName": "aws:kinesis:record", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/events",
    }  # fmt: skip


def test_stream_events_become_activity_and_bad_records_are_reported(local_stack, tiny_world):
    import lambdas.event_processor.handler as handler_module

    user = f"stream-{uuid.uuid4().hex[:8]}"
    good = {"event_id": uuid.uuid4().hex, "user_id": user, "video_id": tiny_world.video_ids[0],
            "event_type": "view", "timestamp": time.time()}  # fmt: skip
    event = {"Records": [
        _record(json.dumps(good).encode(), "1"),
        _record(b"{not json", "2"),
        _record(json.dumps({"user_id": user}).encode(), "3"),
        _record(json.dumps(good).encode(), "4"),  # a redelivery: the same activity item, no duplicate
    ]}  # fmt: skip
    result = handler_module.handler(event, LocalContext())
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == ["2", "3"]
    activity = OnlineFeatureStore(local_stack).recent_activity(user, 10)
    assert [a["video_id"] for a in activity] == [tiny_world.video_ids[0]]
