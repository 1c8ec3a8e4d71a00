"""Reliability fixtures: the serving world on the session stack, and a server process on a stack of its own.

Fault tests kill Redis and the AWS emulator, so they never touch the session's stack: `fault_stack` starts
one on free ports for the module, publishes a tiny model and serves it with `recsys serve` (granian, two
worker processes) as a user would run it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.serving.conftest import promote, publish_tiny_version, service, tiny_world  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def http(url: str, method: str = "GET", body: bytes | None = None, headers=None, timeout: float = 30):
    """(status, headers, parsed JSON body or None) of one HTTP request; header names are case-insensitive."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw, status, got = resp.read(), resp.status, resp.headers
    except urllib.error.HTTPError as exc:
        raw, status, got = exc.read(), exc.code, exc.headers
    return status, got, (json.loads(raw) if raw else None)


def post_event(base: str, user_id: Any, video_id: Any, **extra) -> tuple[int, dict, Any]:
    payload = json.dumps({"user_id": user_id, "video_id": video_id, **extra}).encode()
    return http(f"{base}/interactions", "POST", payload, {"Content-Type": "application/json"})


@dataclass
class ServedStack:
    """A local stack of its own, its settings, the published world and the server's base URL."""

    stack: Any
    settings: Any
    world: Any
    url: str
    process: subprocess.Popen


def start_server(port: int, extra: list[str] | None = None) -> subprocess.Popen:
    """`recsys serve` (granian unless `extra` says otherwise, 2 processes) in its own process group; returns
    when /health answers."""
    argv = [sys.executable, "-m", "recsys.cli.main", "serve", "--env", "local", "--port", str(port),
            "--processes", "2", "--workers", "4", "--poll-interval", "1", *(extra or [])]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"recsys serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if http(f"http://127.0.0.1:{port}/health", timeout=5)[0] in (200, 503):
                return proc
        except OSError:
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError("recsys serve did not answer /health within 90 s")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (its main process and workers); SIGKILL if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory) -> Iterator[ServedStack]:
    """A stack of this module's own (moto + Redis on free ports) with a tiny model, served by granian."""
    from recsys.config import load_settings
    from recsys.local.processes import free_port
    from tests.conftest import reset_caches, start_stack

    saved = {k: v for k, v in os.environ.items() if k.startswith("RECSYS_")}
    stack, _env = start_stack(tmp_path_factory.mktemp("fault-home"))
    os.environ["RECSYS_REDIS_URL"] = stack.redis_url()
    reset_caches()
    settings = load_settings("local")
    proc = None
    try:
        world = publish_tiny_version(settings, "v20260101-000000-fault0")
        promote(settings, world.version)
        port = free_port()
        proc = start_server(port)
        yield ServedStack(stack, settings, world, f"http://127.0.0.1:{port}", proc)
    finally:
        if proc is not None:
            stop_server(proc)
        stack.down()
        for name in [k for k in os.environ if k.startswith("RECSYS_")]:
            del os.environ[name]
        os.environ.update(saved)
        reset_caches()
