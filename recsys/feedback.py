"""The feedback merge: joins served recommendations (inference tracking) with the interactions that
followed them (raw events that Firehose delivered to S3), one day at a time.

Output: `s3://{data}/feedback/date=YYYY-MM-DD/feedback.parquet`, one row per item shown, with
`label` 1 when the user engaged with it through that recommendation, 0 otherwise. The ranker can
train on these impressions later; the counts give the online click-through rate of each model version.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from recsys import raw_events
from recsys.aws import client
from recsys.storage import put_parquet

if TYPE_CHECKING:
    from recsys.config import Settings

POSITIVE_EVENTS = frozenset({"view", "click", "watch", "complete", "like", "share"})
FEEDBACK_PREFIX = "feedback/"
_BATCH_GET_LIMIT = 100


@dataclass
class MergeResult:
    """What one merge read and wrote."""

    date: str
    events: int
    attributed_events: int
    recommendations: int
    impressions: int
    positives: int
    untracked_recommendation_ids: int
    key: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def raw_event_prefix(day: date) -> str:
    """Where a day's events arrive (the catalogue's `events/date=.../hour=.../` layout)."""
    return raw_events.day_prefix(day)


def load_events(settings: Settings, day: date) -> list[dict[str, Any]]:
    """The events that arrived on `day`, deduplicated by event id (Firehose delivers at least once)."""
    seen: set[str] = set()
    events: list[dict[str, Any]] = []
    for event in raw_events.iter_events(settings, raw_events.event_keys(settings, day, day)):
        event_id = event.get("event_id")
        if isinstance(event_id, str) and event_id in seen:
            continue
        if isinstance(event_id, str):
            seen.add(event_id)
        events.append(event)
    return events


def _tracking_items(settings: Settings, ids: list[str]) -> dict[str, dict[str, Any]]:
    from boto3.dynamodb.types import TypeDeserializer

    ddb = client("dynamodb", settings)
    table = settings.names.table("inference_tracking")
    deser = TypeDeserializer()
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), _BATCH_GET_LIMIT):
        request = {
            table: {"Keys": [{"recommendation_id": {"S": i}} for i in ids[start : start + _BATCH_GET_LIMIT]]}
        }
        while request:
            response = ddb.batch_get_item(RequestItems=request)
            for raw in response.get("Responses", {}).get(table, []):
                item = {k: deser.deserialize(v) for k, v in raw.items()}
                found[str(item["recommendation_id"])] = item
            request = response.get("UnprocessedKeys") or {}
    return found


def merge_feedback(settings: Settings, day: date) -> MergeResult:
    """Merge one day's events with the recommendations they came from; write the impressions table."""
    import polars as pl

    events = load_events(settings, day)
    by_rec: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        rid = event.get("recommendation_id")
        if rid:
            by_rec[str(rid)].append(event)
    tracked = _tracking_items(settings, sorted(by_rec))
    rows: list[dict[str, Any]] = []
    for rid, item in tracked.items():
        engaged: dict[str, dict[str, Any]] = {}
        for event in by_rec[rid]:
            if str(event.get("user_id")) == str(item.get("user_id")):
                engaged[str(event.get("video_id"))] = event
        for shown in item.get("items", []):
            vid = str(shown["video_id"])
            event = engaged.get(vid)
            rows.append(
                {
                    "recommendation_id": rid,
                    "user_id": str(item.get("user_id")),
                    "video_id": vid,
                    "rank": int(shown.get("rank", 0)),
                    "score": float(shown.get("score", 0.0)),
                    "model_version": str(item.get("model_version", "none")),
                    "source": str(item.get("source", "")),
                    "shown_at_ms": int(item.get("timestamp", 0)),
                    "event_type": event.get("event_type") if event else None,
                    "watch_time": float(event["watch_time"])
                    if event and event.get("watch_time") is not None
                    else None,
                    "label": int(bool(event) and event.get("event_type") in POSITIVE_EVENTS),
                }
            )
    key = None
    if rows:
        key = f"{FEEDBACK_PREFIX}date={day.isoformat()}/feedback.parquet"
        put_parquet(settings, settings.names.bucket("data"), key, pl.DataFrame(rows))
    return MergeResult(
        date=day.isoformat(),
        events=len(events),
        attributed_events=sum(len(v) for v in by_rec.values()),
        recommendations=len(tracked),
        impressions=len(rows),
        positives=sum(r["label"] for r in rows),
        untracked_recommendation_ids=len(set(by_rec) - set(tracked)),
        key=key,
    )


def day_to_merge(event: dict[str, Any]) -> date:
    """`{"date": "YYYY-MM-DD"}`, else the day before the EventBridge event's `time` (or before now)."""
    if event.get("date"):
        return date.fromisoformat(str(event["date"]))
    now = (
        datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
        if event.get("time")
        else datetime.now(UTC)
    )
    return (now - timedelta(days=1)).date()


def feedback_report(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Online click-through of every merged day: impressions, engagements and CTR per model version and per
    source (model, cache, popular, ...), from `s3://{data}/feedback/date=*/feedback.parquet`."""
    import polars as pl

    from recsys.storage import get_parquet, list_keys

    bucket = settings.names.bucket("data")
    frames = [
        get_parquet(settings, bucket, k)
        for k in list_keys(settings, bucket, FEEDBACK_PREFIX)
        if k.endswith(".parquet")
    ]
    if not frames:
        return {"by_model_version": [], "by_source": [], "days": []}
    rows = pl.concat(frames, how="diagonal_relaxed")

    def per(column: str) -> list[dict[str, Any]]:
        table = (
            rows.group_by(column)
            .agg(pl.len().alias("impressions"), pl.col("label").sum().alias("engaged"))
            .with_columns((pl.col("engaged") / pl.col("impressions")).round(4).alias("ctr"))
            .sort(column)
        )
        return table.to_dicts()

    days = sorted(
        {k.split("date=", 1)[1][:10] for k in list_keys(settings, bucket, FEEDBACK_PREFIX) if "date=" in k}
    )
    return {"by_model_version": per("model_version"), "by_source": per("source"), "days": days}
