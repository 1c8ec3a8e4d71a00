"""Stage 1: load the source (synthetic, an imported dataset, or collected events), preprocess, write the artifacts.

Output: {"job_id", "version", "source", "config", "artifacts": {name: key in the artifacts bucket},
"stats", "reference_ts"}. Everything is written under preprocessing/{job_id}/ (with `source.json`, the
resolved source, which the events source reads back as the production version's base data); a failure
before the end leaves no stage output, so nothing downstream reads a half-written job.
"""

from __future__ import annotations

from typing import Any

from recsys import artifacts as paths
from recsys.config import Settings
from recsys.data.datasets import load_dataset
from recsys.data.events_source import SOURCE_FILE, add_impression_negatives, load_events_source
from recsys.data.preprocessing import preprocess
from recsys.data.synthetic import Dataset, SyntheticSpec, generate
from recsys.errors import ValidationError
from recsys.ids import check_id, new_job_id, new_version
from recsys.pipeline_config import resolve_config
from recsys.storage import put_json, put_parquet

DEFAULT_SOURCE: dict[str, Any] = {
    "kind": "synthetic",
    "n_users": 1000,
    "n_videos": 500,
    "n_interactions": 10_000,
    "seed": 42,
}
SYNTHETIC_KEYS = (
    "n_users",
    "n_videos",
    "n_interactions",
    "seed",
    "zipf_exponent",
    "category_concentration",
    "taste_strength",
    "exploration",
)


def load_source(source: dict[str, Any], settings: Settings) -> Dataset:
    """The data a run trains on: a synthetic data set or an imported one."""
    if not isinstance(source, dict):
        raise ValidationError(f"source must be an object, got {type(source).__name__}")
    kind = source.get("kind")
    if kind == "synthetic":
        unknown = sorted(set(source) - {"kind", *SYNTHETIC_KEYS})
        if unknown:
            raise ValidationError(
                f"unknown synthetic source keys: {', '.join(unknown)}",
                hint=f"use {', '.join(SYNTHETIC_KEYS)}",
            )
        try:
            spec = SyntheticSpec(**{k: source[k] for k in SYNTHETIC_KEYS if k in source})
        except TypeError as exc:
            raise ValidationError(f"invalid synthetic source: {exc}") from None
        return generate(spec)
    if kind == "dataset":
        return load_dataset(settings, check_id(source.get("name"), "dataset name"))
    raise ValidationError(f"unknown source kind {kind!r}", hint='use "synthetic", "dataset" or "events"')


def run(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Preprocess the source of `event` and write the artifacts of job `job_id`."""
    if not isinstance(event, dict):
        raise ValidationError(f"stage input must be an object, got {type(event).__name__}")
    job_id = check_id(event.get("job_id") or new_job_id(), "job_id")
    version = check_id(event.get("version") or new_version(), "version")
    source = event.get("source") or dict(DEFAULT_SOURCE)
    config = resolve_config(event.get("config"))
    negatives = None
    if isinstance(source, dict) and source.get("kind") == "events":
        data, resolved, negatives = load_events_source(
            source, settings, lambda base: load_source(base, settings)
        )
    else:
        data, resolved = load_source(source, settings), source
    pre = preprocess(data.interactions, data.videos, config)
    if negatives is not None and not negatives.is_empty():
        before = pre.ranker_train.height
        pre.ranker_train = add_impression_negatives(
            pre.ranker_train, negatives, pre.train, pre.test, pre.catalog
        )
        pre.stats["ranker_impression_negatives"] = pre.ranker_train.height - before
    if resolved.get("kind") == "events":
        pre.stats["events"] = resolved["events"]

    bucket = settings.names.bucket("artifacts")
    tables = {
        "train_interactions.parquet": pre.train,
        "test_interactions.parquet": pre.test,
        "seen.parquet": pre.seen,
        "video_catalog.parquet": pre.catalog,
        "user_features.parquet": pre.user_features,
        "video_features.parquet": pre.video_features,
        "ranker_train.parquet": pre.ranker_train,
        "ranker_test.parquet": pre.ranker_test,
        "window_fit.parquet": pre.window_fit,
        "window_label.parquet": pre.window_label,
        "window_user_features.parquet": pre.window_user_features,
    }
    artifacts: dict[str, str] = {}
    for name, df in tables.items():
        artifacts[name.removesuffix(".parquet")] = put_parquet(
            settings, bucket, paths.preprocessing_key(job_id, name), df
        )
    artifacts["vocabularies"] = put_json(
        settings, bucket, paths.preprocessing_key(job_id, "vocabularies.json"), pre.vocabularies
    )
    artifacts["stats"] = put_json(settings, bucket, paths.preprocessing_key(job_id, "stats.json"), pre.stats)
    artifacts["source"] = put_json(settings, bucket, paths.preprocessing_key(job_id, SOURCE_FILE), resolved)
    return {
        "job_id": job_id,
        "version": version,
        "source": source,
        "config": config.model_dump(mode="json"),
        "artifacts": artifacts,
        "artifacts_bucket": bucket,
        "reference_ts": pre.reference_ts,
        "stats": pre.stats,
    }
