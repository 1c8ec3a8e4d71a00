"""Secrets Manager access with a TTL cache; a missing secret is an error that names it."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from recsys.errors import MissingSecretError, UnavailableError

if TYPE_CHECKING:
    from recsys.config import Settings


class SecretStore:
    """Reads JSON secrets and keeps each for `ttl_s` seconds, so a Lambda calls Secrets Manager rarely."""

    def __init__(self, client: Any, ttl_s: float = 300.0, clock=time.monotonic) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get_json(self, name: str) -> dict[str, Any]:
        """The secret `name` parsed as a JSON object (cached for the TTL)."""
        now = self._clock()
        with self._lock:
            hit = self._cache.get(name)
            if hit and now - hit[0] < self._ttl_s:
                return hit[1]
        value = self._fetch(name)
        with self._lock:
            self._cache[name] = (now, value)
        return value

    def invalidate(self, name: str | None = None) -> None:
        with self._lock:
            if name is None:
                self._cache.clear()
            else:
                self._cache.pop(name, None)

    def _fetch(self, name: str) -> dict[str, Any]:
        try:
            response = self._client.get_secret_value(SecretId=name)
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
    from recsys.aws import client

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
