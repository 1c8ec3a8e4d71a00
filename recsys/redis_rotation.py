"""Rotation of the Redis auth token kept in `{stack}/redis-credentials`: Secrets Manager's four steps.

Secrets Manager calls the rotation Lambda four times with the same `ClientRequestToken` (the new version):

1. `createSecret`: a new random token, stored as the `AWSPENDING` version (the other fields are copied);
2. `setSecret`: Redis accepts exactly two tokens from now on, the current one and the pending one
   (ElastiCache: `AuthTokenUpdateStrategy=ROTATE`; a plain Redis: the default user's ACL passwords);
3. `testSecret`: a connection with the pending token answers PING;
4. `finishSecret`: `AWSCURRENT` moves to the new version.

The old token stays valid until the next rotation, so a process that still holds it in its secrets cache
(`RECSYS_SECRETS_TTL_S`, 300 s by default) keeps working; the next `setSecret` retires it. Every step is
idempotent: Secrets Manager retries a step that failed, and a repeated call finds its work done.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

from botocore.exceptions import ClientError

from recsys.errors import ValidationError

log = logging.getLogger(__name__)

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
TOKEN_BYTES = 48  # ElastiCache auth tokens: 16-128 printable characters; token_urlsafe(48) gives 64
PENDING = "AWSPENDING"
CURRENT = "AWSCURRENT"


def new_token() -> str:
    """A random auth token ElastiCache accepts (letters, digits, '-' and '_')."""
    return secrets.token_urlsafe(TOKEN_BYTES)


class TokenBackend(Protocol):
    """Where the tokens are enforced: ElastiCache, or a Redis server's ACL."""

    def allow(self, credentials: dict[str, Any], current: str | None, pending: str) -> None:
        """From now on accept exactly `current` (if any) and `pending`."""

    def check(self, credentials: dict[str, Any], token: str) -> None:
        """Raise unless a connection with `token` answers PING."""


def _ping(credentials: dict[str, Any], token: str, timeout_s: float = 5.0) -> None:
    import redis

    conn = redis.Redis(
        host=str(credentials["host"]),
        port=int(credentials["port"]),
        password=token,
        ssl=bool(credentials.get("tls", False)),
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )
    try:
        if not conn.ping():
            raise RuntimeError("Redis did not answer PING")
    finally:
        conn.close()


class RedisAclTokens:
    """A plain Redis (the local stack, tests): the default user's passwords are the accepted tokens."""

    def allow(self, credentials: dict[str, Any], current: str | None, pending: str) -> None:
        import redis

        conn = redis.Redis(
            host=str(credentials["host"]),
            port=int(credentials["port"]),
            password=current,
            ssl=bool(credentials.get("tls", False)),
            socket_timeout=5,
        )
        try:
            passwords = [f">{p}" for p in (current, pending) if p]
            conn.execute_command("ACL", "SETUSER", "default", "on", "resetpass", *passwords)
        finally:
            conn.close()

    def check(self, credentials: dict[str, Any], token: str) -> None:
        _ping(credentials, token)


class ElastiCacheTokens:
    """An ElastiCache replication group: `ModifyReplicationGroup` with the ROTATE strategy."""

    def __init__(
        self, elasticache: Any, wait_s: float = 600.0, poll_s: float = 10.0, sleep=time.sleep
    ) -> None:
        self._ec = elasticache
        self._wait_s = wait_s
        self._poll_s = poll_s
        self._sleep = sleep

    def allow(self, credentials: dict[str, Any], current: str | None, pending: str) -> None:
        group = credentials.get("replication_group_id")
        if not group:
            raise ValidationError(
                "the Redis credentials lack replication_group_id", hint="Terraform stores it in the secret"
            )
        self._wait_available(group)
        self._ec.modify_replication_group(
            ReplicationGroupId=group,
            AuthToken=pending,
            AuthTokenUpdateStrategy="ROTATE",
            ApplyImmediately=True,
        )
        self._wait_available(group)

    def _wait_available(self, group: str) -> None:
        waited = 0.0
        while True:
            status = self._ec.describe_replication_groups(ReplicationGroupId=group)["ReplicationGroups"][0][
                "Status"
            ]
            if status == "available":
                return
            if waited >= self._wait_s:
                raise TimeoutError(f"replication group {group} is still {status} after {self._wait_s:.0f} s")
            self._sleep(self._poll_s)
            waited += self._poll_s

    def check(self, credentials: dict[str, Any], token: str) -> None:
        _ping(credentials, token)


