"""Deployment, the last pipeline stage (reached only when the evaluation gates pass).

`run(event)` checks that the version's artifacts are complete and readable, registers the version as a
candidate, writes its serving bundle, and promotes it through the registry. Promotion publishes first:
the video features (with each video's embedding) and user features go into the online feature store, then
`models/two_tower/{version}/video_embeddings.npz` is copied to `vector_store/video_embeddings.npz`; only then
does the registry flip production (one transaction). A failure before the flip leaves production unchanged,
and the registry re-publishes the production version's data so the online store matches it again.

Input: `{"preprocessing", "two_tower", "ranker", "evaluation"}` (stage outputs). Output:
`{"version", "status", "previous_version", "vector_store_key", "videos_written", "users_written", ...}`.
"""

from __future__ import annotations

import io
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys import artifacts
from recsys.aws import client
from recsys.errors import NotFoundError, ValidationError
from recsys.registry import ModelRegistry, ModelVersion, validate_version
from recsys.storage import exists, get_bytes, get_parquet

if TYPE_CHECKING:
    from recsys.config import Settings

log = logging.getLogger(__name__)

SERVING_CATALOG = "serving_catalog.parquet"
USER_HISTORY = "user_history.parquet"
VIDEO_CATALOG = "video_catalog.parquet"  # preprocessing/{job_id}/
USER_FEATURES = "user_features.parquet"  # preprocessing/{job_id}/
REQUIRED_TWO_TOWER = ("video_embeddings.npz", "user_embeddings.npz", "model_config.json", SERVING_CATALOG)
REQUIRED_RANKER = ("ranker_model.json", "ranker_features.json")
EMBEDDING_DECIMALS = 6
VIDEO_FIELDS = ("category", "duration", "upload_ts", "interaction_count", "popularity", "avg_watch_ratio")
USER_FIELDS = ("interaction_count", "total_weight", "last_interaction_ts", "top_category")


def _require(event: dict[str, Any], key: str) -> dict[str, Any]:
    value = event.get(key)
    if not isinstance(value, dict):
        raise ValidationError(
            f"deployment input lacks the {key!r} stage output", hint="run the whole pipeline"
        )
    return value


def run(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Register and promote the evaluated version (see the module docstring)."""
    preprocessing = _require(event, "preprocessing")
    two_tower = _require(event, "two_tower")
    ranker = _require(event, "ranker")
    evaluation = _require(event, "evaluation")
    version = validate_version(str(evaluation.get("version") or two_tower.get("version") or ""))
    for name, stage in (("two_tower", two_tower), ("ranker", ranker)):
        if stage.get("version") != version:
            raise ValidationError(
                f"{name} version {stage.get('version')!r} differs from the evaluated version {version!r}",
                hint="deploy the outputs of one pipeline run",
            )
    gates = evaluation.get("gates") or {}
    if gates.get("passed") is not True:
        failing = [c.get("name") for c in gates.get("checks", []) if not c.get("passed")]
        raise ValidationError(
            f"version {version!r} did not pass the evaluation gates ({', '.join(map(str, failing)) or 'no gates'})",
            hint="only versions that pass the gates are deployed",
        )
    check_artifacts(settings, version)
    job_id = str(preprocessing.get("job_id") or "")

    published: dict[str, Any] = {}

    def publish(target: ModelVersion) -> None:
        published.update(publish_version(settings, target.version, target.job_id))

    registry = ModelRegistry(settings, publisher=publish)
    previous = registry.production(consistent=True)
    existing = registry.find(version)
    if existing is not None and existing.status == "production":
        return {
            "version": version,
            "status": "production",
            "previous_version": None,
            "already_deployed": True,
        }
    if existing is None:
        registry.register(version, evaluation.get("metrics") or {}, job_id)
    bundle_key = _write_bundle(settings, version)
    promoted = registry.promote(version)
    return {
        "version": version,
        "status": promoted.status,
        "previous_version": previous.version if previous else None,
        "promoted_at": promoted.promoted_at,
        "bundle_key": bundle_key,
        **published,
    }


def check_artifacts(settings: Settings, version: str) -> None:
    """Every artifact serving needs exists for `version`, or a NotFoundError listing the missing ones."""
    bucket = settings.names.bucket("models")
    keys = [artifacts.two_tower_key(version, n) for n in REQUIRED_TWO_TOWER]
    keys += [artifacts.ranker_key(version, n) for n in REQUIRED_RANKER]
    missing = [k for k in keys if not exists(settings, bucket, k)]
    if missing:
        raise NotFoundError(
            f"version {version!r} is incomplete: missing " + ", ".join(f"s3://{bucket}/{k}" for k in missing),
            hint="re-run the pipeline; nothing was deployed",
        )
    load_video_embeddings(settings, version)


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


def _write_bundle(settings: Settings, version: str) -> str | None:
    try:
        from recsys.serving.bundle import write_bundle
    except ImportError:  # serving package absent: the model store builds the bundle on first load
        return None
    return write_bundle(settings, version)


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


def publish_version(settings: Settings, version: str, job_id: str) -> dict[str, Any]:
    """Make a version's serving data live: online feature items, then the production vector store."""
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
