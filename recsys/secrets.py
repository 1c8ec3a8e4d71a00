"""Secrets Manager access with a TTL cache; a missing secret is an error that names it."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from recsys.aws import client
from recsys.config import RedisSettings
from recsys.errors import MissingSecretError, UnavailableError

if TYPE_CHECKING:
    from recsys.config import Settings


RETRY_AFTER_FAILURE_S = 5.0  # a secret that could not be read is not asked for again sooner


class SecretStore:
    """Reads JSON secrets and keeps each for `ttl_s` seconds, so a Lambda calls Secrets Manager rarely."""

    def __init__(
        self, client: Any, ttl_s: float = 300.0, clock=time.monotonic, retry_s: float = RETRY_AFTER_FAILURE_S
    ) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._retry_s = min(retry_s, ttl_s)
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._failed: dict[str, tuple[float, Exception]] = {}  # name -> (retry from, the failure)
        self._lock = threading.Lock()

    def get_json(self, name: str) -> dict[str, Any]:
        """The secret `name` parsed as a JSON object (cached for the TTL).

        A failed read is not tried again for `retry_s` (a request path that reads a secret does not wait on
        an unreachable Secrets Manager each time): meanwhile the last value read answers, else the failure.
        """
        now = self._clock()
        with self._lock:
            hit = self._cache.get(name)
            if hit and now - hit[0] < self._ttl_s:
                return hit[1]
            failed = self._failed.get(name)
        if failed and now < failed[0]:
            if hit and not isinstance(failed[1], MissingSecretError):
                return hit[1]
            raise failed[1]
        try:
            value = self._fetch(name)
        except Exception as exc:  # Secrets Manager unreachable: the last value read, else a clean error
            error = (
                exc
                if isinstance(exc, (MissingSecretError, UnavailableError))
                else UnavailableError(
                    f"cannot read secret {name!r}: {type(exc).__name__}", hint="check the endpoint and IAM"
                )
            )
            with self._lock:
                self._failed[name] = (now + self._retry_s, error)
            if hit and not isinstance(error, MissingSecretError):
                return hit[1]
            raise error from None
        with self._lock:
            self._cache[name] = (now, value)
            self._failed.pop(name, None)
        return value

    def invalidate(self, name: str | None = None) -> None:
        with self._lock:
            if name is None:
                self._cache.clear()
                self._failed.clear()
            else:
                self._cache.pop(name, None)
                self._failed.pop(name, None)

    def _fetch(self, name: str) -> dict[str, Any]:
        try:
            # The current version, named: the default is the same on AWS, but moto does not move its default
            # when a rotation moves AWSCURRENT (update_secret_version_stage).
            response = self._client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ResourceNotFoundException", "DecryptionFailure", "InvalidRequestException"):
                raise MissingSecretError(
                    f"secret {name!r} not found ({code})",
                    hint="create it (recsys local up does locally; terraform does on AWS)",
                ) from None
            raise UnavailableError(
                f"cannot read secret {name!r}: {code}", hint="check credentials and IAM"
            ) from None
        text = response.get("SecretString") or "{}"
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise MissingSecretError(
                f"secret {name!r} is not a JSON object", hint="store a JSON object"
            ) from None
        if not isinstance(data, dict):
            raise MissingSecretError(f"secret {name!r} is not a JSON object", hint="store a JSON object")
        return data


_stores: dict[tuple[str, str | None, str], SecretStore] = {}
_stores_lock = threading.Lock()


def secret_store(settings: Settings) -> SecretStore:
    """The process-wide secret store for these settings' environment and endpoint."""
    key = (settings.env, settings.aws_endpoint_url, settings.region)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = SecretStore(client("secretsmanager", settings), ttl_s=settings.secrets_ttl_s)
            _stores[key] = store
        return store


def reset_secret_stores() -> None:
    """Forget every cached secret (tests, and after `recsys local up` re-provisions)."""
    with _stores_lock:
        _stores.clear()


def redis_settings(settings: Settings) -> RedisSettings | None:
    """Where Redis is: `RECSYS_REDIS_URL`, else the `{stack}/redis-credentials` secret; None without Redis."""
    if settings.redis_url_override:
        return RedisSettings.from_url(settings.redis_url_override)
    if not settings.profile.redis_enabled:
        return None
    name = settings.names.secret("redis_credentials")
    creds = secret_store(settings).get_json(name)
    missing = [k for k in ("host", "port") if k not in creds]
    if missing:
        raise MissingSecretError(
            f"secret {name!r} lacks {', '.join(missing)}",
            hint="store host, port and auth_token in it (Terraform does this on deploy)",
        )
    return RedisSettings(
        host=str(creds["host"]),
        port=int(creds["port"]),
        auth_token=creds.get("auth_token") or None,
        tls=bool(creds.get("tls", not settings.is_local)),
    )


def api_key(settings: Settings, key: str) -> str:
    """One key of `{stack}/api-keys`, e.g. `api_key(settings, "external_api_key")`."""
    name = settings.names.secret("api_keys")
    data = secret_store(settings).get_json(name)
    if key not in data:
        raise MissingSecretError(
            f"key {key!r} is not in secret {name!r}",
            hint=f"aws secretsmanager put-secret-value --secret-id {name} --secret-string '{{\"{key}\": ...}}'",
        )
    return str(data[key])


def feature_flags(settings: Settings) -> dict[str, Any]:
    """Feature flags and overrides from `{stack}/config` (an empty dict when it holds none)."""
    return dict(secret_store(settings).get_json(settings.names.secret("config")))
