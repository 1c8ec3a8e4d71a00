"""Releasing model versions: publish a version's serving data, promote it to production, roll back.

The one way a version reaches production, used by the deployment stage (`recsys.stages.deployment`) and
by `recsys model promote | rollback`. `promote(settings, version)`:

1. reads the target and the current production version from the registry (`recsys.registry`, storage only);
2. checks that serving can load the target's serving bundle (`recsys.serving.bundle.check_bundle`: a bundle
   of a format this code does not read is refused, naming the version and the format);
3. publishes the target's serving data (`publish`): the online feature items (video features with each
   video's embedding, user features), then `models/two_tower/{version}/video_embeddings.npz` copied to the
   production vector store `vector_store/video_embeddings.npz`;
4. only then moves the registry's production pointer (one DynamoDB transaction; the old production
   version is archived).

A failure before step 4 leaves production unchanged: when publishing fails midway, the production
version's data is published again so that the online store matches it. `rollback(settings)` promotes the
most recently archived version the same way (so two rollbacks return to where you were).
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys import artifacts
from recsys.aws import client
from recsys.errors import NotFoundError, ValidationError
from recsys.registry import ModelRegistry, ModelVersion
from recsys.serving.bundle import check_bundle
from recsys.storage import exists, get_bytes, get_parquet

if TYPE_CHECKING:
    from recsys.config import Settings

log = logging.getLogger(__name__)

SERVING_CATALOG = "serving_catalog.parquet"  # models/two_tower/{version}/
VIDEO_CATALOG = "video_catalog.parquet"  # preprocessing/{job_id}/
USER_FEATURES = "user_features.parquet"  # preprocessing/{job_id}/
EMBEDDING_DECIMALS = 6
VIDEO_FIELDS = ("category", "duration", "upload_ts", "interaction_count", "popularity", "avg_watch_ratio")
USER_FIELDS = ("interaction_count", "total_weight", "last_interaction_ts", "top_category")

Publisher = Callable[[ModelVersion], dict[str, Any] | None]
"""Makes a version's serving data live; returns what it wrote (`publish`'s summary) or None."""


@dataclass(frozen=True)
class Promotion:
    """The outcome of `promote` or `rollback`."""

    version: ModelVersion  # the version in production now
    previous: ModelVersion | None  # the version that was in production before (None if there was none)
    changed: bool  # False when `version` already was production (nothing was published)
    published: dict[str, Any] = field(default_factory=dict)  # the publisher's summary

    @property
    def previous_version(self) -> str | None:
        return self.previous.version if self.previous else None


# ----- publishing a version's serving data


def load_video_embeddings(settings: Settings, version: str) -> tuple[np.ndarray, np.ndarray]:
    """(video_ids, embeddings [n, 64] float32) of a version, validated."""
    key = artifacts.two_tower_key(version, "video_embeddings.npz")
    raw = get_bytes(settings, settings.names.bucket("models"), key)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            ids = np.asarray(npz[artifacts.NPZ_IDS_VIDEO]).astype(str)
            emb = np.asarray(npz[artifacts.NPZ_EMBEDDINGS], dtype=np.float32)
    except (KeyError, ValueError, OSError) as exc:
        raise ValidationError(f"{key} is not a valid embeddings file: {exc}") from None
    if emb.ndim != 2 or emb.shape[1] != artifacts.EMBEDDING_DIM or emb.shape[0] != ids.shape[0]:
        raise ValidationError(
            f"{key}: embeddings have shape {emb.shape} for {ids.shape[0]} ids",
            hint=f"expected [n, {artifacts.EMBEDDING_DIM}] aligned with video_ids",
        )
    if ids.shape[0] == 0 or not np.isfinite(emb).all() or len(set(ids.tolist())) != ids.shape[0]:
        raise ValidationError(f"{key}: empty, non-finite or duplicate-id embeddings")
    return ids, emb


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def video_items(settings: Settings, version: str, job_id: str) -> list[dict[str, Any]]:
    """Online video feature items of a version: catalogue features plus each video's embedding."""
    ids, emb = load_video_embeddings(settings, version)
    row = {v: i for i, v in enumerate(ids.tolist())}
    models, data = settings.names.bucket("models"), settings.names.bucket("artifacts")
    catalog = get_parquet(settings, models, artifacts.two_tower_key(version, SERVING_CATALOG))
    records = {r["video_id"]: r for r in catalog.to_dicts()}
    pre_key = artifacts.preprocessing_key(job_id, VIDEO_CATALOG) if job_id else None
    if pre_key and exists(settings, data, pre_key):
        for r in get_parquet(settings, data, pre_key).to_dicts():
            records[str(r["video_id"])] = {**r, **records.get(str(r["video_id"]), {})}
    items = []
    for video_id, record in records.items():
        i = row.get(str(video_id))
        if i is None:
            continue
        item: dict[str, Any] = {"video_id": str(video_id), "model_version": version}
        for name in VIDEO_FIELDS:
            if record.get(name) is not None:
                item[name] = _clean(record[name])
        item["embedding"] = np.round(emb[i].astype(np.float64), EMBEDDING_DECIMALS).tolist()
        items.append(item)
    return items