class RedisTokenRotation:
    """The rotation Lambda's logic over a Secrets Manager client and a token backend."""

    def __init__(
        self, secretsmanager: Any, backend: TokenBackend, generate: Callable[[], str] = new_token
    ) -> None:
        self._sm = secretsmanager
        self._backend = backend
        self._generate = generate

    def handle(self, event: dict[str, Any]) -> dict[str, str]:
        """A rotation Lambda event (`Step`, `SecretId`, `ClientRequestToken`) -> `step(...)`."""
        missing = [k for k in ("Step", "SecretId", "ClientRequestToken") if not isinstance(event.get(k), str)]
        if missing:
            raise ValidationError(f"the rotation event lacks {', '.join(missing)}")
        return self.step(event["Step"], event["SecretId"], event["ClientRequestToken"])

    def step(self, step: str, secret_id: str, token: str) -> dict[str, str]:
        """Run one rotation step for version `token` of `secret_id`."""
        if step not in STEPS:
            raise ValidationError(f"unknown rotation step {step!r}", hint=f"one of {', '.join(STEPS)}")
        stages = self._sm.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
        labels = stages.get(token)
        if labels is None and step != "createSecret":  # createSecret is what writes the version
            raise ValidationError(f"secret version {token} of {secret_id} does not exist")
        if labels is not None and CURRENT in labels and step != "finishSecret":
            return {"step": step, "result": "already current"}
        if labels is not None and CURRENT not in labels and PENDING not in labels:
            raise ValidationError(f"secret version {token} of {secret_id} is not pending rotation")
        getattr(self, "_" + step.removesuffix("Secret"))(secret_id, token, stages)
        log.info("rotation step %s of %s done", step, secret_id)  # never the token
        return {"step": step, "result": "done"}

    def _read(self, secret_id: str, **version: str) -> dict[str, Any]:
        return json.loads(self._sm.get_secret_value(SecretId=secret_id, **version)["SecretString"])

    def _pending(self, secret_id: str, token: str) -> dict[str, Any] | None:
        try:
            return self._read(secret_id, VersionId=token, VersionStage=PENDING)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise

    def _create(self, secret_id: str, token: str, stages: dict[str, list[str]]) -> None:
        current = self._read(secret_id, VersionStage=CURRENT)
        if self._pending(secret_id, token) is not None:
            return  # a retried createSecret: the pending token exists already
        pending = {**current, "auth_token": self._generate()}
        self._sm.put_secret_value(
            SecretId=secret_id,
            ClientRequestToken=token,
            SecretString=json.dumps(pending),
            VersionStages=[PENDING],
        )

    def _set(self, secret_id: str, token: str, stages: dict[str, list[str]]) -> None:
        current = self._read(secret_id, VersionStage=CURRENT)
        pending = self._pending(secret_id, token)
        if pending is None:
            raise ValidationError(f"no pending version {token} of {secret_id}", hint="run createSecret first")
        self._backend.allow(current, current.get("auth_token") or None, str(pending["auth_token"]))

    def _test(self, secret_id: str, token: str, stages: dict[str, list[str]]) -> None:
        pending = self._pending(secret_id, token)
        if pending is None:
            raise ValidationError(f"no pending version {token} of {secret_id}", hint="run createSecret first")
        self._backend.check(pending, str(pending["auth_token"]))

    def _finish(self, secret_id: str, token: str, stages: dict[str, list[str]]) -> None:
        current_version = next((v for v, s in stages.items() if CURRENT in s), None)
        if current_version == token:
            return
        self._sm.update_secret_version_stage(
            SecretId=secret_id,
            VersionStage=CURRENT,
            MoveToVersionId=token,
            RemoveFromVersionId=current_version,
        )
