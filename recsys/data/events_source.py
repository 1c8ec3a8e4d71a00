"""The events source: train on the base data plus every interaction collected since (a dataset group).

`{"source": {"kind": "events", ...}}` (`recsys pipeline run --source events`) trains on

- the base: by default the data the production version was trained on (the imported dataset or the demo's
  synthetic data, as its preprocessing job recorded it in `source.json`; for a production version that was
  itself trained on events, that version's base), or a base given explicitly, or none (`"base": null`);
- the raw events in S3 (`recsys.raw_events`), deduplicated by event id, optionally only those whose event
  time is in [since, until);
- the live catalogue: videos added since training (their metadata) and removed ones (dropped); for other
  videos the events name and no metadata describes, what the online feature store knows (category,
  duration, upload time), else the category the events carry;
- the feedback merge's impressions (shown, not engaged: `s3://{data}/feedback/date=*/feedback.parquet`),
  which become the ranker's negatives.

Too little data (fewer than `min_events` events, or too few users to train) is a ValidationError: the run
fails in preprocessing and production stays as it is.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from recsys import artifacts, raw_events
from recsys.data import schema as s
from recsys.data.synthetic import Dataset
from recsys.errors import NotFoundError, ValidationError
from recsys.registry import ModelRegistry
from recsys.storage import exists, get_json, get_parquet, list_keys
from recsys.timestamps import epoch_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from recsys.config import Settings

log = logging.getLogger(__name__)

SOURCE_FILE = "source.json"  # preprocessing/{job_id}/source.json: the resolved source of a run
FEEDBACK_PREFIX = "feedback/"


def _epoch(value: Any) -> float | None:
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    try:
        return epoch_of(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is neither epoch seconds nor ISO-8601") from None


class EventsSource(BaseModel):
    """The events source's options (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field("events", pattern="^events$")
    base: dict[str, Any] | str | None = Field(
        "production", description='"production" (default), a synthetic or dataset source, or null for none'
    )
    since: float | None = Field(None, description="Only events at or after this time (epoch s or ISO-8601)")
    until: float | None = Field(None, description="Only events before this time")
    min_events: int = Field(1, ge=0, description="Fewer collected events than this is an error")
    feedback: bool = Field(True, description="Impressions of the feedback merge as ranker negatives")

    @field_validator("since", "until", mode="before")
    @classmethod
    def _time(cls, value: Any) -> float | None:
        return _epoch(value)

    @field_validator("base")
    @classmethod
    def _base(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "production":
            raise ValueError('base must be "production", a source object, or null')
        if isinstance(value, dict) and value.get("kind") not in ("synthetic", "dataset"):
            raise ValueError('a base source has kind "synthetic" or "dataset"')
        return value


def parse_events_source(source: dict[str, Any]) -> EventsSource:
    """The options of an events source, or a ValidationError naming the bad field."""
    try:
        return EventsSource.model_validate(source)
    except PydanticValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValidationError(f"invalid events source: {problems}", hint="see docs/data-path.md") from None


def production_base(settings: Settings) -> dict[str, Any]:
    """The base source of the production version (what its preprocessing job recorded)."""
    version = ModelRegistry(settings).production()
    if version is None:
        raise NotFoundError(
            "no version is in production, so there is no base data to add the events to",
            hint='train one first (recsys pipeline run), or give the base: {"kind": "events", "base": {...}}',
        )
    key = artifacts.preprocessing_key(version.job_id, SOURCE_FILE) if version.job_id else None
    bucket = settings.names.bucket("artifacts")
    if not key or not exists(settings, bucket, key):
        raise NotFoundError(
            f"production version {version.version} does not record the data it was trained on",
            hint='give the base explicitly: {"kind": "events", "base": {"kind": "dataset", "name": ...}}',
        )
    recorded = get_json(settings, bucket, key)
    base = recorded.get("base") if recorded.get("kind") == "events" else recorded
    return dict(base) if base else {}


def events_frame(events: list[dict[str, Any]]) -> pl.DataFrame:
    """Collected events as interaction rows (user_id, video_id, timestamp, event_type, watch_time)."""
    rows = {
        s.USER_ID: [str(e["user_id"]) for e in events],
        s.VIDEO_ID: [str(e["video_id"]) for e in events],
        s.TIMESTAMP: [int(float(e["timestamp"])) for e in events],
        s.EVENT_TYPE: [str(e.get("event_type") or "view") for e in events],
        s.WATCH_TIME: [float(e["watch_time"]) if e.get("watch_time") is not None else None for e in events],
    }
    schema = {s.USER_ID: pl.String, s.VIDEO_ID: pl.String, s.TIMESTAMP: pl.Int64, s.EVENT_TYPE: pl.String,
              s.WATCH_TIME: pl.Float64}  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def _live_videos(settings: Settings) -> tuple[pl.DataFrame, set[str]]:
    from recsys.catalogue_live import LiveCatalogue

    try:
        changes = LiveCatalogue(settings).changes()
    except Exception as exc:  # an environment without the table: no live changes
        log.warning("reading the live catalogue failed: %s", exc)
        return pl.DataFrame(), set()
    added = [c for c in changes if c.get("status") == "active"]
    removed = {str(c["video_id"]) for c in changes if c.get("status") == "removed"}
    frame = pl.DataFrame(
        {
            s.VIDEO_ID: [str(c["video_id"]) for c in added],
            s.CATEGORY: [str(c.get("category") or s.UNKNOWN_CATEGORY) for c in added],
            s.DURATION: [float(c.get("duration") or 0.0) for c in added],
            s.UPLOAD_TS: [int(c.get("upload_ts") or 0) for c in added],
        },
        schema={s.VIDEO_ID: pl.String, s.CATEGORY: pl.String, s.DURATION: pl.Float64, s.UPLOAD_TS: pl.Int64},
    )
    return frame, removed


def _online_metadata(settings: Settings, video_ids: list[str]) -> pl.DataFrame:
    from recsys.feature_store.online import OnlineFeatureStore

    items = OnlineFeatureStore(settings).get_videos(video_ids, [s.CATEGORY, s.DURATION, s.UPLOAD_TS])
    known = [i for i in items if i and i.get(s.CATEGORY) and i[s.CATEGORY] != s.UNKNOWN_CATEGORY]
    return pl.DataFrame(
        {
            s.VIDEO_ID: [str(i[s.VIDEO_ID]) for i in known],
            s.CATEGORY: [str(i[s.CATEGORY]) for i in known],
            s.DURATION: [float(i[s.DURATION]) if i.get(s.DURATION) is not None else None for i in known],
            s.UPLOAD_TS: [int(i[s.UPLOAD_TS]) if i.get(s.UPLOAD_TS) is not None else None for i in known],
        },
        schema={s.VIDEO_ID: pl.String, s.CATEGORY: pl.String, s.DURATION: pl.Float64, s.UPLOAD_TS: pl.Int64},
    )


def impression_negatives(settings: Settings) -> pl.DataFrame:
    """Items shown and not engaged with (label 0 in the feedback merge): user_id, video_id, event_ts."""
    bucket = settings.names.bucket("data")
    frames = []
    for key in list_keys(settings, bucket, FEEDBACK_PREFIX):
        if key.endswith(".parquet"):
            frames.append(get_parquet(settings, bucket, key).filter(pl.col(s.LABEL) == 0))
    if not frames:
        return pl.DataFrame(schema={s.USER_ID: pl.String, s.VIDEO_ID: pl.String, "event_ts": pl.Int64})
    return (
        pl.concat(frames, how="diagonal_relaxed")
        .select(
            pl.col(s.USER_ID).cast(pl.String),
            pl.col(s.VIDEO_ID).cast(pl.String),
            (pl.col("shown_at_ms") // 1000).cast(pl.Int64).alias("event_ts"),
        )
        .unique(subset=[s.USER_ID, s.VIDEO_ID], keep="last", maintain_order=True)
    )


def _as_strings(data: Dataset) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    interactions = data.interactions.with_columns(
        pl.col(s.USER_ID).cast(pl.String), pl.col(s.VIDEO_ID).cast(pl.String)
    )
    videos = data.videos.with_columns(pl.col(s.VIDEO_ID).cast(pl.String)) if data.videos is not None else None
    return interactions, videos


def load_events_source(
    source: dict[str, Any], settings: Settings, load_base: Callable[[dict[str, Any]], Dataset]
) -> tuple[Dataset, dict[str, Any], pl.DataFrame]:
    """(the data set, the resolved source to record, the impression negatives) of an events source."""
    options = parse_events_source(source)
    base_spec = production_base(settings) if options.base == "production" else options.base
    collected = raw_events.read_events(settings, since_ts=options.since, until_ts=options.until)
    if len(collected) < max(options.min_events, 1 if not base_spec else 0):
        raise ValidationError(
            f"too little data: {len(collected)} collected events (at least {max(options.min_events, 1)} needed)",
            hint="post interactions (POST /interactions) and let them reach S3 (recsys events worker), "
            "or widen the since/until window",
        )
    frames: list[pl.DataFrame] = []
    videos: list[pl.DataFrame] = []
    if base_spec:
        base_interactions, base_videos = _as_strings(load_base(base_spec))
        frames.append(base_interactions)
        if base_videos is not None:
            videos.append(base_videos.select([c for c in s.VIDEO_COLUMNS if c in base_videos.columns]))
    events = events_frame(collected)
    frames.append(events)
    live, removed = _live_videos(settings)
    if live.height:
        videos.append(live)
    # Categories the events carry, for videos no metadata describes.
    from_events = (
        pl.DataFrame(
            {s.VIDEO_ID: [str(e["video_id"]) for e in collected if e.get("category")],
             s.CATEGORY: [str(e["category"]) for e in collected if e.get("category")]},
            schema={s.VIDEO_ID: pl.String, s.CATEGORY: pl.String},
        ).unique(subset=s.VIDEO_ID, keep="last")
    )  # fmt: skip
    if from_events.height:
        videos.append(from_events)
    described = set().union(*(set(v[s.VIDEO_ID].to_list()) for v in videos)) if videos else set()
    undescribed = sorted(set(events[s.VIDEO_ID].to_list()) - described)
    if undescribed:  # what the online store knows of the rest (a video another version trained on)
        videos.append(_online_metadata(settings, undescribed))
    interactions = pl.concat(frames, how="diagonal_relaxed")
    video_table = None
    if videos:
        # Later tables win for a video (live metadata over base metadata), missing columns stay empty.
        video_table = pl.concat(videos[::-1], how="diagonal_relaxed").unique(subset=s.VIDEO_ID, keep="first")
    if removed:
        interactions = interactions.filter(~pl.col(s.VIDEO_ID).is_in(list(removed)))
        if video_table is not None:
            video_table = video_table.filter(~pl.col(s.VIDEO_ID).is_in(list(removed)))
    negatives = impression_negatives(settings) if options.feedback else pl.DataFrame()
    resolved = {
        "kind": "events",
        "base": base_spec or None,
        "since": options.since,
        "until": options.until,
        "events": events.height,
        "base_interactions": sum(f.height for f in frames[:-1]),
        "live_videos_added": live.height,
        "videos_removed": len(removed),
        "feedback_negatives": negatives.height if options.feedback else 0,
    }
    return Dataset(interactions=interactions, videos=video_table), resolved, negatives


def add_impression_negatives(
    ranker_train: pl.DataFrame,
    negatives: pl.DataFrame,
    train: pl.DataFrame,
    test: pl.DataFrame,
    catalog: pl.DataFrame,
) -> pl.DataFrame:
    """The ranker's training rows plus impressions (label 0) of train users on catalogue videos that are not
    positives of that user."""
    if negatives.is_empty():
        return ranker_train
    positives = pl.concat([train.select(s.USER_ID, s.VIDEO_ID), test.select(s.USER_ID, s.VIDEO_ID)])
    rows = (
        negatives.join(train.select(s.USER_ID).unique(), on=s.USER_ID, how="semi")
        .join(catalog.select(pl.col(s.VIDEO_ID).cast(pl.String)), on=s.VIDEO_ID, how="semi")
        .join(positives, on=[s.USER_ID, s.VIDEO_ID], how="anti")
        .join(ranker_train.select(s.USER_ID, s.VIDEO_ID), on=[s.USER_ID, s.VIDEO_ID], how="anti")
        .with_columns(pl.lit(0, pl.Int8).alias(s.LABEL))
    )
    if rows.is_empty():
        return ranker_train
    rows = rows.select([pl.col(c).cast(ranker_train.schema[c]) for c in ranker_train.columns])
    return pl.concat([ranker_train, rows]).sort(s.USER_ID, maintain_order=True)
