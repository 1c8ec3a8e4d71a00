"""The API image's entry point (docker/api/Dockerfile ENTRYPOINT + CMD), run as a process over the local stack."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

from tests.serving.api_process import serve_api

ROOT = Path(__file__).resolve().parents[2]


def _instruction(dockerfile: Path, name: str) -> list[str]:
    """The JSON (exec form) argument of the last `name` instruction."""
    found = re.findall(rf"^{name}\s+(\[.*\])\s*$", dockerfile.read_text(), flags=re.MULTILINE)
    assert found, f"{dockerfile} has no exec-form {name}"
    return json.loads(found[-1])


def test_api_image_entry_point_serves_the_page_and_the_api(local_stack, tiny_world) -> None:
    """ENTRYPOINT + CMD of docker/api/Dockerfile, run here as the image runs them (on a free port)."""

    dockerfile = ROOT / "docker" / "api" / "Dockerfile"
    argv = _instruction(dockerfile, "ENTRYPOINT") + _instruction(dockerfile, "CMD")
    assert argv[0] == "recsys" and argv[1] == "serve"
    argv[argv.index("--host") + 1] = "127.0.0.1"  # what 0.0.0.0 serves in the container, on loopback here
    with serve_api(argv[1:]) as base:
        with urllib.request.urlopen(base + "/health", timeout=5) as resp:
            assert json.loads(resp.read())["model_version"] == tiny_world.version
        with urllib.request.urlopen(base + "/", timeout=5) as resp:
            assert resp.headers["Content-Type"].startswith("text/html") and b"static/app.js" in resp.read()
        with urllib.request.urlopen(base + "/docs", timeout=5) as resp:
            assert b"swagger-ui-bundle.js" in resp.read()
