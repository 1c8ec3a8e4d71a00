"""The RecommendationService: what the API handler and the batch commands call.

recommend = cache lookup -> user vector (trained embedding + recent activity) -> candidates (the union of
the two-tower, item-item, recent-activity and popularity sources, `recsys.serving.sources`) -> ranking
(CatBoost JSON over per-source features, or the source the evaluation chose) -> rules (watched out,
category, diversity, fill-up from popular) -> a reason per item from its source -> cache store + inference
tracking. A user with no vector gets cold-start items (popular/trending, by category when known).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.aws import client
from recsys.config import ServingConfig
from recsys.errors import NotFoundError, ValidationError
from recsys.feature_store.online import OnlineFeatureStore, deserialize_item
from recsys.serving.cache import RecommendationCache, cache_field
from recsys.serving.filters import Pick, apply_rules, max_per_category
from recsys.serving.model_store import ModelStore, ServingModel
from recsys.serving.reasons import reason
from recsys.serving.schemas import DEFAULT_K, MAX_K
from recsys.serving.sources import rank_candidates
from recsys.serving.tracking import InferenceTracker, tracking_item
from recsys.serving.user_vector import blend_user_vector, event_weights

if TYPE_CHECKING:
    from recsys.config import Settings
    from recsys.events import InteractionEvent

log = logging.getLogger(__name__)

# What `recsys.features.video_columns` reads from a video item (not the embedding: serving has it).
RANKER_VIDEO_ATTRIBUTES = (
    "category",
    "popularity",
    "interaction_count",
    "avg_watch_ratio",
    "duration",
    "upload_ts",
)


class FeatureCache:
    """Online-store items kept in process for `ttl_s` (video features change at deployment, not per request)."""

    def __init__(self, store: OnlineFeatureStore, ttl_s: float, max_items: int = 200_000) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.max_items = max_items
        self._videos: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._users: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self.version: str | None = None
        self.warmed: str | None = None

    def for_version(self, version: str) -> FeatureCache:
        """Forget everything when the model version changes (deployment rewrote the online store)."""
        if version != self.version:
            self._videos, self._users, self.version = {}, {}, version
        return self

    def _get(self, cache: dict, ids: list[str], fetch) -> list[dict[str, Any] | None]:
        now = time.monotonic()
        out: list[dict[str, Any] | None] = [None] * len(ids)
        missing: list[int] = []
        for i, key in enumerate(ids):
            hit = cache.get(key)
            if hit is not None and hit[0] > now:
                out[i] = hit[1]
            else:
                missing.append(i)
        if missing:
            fetched = fetch([ids[i] for i in missing])
            if len(cache) + len(missing) > self.max_items:
                cache.clear()
            for i, item in zip(missing, fetched, strict=True):
                out[i] = item
                cache[ids[i]] = (now + self.ttl_s, item)
        return out

    def warm(self, model: ServingModel, max_videos: int) -> None:
        """Read every video's features once per version when the catalogue is small (first request pays)."""
        if self.warmed == model.version:
            return
        self.for_version(model.version)
        self.warmed = model.version
        if model.n_videos <= max_videos:
            self.videos(model.video_ids.tolist())

    def videos(self, ids: list[str]) -> list[dict[str, Any] | None]:
        return self._get(self._videos, ids, lambda keys: self.store.get_videos(keys, RANKER_VIDEO_ATTRIBUTES))

    def user(self, user_id: str) -> dict[str, Any] | None:
        return self._get(self._users, [user_id], self.store.get_users)[0]


def _newest_ts(events: list[dict[str, Any]]) -> float | None:
    stamps = [float(e["timestamp"]) for e in events if e.get("timestamp") is not None]
    return max(stamps) if stamps else None


def validate_request(user_id: str, k: int, category: str | None) -> None:
    """Bad input as a ValidationError naming what is wrong (the API validates first; the CLI relies on this)."""
    if not user_id or len(user_id) > 128:
        raise ValidationError("user_id must be 1..128 characters")
    if not (1 <= k <= MAX_K):
        raise ValidationError(f"k must be between 1 and {MAX_K} (got {k})")
    if category is not None and not (1 <= len(category) <= 64):
        raise ValidationError("category must be 1..64 characters")


