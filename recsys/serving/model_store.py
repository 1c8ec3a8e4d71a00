"""The production model in memory, reloaded when the registry's production version changes, and the canary.

`ModelStore.current()` checks the registry at most every `poll_interval_s` seconds (on the request path,
so it works in a Lambda whose threads freeze between invocations); when the production version differs
it loads the new version and swaps it in atomically. Requests keep being served by the old version while
it loads and if loading fails. A new version is therefore served at most `poll_interval_s` + load time
after its promotion, without a restart.

The same check reads the canary pointer (one query returns both, `ModelRegistry.serving_pointers`). When a
canary is set the store loads its version too and `for_user` answers a share of users with it (sticky by
user id, `recsys.serving.variants`); when it is stopped or promoted the canary users return to production
at the next check. A canary that cannot be loaded leaves its users on production, and `status()` says why.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys import artifacts
from recsys.aws import client, request_client
from recsys.errors import UnavailableError
from recsys.heap import freeze_long_lived
from recsys.ranking.candidates import Catalogue
from recsys.registry import ModelRegistry
from recsys.serving.bundle import load_bundle
from recsys.serving.resilience import describe
from recsys.serving.retrieval import DEFAULT_ANN_THRESHOLD, ExactIndex, HnswIndex, build_index
from recsys.serving.rules import FillOrder
from recsys.serving.sources import CandidateRanker, serving_catalogue, sources_meta
from recsys.serving.variants import CANARY, PRODUCTION, Variant, variant_of
from recsys.storage import get_bytes_if_exists

if TYPE_CHECKING:
    from recsys.config import Settings

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_S = 30.0
MAX_POLL_INTERVAL_S = 300.0
HNSW_INDEX_NAME = "hnsw_index.bin"


@dataclass
class ServingModel:
    """One model version's serving data: embeddings, catalogue arrays, user history, index and ranker."""

    version: str
    video_ids: np.ndarray
    video_embeddings: np.ndarray
    category: np.ndarray
    popularity: np.ndarray
    trending: np.ndarray
    duration: np.ndarray
    upload_ts: np.ndarray
    user_ids: np.ndarray
    user_embeddings: np.ndarray
    history_offsets: np.ndarray
    history_video_idx: np.ndarray
    topcat_offsets: np.ndarray
    topcat_values: np.ndarray
    index: ExactIndex | HnswIndex
    neighbour_offsets: np.ndarray | None = None
    neighbour_idx: np.ndarray | None = None
    neighbour_weight: np.ndarray | None = None
    sources_meta: np.ndarray | None = None
    ranker: CandidateRanker | None = None  # over the candidates' per-source features
    loaded_at: float = field(default_factory=time.time)
    video_row: dict[str, int] = field(init=False)
    user_row: dict[str, int] = field(init=False)
    categories: list[str] = field(init=False)
    category_masks: dict[str, np.ndarray] = field(init=False)
    popular_rows: np.ndarray = field(init=False)
    trending_rows: np.ndarray = field(init=False)
    popular_by_category: dict[str, np.ndarray] = field(init=False)
    category_codes: np.ndarray = field(init=False)  # code of each row's category (index into categories)
    category_index: dict[str, int] = field(init=False)
    trending_score: np.ndarray = field(init=False)
    fill_popular: FillOrder = field(init=False)  # fill-up lists, precomputed once per version
    fill_trending: FillOrder = field(init=False)
    catalogue: Catalogue = field(init=False)
    sources_info: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        if self.neighbour_offsets is None:  # no item-item table: the other sources still serve
            self.neighbour_offsets = np.zeros(self.video_ids.shape[0] + 1, dtype=np.int64)
            self.neighbour_idx = np.zeros(0, dtype=np.int32)
            self.neighbour_weight = np.zeros(0, dtype=np.float32)
        self.sources_info = sources_meta(self.sources_meta)
        self.catalogue = serving_catalogue(self)
        self.video_row = {v: i for i, v in enumerate(self.video_ids.tolist())}
        self.user_row = {u: i for i, u in enumerate(self.user_ids.tolist())}
        names, codes = np.unique(self.category, return_inverse=True)
        self.categories = [str(c) for c in names]
        self.category_codes = codes.astype(np.int64).reshape(-1)
        self.category_index = {c: i for i, c in enumerate(self.categories)}
        self.category_masks = {c: self.category_codes == i for i, c in enumerate(self.categories)}
        for mask in self.category_masks.values():
            mask.flags.writeable = False  # read-only: the index keeps each mask's rows (`HnswIndex.search`)
        self.popular_rows = np.argsort(-self.popularity, kind="stable")
        self.trending_score = 0.5 * self.trending + 0.5 * self.popularity
        self.trending_rows = np.argsort(-self.trending_score, kind="stable")
        n_cat = len(self.categories)
        self.fill_popular = FillOrder.build(self.popular_rows, self.category_codes, n_cat)
        self.fill_trending = FillOrder.build(self.trending_rows, self.category_codes, n_cat)
        cat_of_popular = self.category[self.popular_rows]
        self.popular_by_category = {c: self.popular_rows[cat_of_popular == c] for c in self.categories}

    @property
    def n_videos(self) -> int:
        return int(self.video_ids.shape[0])

    def user_embedding(self, user_id: str) -> np.ndarray | None:
        """The trained embedding of a user, None for a user the model does not know (or a zero row)."""
        row = self.user_row.get(user_id)
        if row is None:
            return None
        emb = self.user_embeddings[row]
        return emb if emb.any() else None

    def watched_rows(self, user_id: str) -> np.ndarray:
        """Catalogue rows of the videos the user watched in the training data."""
        row = self.user_row.get(user_id)
        if row is None:
            return np.zeros(0, dtype=np.int32)
        return self.history_video_idx[self.history_offsets[row] : self.history_offsets[row + 1]]

    def top_categories(self, user_id: str) -> list[str]:
        """The user's preferred categories from the training data, most preferred first."""
        row = self.user_row.get(user_id)
        if row is None:
            return []
        return self.topcat_values[self.topcat_offsets[row] : self.topcat_offsets[row + 1]].tolist()

    def rows_of(self, video_ids: list[str]) -> np.ndarray:
        """Catalogue rows of known video ids (unknown ids are skipped)."""
        return np.asarray([r for v in video_ids if (r := self.video_row.get(v)) is not None], dtype=np.int64)


