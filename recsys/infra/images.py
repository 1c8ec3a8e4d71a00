"""Build the training image from `build/training/` and push it to the stack's ECR repository (docker CLI)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys.aws import client
from recsys.errors import ErrorCode, RecsysError

if TYPE_CHECKING:
    from recsys.config import Settings


class DockerError(RecsysError):
    """A docker command failed; the message carries the tail of its output."""

    code = ErrorCode.FAILED


def _docker(*args: str, stdin: str | None = None, timeout_s: float = 3600) -> str:
    binary = shutil.which("docker")
    if binary is None:
        raise RecsysError("docker is not installed (not on PATH)", hint="install Docker",
                          code=ErrorCode.MISSING_TOOL)  # fmt: skip
    done = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, timeout=timeout_s,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        tail = " | ".join((done.stderr.strip() or done.stdout.strip()).splitlines()[-5:])
        raise DockerError(f"docker {args[0]} failed (exit {done.returncode}): {tail}",
                          hint=f"run `docker {' '.join(args[:2])} …` yourself to see the whole output")  # fmt: skip
    return done.stdout


def ecr_login(settings: Settings, repository_url: str) -> str:
    """`docker login` to the repository's registry with an ECR authorization token; returns the registry."""
    registry = repository_url.split("/", 1)[0]
    token = client("ecr", settings).get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
    _docker("login", "--username", user, "--password-stdin", registry, stdin=password)
    return registry


def build_and_push(settings: Settings, context: Path, repository_url: str, tag: str) -> dict[str, Any]:
    """Build `context` for linux/amd64 as `repository_url:tag`, log in to ECR and push it."""
    if not (context / "Dockerfile").is_file():
        raise RecsysError(f"no Dockerfile in {context}", hint="run `recsys package` first",
                          code=ErrorCode.NOT_FOUND)  # fmt: skip
    image = f"{repository_url}:{tag}"
    _docker("build", "--platform", "linux/amd64", "-t", image, str(context))
    registry = ecr_login(settings, repository_url)
    _docker("push", image)
    return {"image": image, "registry": registry}
