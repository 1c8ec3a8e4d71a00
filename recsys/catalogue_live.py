"""The live catalogue: videos added or removed between two trainings, served at once.

`POST /videos` and `recsys videos add` record a video (id, category, duration, upload time) in the
`live_catalogue` table and its online features (the ranker reads them); `DELETE /videos/{id}` and
`recsys videos remove` mark it removed. Serving (`LiveOverlay`) applies the table to the production model:
an added video gets the embedding the version's saved video tower computes from its features
(`recsys.serving.video_tower`) and joins retrieval, popular and category lists; a removed video leaves every
list. The change is served by the process that made it at once and by every other within
`poll_interval_s` (default 1 s, one Scan); cached answers are keyed by the catalogue's revision, so none
made before a change is served after it. The next pipeline run on the events source trains on the added
videos (their metadata comes from this table).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from recsys.aws import client
from recsys.errors import NotFoundError
from recsys.events import Identifier
from recsys.feature_store.online import OnlineFeatureStore, deserialize_item, serialize_item

if TYPE_CHECKING:
    from recsys.config import Settings
    from recsys.serving.model_store import ServingModel
    from recsys.serving.video_tower import VideoTower

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_S = 1.0


class VideoIn(BaseModel):
    """The body of `POST /videos`: a video and the metadata its embedding is computed from."""

    model_config = ConfigDict(extra="forbid")

    video_id: Identifier
    category: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[^\s].*$")]
    duration: Annotated[StrictFloat | StrictInt, Field(ge=0, le=7 * 24 * 3600)] = Field(
        default=0.0, description="Seconds"
    )
    # epoch seconds up to the year 2100: what the stores and the feature arithmetic can hold
    upload_ts: (
        Annotated[StrictFloat | StrictInt, Field(ge=0, le=4_102_444_800, allow_inf_nan=False)] | None
    ) = Field(default=None, description="Epoch seconds; defaults to now")
    title: Annotated[StrictStr, Field(max_length=256)] | None = None


class VideoChange(BaseModel):
    """The answer of `POST /videos` and `DELETE /videos/{video_id}`."""

    video_id: str
    status: Literal["active", "removed"]
    category: str | None = None
    model_version: str | None = Field(
        None, description="The production version whose video tower embedded it"
    )
    updated_at: float


class LiveCatalogue:
    """The `live_catalogue` table: one item per added or removed video."""

    def __init__(self, settings: Settings, dynamodb: Any | None = None) -> None:
        self.settings = settings
        self.ddb = dynamodb or client("dynamodb", settings)
        self.table = settings.names.table("live_catalogue")

    def get(self, video_id: str) -> dict[str, Any] | None:
        """The item of a video, None when it was never added or removed."""
        raw = self.ddb.get_item(
            TableName=self.table, Key={"video_id": {"S": str(video_id)}}, ConsistentRead=True
        )
        return deserialize_item(raw["Item"]) if raw.get("Item") else None

    def changes(self) -> list[dict[str, Any]]:
        """Every item (one Scan; the table holds the changes since the last trainings, not the catalogue)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self.ddb.scan(**kwargs)
            items += [deserialize_item(raw) for raw in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put(self, item: dict[str, Any]) -> dict[str, Any]:
        """Write a video's item."""
        self.ddb.put_item(TableName=self.table, Item=serialize_item(item))
        return item


def add_video(
    settings: Settings, video: VideoIn, model_version: str | None, tower: VideoTower | None
) -> dict:
    """Record an added video and its online features (with the embedding `tower` gives it, when there is one)."""
    now = time.time()
    item: dict[str, Any] = {
        "video_id": str(video.video_id),
        "status": "active",
        "category": video.category,
        "duration": float(video.duration),
        "upload_ts": int(video.upload_ts if video.upload_ts is not None else now),
        "updated_at": round(now, 6),
    }
    if video.title:
        item["title"] = video.title
    if model_version:
        item["model_version"] = model_version
    features: dict[str, Any] = {
        "video_id": item["video_id"],
        "category": item["category"],
        "duration": item["duration"],
        "upload_ts": item["upload_ts"],
        "interaction_count": 0,
        "popularity": 0.0,
        "avg_watch_ratio": 0.0,
        "live": True,
    }
    if model_version:
        features["model_version"] = model_version
    if tower is not None:
        features["embedding"] = tower.embed(item["category"], item["duration"], item["upload_ts"]).astype(
            float
        )
    OnlineFeatureStore(settings).put_videos([features])
    return LiveCatalogue(settings).put(item)


def remove_video(settings: Settings, video_id: str, known: bool) -> dict[str, Any]:
    """Mark a video removed (`known`: the production model or the live catalogue has it, else NotFoundError)."""
    catalogue = LiveCatalogue(settings)
    old = catalogue.get(video_id)
    if old is None and not known:
        raise NotFoundError(f"video {video_id!r} is not in the catalogue", hint="check the id")
    item = {**(old or {"video_id": str(video_id)}), "status": "removed", "updated_at": round(time.time(), 6)}
    return catalogue.put(item)


def revision(changes: dict[str, dict[str, Any]]) -> str:
    """A short tag that changes whenever any video is added, changed or removed ("" when there is nothing)."""
    if not changes:
        return ""
    text = "|".join(f"{v}:{c.get('status')}:{c.get('updated_at')}" for v, c in sorted(changes.items()))
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def overlay_model(
    model: ServingModel,
    changes: dict[str, dict[str, Any]],
    tower: VideoTower | None,
    ann_threshold: int,
    now_ts: float | None = None,
) -> ServingModel:
    """`model` with the removed videos dropped and the added ones (that the model lacks) appended."""
    from recsys.serving.model_store import ServingModel
    from recsys.serving.retrieval import build_index

    removed = {v for v, c in changes.items() if c.get("status") == "removed"}
    added = [
        c for v, c in sorted(changes.items()) if c.get("status") == "active" and v not in model.video_row
    ]
    if tower is None and added:
        log.warning(
            "model %s has no video tower: %d added videos wait for the next training",
            model.version,
            len(added),
        )
        added = []
    drop = [model.video_row[v] for v in removed if v in model.video_row]
    if not drop and not added:
        return model
    keep = np.setdiff1d(np.arange(model.n_videos), np.asarray(drop, dtype=np.int64))
    n_new = len(added)
    if n_new:
        dur, age, pop = tower.buckets(
            [c.get("duration") or 0.0 for c in added], [c.get("upload_ts") or now_ts or time.time() for c in added],
            [0] * n_new,
        )  # fmt: skip
        new_emb = tower.embed_buckets([str(c.get("category")) for c in added], dur, age, pop)
    else:
        new_emb = np.zeros((0, model.video_embeddings.shape[1]), dtype=np.float32)
    remap = np.full(model.n_videos, -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    watched = [
        remap[model.history_video_idx[a:b]]
        for a, b in zip(model.history_offsets[:-1], model.history_offsets[1:], strict=True)
    ]
    watched = [w[w >= 0] for w in watched]
    offsets = np.zeros(len(watched) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(w) for w in watched])
    embeddings = np.vstack([model.video_embeddings[keep], new_emb]).astype(np.float32)
    return ServingModel(
        version=model.version,
        video_ids=np.concatenate(
            [model.video_ids[keep], np.asarray([str(c["video_id"]) for c in added], dtype=str)]
        ),
        video_embeddings=embeddings,
        category=np.concatenate(
            [model.category[keep], np.asarray([str(c.get("category")) for c in added], dtype=str)]
        ),
        popularity=np.concatenate([model.popularity[keep], np.zeros(n_new)]),
        trending=np.concatenate([model.trending[keep], np.zeros(n_new)]),
        duration=np.concatenate(
            [model.duration[keep], np.asarray([float(c.get("duration") or 0) for c in added])]
        ),
        upload_ts=np.concatenate(
            [model.upload_ts[keep], np.asarray([int(c.get("upload_ts") or 0) for c in added], dtype=np.int64)]
        ),
        user_ids=model.user_ids,
        user_embeddings=model.user_embeddings,
        history_offsets=offsets,
        history_video_idx=np.concatenate(watched).astype(np.int32) if watched else np.zeros(0, np.int32),
        topcat_offsets=model.topcat_offsets,
        topcat_values=model.topcat_values,
        index=build_index(embeddings, ann_threshold),
        ranker=model.ranker,
    )


class LiveOverlay:
    """What serving applies to the production model (see the module docstring); thread-safe."""

    def __init__(
        self, settings: Settings, poll_interval_s: float = DEFAULT_POLL_INTERVAL_S, ann_threshold: int = 50_000,
        clock=time.monotonic,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.catalogue = LiveCatalogue(settings)
        self.poll_interval_s = poll_interval_s
        self.ann_threshold = ann_threshold
        self._clock = clock
        self._changes: dict[str, dict[str, Any]] = {}
        self._rev = ""
        self._checked_at = -float("inf")
        # (weak ref to the base model, revision, overlaid model) of the last two: production and a canary
        self._built: list[tuple[weakref.ref, str, Any]] = []
        self._towers: dict[str, VideoTower | None] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        if self._clock() - self._checked_at < self.poll_interval_s:
            return
        self._checked_at = self._clock()
        try:
            changes = {str(c["video_id"]): c for c in self.catalogue.changes()}
        except Exception as exc:  # serve the last known catalogue
            log.warning("reading the live catalogue failed: %s", exc)
            return
        with self._lock:
            self._changes, self._rev = changes, revision(changes)

    def note(self, item: dict[str, Any]) -> None:
        """A change this process just made: served from now on, without waiting for the next poll."""
        with self._lock:
            self._changes = {**self._changes, str(item["video_id"]): item}
            self._rev = revision(self._changes)

    def _tower(self, version: str) -> VideoTower | None:
        if version not in self._towers:
            from recsys.serving.video_tower import VideoTower

            try:
                self._towers[version] = VideoTower.load(self.settings, version)
            except NotFoundError:
                self._towers[version] = None
        return self._towers[version]

    def apply(self, model: ServingModel) -> ServingModel:
        """The production model with the live catalogue applied (rebuilt only when either changes)."""
        self._refresh()
        with self._lock:
            changes, rev = self._changes, self._rev
            built = list(self._built)
        if not changes:
            return model
        for base, base_rev, overlaid in built:
            if base() is model and base_rev == rev:
                return overlaid
        tower = (
            self._tower(model.version) if any(c.get("status") == "active" for c in changes.values()) else None
        )
        overlaid = overlay_model(model, changes, tower, self.ann_threshold)
        with self._lock:
            others = [b for b in self._built if b[0]() is not None and b[0]() is not model]
            self._built = [(weakref.ref(model), rev, overlaid), *others][:2]
        return overlaid

    def cache_tag(self, model: ServingModel) -> str:
        """The model version plus the catalogue's revision: the version part of a cached answer's key."""
        return f"{model.version}+{self._rev}" if self._rev else model.version

    def removed(self, video_id: str) -> bool:
        """True when the video is removed now."""
        self._refresh()
        return (self._changes.get(str(video_id)) or {}).get("status") == "removed"

    def tower(self, version: str) -> VideoTower | None:
        """The saved video tower of a version (None when it has none)."""
        return self._tower(version)
