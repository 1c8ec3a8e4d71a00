"""Serving fixtures: a tiny, structured model version published to the local stack.

Videos belong to categories whose embeddings point in one direction each; a user's embedding points
at their preferred category. The ranker is a hand-written CatBoost JSON (monotone in the two-tower
score, with a bonus for the user's top category), so these tests need neither TensorFlow nor catboost.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest

from recsys import artifacts
from recsys.aws import client
from recsys.feature_store.online import OnlineFeatureStore
from recsys.ranking.candidates import CANDIDATE_FEATURES, NeighbourTable
from recsys.sources.fit import FittedSources

CATEGORIES = ["gaming", "music", "sports", "news", "comedy", "education"]
PER_CATEGORY = 12
N_USERS = 24
DIM = artifacts.EMBEDDING_DIM


@dataclass
class TinyWorld:
    """What a published tiny version contains (for assertions)."""

    version: str
    video_ids: list[str]
    category_of: dict[str, str]
    user_ids: list[str]
    preferred: dict[str, str]
    watched: dict[str, list[str]]
    cold_video: str  # a catalogue video nobody interacted with


def ranker_json() -> bytes:
    """A valid CatBoost JSON export: score rises with the two-tower score; +0.5 for a category the user likes."""
    floats = [
        {"feature_index": i, "flat_feature_index": i, "nan_value_treatment": "AsIs", "borders": []}
        for i in range(len(CANDIDATE_FEATURES))
    ]
    top = CANDIDATE_FEATURES.index("category_affinity")
    trees = [
        {
            "splits": [{"float_feature_index": 0, "border": b, "split_type": "FloatFeature"}],
            "leaf_values": [0.0, 0.1],
        }
        for b in np.linspace(-3, 3, 25)
    ]
    trees.append(
        {
            "splits": [{"float_feature_index": top, "border": 0.5, "split_type": "FloatFeature"}],
            "leaf_values": [0.0, 0.5],
        }
    )
    return json.dumps(
        {
            "features_info": {"float_features": floats},
            "oblivious_trees": trees,
            "scale_and_bias": [1.0, [0.0]],
        }
    ).encode()


def _put(settings, key: str, body: bytes) -> None:
    client("s3", settings).put_object(Bucket=settings.names.bucket("models"), Key=key, Body=body)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _parquet(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf)
    return buf.getvalue()


def publish_tiny_version(
    settings,
    version: str,
    seed: int = 0,
    ranker: bool = True,
    flip: bool = False,
    per_category: int = PER_CATEGORY,
    n_users: int = N_USERS,
) -> TinyWorld:
    """Write a version's artifacts and online features (no registry change). `flip` reverses user tastes.

    `per_category` and `n_users` size it (benchmarks publish a larger one)."""
    rng = np.random.default_rng(seed)
    directions = np.linalg.qr(rng.normal(size=(DIM, len(CATEGORIES))))[0].T.astype(np.float32)
    video_ids, cats, emb = [], [], []
    for c, cat in enumerate(CATEGORIES):
        for j in range(per_category):
            video_ids.append(str(1000 + c * max(100, per_category) + j))
            cats.append(cat)
            emb.append(directions[c] + 0.15 * rng.normal(size=DIM))
    emb_arr = np.asarray(emb, dtype=np.float32)
    n = len(video_ids)
    popularity = np.round(rng.uniform(0.05, 1.0, n), 4)
    trending = np.round(rng.uniform(0.0, 1.0, n), 4)
    now = int(time.time())
    user_ids, preferred, watched, uemb = [], {}, {}, []
    for u in range(n_users):
        uid = str(u + 1)
        c = (u % len(CATEGORIES)) if not flip else (len(CATEGORIES) - 1 - u % len(CATEGORIES))
        user_ids.append(uid)
        preferred[uid] = CATEGORIES[c]
        watched[uid] = [video_ids[c * per_category + (u % 3)], video_ids[c * per_category + 3]]
        uemb.append(2.0 * directions[c])
    cold_video = video_ids[per_category - 1]
    _put(
        settings,
        artifacts.two_tower_key(version, "video_embeddings.npz"),
        _npz(video_ids=np.asarray(video_ids), embeddings=emb_arr),
    )
    _put(
        settings,
        artifacts.two_tower_key(version, "user_embeddings.npz"),
        _npz(user_ids=np.asarray(user_ids), embeddings=np.asarray(uemb, dtype=np.float32)),
    )
    catalog = pl.DataFrame(
        {
            "video_id": video_ids,
            "category": cats,
            "popularity": popularity.tolist(),
            "trending": trending.tolist(),
            "duration": [300.0] * n,
            "upload_ts": [now - 86_400 * 10] * n,
        }
    )
    _put(settings, artifacts.two_tower_key(version, "serving_catalog.parquet"), _parquet(catalog))
    history = pl.DataFrame(
        {
            "user_id": user_ids,
            "watched": [watched[u] for u in user_ids],
            "top_categories": [[preferred[u]] for u in user_ids],
        }
    )
    _put(settings, artifacts.two_tower_key(version, "user_history.parquet"), _parquet(history))
    _put(settings, artifacts.two_tower_key(version, "model_config.json"), json.dumps({"dim": DIM}).encode())
    if ranker:
        _put(settings, artifacts.ranker_key(version, "ranker_model.json"), ranker_json())
        _put(
            settings,
            artifacts.ranker_key(version, "ranker_features.json"),
            json.dumps({"features": CANDIDATE_FEATURES}).encode(),
        )
    # item-item neighbours: every video's neighbours are the other videos of its category
    rows, cols = zip(
        *[(i, j) for i in range(n) for j in range(n) if i != j and cats[i] == cats[j]], strict=True
    )
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(np.asarray(rows), minlength=n))
    table = NeighbourTable(offsets, np.asarray(cols, np.int32), np.full(len(cols), 0.5, np.float32))
    fitted = FittedSources(np.asarray(video_ids), table, popularity, trending, {"served": "ranker"})
    _put(settings, artifacts.sources_key(version, "sources.npz"), fitted.to_bytes())
    store = OnlineFeatureStore(settings)
    store.put_videos(
        [
            {
                "video_id": v,
                "category": cats[i],
                "duration": 300.0,
                "upload_ts": now - 86_400 * 10,
                "interaction_count": 5,
                "popularity": float(popularity[i]),
                "avg_watch_ratio": 0.5,
                "embedding": emb_arr[i],
                "model_version": version,
            }
            for i, v in enumerate(video_ids)
        ]
    )
    store.put_users(
        [
            {
                "user_id": u,
                "interaction_count": 2,
                "total_weight": 2.0,
                "last_interaction_ts": now - 3600,
                "top_category": preferred[u],
                "category_affinity": {preferred[u]: 1.0},
                "model_version": version,
            }
            for u in user_ids
        ]
    )
    return TinyWorld(
        version, video_ids, dict(zip(video_ids, cats, strict=True)), user_ids, preferred, watched, cold_video
    )


def promote(settings, version: str) -> None:
    """Register (if new) and promote `version` with `recsys.release` (serving data already published)."""
    from recsys import release
    from recsys.registry import ModelRegistry

    registry = ModelRegistry(settings)
    if registry.find(version) is None:
        registry.register(version, {"recall_at_100": 0.5}, f"job-{version}")
    release.promote(settings, version, registry=registry, publisher=lambda _version: None)


@pytest.fixture(scope="session")
def tiny_world(local_stack) -> TinyWorld:
    """One tiny version published and promoted to production on the session's local stack."""
    world = publish_tiny_version(local_stack, "v20260101-000000-aaaaaa")
    promote(local_stack, world.version)
    return world


@pytest.fixture()
def service(local_stack, tiny_world):
    """A fresh RecommendationService (no background tracking thread) over the session's local stack."""
    from recsys.serving.service import RecommendationService, ServingConfig
    from recsys.serving.tracking import InferenceTracker

    promote(local_stack, tiny_world.version)  # a no-op unless another test changed production
    svc = RecommendationService(
        local_stack,
        ServingConfig(poll_interval_s=0.2),
        tracker=InferenceTracker(local_stack, background=False),
    )
    return svc
