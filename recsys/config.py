"""Settings: one typed value per process, built once by its entry point and passed to every component.

`load_settings()` is the one place that reads the process environment (through pydantic-settings) and the
optional project settings file `recsys.toml` (or the file `RECSYS_CONFIG_FILE` names); `RECSYS_*` variables
win over the file, and the file over the AWS SDK's own variables. Recognised variables: `RECSYS_ENV`, `RECSYS_REGION` (else `AWS_REGION` /
`AWS_DEFAULT_REGION`), `RECSYS_AWS_ENDPOINT` (else `AWS_ENDPOINT_URL` / `LOCALSTACK_HOST`), `RECSYS_REDIS_URL`,
`RECSYS_REDIS_PORT`, `RECSYS_HOME`, `RECSYS_SECRETS_TTL_S`, `RECSYS_BUCKET_SUFFIX`, `RECSYS_<FIELD>` for every
field of `EnvironmentProfile` (e.g. `RECSYS_LAMBDA_MEMORY_MB=2048`), `RECSYS_SERVING_<FIELD>` for
`ServingConfig`, `RECSYS_GUARD_<FIELD>` for `GuardConfig` (automatic rollback), `RECSYS_SAGEMAKER_*` / `RECSYS_TRAINING_IMAGE_URI` / `RECSYS_AWS_ACCOUNT_ID` for training
jobs, and `RECSYS_TF_STATE_BUCKET`, `RECSYS_TERRAFORM_DIR`, `RECSYS_PACKAGE_DIR` for the infrastructure tools.

Nothing here talks to AWS: resource names on AWS come from the stack outputs and are resolved once by the
entry points that need them (`recsys.infra.outputs.with_deployed_names`); secrets are read through
`recsys.secrets`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from recsys.catalog import ResourceNames, names_with_bucket_suffix, resource_names, stack_name
from recsys.errors import NotFoundError
from recsys.errors import ValidationError as RecsysValidationError

Env = Literal["local", "dev", "staging", "prod"]
ENVIRONMENTS: tuple[str, ...] = ("local", "dev", "staging", "prod")
AWS_ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
DEFAULT_REGION = "us-east-1"
DEFAULT_LOCAL_ENDPOINT = "http://localhost:4566"
DEFAULT_LOCAL_REDIS_PORT = 6379
ENV_PREFIX = "RECSYS_"
SETTINGS_FILE = "recsys.toml"


class EnvironmentProfile(BaseModel):
    """The per-environment values of the environment table, plus stream shards and the training schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lambda_memory_mb: int = Field(ge=128, le=10240, description="Lambda memory (MB)")
    lambda_timeout_s: int = Field(ge=1, le=900, description="Lambda timeout (seconds)")
    api_rate_limit_rps: int = Field(ge=1, description="API Gateway stage throttling rate (requests/s)")
    api_burst_limit: int = Field(ge=1, description="API Gateway stage burst limit")
    dynamodb_billing_mode: Literal["PAY_PER_REQUEST", "PROVISIONED"]
    vpc_enabled: bool
    redis_enabled: bool
    redis_node_type: str | None = Field(description="ElastiCache node type, None where Redis is off")
    alarms_enabled: bool
    removal_policy: Literal["destroy", "retain"]
    kinesis_shards: int = Field(ge=1)
    training_schedule: str | None = Field(description="EventBridge schedule expression, None for manual only")
    training_backend: Literal["local", "lambda", "sagemaker"]
    log_retention_days: int = Field(ge=1)


