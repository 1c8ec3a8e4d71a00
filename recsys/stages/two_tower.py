"""Stage 2a: train the two-tower model and export what serving needs (no TensorFlow at serving time).

Input: the preprocessing output. Writes under s3://{models}/models/two_tower/{version}/:
video_embeddings.npz, user_embeddings.npz, video_tower.npz, model_config.json, vocabularies.json,
serving_catalog.parquet, user_history.parquet. Output: {"model": "two_tower", "version", "artifacts", "train"}.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from recsys import artifacts as paths
from recsys.config import Settings
from recsys.data import schema as s
from recsys.data.preprocessing import user_history
from recsys.errors import ValidationError
from recsys.ids import check_id
from recsys.pipeline_config import PipelineConfig
from recsys.storage import get_json, get_parquet, put_json, put_npz, put_parquet

SERVING_CATALOG_COLUMNS = (s.VIDEO_ID, s.CATEGORY, s.POPULARITY, s.TRENDING, s.DURATION, s.UPLOAD_TS)


def load_inputs(event: dict[str, Any], settings: Settings, *names: str) -> dict[str, Any]:
    """Read preprocessing artifacts by name (Parquet as DataFrames, JSON as objects)."""
    bucket = event.get("artifacts_bucket") or settings.names.bucket("artifacts")
    out: dict[str, Any] = {}
    for name in names:
        key = event["artifacts"].get(name)
        if key is None:
            raise ValidationError(
                f"preprocessing output has no artifact {name!r}", hint="re-run preprocessing"
            )
        out[name] = (
            get_json(settings, bucket, key) if key.endswith(".json") else get_parquet(settings, bucket, key)
        )
    return out


def window_vocabularies(pairs: pl.DataFrame, vocabularies: dict[str, list[str]]) -> dict[str, list[str]]:
    """The vocabularies of a window of pairs: its users and videos, the run's categories."""
    return {
        "user_ids": sorted(pairs[s.USER_ID].unique().to_list()),
        "video_ids": sorted(pairs[s.VIDEO_ID].unique().to_list()),
        "categories": vocabularies["categories"],
    }


def run(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Train on the fit window of the preprocessing output `event`; write the embeddings and serving tables.

    The model the ranker learns from and the evaluation measures is trained on the window before the
    ranker's label window (docs/ml.md, Windows), so its scores of the label pairs are honest; the refit stage
    retrains it on all data before deployment.
    """
    version = check_id(event["version"], "version")
    config = PipelineConfig.model_validate(event["config"])
    names = ["train_interactions", "video_catalog", "user_features", "vocabularies", "seen"]
    windowed = "window_fit" in event["artifacts"]
    if windowed:
        names += ["window_fit", "window_user_features"]
    data = load_inputs(event, settings, *names)
    pairs = data["window_fit"] if windowed else data["train_interactions"]
    users = data["window_user_features"] if windowed else data["user_features"]
    return train_and_export(
        settings,
        version,
        config,
        pairs,
        data["video_catalog"],
        users,
        window_vocabularies(pairs, data["vocabularies"]) if windowed else data["vocabularies"],
        int(event.get("reference_ts") or 0),
        data["seen"],
        job_id=event.get("job_id"),
        window="fit" if windowed else "train",
    )


def train_and_export(
    settings: Settings,
    version: str,
    config: PipelineConfig,
    pairs: pl.DataFrame,
    catalog: pl.DataFrame,
    user_features: pl.DataFrame,
    vocabularies: dict[str, list[str]],
    reference_ts: int,
    seen: pl.DataFrame,
    job_id: str | None,
    window: str,
) -> dict[str, Any]:
    """Train the two-tower on `pairs` and write its files under models/two_tower/{version}/ (a stage output)."""
    from recsys.training.temperature import choose_temperature
    from recsys.training.two_tower import train_two_tower

    inputs = (pairs, catalog, user_features, vocabularies, reference_ts)
    tt_config = config.two_tower
    choice = choose_temperature(*inputs, tt_config)
    if choice is not None:
        tt_config = tt_config.model_copy(update={"temperature": choice.temperature})
    result = train_two_tower(*inputs, tt_config)
    result.model_config["temperature_selection"] = choice.to_dict() if choice else None
    result.model_config["window"] = window
    bucket = settings.names.bucket("models")
    history = user_history(pairs, seen, user_features)
    artifacts = {
        "video_embeddings": put_npz(
            settings,
            bucket,
            paths.two_tower_key(version, "video_embeddings.npz"),
            **{
                paths.NPZ_IDS_VIDEO: result.video_ids.astype(str),
                paths.NPZ_EMBEDDINGS: result.video_embeddings,
            },
        ),
        "user_embeddings": put_npz(
            settings,
            bucket,
            paths.two_tower_key(version, "user_embeddings.npz"),
            **{paths.NPZ_IDS_USER: result.user_ids.astype(str), paths.NPZ_EMBEDDINGS: result.user_embeddings},
        ),
        "model_config": put_json(
            settings,
            bucket,
            paths.two_tower_key(version, "model_config.json"),
            {**result.model_config, "version": version, "job_id": job_id},
        ),
        "vocabularies": put_json(
            settings, bucket, paths.two_tower_key(version, "vocabularies.json"), vocabularies
        ),
        **export_tables(settings, version, catalog, history),
        # The video tower in numpy (recsys.serving.video_tower): serving embeds videos added after training.
        "video_tower": put_npz(
            settings, bucket, paths.two_tower_key(version, "video_tower.npz"), **result.video_tower
        ),
    }
    return {
        "model": "two_tower",
        "version": version,
        "models_bucket": bucket,
        "artifacts": artifacts,
        "train": {
            "seconds": round(result.seconds, 3),
            "final_loss": result.model_config["final_loss"],
            "epochs": result.model_config["epochs"],
            "batch_size": result.model_config["batch_size"],
            "collaborative": result.model_config["collaborative"],
            "logq_correction": result.model_config["logq_correction"],
            "temperature": tt_config.temperature,
            "temperature_selection": result.model_config["temperature_selection"],
            "users": int(result.user_ids.size),
            "videos": int(result.video_ids.size),
            "window": window,
            "pairs": pairs.height,
        },
    }


def export_tables(
    settings: Settings, version: str, catalog: pl.DataFrame, history: pl.DataFrame
) -> dict[str, str]:
    """The version's serving catalogue (popularity, trending) and users' watched sets, beside its embeddings."""
    bucket = settings.names.bucket("models")
    return {
        "serving_catalog": put_parquet(
            settings,
            bucket,
            paths.two_tower_key(version, "serving_catalog.parquet"),
            catalog.select(
                pl.col(s.VIDEO_ID).cast(pl.String),
                pl.col(s.CATEGORY).cast(pl.String),
                pl.col(s.POPULARITY).cast(pl.Float64),
                pl.col(s.TRENDING).cast(pl.Float64),
                pl.col(s.DURATION).cast(pl.Float64),
                pl.col(s.UPLOAD_TS).cast(pl.Int64),
            ),
        ),
        "user_history": put_parquet(
            settings, bucket, paths.two_tower_key(version, "user_history.parquet"), history
        ),
    }
