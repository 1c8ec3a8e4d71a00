"""The feedback merge against the local stack: tracked recommendations joined with raw events."""

from __future__ import annotations

import gzip
import io
import json
import uuid
from datetime import date

import polars as pl
import pytest
from typer.testing import CliRunner

from recsys import artifacts
from recsys.aws import client
from recsys.cli.main import app
from recsys.click_through import wilson_interval
from recsys.feedback import day_to_merge, merge_feedback, variant_summary
from recsys.raw_events import parse_records

DAY = date(2026, 11, 23)


def _track(
    settings, rid: str, user: str, videos: list[str], version: str = "v1", variant: str | None = None
) -> None:
    client("dynamodb", settings).put_item(
        TableName=settings.names.table("inference_tracking"),
        Item={
            "recommendation_id": {"S": rid},
            "user_id": {"S": user},
            "timestamp": {"N": "1763856000000"},
            **({"variant": {"S": variant}} if variant else {}),
            "model_version": {"S": version},
            "source": {"S": "model"},
            "items": {
                "L": [
                    {"M": {"video_id": {"S": v}, "rank": {"N": str(i + 1)}, "score": {"N": "0.5"}}}
                    for i, v in enumerate(videos)
                ]
            },
        },
    )


def _parquet(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


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


def _impressions(variant: str, version: str, n: int, engaged: int, watched: list[float | None], videos: int):
    """n impressions of `videos` distinct items, the first `engaged` engaged, with these watch times."""
    return [
        {"variant": variant, "model_version": version, "video_id": f"{version}-{i % videos}",
         "label": int(i < engaged), "watch_time": watched[i] if i < len(watched) else None}
        for i in range(n)
    ]  # fmt: skip


def test_variant_summary_gives_each_variant_its_interval_watch_time_and_coverage() -> None:
    rows = pl.DataFrame(
        _impressions("production", "v1", 1000, 100, [30.0] * 50 + [60.0] * 10, videos=20)
        + _impressions("canary", "v2", 100, 5, [], videos=40)
    )
    lines = {r["variant"]: r for r in variant_summary(rows, {"v1": 40, "v2": 80})}
    prod, canary = lines["production"], lines["canary"]
    assert (prod["model_version"], prod["impressions"], prod["engaged"], prod["ctr"]) == (
        "v1",
        1000,
        100,
        0.1,
    )
    assert (prod["ctr_low"], prod["ctr_high"]) == pytest.approx(wilson_interval(100, 1000), abs=1e-4)
    assert prod["ctr_low"] == pytest.approx(0.0829, abs=1e-4) and prod["ctr_high"] == pytest.approx(
        0.1202, abs=1e-4
    )
    assert prod["mean_watch_time"] == pytest.approx(
        35.0
    )  # over engaged items that report one (50 x 30, 10 x 60)
    assert (prod["items_served"], prod["coverage"]) == (20, 0.5)
    assert (canary["impressions"], canary["engaged"], canary["ctr"]) == (100, 5, 0.05)
    assert canary["ctr_low"] == pytest.approx(0.0215, abs=1e-4) and canary["ctr_high"] == pytest.approx(
        0.1118, abs=1e-4
    )
    assert canary["mean_watch_time"] is None  # no event reported a watch time
    assert (canary["items_served"], canary["coverage"]) == (40, 0.5)
    assert variant_summary(rows)[0]["coverage"] is None  # catalogue size unknown


def test_the_report_splits_merged_impressions_by_variant(local_stack) -> None:
    run = uuid.uuid4().hex[:8]
    canary, production = f"v-canary-{run}", f"v-prod-{run}"
    day = date(2026, 11, 25)
    _track(local_stack, f"rec-c-{run}", "u1", ["a", "b"], version=canary, variant="canary")
    _track(local_stack, f"rec-p-{run}", "u2", ["a", "b", "c"], version=production)  # tracked before canaries
    client("s3", local_stack).put_object(  # the canary version's catalogue: 4 videos
        Bucket=local_stack.names.bucket("models"),
        Key=artifacts.two_tower_key(canary, "serving_catalog.parquet"),
        Body=_parquet(pl.DataFrame({"video_id": ["a", "b", "c", "d"]})),
    )
    _firehose_object(
        local_stack,
        f"events/date={day}/hour=09/part-{run}",
        [
            {
                "user_id": "u1",
                "video_id": "b",
                "event_type": "watch",
                "watch_time": 42.0,
                "recommendation_id": f"rec-c-{run}",
            },
            {"user_id": "u2", "video_id": "x", "event_type": "view", "recommendation_id": f"rec-p-{run}"},
        ],
        gz=False,
    )
    assert merge_feedback(local_stack, day).impressions >= 5

    result = CliRunner().invoke(app, ["feedback", "report", "--env", "local", "--json"])
    assert result.exit_code == 0, result.output
    lines = {r["model_version"]: r for r in json.loads(result.stdout)["data"]["by_variant"]}
    assert lines[canary]["variant"] == "canary" and lines[production]["variant"] == "production"
    assert (lines[canary]["impressions"], lines[canary]["engaged"], lines[canary]["ctr"]) == (2, 1, 0.5)
    assert (lines[canary]["ctr_low"], lines[canary]["ctr_high"]) == pytest.approx(
        wilson_interval(1, 2), abs=1e-4
    )
    assert lines[canary]["mean_watch_time"] == 42.0 and lines[canary]["coverage"] == 0.5
    assert (lines[production]["impressions"], lines[production]["engaged"]) == (3, 0)
    assert lines[production]["coverage"] is None  # no catalogue stored for it
    human = CliRunner().invoke(app, ["feedback", "report", "--env", "local"])
    assert human.exit_code == 0 and "Variants" in human.stdout