# The environment table (dev / staging / prod). `local` mirrors dev with the embedded Redis.
PROFILES: dict[str, EnvironmentProfile] = {
    "local": EnvironmentProfile(
        lambda_memory_mb=1024,
        lambda_timeout_s=30,
        api_rate_limit_rps=50,
        api_burst_limit=100,
        dynamodb_billing_mode="PAY_PER_REQUEST",
        vpc_enabled=False,
        redis_enabled=True,
        redis_node_type=None,
        alarms_enabled=False,
        removal_policy="destroy",
        kinesis_shards=1,
        training_schedule=None,
        training_backend="local",
        log_retention_days=7,
    ),
    "dev": EnvironmentProfile(
        lambda_memory_mb=1024,
        lambda_timeout_s=30,
        api_rate_limit_rps=50,
        api_burst_limit=100,
        dynamodb_billing_mode="PAY_PER_REQUEST",
        vpc_enabled=False,
        redis_enabled=False,
        redis_node_type=None,
        alarms_enabled=False,
        removal_policy="destroy",
        kinesis_shards=1,
        training_schedule=None,
        training_backend="lambda",
        log_retention_days=7,
    ),
    "staging": EnvironmentProfile(
        lambda_memory_mb=1024,
        lambda_timeout_s=30,
        api_rate_limit_rps=200,
        api_burst_limit=400,
        dynamodb_billing_mode="PAY_PER_REQUEST",
        vpc_enabled=True,
        redis_enabled=True,
        redis_node_type="cache.t3.small",
        alarms_enabled=False,
        removal_policy="destroy",
        kinesis_shards=2,
        training_schedule=None,
        training_backend="sagemaker",
        log_retention_days=30,
    ),
    "prod": EnvironmentProfile(
        lambda_memory_mb=2048,
        lambda_timeout_s=30,
        api_rate_limit_rps=1000,
        api_burst_limit=2000,
        dynamodb_billing_mode="PROVISIONED",
        vpc_enabled=True,
        redis_enabled=True,
        redis_node_type="cache.r6g.large",
        alarms_enabled=True,
        removal_policy="retain",
        kinesis_shards=4,
        training_schedule="rate(7 days)",
        training_backend="sagemaker",
        log_retention_days=90,
    ),
}


