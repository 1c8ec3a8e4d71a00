"""Deployed stack outputs (`terraform output -json`), cached per environment, and real resource names.

On AWS, bucket names carry the account id, so commands for dev/staging/prod learn names from the outputs
(`ResourceNames` output); `local` uses the catalogue names directly.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from recsys.catalog import ResourceNames, resource_names
from recsys.config import Settings, get_settings
from recsys.errors import NotFoundError

BUCKET_SUFFIX_ENV = "RECSYS_BUCKET_SUFFIX"
NAMES_OUTPUT = "ResourceNames"
# Every output of the seed's table (terraform/stack/outputs.tf has them under these names).
SEED_OUTPUTS: tuple[str, ...] = (
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


def save_outputs(env: str, values: dict[str, Any], settings: Settings | None = None) -> Path:
    """Write the outputs cache of `env` (after a deploy or an explicit refresh)."""
    settings = settings or get_settings()
    path = cache_path(settings, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(values, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path


def outputs(env: str, refresh: bool = False, settings: Settings | None = None) -> dict[str, Any]:
    """The outputs of `env` as `{name: value}`: from the cache, or read through terraform (then cached)."""
    settings = settings or get_settings()
    path = cache_path(settings, env)
    if not refresh and path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    from recsys.infra.terraform import TerraformRunner, check_credentials

    runner = TerraformRunner(env)
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


@cache
def names_with_bucket_suffix(env: str, suffix: str) -> ResourceNames:
    """Catalogue names with `suffix` appended to every bucket (what Terraform does with the account id)."""
    base = resource_names(env)
    return ResourceNames(
        env=env,
        stack=base.stack,
        buckets={k: v + suffix for k, v in base.buckets.items()},
        tables=dict(base.tables),
        streams=dict(base.streams),
        firehose=dict(base.firehose),
        secrets=dict(base.secrets),
        glue_database=base.glue_database,
        glue_tables=dict(base.glue_tables),
        functions=dict(base.functions),
        state_machines=dict(base.state_machines),
    )


def deployed_names(settings: Settings | None = None, environ: dict[str, str] | None = None) -> ResourceNames:
    """The real resource names of the settings' environment.

    - local: the catalogue names (the embedded stack is provisioned with them);
    - inside a deployed Lambda: the catalogue names plus `$RECSYS_BUCKET_SUFFIX` (Terraform sets it);
    - elsewhere (CLI against dev/staging/prod): the stack's `ResourceNames` output.
    """
    settings = settings or get_settings()
    environ = os.environ if environ is None else environ
    if settings.is_local:
        return resource_names(settings.env)
    suffix = environ.get(BUCKET_SUFFIX_ENV)
    if suffix:
        return names_with_bucket_suffix(settings.env, suffix)
    return names_from_outputs(settings.env, outputs(settings.env, settings=settings))
