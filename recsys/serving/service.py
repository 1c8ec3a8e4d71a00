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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.aws import request_client
from recsys.catalogue_live import LiveOverlay, VideoIn, add_video, remove_video
from recsys.config import ServingConfig
from recsys.errors import ConflictError, NotFoundError, UnavailableError, ValidationError
from recsys.events import MAX_RECORDS_PER_PUT, publish_records
from recsys.feature_store.online import OnlineFeatureStore, deserialize_item
from recsys.group_commit import GroupCommit
from recsys.secrets import feature_flags
from recsys.serving import compute as steps
from recsys.serving.cache import ANY_WRITES, USER_STATE_FIELD, RecommendationCache, cache_field
from recsys.serving.item_lists import stored_items
from recsys.serving.live_metrics import LiveMetrics
from recsys.serving.model_store import ModelStore, ServingModel, production_version
from recsys.serving.resilience import DependencyMonitor, degradation, describe
from recsys.serving.rules import Selection
from recsys.serving.schemas import DEFAULT_K, MAX_K
from recsys.serving.threads import limit_blas_threads
from recsys.serving.tracking import InferenceTracker, tracking_item
from recsys.serving.variants import PRODUCTION

if TYPE_CHECKING:
    from recsys.config import Settings
    from recsys.events import InteractionEvent