class ServingConfig(BaseModel):
    """Serving knobs; each can be set with `RECSYS_SERVING_<NAME>` or under `[serving]` in recsys.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_category_share: float = Field(0.5, gt=0, le=1, description="Diversity cap: share of one category")
    activity_limit: int = Field(100, ge=1)
    activity_vector_events: int = Field(20, ge=0)
    activity_weight: float = Field(0.6, ge=0, le=1)
    poll_interval_s: float = Field(30.0, ge=0, description="Seconds between model-registry checks")
    ann_threshold: int = Field(50_000, ge=1, description="Catalogue size from which retrieval uses HNSW")
    cache_ttl_s: int = Field(300, ge=0)
    precomputed_ttl_s: int = Field(7 * 24 * 3600, ge=0)
    tracking: bool = True
    ranking: bool = Field(True, description="Re-rank candidates with the ranker (flag `ranking_enabled`)")
    diversity: bool = Field(True, description="Cap one category's share (flag `diversity_enabled`)")
    live_metrics: bool = Field(True, description="Count responses per version for the release guard")
    blas_threads: int = Field(
        1, ge=0, description="BLAS threads per serving process (0: the library's choice)"
    )


class SageMakerOptions(BaseModel):
    """What the environment says about training jobs (None: derived from the stack's naming)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_uri: str | None = None
    role_arn: str | None = None
    account_id: str | None = None
    instance_type: str = "ml.m5.xlarge"
    volume_gb: int = Field(30, ge=1)
    max_runtime_s: int = Field(4 * 3600, ge=60)
    poll_s: float = Field(30.0, gt=0)


class GuardConfig(BaseModel):
    """When a new production version is rolled back automatically (`RECSYS_GUARD_<FIELD>`, `[guard]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    period_s: int = Field(3600, ge=60, description="How long after a promotion live signals can roll it back")
    min_requests: int = Field(50, ge=1, description="Requests needed before the signals count")
    max_error_rate: float = Field(0.02, ge=0, le=1, description="Share of 5xx answers")
    max_p99_ms: float = Field(1000.0, gt=0, description="99th percentile latency (ms)")
    max_empty_share: float = Field(0.2, ge=0, le=1, description="Share of empty recommendation lists")
    min_ctr_ratio: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Roll back when click-through is confidently below this share of the previous version's",
    )
    min_impressions: int = Field(
        500, ge=1, description="Impressions each side needs before click-through counts (guard, canary check)"
    )


class RedisSettings(BaseModel):
    """Where the Redis cache is, from `{stack}/redis-credentials` or `RECSYS_REDIS_URL`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(ge=1, le=65535)
    auth_token: str | None = Field(default=None, repr=False)
    tls: bool = False
    db: int = 0

    @property
    def url(self) -> str:
        """The URL with any token masked (safe to print)."""
        scheme = "rediss" if self.tls else "redis"
        auth = ":***@" if self.auth_token else ""
        return f"{scheme}://{auth}{self.host}:{self.port}/{self.db}"

    @classmethod
    def from_url(cls, url: str) -> RedisSettings:
        """Parse `redis://[:TOKEN@]HOST:PORT/DB`; a bad URL is a ValidationError that never echoes a token."""
        hint = "use redis://HOST:PORT/DB or rediss://:TOKEN@HOST:PORT/DB"
        try:
            parsed = urlparse(url)
            port = parsed.port
            db = int(parsed.path.lstrip("/") or 0)
        except ValueError:
            raise RecsysValidationError(
                "invalid Redis URL (bad port or database number)", hint=hint
            ) from None
        if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
            raise RecsysValidationError(
                "invalid Redis URL (needs redis:// or rediss:// and a host)", hint=hint
            )
        return cls(
            host=parsed.hostname,
            port=port or 6379,
            auth_token=parsed.password,
            tls=parsed.scheme == "rediss",
            db=db,
        )


class Settings(BaseModel):
    """Everything a process of recsys needs to know about its environment: a plain, frozen value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: Env
    region: str = DEFAULT_REGION
    profile: EnvironmentProfile
    aws_endpoint_url: str | None = Field(default=None, description="Local AWS endpoint (local env only)")
    redis_url_override: str | None = Field(default=None, repr=False)
    home: Path = Field(description="State directory of the local stack (.recsys)")
    local_redis_port: int = Field(default=DEFAULT_LOCAL_REDIS_PORT, ge=1, le=65535)
    secrets_ttl_s: float = Field(300.0, ge=0)
    serving: ServingConfig = ServingConfig()
    sagemaker: SageMakerOptions = SageMakerOptions()
    guard: GuardConfig = GuardConfig()
    bucket_suffix: str | None = Field(
        None, description="What Terraform appends to bucket names (the account id)"
    )
    tf_state_bucket: str | None = None
    terraform_dir: Path | None = None
    package_dir: Path | None = None
    resource_names: ResourceNames | None = Field(
        default=None, description="The environment's real resource names; None until resolved (AWS envs)"
    )

    @model_validator(mode="before")
    @classmethod
    def _local_names(cls, data: Any) -> Any:
        # The local stack is provisioned with the catalogue's names: known without asking anything.
        if isinstance(data, dict) and data.get("env") == "local" and data.get("resource_names") is None:
            data = {**data, "resource_names": resource_names("local")}
        return data

    @property
    def stack_name(self) -> str:
        return stack_name(self.env)

    @property
    def names(self) -> ResourceNames:
        """The resource names: the catalogue's locally; on AWS the deployed ones, resolved by the entry point."""
        if self.resource_names is None:
            raise NotFoundError(
                f"the resource names of {self.env} are not known yet",
                hint=f"deploy the stack first (`recsys deploy --env {self.env}`), then `recsys outputs --env {self.env} --refresh`",
            )
        return self.resource_names

    @property
    def is_local(self) -> bool:
        return self.env == "local"

    def with_names(self, names: ResourceNames) -> Settings:
        """These settings with the environment's resolved resource names."""
        return self.model_copy(update={"resource_names": names})


def _optional(model: type[BaseModel]) -> dict[str, Any]:
    return {name: (field.annotation | None, None) for name, field in model.model_fields.items()}


# Every RECSYS_<FIELD> of the environment profile, as optional overrides.
_ProfileOverrides = create_model("ProfileOverrides", **_optional(EnvironmentProfile))  # type: ignore[call-overload]


class SettingsInput(BaseSettings, _ProfileOverrides):  # type: ignore[misc,valid-type]
    """What the process environment and the settings file say; `load_settings` turns it into `Settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
        case_sensitive=False,
    )

    env: str | None = None
    region: str | None = None
    aws_endpoint: str | None = None
    # The AWS SDK's own variables: used when neither RECSYS_* nor the settings file says.
    aws_region: str | None = Field(None, validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    aws_endpoint_url: str | None = Field(None, validation_alias=AliasChoices("AWS_ENDPOINT_URL"))
    localstack_host: str | None = Field(None, validation_alias=AliasChoices("LOCALSTACK_HOST"))
    redis_url: str | None = None
    redis_port: int | None = None
    home: Path | None = None
    secrets_ttl_s: float | None = None
    bucket_suffix: str | None = None
    training_image_uri: str | None = None
    aws_account_id: str | None = None
    serving: dict[str, Any] = Field(default_factory=dict)
    sagemaker: dict[str, Any] = Field(default_factory=dict)
    guard: dict[str, Any] = Field(default_factory=dict)
    tf_state_bucket: str | None = None
    terraform_dir: Path | None = None
    package_dir: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The settings file arrives as init values: the environment wins over it.
        return (env_settings, init_settings)


def read_settings_file(path: Path) -> dict[str, Any]:
    """The settings file as a dict (`{}` when it does not exist); a bad file is a clear error."""
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RecsysValidationError(
            f"cannot read settings file {path.name}: {exc}", hint="fix its TOML"
        ) from None


def _invalid(exc: ValidationError, where: str, section: str = "") -> RecsysValidationError:
    """Name each bad setting as its environment variable (the file key is the same name, lower case)."""
    first = exc.errors()[0]
    names = []
    for e in exc.errors():
        loc = [section] * bool(section) + [str(p) for p in e["loc"] if p != "profile"]
        names.append(ENV_PREFIX + "_".join(loc).upper())
    return RecsysValidationError(f"invalid setting {', '.join(names)} ({where})", hint=str(first["msg"]))


def load_settings(env: str | None = None, settings_file: Path | None = None) -> Settings:
    """Build the settings of `env` (default `RECSYS_ENV`, then the settings file, then `local`).

    Reads the process environment and `settings_file` (default `$RECSYS_CONFIG_FILE`, else ./recsys.toml).
    Call it once per entry point and pass the value on.
    """
    path = settings_file or Path(os.environ.get(ENV_PREFIX + "CONFIG_FILE") or SETTINGS_FILE)
    file_values = read_settings_file(path)
    where = "environment variables or " + path.name
    try:
        raw = SettingsInput(**file_values)
    except ValidationError as exc:
        raise _invalid(exc, where) from None
    env = env or raw.env or "local"
    if env not in PROFILES:
        raise RecsysValidationError(
            f"unknown environment {env!r}", hint=f"use one of: {', '.join(ENVIRONMENTS)}"
        )
    overrides = {f: getattr(raw, f) for f in EnvironmentProfile.model_fields if f in raw.model_fields_set}
    # an explicit empty / "none" value unsets an optional profile value (e.g. RECSYS_TRAINING_SCHEDULE=none)
    overrides = {
        k: (None if isinstance(v, str) and v.lower() in ("", "none", "null") else v)
        for k, v in overrides.items()
    }
    endpoint = None
    if env == "local":
        endpoint = (
            raw.aws_endpoint
            or raw.aws_endpoint_url
            or (f"http://{raw.localstack_host}" if raw.localstack_host else DEFAULT_LOCAL_ENDPOINT)
        )
    sagemaker = dict(raw.sagemaker)
    if raw.training_image_uri:
        sagemaker["image_uri"] = raw.training_image_uri
    if raw.aws_account_id:
        sagemaker["account_id"] = raw.aws_account_id
    names = names_with_bucket_suffix(env, raw.bucket_suffix) if raw.bucket_suffix and env != "local" else None
    sections: dict[str, BaseModel] = {}
    for section, model, values in (
        ("serving", ServingConfig, raw.serving),
        ("sagemaker", SageMakerOptions, sagemaker),
        ("guard", GuardConfig, raw.guard),
    ):
        try:
            sections[section] = model.model_validate(values)
        except ValidationError as exc:
            raise _invalid(exc, where, section) from None
    try:
        return Settings(
            env=env,
            region=raw.region or raw.aws_region or DEFAULT_REGION,
            profile=PROFILES[env].model_validate({**PROFILES[env].model_dump(), **overrides}),
            aws_endpoint_url=endpoint,
            redis_url_override=raw.redis_url or None,
            home=raw.home or Path.cwd() / ".recsys",
            secrets_ttl_s=300.0 if raw.secrets_ttl_s is None else raw.secrets_ttl_s,
            local_redis_port=raw.redis_port or DEFAULT_LOCAL_REDIS_PORT,
            serving=sections["serving"],
            sagemaker=sections["sagemaker"],
            guard=sections["guard"],
            bucket_suffix=raw.bucket_suffix,
            tf_state_bucket=raw.tf_state_bucket,
            terraform_dir=raw.terraform_dir,
            package_dir=raw.package_dir,
            resource_names=names,
        )
    except ValidationError as exc:
        raise _invalid(exc, where) from None
