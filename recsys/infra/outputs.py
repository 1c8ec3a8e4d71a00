"""Deployed stack outputs (`terraform output -json`), cached per environment, and real resource names.

On AWS, bucket names carry the account id, so commands for dev/staging/prod learn names from the outputs
(`ResourceNames` output); `local` uses the catalogue names directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recsys.catalog import ResourceNames, resource_names
from recsys.config import Settings
from recsys.errors import NotFoundError

NAMES_OUTPUT = "ResourceNames"
# Every output the stack reports (terraform/stack/outputs.tf has them under these names).
STACK_OUTPUTS: tuple[str, ...] = (
    "ApiUrl",
    "LambdaFunctionName",
    "LambdaFunctionArn",
    "DataBucketName",
    "ModelBucketName",
    "ArtifactsBucketName",
    "UserFeaturesTableName",
    "VideoFeaturesTableName",
    "DashboardUrl",
    "RedisEndpoint",
    "MLPipelineStateMachineArn",
    "EventStreamName",
    "InferenceTableName",
    "FeatureStoreUserTableName",
    "FeatureStoreVideoTableName",
    "GlueDatabaseName",
    "RedisCredentialsSecretArn",
    "ApiKeysSecretArn",
    "ConfigSecretArn",
)


def cache_path(settings: Settings, env: str) -> Path:
    """Where the outputs of `env` are cached: `<settings.home>/outputs-<env>.json`."""
    return settings.home / f"outputs-{env}.json"


def save_outputs(env: str, values: dict[str, Any], settings: Settings) -> Path:
    """Write the outputs cache of `env` (after a deploy or an explicit refresh)."""
    path = cache_path(settings, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(values, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path


def outputs(env: str, settings: Settings, refresh: bool = False) -> dict[str, Any]:
    """The outputs of `env` as `{name: value}`: from the cache, or read through terraform (then cached)."""
    path = cache_path(settings, env)
    if not refresh and path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    from recsys.infra.terraform import TerraformRunner, check_credentials

    runner = TerraformRunner.for_settings(settings)
    check_credentials()
    if not runner.is_initialised():
        runner.init()
    values = runner.output()
    if not values:
        raise NotFoundError(
            f"the {env} stack has no outputs (not deployed yet?)",
            hint=f"run `recsys deploy --env {env}` first",
        )
    save_outputs(env, values, settings)
    return values


def names_from_outputs(env: str, values: dict[str, Any]) -> ResourceNames:
    """`ResourceNames` built from the `ResourceNames` output of a deployed stack."""
    raw = values.get(NAMES_OUTPUT)
    if not isinstance(raw, dict):
        raise NotFoundError(
            f"the outputs of {env} lack {NAMES_OUTPUT}",
            hint=f"run `recsys outputs --env {env} --refresh` after deploying this version of the stack",
        )
    base = resource_names(env)
    return ResourceNames(
        env=env,
        stack=base.stack,
        buckets=dict(raw.get("buckets") or {}),
        tables=dict(raw.get("tables") or {}),
        streams=dict(raw.get("streams") or {}),
        firehose=dict(raw.get("firehose") or {}),
        secrets=dict(raw.get("secrets") or {}),
        glue_database=str(raw.get("glue_database") or base.glue_database),
        glue_tables=dict(base.glue_tables),
        functions=dict(raw.get("functions") or {}),
        state_machines=dict(raw.get("state_machines") or {}),
    )


def with_deployed_names(settings: Settings) -> Settings:
    """`settings` with the real resource names of its environment, resolved once by an entry point.

    - local, or names already known (a deployed Lambda: the catalogue names plus `RECSYS_BUCKET_SUFFIX`): as is;
    - elsewhere (CLI against dev/staging/prod): from the stack's `ResourceNames` output (cached file, else
      `terraform output`).
    """
    if settings.resource_names is not None:
        return settings
    return settings.with_names(names_from_outputs(settings.env, outputs(settings.env, settings=settings)))