log = logging.getLogger(__name__)


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
        self.store = feature_store or OnlineFeatureStore(settings, request_client("dynamodb", settings))
        self.monitor = DependencyMonitor()
        self.cache = cache or RecommendationCache(
            settings, ttl_s=self.config.cache_ttl_s, activity_limit=self.config.activity_limit
        )
        self.tracker = tracker or InferenceTracker(settings)
        self.precomputed_table = settings.names.table("recommendations_cache")
        self._flagged: dict[tuple[bool, bool], ServingConfig] = {}
        self.live_metrics = LiveMetrics(settings) if self.config.live_metrics else None
        self.live = LiveOverlay(settings, ann_threshold=self.config.ann_threshold)
        # Interactions posted at once share one put onto the stream and one write to each store.
        self.interactions: GroupCommit[dict[str, Any], dict[str, Any]] = GroupCommit(
            self._publish, max_batch=MAX_RECORDS_PER_PUT
        )

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
        """Top-k recommendations for a user (`source` model, cache or popular) from the user's variant
        (production, or the canary for its share of users) and the `model_version` that answered."""
        user_id = str(user_id)
        validate_request(user_id, k, category)
        with degradation() as missing:
            base, variant = self.models.for_user(user_id)
            model = self.live.apply(base)  # videos added or removed since training
            field = cache_field(variant, self.live.cache_tag(model), k, category, exclude_watched)
            response, state, seen = (
                self.cache.lookup_for_store(user_id, field) if use_cache else (None, None, ANY_WRITES)
            )
            if response is not None:
                response = {
                    **response,
                    "source": "cache",
                    "variant": variant,
                    "recommendation_id": uuid.uuid4().hex,
                }
            else:
                activity, engaged, read = self._user_state(user_id, state)
                chosen, source, reasons = self.compute_selection(
                    model, user_id, k, category, exclude_watched, activity, engaged=engaged
                )
                response = self._response(model, user_id, chosen, source, reasons, variant)
                stored = {USER_STATE_FIELD: read} if read is not None and use_cache else {}
                if missing:
                    response["degraded"] = True
                elif use_cache:  # a degraded answer is never cached
                    stored[field] = response
                if stored:
                    self.cache.set_many(user_id, stored, seen)  # unless an interaction landed meanwhile
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
                    variant=response["variant"],
                )
            )
        return response

    def _user_state(
        self, user_id: str, stored: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], list[str], dict[str, Any] | None]:
        """The user's recent events (newest first), every video engaged with since training, and the state
        to store in Redis when it was read from DynamoDB now (else None).

        From `stored` when an earlier request of the user stored it (a field of the user's cache hash, so
        every new interaction drops it with the cached answers, as the stream processor and the API
        invalidate the hash); else one DynamoDB query. Without the store, the user's embedding and the
        model's items still answer (degraded)."""
        if isinstance(stored, dict) and isinstance(stored.get("activity"), list):
            return stored["activity"], [str(v) for v in stored.get("engaged") or []], None
        found = self.monitor.guard(
            "dynamodb", lambda: self.store.activity_and_engaged(user_id, self.config.activity_limit), None
        )
        if found is None:
            return [], [], None
        activity, engaged = found
        engaged = list(engaged)
        return activity, engaged, {"activity": activity, "engaged": engaged}

    def compute_selection(
        self,
        model: ServingModel,
        user_id: str,
        k: int,
        category: str | None,
        exclude_watched: bool,
        activity: list[dict[str, Any]],
        now_ts: int | None = None,
        engaged: Sequence[str] = (),
    ) -> tuple[Selection, str, list[str]]:
        """The items for one request from prefetched recent `activity` (newest first) and the user's `engaged`
        video ids since training (both left out with the training history): the selection (rows, scores,
        origins), the answer's source and a reason per item (the steps of `recsys.serving.compute`)."""
        now_ts = int(time.time()) if now_ts is None else now_ts
        if category is not None and category not in model.category_index:
            return Selection(np.zeros(0, np.int64), np.zeros(0), []), "popular", []
        config = self.request_config()
        query = steps.user_query(model, config, user_id, activity, exclude_watched, engaged)
        return steps.answer_many(model, config, [query], k, category, now_ts)[0]

    def request_config(self) -> ServingConfig:
        """The serving knobs with the config secret's feature flags applied.

        `{"feature_flags": {"ranking_enabled": false, "diversity_enabled": false}}` in `{stack}/config` switches
        the ranker or the diversity cap off at serving time, seen within the secrets cache TTL (no redeploy).
        A flag can only switch off what the settings switch on; without Secrets Manager the settings stand.
        """
        flags = self.monitor.guard(
            "secretsmanager", lambda: feature_flags(self.settings).get("feature_flags"), None
        )
        if not isinstance(flags, dict):
            return self.config
        wanted = (
            self.config.ranking and bool(flags.get("ranking_enabled", True)),
            self.config.diversity and bool(flags.get("diversity_enabled", True)),
        )
        if wanted == (self.config.ranking, self.config.diversity):
            return self.config
        found = self._flagged.get(wanted)
        if found is None:
            found = self._flagged[wanted] = self.config.model_copy(
                update={"ranking": wanted[0], "diversity": wanted[1]}
            )
        return found

    @staticmethod
    def _response(
        model: ServingModel, user_id: str, chosen: Selection, source: str, reasons: list[str], variant: str
    ) -> dict[str, Any]:
        return {
            "user_id": user_id,
            "variant": variant,
            "model_version": model.version,
            "recommendation_id": uuid.uuid4().hex,
            "source": source,
            "items": steps.items(model, chosen, reasons),
            "generated_at": time.time(),
        }

    # ----- precomputed recommendations (GET /cached)
    def cached(self, user_id: str | int) -> dict[str, Any]:
        """The precomputed recommendations of a user from the recommendations cache table.

        Only an entry of the version that serves the user's variant is returned: when the entry is of another
        version (the user's canary started, stopped or was promoted, or production moved before the table
        was refilled), the answer is computed now from the user's variant (source `model` or `cache`).
        """
        user_id = str(user_id)
        try:
            raw = (
                request_client("dynamodb", self.settings)
                .get_item(TableName=self.precomputed_table, Key={"user_id": {"S": user_id}})
                .get("Item")
            )
        except Exception as exc:  # the table is unreachable: answer from the model in memory, and say so
            self.monitor.failed("dynamodb", exc, "answering /cached from the model in memory")
            live = self.recommend(user_id, track=False)
            return {**live, "degraded": True}
        item = deserialize_item(raw) if raw else None
        if item is None or item.get("expires_at", float("inf")) < time.time():
            raise NotFoundError(
                f"no precomputed recommendations for user {user_id!r}",
                hint="run `recsys cache fill --env ENV` (the batch job) or use /recommendations/{user_id}",
            )
        try:
            model, variant = self.models.for_user(user_id)
        except UnavailableError:  # no model in memory: the table still answers
            model, variant = None, PRODUCTION
        if model is not None and str(item.get("model_version")) != model.version:
            k = min(max(int(item.get("k") or DEFAULT_K), 1), MAX_K)
            return self.recommend(user_id, k=k, track=False)
        try:
            item["items"] = [i for i in stored_items(item) if not self.live.removed(str(i["video_id"]))]
        except (ValueError, TypeError, KeyError):  # an entry this code cannot read: answer as without one
            log.warning("unreadable precomputed entry of user %s; answering from the model", user_id)
            return self.recommend(user_id, track=False)
        for i in item["items"]:
            i["rank"] = int(i["rank"])
        return {
            "user_id": user_id,
            "variant": variant,
            "model_version": item.get("model_version"),
            "recommendation_id": item["recommendation_id"],
            "source": "precomputed",
            "items": item["items"],
            "generated_at": float(item.get("generated_at", 0)),
        }

    # ----- interactions
    def record_interaction(self, event: InteractionEvent) -> dict[str, Any]:
        """Publish an interaction (stream + recent activity + cache invalidation); returns the stored record.
        Interactions posted concurrently go out together (`recsys.group_commit`); each gets its own answer."""
        return self.interactions.submit(event.to_record())

    def _publish(self, records: list[dict[str, Any]]) -> list[dict[str, Any] | UnavailableError]:
        # The stream is the system of record: a post it refuses fails alone, and nothing else is written for it.
        return publish_records(self.settings, records, self.store, self.cache)

    # ----- privacy
    def forget(self, user_id: str | int) -> dict[str, Any]:
        """Erase the user's online data (`recsys.serving.forget`); 503 when a store cannot be reached."""
        from recsys.serving.forget import forget_user

        try:
            return forget_user(self.settings, str(user_id), self.cache)
        except Exception as exc:
            self.monitor.failed("dynamodb", exc, "refusing to erase")
            raise UnavailableError(
                f"the user's data could not be erased now ({type(exc).__name__})", hint="retry the request"
            ) from None

    # ----- the live catalogue
    def add_video(self, video: VideoIn) -> dict[str, Any]:
        """Add a video now: embedded by the production version's video tower, served from the next request."""
        model = self.models.current()
        tower = self.live.tower(model.version)
        if tower is None:  # not a passing outage (no retry helps): the version's state refuses it
            raise ConflictError(
                f"model version {model.version!r} has no saved video tower, so it cannot embed a new video",
                hint="retrain (recsys pipeline run): versions trained now save their video tower",
            )
        item = add_video(self.settings, video, model.version, tower)
        self.live.note(item)
        return item

    def remove_video(self, video_id: str) -> dict[str, Any]:
        """Take a video out of every answer now (cached ones included)."""
        model = self.live.apply(self.models.current())
        item = remove_video(self.settings, video_id, known=video_id in model.video_row)
        self.live.note(item)
        return item

    # ----- health
    def health(self) -> dict[str, Any]:
        """Model and dependency status: unhealthy without a model; degraded when a dependency is down, the
        registry's production version is not the one served, or the registry's canary cannot be served."""
        try:
            self.models.current()
        except Exception as exc:
            self.monitor.log.warning("model", "health: no model: %s", describe(exc))
        model = self.models.status()
        ddb = request_client("dynamodb", self.settings)
        deps: dict[str, dict[str, Any]] = {}
        registry_version: str | None = None

        def probe(name: str, call) -> Any:
            try:
                found = call()
            except Exception as exc:
                deps[name] = {"status": "down", "detail": describe(exc)}
                return None
            deps[name] = {"status": "ok", "detail": None}
            return found

        probe("store", lambda: ddb.describe_table(TableName=self.store.video_table))
        probe(
            "stream",
            lambda: request_client("kinesis", self.settings).describe_stream_summary(
                StreamName=self.settings.names.streams["events"]
            ),
        )
        registry_version = probe("registry", lambda: production_version(self.settings, ddb))
        redis_state = self.cache.ping()
        deps["cache"] = {
            "status": redis_state,
            "detail": self.cache.last_error if redis_state == "down" else None,
        }
        mismatch = None
        if (
            deps["registry"]["status"] == "ok"
            and model["version"] is not None
            and registry_version != model["version"]
        ):
            mismatch = (
                f"serving {model['version']} from memory, but the registry's production version is "
                f"{registry_version or 'none'}"
            )
        canary = model.get("canary")
        unserved = None
        if canary is not None and canary["error"]:
            unserved = f"{canary['error']}; its {canary['share']}% of users get production"
        degraded = sorted(name for name, d in deps.items() if d["status"] == "down")
        if model["version"] is None:
            status = "unhealthy"
        elif degraded or mismatch or unserved:
            status = "degraded"
        else:
            status = "healthy"
        return {
            "status": status,
            "model_version": model["version"],
            "registry_version": registry_version,
            "canary": canary,
            "degraded": degraded
            + (["registry"] if mismatch and "registry" not in degraded else [])
            + (["canary"] if unserved else []),
            "detail": "; ".join(d for d in (mismatch, unserved) if d) or None,
            "model": model,
            "dependencies": deps,
        }