def production_version(settings: Settings, dynamodb: Any | None = None) -> str | None:
    """The registry's production version (None when nothing is in production)."""
    found = ModelRegistry(settings, dynamodb=dynamodb).production()
    return None if found is None else str(found.version)


def load_model(settings: Settings, version: str, ann_threshold: int = DEFAULT_ANN_THRESHOLD) -> ServingModel:
    """Load one version from S3: its serving bundle, retrieval index (cached in S3 when HNSW) and ranker."""
    arrays = load_bundle(settings, version)
    emb = arrays["video_embeddings"]
    bucket = settings.names.bucket("models")
    index_bytes = None
    if emb.shape[0] >= ann_threshold:
        index_bytes = get_bytes_if_exists(settings, bucket, artifacts.two_tower_key(version, HNSW_INDEX_NAME))
    index = build_index(emb, ann_threshold, index_bytes)
    if isinstance(index, HnswIndex) and index_bytes is None:
        try:
            client("s3", settings).put_object(
                Bucket=bucket, Key=artifacts.two_tower_key(version, HNSW_INDEX_NAME), Body=index.to_bytes()
            )
        except Exception as exc:  # the next cold start rebuilds it
            log.warning("could not cache the HNSW index of %s: %s", version, exc)
    ranker = None
    model_json = get_bytes_if_exists(settings, bucket, artifacts.ranker_key(version, "ranker_model.json"))
    if model_json is not None:
        feats = get_bytes_if_exists(settings, bucket, artifacts.ranker_key(version, "ranker_features.json"))
        names = json.loads(feats)["features"] if feats else None
        ranker = CandidateRanker.from_json_bytes(model_json, names)
    return ServingModel(version=version, index=index, ranker=ranker, **arrays)


@dataclass(frozen=True)
class CanaryModel:
    """The canary's model and the percent of users it serves."""

    model: ServingModel
    share: int


