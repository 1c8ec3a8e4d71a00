"""`recsys plan | deploy | destroy | outputs` against a stand-in terraform that records its arguments."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsys.cli.main import app
from recsys.errors import ErrorCode
from recsys.infra.terraform import repo_root
from tests.infra.conftest import FAKE_ACCOUNT, FakeTerraform

runner = CliRunner()
ENV_DIR = repo_root() / "terraform" / "environments"
STACK_DIR = repo_root() / "terraform" / "stack"


def test_deploy_prod_passes_backend_variables_and_plan_file(
    fake_terraform: FakeTerraform, recsys_home: Path
) -> None:
    result = runner.invoke(app, ["deploy", "--env", "prod", "--auto-approve", "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    data = json.loads(result.stdout)["data"]
    assert data["applied"] is True
    assert data["plan"]["add"] == 3 and data["plan"]["change"] == 1 and data["plan"]["destroy"] == 0

    assert fake_terraform.commands() == ["init", "plan", "show", "apply", "output"]
    # One root for every environment; prod's own data directory, so no backend or provider state is shared.
    assert all(c["cwd"] == str(STACK_DIR) for c in fake_terraform.calls())
    assert all(c["data_dir"] == str(ENV_DIR / "prod" / ".terraform") for c in fake_terraform.calls())
    assert "TF_DATA_DIR" not in os.environ, "the data directory is set for terraform only"

    init = fake_terraform.call("init")["args"]
    assert f"-backend-config={ENV_DIR / 'prod' / 'backend.hcl'}" in init
    assert "-input=false" in init and "-reconfigure" in init

    plan = fake_terraform.call("plan")["args"]
    plan_file = str(ENV_DIR / "prod" / "terraform.tfplan")
    assert f"-out={plan_file}" in plan
    assert f"-var-file={ENV_DIR / 'prod' / 'terraform.tfvars'}" in plan
    assert [a for a in plan if a.startswith("-var-file=")] == [
        f"-var-file={ENV_DIR / 'prod' / 'terraform.tfvars'}"
    ]
    assert f"-var=package_dir={os.environ['RECSYS_PACKAGE_DIR']}" in plan
    assert "-var=training_image_tag=latest" in plan
    assert "-detailed-exitcode" in plan and "-input=false" in plan
    assert "-destroy" not in plan

    show = fake_terraform.call("show")["args"]
    assert "-json" in show and show[-1] == plan_file, "the summary is read from the saved plan"

    apply = fake_terraform.call("apply")["args"]
    assert apply[-1] == plan_file
    assert not any(a.startswith("-var") for a in apply), "a saved plan carries its variables"

    assert "-json" in fake_terraform.call("output")["args"]
    cached = json.loads((recsys_home / "outputs-prod.json").read_text())
    assert cached["ApiUrl"].startswith("https://")


def test_state_bucket_override(fake_terraform: FakeTerraform, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_TF_STATE_BUCKET", "my-team-tf-state")
    result = runner.invoke(app, ["plan", "--env", "staging", "--json"])
    assert result.exit_code == 0, result.output
    init = fake_terraform.call("init")["args"]
    assert "-backend-config=bucket=my-team-tf-state" in init
    assert f"-backend-config={ENV_DIR / 'staging' / 'backend.hcl'}" in init
    assert fake_terraform.commands() == ["init", "plan", "show"]
    assert all(c["data_dir"] == str(ENV_DIR / "staging" / ".terraform") for c in fake_terraform.calls())
    assert f"-var-file={ENV_DIR / 'staging' / 'terraform.tfvars'}" in fake_terraform.call("plan")["args"]
    data = json.loads(result.stdout)["data"]
    assert data["env"] == "staging" and data["add"] == 3
    assert data["plan_file"] == str(ENV_DIR / "staging" / "terraform.tfplan")


def test_deploy_asks_and_stops_on_no(fake_terraform: FakeTerraform) -> None:
    result = runner.invoke(app, ["deploy", "--env", "dev"], input="n\n")
    assert result.exit_code != 0
    assert "nothing was applied" in result.stderr
    assert "apply" not in fake_terraform.commands()


def test_deploy_applies_after_yes(fake_terraform: FakeTerraform) -> None:
    result = runner.invoke(app, ["deploy", "--env", "dev"], input="y\n")
    assert result.exit_code == 0, result.output
    assert fake_terraform.commands() == ["init", "plan", "show", "apply", "output"]
    assert "3 to add, 1 to change, 0 to destroy" in result.stderr


def test_destroy_prod_refuses_without_force(fake_terraform: FakeTerraform) -> None:
    result = runner.invoke(app, ["destroy", "--env", "prod", "--auto-approve"])
    assert result.exit_code == ErrorCode.USAGE.exit_code
    assert "--force" in result.stderr
    assert "Hint:" in result.stderr
    assert fake_terraform.calls() == []


def test_destroy_dev_plans_destroy_then_applies(fake_terraform: FakeTerraform) -> None:
    result = runner.invoke(app, ["destroy", "--env", "dev", "--auto-approve", "--json"])
    assert result.exit_code == 0, result.output
    assert fake_terraform.commands() == ["init", "plan", "show", "apply"]
    plan = fake_terraform.call("plan")["args"]
    assert "-destroy" in plan
    assert f"-var-file={ENV_DIR / 'dev' / 'terraform.tfvars'}" in plan
    assert f"-backend-config={ENV_DIR / 'dev' / 'backend.hcl'}" in fake_terraform.call("init")["args"]
    assert all(c["data_dir"] == str(ENV_DIR / "dev" / ".terraform") for c in fake_terraform.calls())
    data = json.loads(result.stdout)["data"]
    assert data["destroyed"] is True and data["plan"]["destroy"] == 42


def test_missing_terraform_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recsys_home: Path
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = runner.invoke(app, ["plan", "--env", "dev"])
    assert result.exit_code == ErrorCode.MISSING_TOOL.exit_code
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Error: terraform is not installed (not found on PATH)"
    assert lines[1].startswith("Hint:")
    assert "Traceback" not in result.output


def test_missing_credentials_is_a_clear_error(
    fake_terraform: FakeTerraform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    result = runner.invoke(app, ["deploy", "--env", "dev", "--json"])
    assert result.exit_code == ErrorCode.CREDENTIALS.exit_code
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "credentials" and "credentials" in error["message"]
    assert fake_terraform.calls() == []


def test_local_has_no_terraform_root(fake_terraform: FakeTerraform) -> None:
    result = runner.invoke(app, ["plan", "--env", "local"])
    assert result.exit_code == ErrorCode.VALIDATION.exit_code
    assert "recsys local up" in result.stderr


def test_outputs_json_parses_and_is_cached(fake_terraform: FakeTerraform, recsys_home: Path) -> None:
    result = runner.invoke(app, ["outputs", "--env", "dev", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["data"]
    assert data["DataBucketName"].endswith(f"-{FAKE_ACCOUNT}")
    assert data["RedisEndpoint"] is None
    assert fake_terraform.commands() == ["init", "output"]

    again = runner.invoke(app, ["outputs", "--env", "dev", "--json"])
    assert json.loads(again.stdout)["data"] == data
    assert fake_terraform.commands() == ["init", "output"], "the second read comes from the cache"

    runner.invoke(app, ["outputs", "--env", "dev", "--refresh", "--json"])
    assert fake_terraform.commands().count("output") == 2


def test_outputs_human_table(fake_terraform: FakeTerraform) -> None:
    result = runner.invoke(app, ["outputs", "--env", "dev"])
    assert result.exit_code == 0, result.output
    assert "ApiUrl" in result.stdout and "GlueDatabaseName" in result.stdout


def test_deploy_needs_the_packages(
    fake_terraform: FakeTerraform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RECSYS_PACKAGE_DIR", str(tmp_path / "nothing-built"))
    result = runner.invoke(app, ["deploy", "--env", "dev", "--auto-approve"])
    assert result.exit_code == ErrorCode.NOT_FOUND.exit_code
    assert "recsys package" in result.stderr
    assert fake_terraform.calls() == []


def test_deploy_target_limits_the_plan(fake_terraform: FakeTerraform) -> None:
    target = "module.compute.aws_ecr_repository.training"
    result = runner.invoke(app, ["deploy", "--env", "dev", "--auto-approve", "--target", target, "--json"])
    assert result.exit_code == 0, result.output
    assert f"-target={target}" in fake_terraform.call("plan")["args"]
