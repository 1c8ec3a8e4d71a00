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

Promoting the running canary stops it (its users are production's users then). With
`require_canary_no_worse`, `promote` first compares the canary's click-through with production's since the
canary started (`check_canary`, from the merged feedback, `recsys.feedback.variant_rates`) and refuses,
changing nothing, when the canary is worse with 95% confidence or when either side has fewer than
`guard.min_impressions` impressions.
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
from recsys.click_through import Rate, Verdict, compare
from recsys.errors import ConflictError, ErrorCode, NotFoundError, RecsysError, ValidationError
from recsys.feature_store.online import embedding_attribute
from recsys.registry import ModelRegistry, ModelVersion
from recsys.serving.bundle import check_bundle
from recsys.storage import exists, get_bytes, get_parquet
from recsys.timestamps import epoch_of

if TYPE_CHECKING:
    from recsys.config import Settings

log = logging.getLogger(__name__)

SERVING_CATALOG = "serving_catalog.parquet"  # models/two_tower/{version}/
VIDEO_CATALOG = "video_catalog.parquet"  # preprocessing/{job_id}/
USER_FEATURES = "user_features.parquet"  # preprocessing/{job_id}/
VIDEO_FIELDS = ("category", "duration", "upload_ts", "interaction_count", "popularity", "avg_watch_ratio")
USER_FIELDS = ("interaction_count", "total_weight", "last_interaction_ts", "top_category")

Publisher = Callable[[ModelVersion], dict[str, Any] | None]
"""Makes a version's serving data live; returns what it wrote (`publish`'s summary) or None."""


@dataclass(frozen=True)
class CanaryCheck:
    """The canary's click-through against production's since the canary started (`check_canary`)."""

    version: str
    production_version: str
    canary: Rate
    production: Rate
    min_impressions: int
    verdict: Verdict

    def describe(self) -> str:
        """One line: the verdict and both click-throughs with their counts."""
        both = f"canary {self.canary.describe()} vs production {self.production.describe()}"
        if self.verdict == "too_little_traffic":
            return (
                f"too little traffic to compare canary {self.version} with production {self.production_version}: "
                f"{self.canary.impressions} and {self.production.impressions} impressions "
                f"(each needs {self.min_impressions})"
            )
        if self.verdict == "worse":
            return f"canary {self.version} has a worse click-through than production {self.production_version}: {both}"
        return f"canary {self.version} is no worse than production {self.production_version}: {both}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "production_version": self.production_version,
            "verdict": self.verdict,
            "min_impressions": self.min_impressions,
            **{
                f"{name}_{key}": value
                for name, rate in (("canary", self.canary), ("production", self.production))
                for key, value in (
                    ("impressions", rate.impressions),
                    ("engaged", rate.engaged),
                    ("ctr", round(rate.value, 6)),
                    ("ctr_low", round(rate.interval[0], 6)),
                    ("ctr_high", round(rate.interval[1], 6)),
                )
            },
        }


@dataclass(frozen=True)
class Promotion:
    """The outcome of `promote` or `rollback`."""

    version: ModelVersion  # the version in production now
    previous: ModelVersion | None  # the version that was in production before (None if there was none)
    changed: bool  # False when `version` already was production (nothing was published)
    published: dict[str, Any] = field(default_factory=dict)  # the publisher's summary
    canary_check: CanaryCheck | None = None  # what `require_canary_no_worse` found

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
        item["embedding"] = embedding_attribute(emb[i])
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


# ----- the canary check


def _epoch_ms(iso: str | None) -> int:
    return int(epoch_of(iso) * 1000) if iso else 0


def check_canary(
    settings: Settings,
    version: str,
    *,
    registry: ModelRegistry | None = None,
    rates: dict[tuple[str, str], Rate] | None = None,
) -> CanaryCheck:
    """Compare the running canary `version` with production over the impressions since the canary started.

    `rates` (click-through per (variant, model_version)) defaults to the merged feedback
    (`recsys.feedback.variant_rates`). ConflictError when `version` is not the running canary or nothing is
    in production.
    """
    registry = registry or ModelRegistry(settings)
    canary = registry.canary()
    if canary is None or canary.version != version:
        raise ConflictError(
            f"{version} is not the running canary ({canary.version if canary else 'none is running'}), "
            "so there is nothing to compare",
            hint=f"recsys model canary {version} --share 10, then merge feedback (recsys feedback merge)",
        )
    production = registry.production(consistent=True)
    if production is None:
        raise ConflictError("nothing is in production to compare the canary with")
    if rates is None:
        from recsys.feedback import variant_rates

        rates = variant_rates(settings, since_ms=_epoch_ms(canary.canary_since))
    canary_rate = rates.get(("canary", version), Rate(0, 0))
    production_rate = rates.get(("production", production.version), Rate(0, 0))
    minimum = settings.guard.min_impressions
    return CanaryCheck(
        version=version,
        production_version=production.version,
        canary=canary_rate,
        production=production_rate,
        min_impressions=minimum,
        verdict=compare(canary_rate, production_rate, minimum),
    )


# ----- promote and roll back


def promote(
    settings: Settings,
    version: str,
    *,
    registry: ModelRegistry | None = None,
    publisher: Publisher | None = None,
    require_canary_no_worse: bool = False,
    rates: dict[tuple[str, str], Rate] | None = None,
) -> Promotion:
    """Put a registered version in production (see the module docstring); the old production is archived.

    Promoting the production version again changes nothing. Raises NotFoundError for an unregistered
    version, ValidationError for a serving bundle this code cannot load, and whatever publishing raised
    (production unchanged in every case), ConflictError when another promotion moved production meanwhile.
    With `require_canary_no_worse`, a RecsysError (code gate_failed) when `check_canary` does not find the
    canary no worse (`rates` as for `check_canary`). Promoting the running canary stops it.
    """
    registry = registry or ModelRegistry(settings)
    publish_ = publisher or default_publisher(settings)
    target = registry.get(version)
    current = registry.production(consistent=True)
    if current is not None and current.version == target.version:
        return Promotion(version=target, previous=current, changed=False)
    checked = None
    if require_canary_no_worse:
        checked = check_canary(settings, version, registry=registry, rates=rates)
        if checked.verdict != "no_worse":
            raise RecsysError(
                f"{checked.describe()}; production unchanged",
                hint="let the canary serve longer and merge feedback (recsys feedback merge), or stop it"
                if checked.verdict == "too_little_traffic"
                else "stop the canary (recsys model canary --stop) or promote without --require-canary-no-worse",
                code=ErrorCode.GATE_FAILED,
            )
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
    if promoted.canary_share:  # the canary is production now: it stops being one
        registry.clear_canary(promoted.version)
        promoted = registry.get(promoted.version)
    log.info(
        "model version %s is in production (previous: %s)", promoted.version, current and current.version
    )
    return Promotion(
        version=promoted, previous=current, changed=True, published=dict(published), canary_check=checked
    )


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
