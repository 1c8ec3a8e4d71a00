"""The Docker path without Docker: hadolint on every Dockerfile, compose.yaml against the Compose
specification's schema (the image's entry point runs in tests/serving/test_api_image.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((ROOT / "docker").glob("*/Dockerfile"))
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.fail(f"{name} is not installed: `make install` installs the dev extra")
    return found


def test_dockerfiles_pass_hadolint() -> None:
    assert {p.parent.name for p in DOCKERFILES} >= {"api", "training"}
    done = subprocess.run([_tool("hadolint"), *map(str, DOCKERFILES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_file_fits_the_compose_specification() -> None:
    done = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(ROOT / "compose.yaml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_has_the_demo_services_wired_together() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"moto", "redis", "pipeline", "api", "worker"} <= set(services)
    for name in ("pipeline", "api"):
        env = services[name]["environment"]
        assert env["RECSYS_AWS_ENDPOINT"] == "http://moto:5000" and env["RECSYS_REDIS_URL"].startswith(
            "redis://redis:"
        )
        assert (ROOT / services[name]["build"]["dockerfile"]).is_file()
    assert services["pipeline"]["command"][:3] == ["up", "--env", "local"]
    assert services["api"]["depends_on"]["pipeline"]["condition"] == "service_completed_successfully"
    assert "127.0.0.1:8080:8080" in services["api"]["ports"]
    # the events worker runs the same image as the one-shot pipeline job, after it
    assert services["worker"]["command"][:2] == ["events", "worker"]
    assert services["worker"]["image"] == services["pipeline"]["image"]
    assert services["worker"]["depends_on"]["pipeline"]["condition"] == "service_completed_successfully"
