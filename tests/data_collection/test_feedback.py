"""The feedback merge against the local stack: tracked recommendations joined with raw events."""

from __future__ import annotations

import gzip
import io
import json
from datetime import date

import polars as pl

from recsys.aws import client
from recsys.feedback import day_to_merge, merge_feedback
from recsys.raw_events import parse_records

DAY = date(2026, 11, 23)


def _track(settings, rid: str, user: str, videos: list[str]) -> None:
    client("dynamodb", settings).put_item(
        TableName=settings.names.table("inference_tracking"),
        Item={
            "recommendation_id": {"S": rid},
            "user_id": {"S": user},
            "timestamp": {"N": "1763856000000"},
            "model_version": {"S": "v1"},
            "source": {"S": "model"},
            "items": {
                "L": [
                    {"M": {"video_id": {"S": v}, "rank": {"N": str(i + 1)}, "score": {"N": "0.5"}}}
                    for i, v in enumerate(videos)
                ]
            },
        },
    )


def _firehose_object(settings, key: str, records: list[dict], gz: bool) -> None:
    body = "".join(json.dumps(r) for r in records).encode()  # Firehose concatenates records
    client("s3", settings).put_object(
        Bucket=settings.names.bucket("raw_events"), Key=key, Body=gzip.compress(body) if gz else body
    )


def test_parse_records_handles_concatenated_gzip_and_bad_lines() -> None:
    body = b'{"a": 1}{"a": 2}\n{"a": 3}\nnot json\n{"a": 4}'
    assert [r["a"] for r in parse_records(body)] == [1, 2, 3, 4]
    assert [r["a"] for r in parse_records(gzip.compress(b'{"a": 1}\n{"a": 2}'))] == [1, 2]


def test_merge_labels_engaged_impressions(local_stack) -> None:
    _track(local_stack, "rec-1", "u1", ["v1", "v2", "v3"])
    _track(local_stack, "rec-2", "u2", ["v4", "v5"])
    _firehose_object(
        local_stack,
        f"events/date={DAY}/hour=10/part-1.gz",
        [
            {
                "user_id": "u1",
                "video_id": "v2",
                "event_type": "complete",
                "watch_time": 30,
                "recommendation_id": "rec-1",
            },
            {"user_id": "u2", "video_id": "v5", "event_type": "skip", "recommendation_id": "rec-2"},
        ],
        gz=True,
    )
    _firehose_object(
        local_stack,
        f"events/date={DAY}/hour=11/part-2",
        [
            {"user_id": "u9", "video_id": "v1", "event_type": "view", "recommendation_id": "rec-unknown"},
            {"user_id": "u1", "video_id": "v7", "event_type": "view"},
        ],
        gz=False,
    )

    result = merge_feedback(local_stack, DAY)

    assert (result.events, result.recommendations, result.impressions) == (4, 2, 5)
    assert result.positives == 1 and result.untracked_recommendation_ids == 1
    body = (
        client("s3", local_stack)
        .get_object(Bucket=local_stack.names.bucket("data"), Key=result.key)["Body"]
        .read()
    )
    frame = pl.read_parquet(io.BytesIO(body)).sort(["recommendation_id", "rank"])
    assert frame.filter(pl.col("label") == 1).select("user_id", "video_id", "rank").rows() == [
        ("u1", "v2", 2)
    ]
    assert frame.filter(pl.col("video_id") == "v5")["event_type"].to_list() == ["skip"]


def test_a_day_without_events_writes_nothing(local_stack) -> None:
    result = merge_feedback(local_stack, date(2020, 1, 1))
    assert result.impressions == 0 and result.key is None


def test_the_scheduled_run_merges_the_day_before() -> None:
    assert day_to_merge({"time": "2026-11-24T00:05:00Z"}) == date(2026, 11, 23)
    assert day_to_merge({"date": "2026-01-31"}) == date(2026, 1, 31)
