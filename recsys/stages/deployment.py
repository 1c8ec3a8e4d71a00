"""Deployment, the last pipeline stage (reached only when the evaluation gates pass).

`run(event)` checks that the version's artifacts are complete and readable, registers the version as a
candidate, writes its serving bundle, and promotes it with `recsys.release.promote`, which publishes first
(the video features with each video's embedding and the user features into the online feature store, then
`models/two_tower/{version}/video_embeddings.npz` to `vector_store/video_embeddings.npz`) and only then moves
the registry's production pointer (one transaction). A failure before that leaves production unchanged, and
the production version's data is published again so the online store matches it.

Input: `{"preprocessing", "two_tower", "ranker", "evaluation"}` (stage outputs). Output:
`{"version", "status", "previous_version", "vector_store_key", "videos_written", "users_written", ...}`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from recsys import artifacts, release
from recsys.errors import NotFoundError, ValidationError
from recsys.registry import ModelRegistry, validate_version
from recsys.serving.bundle import write_bundle
from recsys.storage import exists

if TYPE_CHECKING:
    from recsys.config import Settings

log = logging.getLogger(__name__)

REQUIRED_TWO_TOWER = (
    "video_embeddings.npz", "user_embeddings.npz", "model_config.json", release.SERVING_CATALOG,
)  # fmt: skip
REQUIRED_RANKER = ("ranker_model.json", "ranker_features.json")


def _require(event: dict[str, Any], key: str) -> dict[str, Any]:
    value = event.get(key)
    if not isinstance(value, dict):
        raise ValidationError(
            f"deployment input lacks the {key!r} stage output", hint="run the whole pipeline"
        )
    return value


def run(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Register and promote the evaluated version (see the module docstring)."""
    preprocessing = _require(event, "preprocessing")
    two_tower = _require(event, "two_tower")
    ranker = _require(event, "ranker")
    evaluation = _require(event, "evaluation")
    version = validate_version(str(evaluation.get("version") or two_tower.get("version") or ""))
    for name, stage in (("two_tower", two_tower), ("ranker", ranker)):
        if stage.get("version") != version:
            raise ValidationError(
                f"{name} version {stage.get('version')!r} differs from the evaluated version {version!r}",
                hint="deploy the outputs of one pipeline run",
            )
    gates = evaluation.get("gates") or {}
    if gates.get("passed") is not True:
        failing = [c.get("name") for c in gates.get("checks", []) if not c.get("passed")]
        raise ValidationError(
            f"version {version!r} did not pass the evaluation gates ({', '.join(map(str, failing)) or 'no gates'})",
            hint="only versions that pass the gates are deployed",
        )
    check_artifacts(settings, version)
    job_id = str(preprocessing.get("job_id") or "")

    registry = ModelRegistry(settings)
    existing = registry.find(version)
    if existing is not None and existing.status == "production":
        return {
            "version": version,
            "status": "production",
            "previous_version": None,
            "already_deployed": True,
        }
    if existing is None:
        registry.register(version, evaluation.get("metrics") or {}, job_id)
    bundle_key = write_bundle(settings, version)
    promotion = release.promote(settings, version, registry=registry)
    return {
        "version": version,
        "status": promotion.version.status,
        "previous_version": promotion.previous_version,
        "promoted_at": promotion.version.promoted_at,
        "bundle_key": bundle_key,
        **promotion.published,
    }


def check_artifacts(settings: Settings, version: str) -> None:
    """Every artifact serving needs exists for `version`, or a NotFoundError listing the missing ones."""
    bucket = settings.names.bucket("models")
    keys = [artifacts.two_tower_key(version, n) for n in REQUIRED_TWO_TOWER]
    keys += [artifacts.ranker_key(version, n) for n in REQUIRED_RANKER]
    missing = [k for k in keys if not exists(settings, bucket, k)]
    if missing:
        raise NotFoundError(
            f"version {version!r} is incomplete: missing " + ", ".join(f"s3://{bucket}/{k}" for k in missing),
            hint="re-run the pipeline; nothing was deployed",
        )
    release.load_video_embeddings(settings, version)
