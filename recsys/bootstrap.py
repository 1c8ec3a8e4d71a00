"""Starter data for a new environment: a catalogue, users and interactions, and the users' recent activity.

`bootstrap` writes the synthetic starter data set (the demo's sizes and integer ids: users from 12000,
videos from 1) as the imported dataset `starter` (catalogue = videos.parquet, users.parquet,
interactions.parquet, validated like `recsys data import`), so `recsys pipeline run --dataset starter`
trains on it, and replays each user's latest interactions into the online store's activity table, so
that the API's real-time user vectors start from what the users did last. Running it again replaces the
dataset and rewrites the same activity items (same event ids): it is idempotent.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from recsys.data import schema as s
from recsys.data.importer import import_dataset
from recsys.data.synthetic import SyntheticSpec, generate
from recsys.feature_store.online import OnlineFeatureStore
from recsys.progress import report

if TYPE_CHECKING:
    from recsys.config import Settings

STARTER_DATASET = "starter"


@dataclass(frozen=True)
class BootstrapSpec:
    """What `bootstrap` loads (defaults: the demo's synthetic sizes)."""

    users: int = 1000
    videos: int = 500
    interactions: int = 10_000
    seed: int = 42
    recent: int = 3  # latest interactions per user replayed as recent activity
    name: str = STARTER_DATASET


def _event_id(row: dict[str, Any]) -> str:
    """A stable id per interaction, so a second bootstrap rewrites the same activity items."""
    key = f"{row[s.USER_ID]}|{row[s.VIDEO_ID]}|{row[s.TIMESTAMP]}|{row[s.EVENT_TYPE]}"
    return "starter-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def recent_events(interactions: pl.DataFrame, videos: pl.DataFrame, per_user: int) -> list[dict[str, Any]]:
    """Each user's latest `per_user` interactions as activity events (with the video's category)."""
    if per_user <= 0:
        return []
    latest = (
        interactions.sort(s.TIMESTAMP, descending=True)
        .group_by(s.USER_ID, maintain_order=True)
        .head(per_user)
        .join(videos.select(s.VIDEO_ID, s.CATEGORY), on=s.VIDEO_ID, how="left")
    )
    events = []
    for row in latest.iter_rows(named=True):
        events.append(
            {
                "user_id": row[s.USER_ID],
                "video_id": row[s.VIDEO_ID],
                "event_id": _event_id(row),
                "timestamp": float(row[s.TIMESTAMP]),
                "event_type": row[s.EVENT_TYPE],
                "watch_time": row[s.WATCH_TIME],
                "category": row[s.CATEGORY],
            }
        )
    return events


def bootstrap(settings: Settings, spec: BootstrapSpec | None = None) -> dict[str, Any]:
    """Load the starter data set and the users' recent activity into `settings`' environment."""
    spec = spec or BootstrapSpec()
    data = generate(
        SyntheticSpec(
            n_users=spec.users, n_videos=spec.videos, n_interactions=spec.interactions, seed=spec.seed
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for table, df in (
            ("interactions", data.interactions),
            ("videos", data.videos),
            ("users", data.users),
        ):
            paths[table] = Path(tmp) / f"{table}.parquet"
            df.write_parquet(paths[table])
        result = import_dataset(
            settings, spec.name, paths["interactions"], paths["videos"], paths["users"], overwrite=True
        )
    events = recent_events(data.interactions, data.videos, spec.recent)
    store = OnlineFeatureStore(settings)
    report("recent activity", 0, len(events), "events")
    chunk = 500
    for start in range(0, len(events), chunk):
        store.record_activities(events[start : start + chunk])
        report("recent activity", min(start + chunk, len(events)), len(events), "events")
    stats = result.manifest["stats"]
    return {
        "dataset": spec.name,
        "bucket": settings.names.bucket("data"),
        "videos": data.videos.height,
        "users": data.users.height,
        "interactions": stats["interactions"],
        "activity_events": len(events),
        "activity_table": store.activity_table,
    }
