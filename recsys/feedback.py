"""The feedback merge: joins served recommendations (inference tracking) with the interactions that
followed them (raw events that Firehose delivered to S3), one day at a time.

Output: `s3://{data}/feedback/date=YYYY-MM-DD/feedback.parquet`, one row per item shown, with
`label` 1 when the user engaged with it through that recommendation, 0 otherwise, and the `variant`
(production or canary) and `model_version` that showed it. The ranker can train on these impressions
later; the counts give the online click-through of each model version and variant (`feedback_report`,
`variant_summary`), which `recsys model promote --require-canary-no-worse` compares (`variant_rates`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from recsys import artifacts, raw_events
from recsys.aws import client
from recsys.click_through import Rate
from recsys.serving.tracking import shown_items
from recsys.storage import get_bytes_if_exists, get_parquet, list_keys, put_parquet

if TYPE_CHECKING:
    import polars as pl

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
        for shown in shown_items(item):
            vid = str(shown["video_id"])
            event = engaged.get(vid)
            rows.append(
                {
                    "recommendation_id": rid,
                    "user_id": str(item.get("user_id")),
                    "video_id": vid,
                    "rank": int(shown.get("rank", 0)),
                    "score": float(shown.get("score", 0.0)),
                    "variant": str(item.get("variant") or "production"),
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


def load_feedback(settings: Settings) -> pl.DataFrame | None:
    """Every merged day's impressions in one frame (None when nothing is merged yet).

    Rows merged before canaries existed have no variant: they were production's.
    """
    import polars as pl

    bucket = settings.names.bucket("data")
    frames = [
        get_parquet(settings, bucket, k)
        for k in list_keys(settings, bucket, FEEDBACK_PREFIX)
        if k.endswith(".parquet")
    ]
    if not frames:
        return None
    rows = pl.concat(frames, how="diagonal_relaxed")
    if "variant" not in rows.columns:
        rows = rows.with_columns(pl.lit("production").alias("variant"))
    return rows.with_columns(pl.col("variant").fill_null("production"))


def variant_summary(
    rows: pl.DataFrame, catalogue_sizes: dict[str, int] | None = None
) -> list[dict[str, Any]]:
    """One line per (variant, model_version): impressions, engaged, click-through with its 95% Wilson
    interval (`ctr_low`, `ctr_high`), the mean watch time (seconds) of engaged items that report one (None
    when none does), the distinct items shown and, where the version's catalogue size is known, the share of
    the catalogue they cover (`coverage`, 0..1)."""
    import polars as pl

    sizes = catalogue_sizes or {}
    watch = pl.col("watch_time") if "watch_time" in rows.columns else pl.lit(None, dtype=pl.Float64)
    table = (
        rows.group_by("variant", "model_version")
        .agg(
            pl.len().alias("impressions"),
            pl.col("label").sum().alias("engaged"),
            watch.filter(pl.col("label") == 1).cast(pl.Float64).mean().alias("mean_watch_time"),
            pl.col("video_id").n_unique().alias("items_served"),
        )
        .sort("model_version", "variant")
    )
    lines = []
    for r in table.to_dicts():
        rate = Rate(int(r["engaged"]), int(r["impressions"]))
        low, high = rate.interval
        size = sizes.get(str(r["model_version"]))
        watch_time = r["mean_watch_time"]
        lines.append(
            {
                "variant": r["variant"],
                "model_version": r["model_version"],
                "impressions": rate.impressions,
                "engaged": rate.engaged,
                "ctr": round(rate.value, 4),
                "ctr_low": round(low, 4),
                "ctr_high": round(high, 4),
                "mean_watch_time": None if watch_time is None else round(float(watch_time), 1),
                "items_served": int(r["items_served"]),
                "catalogue_size": size,
                "coverage": round(int(r["items_served"]) / size, 4) if size else None,
            }
        )
    return lines


def catalogue_size(settings: Settings, version: str) -> int | None:
    """How many videos a version's serving catalogue holds (None when its catalogue cannot be read)."""
    import io

    import polars as pl

    try:
        raw = get_bytes_if_exists(
            settings,
            settings.names.bucket("models"),
            artifacts.two_tower_key(version, "serving_catalog.parquet"),
        )
        return None if raw is None else pl.read_parquet(io.BytesIO(raw), columns=["video_id"]).height
    except Exception:  # a report line without coverage, rather than no report
        return None


def variant_rates(settings: Settings, since_ms: int = 0) -> dict[tuple[str, str], Rate]:
    """Click-through per (variant, model_version) of the impressions shown from `since_ms` (epoch ms) on."""
    import polars as pl

    rows = load_feedback(settings)
    if rows is None:
        return {}
    rows = rows.filter(pl.col("shown_at_ms") >= since_ms)
    table = rows.group_by("variant", "model_version").agg(
        pl.len().alias("impressions"), pl.col("label").sum().alias("engaged")
    )
    return {
        (str(r["variant"]), str(r["model_version"])): Rate(int(r["engaged"]), int(r["impressions"]))
        for r in table.to_dicts()
    }


def feedback_report(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Online click-through of every merged day: per variant and model version (with a 95% interval, mean
    watch time and catalogue coverage, `variant_summary`), per model version and per source (model, cache,
    popular, ...), from `s3://{data}/feedback/date=*/feedback.parquet`."""
    import polars as pl

    rows = load_feedback(settings)
    if rows is None:
        return {"by_variant": [], "by_model_version": [], "by_source": [], "days": []}

    def per(column: str) -> list[dict[str, Any]]:
        table = (
            rows.group_by(column)
            .agg(pl.len().alias("impressions"), pl.col("label").sum().alias("engaged"))
            .with_columns((pl.col("engaged") / pl.col("impressions")).round(4).alias("ctr"))
            .sort(column)
        )
        return table.to_dicts()

    bucket = settings.names.bucket("data")
    days = sorted(
        {k.split("date=", 1)[1][:10] for k in list_keys(settings, bucket, FEEDBACK_PREFIX) if "date=" in k}
    )
    versions = sorted({str(v) for v in rows["model_version"].unique().to_list()} - {"none"})
    sizes = {v: n for v in versions if (n := catalogue_size(settings, v)) is not None}
    return {
        "by_variant": variant_summary(rows, sizes),
        "by_model_version": per("model_version"),
        "by_source": per("source"),
        "days": days,
    }