class ModelStore:
    """Holds the production ServingModel (and the canary's) and swaps in new ones when the registry's pointers move."""

    def __init__(
        self,
        settings: Settings,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        ann_threshold: int = DEFAULT_ANN_THRESHOLD,
        clock=time.monotonic,
    ) -> None:
        self.settings = settings
        self.poll_interval_s = min(max(float(poll_interval_s), 0.0), MAX_POLL_INTERVAL_S)
        self.ann_threshold = ann_threshold
        self._clock = clock
        self._model: ServingModel | None = None
        self._checked_at = -float("inf")
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self._canary: CanaryModel | None = None
        self.canary_wanted: tuple[str, int] | None = None  # the registry's canary (version, share)
        self.canary_error: str | None = None

    @property
    def loaded(self) -> ServingModel | None:
        """The model in memory now, without checking the registry."""
        return self._model

    def current(self) -> ServingModel:
        """The production model, checking the registry when the poll interval has passed."""
        if self._clock() - self._checked_at >= self.poll_interval_s or self._model is None:
            self.refresh()
        if self._model is None:
            raise UnavailableError(
                "no model is in production yet"
                if not self.last_error
                else f"no model loaded: {self.last_error}",
                hint="run the pipeline (recsys pipeline run --env local) so that a version is deployed",
            )
        return self._model

    def for_user(self, user_id: str) -> tuple[ServingModel, Variant]:
        """The model that answers `user_id` and its variant: the canary for its share of users, else production.

        No I/O beyond `current()`'s check on the poll interval.
        """
        production = self.current()
        canary = self._canary
        if canary is not None and variant_of(user_id, canary.share) == CANARY:
            return canary.model, CANARY
        return production, PRODUCTION

    @property
    def canary(self) -> CanaryModel | None:
        """The canary being served now (None when there is none or it could not be loaded)."""
        return self._canary

    def refresh(self, force: bool = False) -> bool:
        """Check the registry now; load and swap what moved. True when a new production version was loaded."""
        # One loader at a time; other requests keep the current model instead of waiting.
        if not self._lock.acquire(blocking=self._model is None):
            return False
        try:
            if (
                not force
                and self._clock() - self._checked_at < self.poll_interval_s
                and self._model is not None
            ):
                return False
            self._checked_at = self._clock()
            try:
                registry = ModelRegistry(self.settings, dynamodb=request_client("dynamodb", self.settings))
                pointers = registry.serving_pointers()
            except Exception as exc:
                self.last_error = f"registry unreachable: {describe(exc)}"
                log.warning("model registry check failed, serving the model in memory: %s", describe(exc))
                return False
            version = pointers.production.version if pointers.production else None
            changed = False
            if version is None or (self._model is not None and self._model.version == version):
                self.last_error = None if version else self.last_error
            else:
                try:
                    model = load_model(self.settings, version, self.ann_threshold)
                except Exception as exc:
                    self.last_error = f"loading {version} failed: {describe(exc)}"
                    log.error("loading model version %s failed: %s", version, describe(exc))
                else:
                    self._model = model
                    self.last_error = None
                    changed = True
                    freeze_long_lived()  # full collections skip the model from now on
                    log.info(
                        "serving model version %s (%d videos, %s index)",
                        version,
                        model.n_videos,
                        model.index.kind,
                    )
            canary = pointers.canary
            self._follow_canary((canary.version, int(canary.canary_share or 0)) if canary else None)
            return changed
        finally:
            self._lock.release()

    def _follow_canary(self, wanted: tuple[str, int] | None) -> None:
        """Serve the registry's canary (loading its version when it changed), or stop serving one."""
        if wanted is not None and (self._model is None or wanted[0] == self._model.version):
            wanted = None  # a canary that is production now (promoted) is no canary
        self.canary_wanted = wanted
        if wanted is None:
            if self._canary is not None:
                log.info("canary %s stopped: every user gets production", self._canary.model.version)
            self._canary, self.canary_error = None, None
            return
        version, share = wanted
        held = self._canary
        if held is not None and held.model.version == version:
            if held.share != share:
                self._canary = CanaryModel(held.model, share)
            return
        try:
            model = load_model(self.settings, version, self.ann_threshold)
        except Exception as exc:  # its users keep getting production
            self._canary = None
            self.canary_error = f"loading canary {version} failed: {describe(exc)}"
            log.error("loading canary version %s failed, serving production: %s", version, describe(exc))
            return
        self._canary, self.canary_error = CanaryModel(model, share), None
        freeze_long_lived()
        log.info("serving canary %s to %d%% of users", version, share)

    def set_model(self, model: ServingModel) -> None:
        """Serve `model` (tests, benchmarks); registry polling still replaces it when production changes."""
        self._model = model
        self._checked_at = self._clock()

    def status(self) -> dict[str, Any]:
        """What /health reports about the model."""
        m = self._model
        return {
            "version": m.version if m else None,
            "videos": m.n_videos if m else 0,
            "index": m.index.kind if m else None,
            "ranker": bool(m and m.ranker),
            "served": m.sources_info.get("served") if m else None,
            "error": self.last_error,
            "canary": self.canary_status(),
        }

    def canary_status(self) -> dict[str, Any] | None:
        """The registry's canary and whether it is served (None when the registry has no canary)."""
        wanted, held = self.canary_wanted, self._canary
        if wanted is None:
            return None
        served = held is not None and held.model.version == wanted[0]
        return {"version": wanted[0], "share": wanted[1], "served": served, "error": self.canary_error}
