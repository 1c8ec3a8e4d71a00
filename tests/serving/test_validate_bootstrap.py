"""`recsys bootstrap` and `recsys validate --env local` against the session's local stack."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from recsys import artifacts
from recsys.aws import client
from recsys.cli.main import app
from recsys.errors import ErrorCode

runner = CliRunner()


def _checks(result) -> dict[str, dict]:
    return {f"{c['group']}/{c['name']}": c for c in json.loads(result.stdout)["data"]["checks"]}


@pytest.fixture
def own_home(tmp_path, monkeypatch):
    """A state directory of its own (execution records), the stack's endpoints unchanged."""
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_validate_names_what_is_missing_then_passes(local_stack, tiny_world, own_home, service) -> None:
    from recsys.config import load_settings
    from recsys.pipeline.history import ExecutionStore

    s3 = client("s3", local_stack)
    bucket = local_stack.names.bucket("models")
    s3.delete_object(Bucket=bucket, Key=artifacts.VECTOR_STORE_KEY)
    bad = runner.invoke(app, ["validate", "--env", "local", "--url", "http://127.0.0.1:9", "--json"])
    assert bad.exit_code == ErrorCode.FAILED.exit_code, bad.output
    checks = _checks(bad)
    assert all(c["ok"] for k, c in checks.items() if k.startswith(("buckets/", "tables/")))
    assert checks["tables/user_activity"]["detail"].endswith("(user_id, event_ts)")
    assert checks["model/production version"]["detail"] == tiny_world.version
    assert not checks["model/vector store"]["ok"]
    assert not checks["pipeline/last run"]["ok"]
    assert not checks["api/health"]["ok"] and "no answer" in checks["api/health"]["detail"]

    # What a release and a successful run leave behind: the vector store of the production version...
    s3.copy_object(
        Bucket=bucket, Key=artifacts.VECTOR_STORE_KEY, MetadataDirective="REPLACE",
        CopySource={"Bucket": bucket, "Key": artifacts.two_tower_key(tiny_world.version, "video_embeddings.npz")},
        Metadata={"model-version": tiny_world.version},
    )  # fmt: skip
    from recsys.serving.bundle import build_bundle, bundle_key, encode_bundle

    bundle = encode_bundle(build_bundle(local_stack, tiny_world.version), tiny_world.version)
    s3.put_object(Bucket=bucket, Key=bundle_key(tiny_world.version), Body=bundle)
    ExecutionStore(load_settings("local")).save_local(
        {"execution_id": "exec-20261201-000000-abcdef", "status": "SUCCEEDED", "output": {}}
    )
    # ...and a running API.
    from tests.serving.api_process import serve_api

    with serve_api() as url:
        good = runner.invoke(app, ["validate", "--env", "local", "--url", url, "--json"])
    assert good.exit_code == 0, good.output
    checks = _checks(good)
    assert all(c["ok"] for c in checks.values())
    assert checks["model/vector store embeddings"]["detail"].startswith(f"{len(tiny_world.video_ids)} videos")
    assert checks["api/served version"]["detail"] == f"serves {tiny_world.version}"

    # A vector store that belongs to another version is caught.
    s3.copy_object(
        Bucket=bucket, Key=artifacts.VECTOR_STORE_KEY, MetadataDirective="REPLACE",
        CopySource={"Bucket": bucket, "Key": artifacts.VECTOR_STORE_KEY}, Metadata={"model-version": "v-other"},
    )  # fmt: skip
    stale = runner.invoke(app, ["validate", "--env", "local", "--json"])
    assert stale.exit_code == ErrorCode.FAILED.exit_code
    assert "registry says" in _checks(stale)["model/vector store version"]["detail"]


def test_bootstrap_loads_the_starter_data_idempotently(local_stack) -> None:
    from recsys.data.datasets import load_dataset
    from recsys.feature_store.online import OnlineFeatureStore

    argv = [
        "bootstrap",
        "--env",
        "local",
        "--users",
        "400",
        "--videos",
        "120",
        "--interactions",
        "3000",
        "--json",
    ]
    first = runner.invoke(app, argv)
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)["data"]
    assert data["dataset"] == "starter" and data["videos"] == 120 and data["users"] == 400
    starter = load_dataset(local_stack, "starter")
    assert starter.interactions.height == 3000 and starter.videos.height == 120
    assert "12345" in set(starter.users["user_id"]) and "101" in set(starter.videos["video_id"])

    def starter_activity() -> list[dict]:  # other tests post interactions for 12345 too
        events = OnlineFeatureStore(local_stack).recent_activity("12345", 50)
        return [a for a in events if "#starter-" in a["event_ts"]]

    recent = starter_activity()
    assert 1 <= len(recent) <= 3
    again = runner.invoke(app, argv)
    assert again.exit_code == 0
    assert starter_activity() == recent  # the same items, rewritten


class _Health:
    """A loopback `/health` that answers each version of `versions` in turn (the last one from then on)."""

    def __init__(self, versions: list[str]) -> None:
        import http.server
        import threading

        self.versions, self.asked = versions, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                version = outer.versions[min(outer.asked, len(outer.versions) - 1)]
                outer.asked += 1
                body = json.dumps({"status": "healthy", "model_version": version}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def health_server():
    servers: list[_Health] = []

    def start(versions: list[str]) -> _Health:
        servers.append(_Health(versions))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _waiting_check(url: str, wait_s: float) -> tuple[list, list[str], list[float]]:
    """check_api with a clock that only the waits move: (checks, what on_wait heard, the waits)."""
    from recsys.infra.validate import check_api

    now, heard, waits = [0.0], [], []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    checks = check_api(url, "v-new", wait_s=wait_s, on_wait=heard.append, sleep=sleep, clock=lambda: now[0])
    return checks, heard, waits


def test_validate_waits_for_the_api_to_load_a_new_production_version(health_server) -> None:
    # Right after a deployment the API serves the version before until its next registry poll.
    api = health_server(["v-old", "v-old", "v-new"])
    checks, heard, waits = _waiting_check(api.url, wait_s=60)
    served = {c.name: c for c in checks}["served version"]
    assert served.ok and served.detail == "serves v-new (after 4 s)"
    assert api.asked == 3 and len(waits) == 2
    assert len(heard) == 1 and "serves v-old, production is v-new" in heard[0]


def test_validate_fails_when_the_api_never_loads_production(health_server) -> None:
    api = health_server(["v-old"])
    checks, _, waits = _waiting_check(api.url, wait_s=10)
    served = {c.name: c for c in checks}["served version"]
    assert not served.ok and served.detail == "serves v-old, production is v-new (still after 10 s)"
    assert sum(waits) == 10 and api.asked == 6
    # Without a wait: one question, the answer as it is.
    checks, heard, waits = _waiting_check(api.url, wait_s=0)
    assert {c.name: c for c in checks}["served version"].detail == "serves v-old, production is v-new"
    assert not waits and not heard


def test_validate_does_not_wait_for_an_api_that_does_not_answer() -> None:
    from recsys.local.processes import free_port

    checks, heard, waits = _waiting_check(f"http://127.0.0.1:{free_port()}", wait_s=60)
    assert [c.name for c in checks if not c.ok] == ["health", "served version"] and not waits and not heard
