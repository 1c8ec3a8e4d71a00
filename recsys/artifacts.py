"""Where every pipeline artifact lives (the reference system's paths) and the keys inside them.

The pipeline writes these, deployment copies them, serving reads them: all three use this module.

    s3://{models}/models/two_tower/{version}/video_embeddings.npz   video_ids (str), embeddings (float32 [n, 64])
    s3://{models}/models/two_tower/{version}/user_embeddings.npz    user_ids (str), embeddings (float32 [n, 64])
    s3://{models}/models/two_tower/{version}/model_config.json
    s3://{models}/models/two_tower/{version}/vocabularies.json
    s3://{models}/models/ranker/{version}/ranker_model.cbm          CatBoost native model (training side)
    s3://{models}/models/ranker/{version}/ranker_model.json         CatBoost JSON export (serving, no catboost)
    s3://{models}/models/ranker/{version}/ranker_features.json      feature names in model order
    s3://{models}/models/sources/{version}/sources.npz             neighbour table, popularity, trending (served)
    s3://{models}/vector_store/video_embeddings.npz                 production embeddings (serving)
    s3://{artifacts}/preprocessing/{job_id}/vocabularies.json
    s3://{artifacts}/preprocessing/{job_id}/video_catalog.parquet
    s3://{artifacts}/preprocessing/{job_id}/ranker_train.parquet
    s3://{artifacts}/evaluation/{version}/metrics.json | report.html
"""

from __future__ import annotations

EMBEDDING_DIM = 64

# Keys inside the .npz files.
NPZ_IDS_VIDEO = "video_ids"
NPZ_IDS_USER = "user_ids"
NPZ_EMBEDDINGS = "embeddings"

VECTOR_STORE_KEY = "vector_store/video_embeddings.npz"


def two_tower_prefix(version: str) -> str:
    return f"models/two_tower/{version}/"


def two_tower_key(version: str, name: str) -> str:
    """`name` is one of video_embeddings.npz, user_embeddings.npz, model_config.json, vocabularies.json."""
    return two_tower_prefix(version) + name


def ranker_prefix(version: str) -> str:
    return f"models/ranker/{version}/"


def ranker_key(version: str, name: str) -> str:
    """`name` is one of ranker_model.cbm, ranker_model.json, ranker_features.json."""
    return ranker_prefix(version) + name


def sources_key(version: str, name: str) -> str:
    """`name` is sources_eval.npz (fitted on the training split) or sources.npz (refit on all data, served)."""
    return f"models/sources/{version}/{name}"


def preprocessing_prefix(job_id: str) -> str:
    return f"preprocessing/{job_id}/"


def preprocessing_key(job_id: str, name: str) -> str:
    """`name` is one of vocabularies.json, video_catalog.parquet, ranker_train.parquet, ..."""
    return preprocessing_prefix(job_id) + name


def evaluation_prefix(version: str) -> str:
    """s3://{artifacts}/evaluation/{version}/"""
    return f"evaluation/{version}/"


def evaluation_key(version: str, name: str) -> str:
    """`name` is metrics.json or report.html."""
    return evaluation_prefix(version) + name
