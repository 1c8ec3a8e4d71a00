"""The local HTTP server: real HTTP requests to the Lambda handler, and /openapi.json."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from recsys.local.processes import free_port


@pytest.fixture()
def base_url(service):
    from recsys.cli.serve import api_handlers
    from recsys.serving.api import openapi_json
    from recsys.serving.http_server import make_server

    handlers, app = api_handlers(service, 2)
    server = make_server(handlers, lambda: openapi_json(app), "127.0.0.1", free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _call(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_every_endpoint_over_http(base_url, tiny_world):
    assert _call(f"{base_url}/health")[0] == 200
    status, body = _call(f"{base_url}/recommendations/{tiny_world.user_ids[12]}?k=4&exclude_watched=true")
    assert status == 200 and len(body["items"]) == 4
    status, body = _call(
        f"{base_url}/interactions",
        "POST",
        json.dumps({"user_id": 12345, "video_id": 101, "category": "gaming"}).encode(),
    )
    assert status == 202 and body["event_id"]
    status, body = _call(f"{base_url}/interactions", "POST", b"x" * 20_000)
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    status, body = _call(f"{base_url}/recommendations/1?k=500")
    assert status == 422 and body["error"]["code"] == "validation"
    status, spec = _call(f"{base_url}/openapi.json")
    assert status == 200 and "/recommendations/{user_id}" in spec["paths"]


def test_smoke_test_command_passes_against_the_server(base_url, tiny_world):
    from typer.testing import CliRunner

    from recsys.cli.main import app

    result = CliRunner().invoke(app, ["smoke-test", "--url", base_url, "--k", "3", "--json"])
    assert result.exit_code == 0, result.output
    # the server runs in this process, so its EMF metric lines share stdout: the command's JSON is the last line
    data = json.loads(result.stdout.strip().splitlines()[-1])["data"]
    assert data["passed"] is True
    assert {c["name"] for c in data["checks"]} == {
        "health",
        "recommendations",
        "cold start",
        "interaction",
        "cached",
        "bad input",
    }
    known = next(c for c in data["checks"] if c["name"] == "recommendations")
    assert "source=model" in known["detail"]  # the default user is one the production model knows


def test_smoke_test_reports_a_dead_url_in_one_line():
    from typer.testing import CliRunner

    from recsys.cli.main import app

    result = CliRunner().invoke(app, ["smoke-test", "--url", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 6
    assert "nothing answers" in result.stderr and "Traceback" not in result.output
