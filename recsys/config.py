"""Settings: one typed model per environment, with every value of the seed's environment table.

`get_settings()` is cached. Environment variables override (`RECSYS_ENV`, `RECSYS_REGION`,
`RECSYS_AWS_ENDPOINT`, `RECSYS_REDIS_URL`, `RECSYS_HOME`, and `RECSYS_<FIELD>` for every field of
`EnvironmentProfile`, e.g. `RECSYS_LAMBDA_MEMORY_MB=2048`). Secrets come from Secrets Manager
(`{stack}/redis-credentials`, `{stack}/api-keys`, `{stack}/config`) through a TTL cache.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys.catalog import ResourceNames, resource_names, stack_name
from recsys.errors import MissingSecretError
from recsys.errors import ValidationError as RecsysValidationError

Env = Literal["local", "dev", "staging", "prod"]
ENVIRONMENTS: tuple[str, ...] = ("local", "dev", "staging", "prod")
AWS_ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
DEFAULT_REGION = "us-east-1"
DEFAULT_LOCAL_ENDPOINT = "http://localhost:4566"
DEFAULT_LOCAL_REDIS_PORT = 6379
ENV_PREFIX = "RECSYS_"


class EnvironmentProfile(BaseModel):
    """The per-environment values of the seed's table, plus stream shards and the training schedule."""

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


# The seed's environment table (dev / staging / prod). `local` mirrors dev with the embedded Redis.
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
        scheme = "rediss" if self.tls else "redis"
        auth = ":***@" if self.auth_token else ""
        return f"{scheme}://{auth}{self.host}:{self.port}/{self.db}"

    @classmethod
    def from_url(cls, url: str) -> RedisSettings:
        parsed = urlparse(url)
        if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
            raise RecsysValidationError(
                f"invalid Redis URL {url!r}", hint="use redis://HOST:PORT/DB or rediss://:TOKEN@HOST:PORT/DB"
            )
        db = int(parsed.path.lstrip("/") or 0)
        return cls(
            host=parsed.hostname,
            port=parsed.port or 6379,
            auth_token=parsed.password,
            tls=parsed.scheme == "rediss",
            db=db,
        )


class Settings(BaseModel):
    """Everything a process of recsys needs to know about its environment."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    env: Env
    region: str = DEFAULT_REGION
    profile: EnvironmentProfile
    aws_endpoint_url: str | None = Field(default=None, description="Local AWS endpoint (local env only)")
    redis_url_override: str | None = Field(default=None, repr=False)
    home: Path = Field(description="State directory of the local stack (.recsys)")
    local_redis_port: int = Field(default=DEFAULT_LOCAL_REDIS_PORT, ge=1, le=65535)
    secrets_ttl_s: float = 300.0

    @property
    def stack_name(self) -> str:
        return stack_name(self.env)

    @property
    def names(self) -> ResourceNames:
        """Resource names: the catalogue's locally; on AWS the deployed ones (bucket names carry the
        account id: from `RECSYS_BUCKET_SUFFIX` inside a Lambda, else from the stack's outputs)."""
        if self.is_local:
            return resource_names(self.env)
        from recsys.infra.outputs import deployed_names

        return deployed_names(self)

    @property
    def is_local(self) -> bool:
        return self.env == "local"

    @property
    def redis(self) -> RedisSettings | None:
        """Redis connection settings, or None where the environment has no Redis."""
        if self.redis_url_override:
            return RedisSettings.from_url(self.redis_url_override)
        if not self.profile.redis_enabled:
            return None
        creds = self.secrets().get_json(self.names.secret("redis_credentials"))
        missing = [k for k in ("host", "port") if k not in creds]
        if missing:
            raise MissingSecretError(
                f"secret {self.names.secret('redis_credentials')!r} lacks {', '.join(missing)}",
                hint="store host, port and auth_token in it (Terraform does this on deploy)",
            )
        return RedisSettings(
            host=str(creds["host"]),
            port=int(creds["port"]),
            auth_token=creds.get("auth_token") or None,
            tls=bool(creds.get("tls", self.env != "local")),
        )

    def secrets(self):  # -> SecretStore; imported lazily to keep `import recsys.config` light
        from recsys.secrets import secret_store

        return secret_store(self)

    def get_secret(self, key: str) -> str:
        """One key of `{stack}/api-keys`, e.g. `get_secret("external_api_key")`."""
        name = self.names.secret("api_keys")
        data = self.secrets().get_json(name)
        if key not in data:
            raise MissingSecretError(
                f"key {key!r} is not in secret {name!r}",
                hint=f"aws secretsmanager put-secret-value --secret-id {name} --secret-string '{{\"{key}\": ...}}'",
            )
        return str(data[key])

    def feature_flags(self) -> dict[str, Any]:
        """Feature flags and overrides from `{stack}/config` (an empty dict when it holds none)."""
        return dict(self.secrets().get_json(self.names.secret("config")))


def _profile_overrides(environ: dict[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for field in EnvironmentProfile.model_fields:
        value = environ.get(ENV_PREFIX + field.upper())
        if value is not None:
            overrides[field] = None if value.lower() in ("", "none", "null") else value
    return overrides


def load_settings(env: str | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Build settings for `env` (default `RECSYS_ENV`, else `local`), applying environment overrides."""
    environ = dict(os.environ if environ is None else environ)
    env = env or environ.get(ENV_PREFIX + "ENV") or "local"
    if env not in PROFILES:
        raise RecsysValidationError(
            f"unknown environment {env!r}", hint=f"use one of: {', '.join(ENVIRONMENTS)}"
        )
    base = PROFILES[env]
    try:
        profile = (
            base.model_copy(update={})
            if not (o := _profile_overrides(environ))
            else (EnvironmentProfile.model_validate({**base.model_dump(), **o}))
        )
    except ValidationError as exc:
        bad = ", ".join(ENV_PREFIX + str(e["loc"][0]).upper() for e in exc.errors())
        raise RecsysValidationError(
            f"invalid environment override: {bad}", hint=str(exc.errors()[0]["msg"])
        ) from None
    endpoint = None
    if env == "local":
        endpoint = (
            environ.get(ENV_PREFIX + "AWS_ENDPOINT")
            or environ.get("AWS_ENDPOINT_URL")
            or (
                f"http://{environ['LOCALSTACK_HOST']}"
                if environ.get("LOCALSTACK_HOST")
                else DEFAULT_LOCAL_ENDPOINT
            )
        )
    region = (
        environ.get(ENV_PREFIX + "REGION")
        or environ.get("AWS_REGION")
        or environ.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION
    )
    home = Path(environ.get(ENV_PREFIX + "HOME") or Path.cwd() / ".recsys")
    return Settings(
        env=env,
        region=region,
        profile=profile,
        aws_endpoint_url=endpoint,
        redis_url_override=environ.get(ENV_PREFIX + "REDIS_URL") or None,
        home=home,
        secrets_ttl_s=float(environ.get(ENV_PREFIX + "SECRETS_TTL_S", 300)),
        local_redis_port=int(environ.get(ENV_PREFIX + "REDIS_PORT", DEFAULT_LOCAL_REDIS_PORT)),
    )


@cache
def get_settings(env: str | None = None) -> Settings:
    """Cached settings for `env` (or `RECSYS_ENV`). Call `get_settings.cache_clear()` after changing env vars."""
    return load_settings(env)