class RecommendationService:
    """Recommendations, health, interactions and precomputed results over one environment."""

    def __init__(
        self,
        settings: Settings,
        config: ServingConfig | None = None,
        model_store: ModelStore | None = None,
        feature_store: OnlineFeatureStore | None = None,
        cache: RecommendationCache | None = None,
        tracker: InferenceTracker | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or settings.serving
        self.models = model_store or ModelStore(
            settings, self.config.poll_interval_s, self.config.ann_threshold
        )
        self.store = feature_store or OnlineFeatureStore(settings)
        self.features = FeatureCache(self.store, self.config.feature_ttl_s)
        self.cache = cache or RecommendationCache(settings, ttl_s=self.config.cache_ttl_s)
        self.tracker = tracker or InferenceTracker(settings)
        self.precomputed_table = settings.names.table("recommendations_cache")

    # ----- recommendations
    def recommend(
        self,
        user_id: str | int,
        k: int = DEFAULT_K,
        category: str | None = None,
        exclude_watched: bool = True,
        use_cache: bool = True,
        track: bool = True,
    ) -> dict[str, Any]:
        """Top-k recommendations for a user (`source` model, cache or popular)."""
        user_id = str(user_id)
        validate_request(user_id, k, category)
        model = self.models.current()
        self.features.warm(model, self.config.warm_features_max_videos)
        field = cache_field(model.version, k, category, exclude_watched)
        response = self.cache.get(user_id, field) if use_cache else None
        if response is not None:
            response = {**response, "source": "cache", "recommendation_id": uuid.uuid4().hex}
        else:
            activity = self.store.recent_activity(user_id, self.config.activity_limit)
            picks, source, reasons = self.compute(model, user_id, k, category, exclude_watched, activity)
            response = self._response(model, user_id, picks, source, reasons)
            if use_cache:
                self.cache.set(user_id, field, response)
        if track and self.config.tracking:
            self.tracker.record(
                tracking_item(
                    response["recommendation_id"],
                    user_id,
                    response["model_version"],
                    response["source"],
                    response["items"],
                    {"k": k, "category": category, "exclude_watched": exclude_watched},
                    time.time(),
                )
            )
        return response

    def compute(
        self,
        model: ServingModel,
        user_id: str,
        k: int,
        category: str | None,
        exclude_watched: bool,
        activity: list[dict[str, Any]],
        now_ts: int | None = None,
    ) -> tuple[list[Pick], str, list[str]]:
        """The items for one request from prefetched recent `activity` (newest first): picks, source, reasons."""
        now_ts = int(time.time()) if now_ts is None else now_ts
        act_ids = [str(a["video_id"]) for a in activity]
        act_rows_all = model.rows_of(act_ids)
        recent = [
            a for a in activity[: self.config.activity_vector_events] if str(a["video_id"]) in model.video_row
        ]
        recent_rows = model.rows_of([str(a["video_id"]) for a in recent])
        watched = model.watched_rows(user_id)
        excluded_rows = (
            np.unique(np.concatenate([watched.astype(np.int64), act_rows_all]))
            if (exclude_watched)
            else np.zeros(0, dtype=np.int64)
        )
        excluded = set(excluded_rows.tolist())
        if category is not None and category not in model.category_masks:
            return [], "popular", []
        preferred = model.top_categories(user_id)
        user_emb = model.user_embedding(user_id)
        act_rows, act_weights = recent_rows, event_weights(recent)
        if user_emb is None and not len(recent_rows) and len(watched):
            # Known only through the training history (no trained embedding): that history is the activity.
            act_rows = watched[-self.config.activity_vector_events :].astype(np.int64)[::-1]
            act_weights = event_weights([{}] * len(act_rows))
        uv = blend_user_vector(
            user_emb, model.video_embeddings[act_rows], act_weights, self.config.activity_weight
        )
        cap = max_per_category(k, self.config.max_category_share)
        if uv is None:  # cold start
            fill_rows, origin = self._cold_start_rows(model, category, preferred)
            scores = 0.5 * model.trending + 0.5 * model.popularity
            picks = apply_rules([], [], model.category, k, excluded, fill_rows, scores, origin, category, cap)
            return (
                picks,
                "popular",
                [reason(model, p.row, p.origin, watched, preferred, now_ts) for p in picks],
            )
        allowed = model.category_masks[category] if category is not None else None
        # Candidate step: the sources' union ranked by the served choice (recsys.serving.sources).
        history = np.concatenate([watched.astype(np.int64), recent_rows[::-1].astype(np.int64)])
        ranked = rank_candidates(
            model, history, uv.vector, excluded_rows, now_ts, allowed, _newest_ts(recent)
        )
        fill = model.popular_by_category[category] if category is not None else model.popular_rows
        picks = apply_rules(
            ranked.rows.tolist(),
            ranked.scores.tolist(),
            model.category,
            k,
            excluded,
            fill,
            model.popularity,
            "popular",
            category,
            cap,
        )
        source_of = dict(zip(ranked.rows.tolist(), ranked.sources, strict=True))
        for p in picks:  # each item names the source that brought it
            if p.origin == "model":
                p.origin = source_of.get(p.row, "two_tower")
        return picks, "model", [reason(model, p.row, p.origin, history, preferred, now_ts) for p in picks]

    @staticmethod
    def _cold_start_rows(model: ServingModel, category: str | None, preferred: list[str]) -> tuple[Any, str]:
        if category is not None:
            return model.popular_by_category[category], "popular"
        if preferred:
            lists = [model.popular_by_category[c][:50] for c in preferred if c in model.popular_by_category]
            first = np.concatenate(lists) if lists else np.zeros(0, np.int64)
            return np.concatenate([first, model.trending_rows]), "popular"
        return model.trending_rows, "trending"

    @staticmethod
    def _response(
        model: ServingModel, user_id: str, picks: list[Pick], source: str, reasons: list[str]
    ) -> dict[str, Any]:
        items = [
            {
                "video_id": str(model.video_ids[p.row]),
                "score": round(float(p.score), 6),
                "rank": i + 1,
                "category": str(model.category[p.row]),
                "reason": reasons[i],
                "source": p.origin,
            }
            for i, p in enumerate(picks)
        ]
        return {
            "user_id": user_id,
            "model_version": model.version,
            "recommendation_id": uuid.uuid4().hex,
            "source": source,
            "items": items,
            "generated_at": time.time(),
        }

    # ----- precomputed recommendations (GET /cached)
    def cached(self, user_id: str | int) -> dict[str, Any]:
        """The precomputed recommendations of a user from the recommendations cache table."""
        user_id = str(user_id)
        raw = (
            client("dynamodb", self.settings)
            .get_item(TableName=self.precomputed_table, Key={"user_id": {"S": user_id}})
            .get("Item")
        )
        item = deserialize_item(raw) if raw else None
        if item is None or item.get("expires_at", float("inf")) < time.time():
            raise NotFoundError(
                f"no precomputed recommendations for user {user_id!r}",
                hint="run `recsys cache fill --env ENV` (the batch job) or use /recommendations/{user_id}",
            )
        for i in item["items"]:
            i["rank"] = int(i["rank"])
        return {
            "user_id": user_id,
            "model_version": item.get("model_version"),
            "recommendation_id": item["recommendation_id"],
            "source": "precomputed",
            "items": item["items"],
            "generated_at": float(item.get("generated_at", 0)),
        }

    # ----- interactions
    def record_interaction(self, event: InteractionEvent) -> dict[str, Any]:
        """Publish an interaction (stream + recent activity + cache invalidation); returns the stored record."""
        from recsys.events import publish_interaction

        return publish_interaction(self.settings, event, self.store, self.cache)

    # ----- health
    def health(self) -> dict[str, Any]:
        """Model and dependency status: unhealthy without a model or store, degraded when the cache is down."""
        try:
            self.models.current()
        except Exception as exc:
            log.warning("health: no model: %s", exc)
        model = self.models.status()
        deps: dict[str, dict[str, Any]] = {}
        try:
            client("dynamodb", self.settings).describe_table(TableName=self.store.video_table)
            deps["store"] = {"status": "ok", "detail": None}
        except Exception as exc:
            deps["store"] = {"status": "down", "detail": type(exc).__name__}
        redis_state = self.cache.ping()
        deps["cache"] = {
            "status": redis_state,
            "detail": self.cache.last_error if redis_state == "down" else None,
        }
        if model["version"] is None or deps["store"]["status"] != "ok":
            status = "unhealthy"
        elif redis_state == "down":
            status = "degraded"
        else:
            status = "healthy"
        return {"status": status, "model_version": model["version"], "model": model, "dependencies": deps}
