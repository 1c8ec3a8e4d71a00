"""Fixtures of the pipeline tests: tiny model-version artifacts written to the local stack's buckets."""

from __future__ import annotations

import io
import json
import uuid

import numpy as np
import polars as pl
import pytest

from recsys import artifacts
from recsys.storage import put_bytes, put_json, put_parquet

CATEGORIES = ("music", "gaming", "news")


def write_version_artifacts(
    settings, version: str, job_id: str, n_videos: int = 12, n_users: int = 5, seed: int = 0
):
    """Write the artifacts deployment reads for `version` (small, random); returns the video embeddings."""
    rng = np.random.default_rng(seed)
    models, data = settings.names.bucket("models"), settings.names.bucket("artifacts")
    video_ids = np.array([f"v{i}" for i in range(n_videos)])
    user_ids = np.array([f"u{i}" for i in range(n_users)])
    emb = rng.normal(size=(n_videos, artifacts.EMBEDDING_DIM)).astype(np.float32)

    def npz(**arrays) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    put_bytes(
        settings,
        models,
        artifacts.two_tower_key(version, "video_embeddings.npz"),
        npz(video_ids=video_ids, embeddings=emb),
    )
    put_bytes(
        settings,
        models,
        artifacts.two_tower_key(version, "user_embeddings.npz"),
        npz(user_ids=user_ids, embeddings=rng.normal(size=(n_users, 64)).astype(np.float32)),
    )
    put_json(settings, models, artifacts.two_tower_key(version, "model_config.json"), {"embedding_dim": 64})
    catalog = pl.DataFrame(
        {
            "video_id": video_ids.tolist(),
            "category": [CATEGORIES[i % 3] for i in range(n_videos)],
            "popularity": rng.uniform(size=n_videos),
            "trending": rng.uniform(size=n_videos),
            "duration": rng.uniform(30, 600, size=n_videos),
            "upload_ts": np.full(n_videos, 1_700_000_000, dtype=np.int64),
        }
    )
    put_parquet(settings, models, artifacts.two_tower_key(version, "serving_catalog.parquet"), catalog)
    history = pl.DataFrame(
        {
            "user_id": user_ids.tolist(),
            "watched": [[f"v{i}"] for i in range(n_users)],
            "top_categories": [[CATEGORIES[i % 3]] for i in range(n_users)],
        }
    )
    put_parquet(settings, models, artifacts.two_tower_key(version, "user_history.parquet"), history)
    put_json(settings, models, artifacts.ranker_key(version, "ranker_model.json"), {"stub": True})
    put_json(settings, models, artifacts.ranker_key(version, "ranker_features.json"), {"features": []})
    users = pl.DataFrame(
        {
            "user_id": user_ids.tolist(),
            "interaction_count": np.arange(1, n_users + 1, dtype=np.int64),
            "total_weight": rng.uniform(1, 5, size=n_users),
            "last_interaction_ts": np.full(n_users, 1_700_000_500, dtype=np.int64),
            "top_category": [CATEGORIES[i % 3] for i in range(n_users)],
            "category_affinity": [json.dumps({CATEGORIES[i % 3]: 1.0}) for i in range(n_users)],
        }
    )
    put_parquet(settings, data, artifacts.preprocessing_key(job_id, "user_features.parquet"), users)
    return video_ids, emb


@pytest.fixture
def model_name() -> str:
    """A registry model name of this test alone, so tests sharing the session's stack never interfere."""
    return f"test-{uuid.uuid4().hex[:10]}"
