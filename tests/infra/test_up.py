"""`recsys up` on AWS: the order of the steps, resuming after a failure, and each missing prerequisite.

terraform and docker are stand-ins on PATH (they record their arguments); the AWS calls (STS for the
credentials, ECR for the registry login) go to the session's moto server.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsys.cli.main import app
from recsys.errors import ErrorCode
from recsys.infra.up import AWS_STEPS, LOCAL_STEPS
from tests.infra.conftest import FAKE_ACCOUNT, FakeTerraform, canned_outputs

runner = CliRunner()
REPOSITORY = f"{FAKE_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/videorecsystem-dev-training"

FAKE_DOCKER = """#!{python}
import json, os, sys
args = sys.argv[1:]
stdin = sys.stdin.read() if args[:1] == ["login"] else None
with open(os.environ["FAKE_DOCKER_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps({{"args": args, "stdin": bool(stdin)}}) + "\\n")
if args[:1] == ["info"]:
    if os.environ.get("FAKE_DOCKER_DAEMON_DOWN"):
        print("Cannot connect to the Docker daemon", file=sys.stderr)
        sys.exit(1)
    print("27.3.1")
elif args[:1] == ["push"] and os.environ.get("FAKE_DOCKER_FAIL_PUSH"):
    print("denied: requested access to the resource is denied", file=sys.stderr)
    sys.exit(1)
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A stand-in `docker` on PATH; returns a function that lists the recorded calls."""
    bin_dir = tmp_path / "docker-bin"
    bin_dir.mkdir()
    _executable(bin_dir / "docker", FAKE_DOCKER.format(python=sys.executable))
    log = tmp_path / "docker-calls.jsonl"
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def calls() -> list[list[str]]:
        return [json.loads(line)["args"] for line in log.read_text().splitlines()] if log.exists() else []

    return calls


@pytest.fixture
def aws_on_moto(local_stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every boto3 client of a dev command talks to the session's moto server."""
    from tests.conftest import reset_caches

    monkeypatch.setenv("AWS_ENDPOINT_URL", local_stack.aws_endpoint_url)
    reset_caches()
    yield
    reset_caches()


@pytest.fixture
def stack_outputs(fake_terraform: FakeTerraform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in terraform's outputs with the training repository, and the image context beside the zips."""
    values = canned_outputs("dev")
    values["TrainingRepositoryUrl"] = {"sensitive": False, "type": "string", "value": REPOSITORY}
    path = tmp_path / "outputs-up.json"
    path.write_text(json.dumps(values), encoding="utf-8")
    monkeypatch.setenv("FAKE_TF_OUTPUTS", str(path))
    context = Path(os.environ["RECSYS_PACKAGE_DIR"]).parent / "training"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    return path


def _data(result) -> dict:
    return json.loads(result.stdout)["data"]


def test_the_steps_and_their_order(recsys_home: Path) -> None:
    result = runner.invoke(app, ["up", "--env", "dev", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    assert [s["step"] for s in _data(result)] == [
        "prerequisites", "package", "ecr", "image", "apply", "bootstrap", "pipeline", "validate", "smoke",
    ]  # fmt: skip
    assert [s.name for s in AWS_STEPS] == [s["step"] for s in _data(result)]
    local = runner.invoke(app, ["up", "--env", "local", "--dry-run", "--json"])
    assert [s["step"] for s in _data(local)] == [s.name for s in LOCAL_STEPS] == [
        "stack", "bootstrap", "pipeline", "cache", "serve", "validate", "smoke",
    ]  # fmt: skip


def test_a_failed_step_stops_the_run_and_the_next_run_resumes_there(
    fake_terraform: FakeTerraform, fake_docker, stack_outputs, aws_on_moto, recsys_home, monkeypatch
) -> None:
    argv = ["up", "--env", "dev", "--skip", "package", "--until", "apply", "--auto-approve"]
    monkeypatch.setenv("FAKE_DOCKER_FAIL_PUSH", "1")
    first = runner.invoke(app, argv)
    assert first.exit_code == ErrorCode.FAILED.exit_code, first.output
    assert "docker push failed" in first.output and "denied" in first.output
    # The ECR repository was created with a targeted apply; the image was built; the push failed.
    targeted = [c["args"] for c in fake_terraform.calls() if c["args"][0] == "plan"]
    assert len(targeted) == 1 and "-target=module.compute.aws_ecr_repository.training" in targeted[0]
    assert [c[0] for c in fake_docker()] == ["info", "build", "login", "push"]
    build = fake_docker()[1]
    assert f"{REPOSITORY}:latest" in build and "--platform" in build
    assert fake_docker()[2][-1] == REPOSITORY.split("/")[0]  # logged in with an ECR token from moto

    plan = runner.invoke(app, ["up", "--env", "dev", "--dry-run", "--json"])
    status = {s["step"]: s["status"] for s in _data(plan)}
    assert status["ecr"] == "done" and status["image"] == "failed" and status["apply"] == "to do"

    monkeypatch.delenv("FAKE_DOCKER_FAIL_PUSH")
    tf_before, docker_before = len(fake_terraform.calls()), len(fake_docker())
    second = runner.invoke(app, [*argv, "--json"])
    assert second.exit_code == 0, second.output
    steps = {s["name"]: s["status"] for s in _data(second)["steps"]}
    assert steps == {"prerequisites": "done", "package": "left out", "ecr": "already done", "image": "done",
                     "apply": "done"}  # fmt: skip
    again_tf = [c["args"] for c in fake_terraform.calls()[tf_before:]]
    assert [a[0] for a in again_tf] == ["init", "plan", "show", "apply", "output"]
    assert not any(a.startswith("-target") for a in again_tf[1]), "the whole stack this time"
    assert [c[0] for c in fake_docker()[docker_before:]] == ["info", "build", "login", "push"]

    third = runner.invoke(app, [*argv, "--json"])
    assert {s["name"]: s["status"] for s in _data(third)["steps"]}["apply"] == "already done"


def test_each_missing_prerequisite_is_named(
    fake_terraform: FakeTerraform, fake_docker, aws_on_moto, recsys_home, tmp_path, monkeypatch
) -> None:
    argv = ["up", "--env", "dev", "--until", "prerequisites"]
    ok = runner.invoke(app, argv)
    assert ok.exit_code == 0, ok.output
    assert "✓ terraform" in ok.output and "✓ docker" in ok.output
    assert f"✓ AWS credentials: account {FAKE_ACCOUNT}" in ok.output  # moto's STS answered

    monkeypatch.setenv("FAKE_DOCKER_DAEMON_DOWN", "1")
    down = runner.invoke(app, argv)
    assert down.exit_code == ErrorCode.MISSING_TOOL.exit_code
    assert "docker is installed but its daemon does not answer" in down.output
    monkeypatch.delenv("FAKE_DOCKER_DAEMON_DOWN")

    # Neither terraform nor docker on PATH: both named, one line each, exit 8.
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    both = runner.invoke(app, argv)
    assert both.exit_code == ErrorCode.MISSING_TOOL.exit_code, both.output
    assert "✗ terraform: terraform is not installed" in both.output
    assert "✗ docker: docker is not installed" in both.output
    assert "missing: terraform, docker" in both.output

    # No credentials anywhere: exit 9 (credentials only).
    monkeypatch.setenv(
        "PATH",
        f"{fake_terraform.log.parent / 'bin'}{os.pathsep}{Path(os.environ['FAKE_DOCKER_LOG']).parent / 'docker-bin'}",
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    creds = runner.invoke(app, argv)
    assert creds.exit_code == ErrorCode.CREDENTIALS.exit_code, creds.output
    assert "✗ AWS credentials: no AWS credentials found" in creds.output
    assert "missing: AWS credentials" in creds.output