def user_items(settings: Settings, version: str, job_id: str) -> list[dict[str, Any]]:
    """Online user feature items from the preprocessing run that trained the version (empty if absent)."""
    bucket = settings.names.bucket("artifacts")
    key = artifacts.preprocessing_key(job_id, USER_FEATURES) if job_id else None
    if not key or not exists(settings, bucket, key):
        log.warning("no user features at %s; the user features table is left as it is", key)
        return []
    items = []
    for record in get_parquet(settings, bucket, key).to_dicts():
        item: dict[str, Any] = {"user_id": str(record["user_id"]), "model_version": version}
        for name in USER_FIELDS:
            if record.get(name) is not None:
                item[name] = _clean(record[name])
        affinity = record.get("category_affinity")
        if isinstance(affinity, str):
            try:
                affinity = json.loads(affinity)
            except json.JSONDecodeError:
                affinity = None
        if isinstance(affinity, dict):
            item["category_affinity"] = {str(k): float(v) for k, v in affinity.items()}
        items.append(item)
    return items


def publish(settings: Settings, version: str, job_id: str) -> dict[str, Any]:
    """Make a version's serving data live: online feature items, then the production vector store.

    Does not touch the registry; `promote` calls it before moving the production pointer.
    """
    from recsys.feature_store.online import OnlineFeatureStore

    started = time.monotonic()
    videos = video_items(settings, version, job_id)
    users = user_items(settings, version, job_id)
    store = OnlineFeatureStore(settings)
    written_videos = store.put_videos(videos)
    written_users = store.put_users(users) if users else 0
    bucket = settings.names.bucket("models")
    client("s3", settings).copy_object(
        Bucket=bucket,
        Key=artifacts.VECTOR_STORE_KEY,
        CopySource={"Bucket": bucket, "Key": artifacts.two_tower_key(version, "video_embeddings.npz")},
        MetadataDirective="REPLACE",
        Metadata={"model-version": version},
        ServerSideEncryption="AES256",
    )
    return {
        "vector_store_key": artifacts.VECTOR_STORE_KEY,
        "videos_written": written_videos,
        "users_written": written_users,
        "publish_s": round(time.monotonic() - started, 3),
    }


def default_publisher(settings: Settings) -> Publisher:
    """The publisher `promote` uses unless given one: `publish` with the version's training job."""

    def run(version: ModelVersion) -> dict[str, Any]:
        return publish(settings, version.version, version.job_id)

    return run


# ----- promote and roll back


def promote(
    settings: Settings,
    version: str,
    *,
    registry: ModelRegistry | None = None,
    publisher: Publisher | None = None,
) -> Promotion:
    """Put a registered version in production (see the module docstring); the old production is archived.

    Promoting the production version again changes nothing. Raises NotFoundError for an unregistered
    version, ValidationError for a serving bundle this code cannot load, and whatever publishing raised
    (production unchanged in every case), ConflictError when another promotion moved production meanwhile.
    """
    registry = registry or ModelRegistry(settings)
    publish_ = publisher or default_publisher(settings)
    target = registry.get(version)
    current = registry.production(consistent=True)
    if current is not None and current.version == target.version:
        return Promotion(version=target, previous=current, changed=False)
    check_bundle(settings, target.version)
    try:
        published = publish_(target) or {}
    except Exception:
        # The online store may be half-written: put the production version's data back, then fail.
        if current is not None:
            try:
                publish_(current)
            except Exception:
                log.exception("re-publishing production version %s failed", current.version)
        raise
    promoted = registry.set_production(target.version, current.version if current else None)
    log.info(
        "model version %s is in production (previous: %s)", promoted.version, current and current.version
    )
    return Promotion(version=promoted, previous=current, changed=True, published=dict(published))


def rollback_target(registry: ModelRegistry) -> ModelVersion:
    """The version `rollback` would promote: the most recently archived one, or NotFoundError."""
    archived = [v for v in registry.list() if v.status == "archived"]
    if not archived:
        raise NotFoundError(
            "there is no archived version to roll back to",
            hint="rollback needs a version that was in production before the current one",
        )
    return max(archived, key=lambda v: v.archived_at or "")


def rollback(
    settings: Settings,
    *,
    reason: str = "rolled back by an operator",
    registry: ModelRegistry | None = None,
    publisher: Publisher | None = None,
) -> Promotion:
    """Put the most recently archived version back in production (through `promote`, with its checks).

    The version rolled back from records when and why (`rollback_reason`), e.g. the alarm that fired.
    """
    registry = registry or ModelRegistry(settings)
    previous = rollback_target(registry)
    result = promote(settings, previous.version, registry=registry, publisher=publisher)
    if result.changed and result.previous is not None:
        registry.record_rollback(result.previous.version, reason)
    return result
