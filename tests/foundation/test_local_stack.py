"""`recsys local up | down | status` against real processes on free ports."""

from __future__ import annotations

import json
import os
import signal

import pytest
from typer.testing import CliRunner

from recsys.aws import client
from recsys.cli.main import app
from recsys.local.processes import wait_until
from recsys.local.provision import missing_resources, provision
from tests.conftest import reset_caches, start_stack

runner = CliRunner()


def test_status_json_reports_healthy_components(local_stack) -> None:
    result = runner.invoke(app, ["local", "status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["data"]
    assert data["healthy"] is True
    assert data["components"]["aws"]["endpoint"] == local_stack.aws_endpoint_url
    assert data["components"]["aws"]["healthy"] is True
    assert data["components"]["redis"]["healthy"] is True
    assert data["missing_resources"] == []


def test_provisioning_twice_creates_nothing_new(local_stack) -> None:
    ddb = client("dynamodb", local_stack)
    before = sorted(ddb.list_tables()["TableNames"])
    report = provision(local_stack)
    assert report.created == []
    assert sorted(ddb.list_tables()["TableNames"]) == before
    assert missing_resources(local_stack) == []


def test_tables_have_catalogue_keys_indexes_and_ttl(local_stack) -> None:
    ddb = client("dynamodb", local_stack)
    desc = ddb.describe_table(TableName=local_stack.names.table("model_registry"))["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in desc["KeySchema"]} == {
        "model_name": "HASH",
        "version": "RANGE",
    }
    assert [g["IndexName"] for g in desc["GlobalSecondaryIndexes"]] == ["status-index"]
    ttl = ddb.describe_time_to_live(TableName=local_stack.names.table("recommendations_cache"))
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"


@pytest.fixture()
def own_stack(tmp_path):
    """A second, private stack for tests that break it (the session stack stays untouched)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("RECSYS_")}
    stack, _ = start_stack(tmp_path / "home")
    try:
        yield stack
    finally:
        stack.down()
        for k in [k for k in os.environ if k.startswith("RECSYS_")]:
            del os.environ[k]
        os.environ.update(saved)
        reset_caches()


def test_up_twice_down_and_status(own_stack) -> None:
    first = runner.invoke(app, ["local", "up", "--json"])
    assert first.exit_code == 0, first.output
    again = json.loads(first.stdout)["data"]
    assert again["provisioned"]["created"] == []  # the fixture's `up` already made everything
    moto_pid = own_stack.moto.recorded_pid()
    assert again["status"]["components"]["aws"]["pid"] == moto_pid
    worker = again["status"]["components"]["events_worker"]  # `up` starts the events worker
    assert worker["healthy"] is True and worker["pid"] == own_stack.worker.recorded_pid()

    down = runner.invoke(app, ["local", "down", "--json"])
    assert down.exit_code == 0
    assert json.loads(down.stdout)["data"]["stopped"] == {
        "api": False,
        "events_worker": True,
        "moto": True,
        "redis": True,
    }
    status = runner.invoke(app, ["local", "status", "--json"])
    assert status.exit_code != 0
    assert json.loads(status.stdout)["data"]["components"]["aws"]["healthy"] is False


def test_killed_moto_is_reported_down(own_stack) -> None:
    pid = own_stack.moto.recorded_pid()
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not own_stack.moto.is_running(), timeout_s=10)
    result = runner.invoke(app, ["local", "status"])
    assert result.exit_code == 6
    assert "aws is down" in result.stderr and "recsys local up" in result.stderr
    # `up` brings it back and the (in-memory) resources are provisioned again
    assert runner.invoke(app, ["local", "up"]).exit_code == 0
    assert runner.invoke(app, ["local", "status"]).exit_code == 0


def test_background_api_is_part_of_the_stack(own_stack) -> None:
    from recsys.local.processes import free_port

    port = free_port()
    started = runner.invoke(app, ["local", "serve", "--port", str(port), "--json"])
    assert started.exit_code == 0, started.output
    assert json.loads(started.stdout)["data"]["url"] == f"http://127.0.0.1:{port}"
    status = json.loads(runner.invoke(app, ["local", "status", "--json"]).stdout)["data"]
    assert status["components"]["api"]["healthy"] is True
    # serving again replaces the first server instead of failing on the taken port
    again = runner.invoke(app, ["local", "serve", "--port", str(port), "--json"])
    assert again.exit_code == 0, again.output
    down = json.loads(runner.invoke(app, ["local", "down", "--json"]).stdout)["data"]
    assert down["stopped"]["api"] is True
    assert not own_stack.api_healthy(port)


def test_redis_password_never_shown_or_stored(local_stack, tmp_path, monkeypatch) -> None:
    from recsys.config import RedisSettings

    port = RedisSettings.from_url(local_stack.redis_url_override).port
    # the session Redis has no password; AUTH with one fails, so the status is honest about health,
    # but what matters here is that the secret never reaches stdout or the state file
    monkeypatch.setenv("RECSYS_REDIS_URL", f"redis://:s3cret-token@127.0.0.1:{port}/0")
    reset_caches()
    try:
        result = runner.invoke(app, ["local", "status", "--json"])
        assert "s3cret-token" not in result.output
        data = json.loads(result.stdout)["data"]
        assert data["components"]["redis"]["endpoint"] == f"redis://:***@127.0.0.1:{port}/0"
        state = local_stack.home / "state.json"
        assert "s3cret-token" not in (state.read_text() if state.exists() else "")
    finally:
        monkeypatch.setenv("RECSYS_REDIS_URL", local_stack.redis_url_override)
        reset_caches()


def test_serving_again_from_another_process_replaces_the_server(own_stack) -> None:
    """The server then belongs to no process of this test: stop must wait for it to be really gone."""
    import subprocess
    import sys
    from pathlib import Path

    from recsys.local.processes import free_port

    port = free_port()
    recsys = Path(sys.executable).with_name("recsys")
    pids = []
    for _ in range(3):
        done = subprocess.run(
            [str(recsys), "local", "serve", "--port", str(port), "--json"],
            capture_output=True,
            text=True,
            timeout=180,
            env=dict(os.environ),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        pids.append(json.loads(done.stdout)["data"]["pid"])
    assert len(set(pids)) == 3
    assert own_stack.api.recorded_pid() == pids[-1] and own_stack.api_healthy(port)
    own_stack.down()
    assert not own_stack.api_healthy(port)


def test_the_emulator_keeps_a_connection_alive_and_s3_metadata_names_as_aws_does(local_stack) -> None:
    """Two requests over one connection (moto's own server closed it after each answer), and user metadata
    comes back with the lowercase names that S3 answers with."""
    import http.client
    from urllib.parse import urlparse

    endpoint = urlparse(local_stack.aws_endpoint_url)
    connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=10)
    try:
        sockets = []
        for _ in range(2):
            connection.request("GET", "/moto-api/")
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200 and (answer.getheader("Connection") or "").lower() != "close"
            sockets.append(connection.sock)
        assert sockets[0] is sockets[1] and sockets[1] is not None
    finally:
        connection.close()

    s3 = client("s3", local_stack)
    bucket = local_stack.names.bucket("artifacts")
    s3.put_object(Bucket=bucket, Key="tests/metadata", Body=b"x", Metadata={"model-version": "v1"})
    assert s3.head_object(Bucket=bucket, Key="tests/metadata")["Metadata"] == {"model-version": "v1"}
