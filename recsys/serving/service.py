"""The RecommendationService: what the API handler and the batch commands call.

recommend = cache lookup -> user vector (trained embedding + recent activity) -> retrieval (top 100)
-> ranking (CatBoost JSON over online-store features) -> rules (watched out, category, diversity,
fill-up from popular) -> reasons -> cache store + inference tracking. A user with no vector gets
cold-start items (popular/trending, by category when known).
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
from recsys.serving import compute as steps
from recsys.serving.cache import RecommendationCache, cache_field
from recsys.serving.filters import Pick
from recsys.serving.model_store import ModelStore, ServingModel
from recsys.serving.rules import Selection
from recsys.serving.schemas import DEFAULT_K, MAX_K
from recsys.serving.threads import limit_blas_threads
from recsys.serving.tracking import InferenceTracker, tracking_item
from recsys.serving.video_features import RANKER_VIDEO_ATTRIBUTES, VideoFeatureTable

if TYPE_CHECKING:
    from recsys.config import Settings
    from recsys.events import InteractionEvent

log = logging.getLogger(__name__)


class FeatureCache:
    """Online-store features kept in process: users for `ttl_s`, videos as a per-version array table."""

    def __init__(self, store: OnlineFeatureStore, ttl_s: float, max_items: int = 200_000) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.max_items = max_items
        self._users: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self.table: VideoFeatureTable | None = None
        self.version: str | None = None
        self.warmed: str | None = None

    def for_model(self, model: ServingModel) -> VideoFeatureTable:
        """The video feature table of `model`'s version (a new one when the version changes)."""
        table = self.table
        if table is None or table.version != model.version:
            table = VideoFeatureTable(
                model.version,
                model.video_ids,
                model.categories,
                lambda ids: self.store.get_videos(ids, RANKER_VIDEO_ATTRIBUTES),
                self.ttl_s,
            )
            self.table, self.version, self._users = table, model.version, {}
        return table

    def warm(self, model: ServingModel, max_videos: int) -> None:
        """Read every video's features once per version when the catalogue is small (first request pays)."""
        if self.warmed == model.version:
            return
        table = self.for_model(model)
        self.warmed = model.version
        if model.ranker is not None and model.n_videos <= max_videos:
            table.warm()

    def user(self, user_id: str) -> dict[str, Any] | None:
        """The user's online features (kept `ttl_s`)."""
        now = time.monotonic()
        hit = self._users.get(user_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        item = self.store.get_users([user_id])[0]
        if len(self._users) >= self.max_items:
            self._users.clear()
        self._users[user_id] = (now + self.ttl_s, item)
        return item


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
        limit_blas_threads(self.config.blas_threads)
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
        limit = self.config.activity_limit
        response, activity = (
            self.cache.get_with_activity(user_id, field, limit) if use_cache else (None, None)
        )
        if response is not None:
            response = {**response, "source": "cache", "recommendation_id": uuid.uuid4().hex}
        else:
            fresh = activity is None  # not in Redis: read it from the store and keep it there
            if fresh:
                activity = self.store.recent_activity(user_id, limit)
            chosen, source, reasons = self.compute_selection(
                model, user_id, k, category, exclude_watched, activity
            )
            response = self._response(model, user_id, chosen, source, reasons)
            if use_cache:
                self.cache.set(user_id, field, response, activity if fresh else None)
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
        chosen, source, why = self.compute_selection(
            model, user_id, k, category, exclude_watched, activity, now_ts
        )
        rows, scores = chosen.rows.tolist(), chosen.scores.tolist()
        return [Pick(r, s, o) for r, s, o in zip(rows, scores, chosen.origins, strict=True)], source, why

    def compute_selection(
        self,
        model: ServingModel,
        user_id: str,
        k: int,
        category: str | None,
        exclude_watched: bool,
        activity: list[dict[str, Any]],
        now_ts: int | None = None,
    ) -> tuple[Selection, str, list[str]]:
        """`compute` as arrays (the steps of `recsys.serving.compute`, one user)."""
        now_ts = int(time.time()) if now_ts is None else now_ts
        if category is not None and category not in model.category_index:
            return Selection(np.zeros(0, np.int64), np.zeros(0), []), "popular", []
        query = steps.user_query(model, self.config, user_id, activity, exclude_watched)
        rows, scores = np.zeros(0, np.int64), np.zeros(0)
        if query.vector is not None:
            cand = steps.candidates(model, self.config, [query], category)[0]
            videos = self.features.for_model(model)
            user_item = self.features.user(user_id) if model.ranker is not None else None
            rows, scores = steps.rank(model, self.config, query, cand, user_item, videos, now_ts)
        chosen, source = steps.choose(model, self.config, query, rows, scores, k, category)
        return chosen, source, steps.reasons(model, query, chosen)

    @staticmethod
    def _response(
        model: ServingModel, user_id: str, chosen: Selection, source: str, reasons: list[str]
    ) -> dict[str, Any]:
        return {
            "user_id": user_id,
            "model_version": model.version,
            "recommendation_id": uuid.uuid4().hex,
            "source": source,
            "items": steps.items(model, chosen, reasons),
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
