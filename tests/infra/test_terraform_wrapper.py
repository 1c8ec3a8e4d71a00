"""The python-terraform wrapper: per-environment files on one stack, plan summaries (`show -json`), fmt."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from recsys.errors import ErrorCode, ValidationError
from recsys.infra.terraform import (
    TerraformError,
    TerraformRunner,
    environment_dir,
    fmt_check,
    repo_root,
    summarize_plan,
)
from tests.infra.conftest import FakeTerraform, canned_plan, resource_change


def test_plan_summary_counts_actions_as_terraform_does() -> None:
    plan = canned_plan(
        resource_change("aws_s3_bucket.a", "create"),
        resource_change("aws_s3_bucket.b", "create"),
        resource_change("aws_lambda_function.f", "update"),
        resource_change("aws_iam_role.r", "delete"),
        resource_change("aws_ecr_repository.images", "delete", "create"),  # replace: add and destroy
        resource_change("aws_instance.i", "create", "delete"),  # create_before_destroy replace
        resource_change("aws_sqs_queue.q", "no-op"),
        resource_change("data.aws_region.current", "read"),
    )
    summary = summarize_plan(plan, "/tmp/x.tfplan")
    assert (summary.add, summary.change, summary.destroy) == (4, 1, 3)
    assert summary.has_changes and summary.to_dict()["plan_file"] == "/tmp/x.tfplan"


def test_plan_summary_without_changes() -> None:
    assert not summarize_plan(canned_plan(resource_change("aws_s3_bucket.a", "no-op")), "p").has_changes
    assert not summarize_plan({"format_version": "1.2"}, "p").has_changes  # no resource_changes at all


def test_plan_reads_the_summary_of_the_saved_plan(
    fake_terraform: FakeTerraform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_json = tmp_path / "replace-plan.json"
    plan_json.write_text(
        json.dumps(
            canned_plan(
                resource_change("aws_ecr_repository.images", "delete", "create"),
                resource_change("aws_lambda_function.f", "update"),
            )
        )
    )
    monkeypatch.setenv("FAKE_TF_PLAN", str(plan_json))
    runner = TerraformRunner("dev")
    summary = runner.plan({"training_image_tag": "latest"})
    assert (summary.add, summary.change, summary.destroy) == (1, 1, 1)
    assert summary.plan_file == str(runner.plan_file)
    assert fake_terraform.commands() == ["plan", "show"]
    show = fake_terraform.call("show")["args"]
    assert show[0] == "show" and "-json" in show and show[-1] == str(runner.plan_file)
    assert f"-out={runner.plan_file}" in fake_terraform.call("plan")["args"]


def test_plan_without_json_is_a_terraform_error(
    fake_terraform: FakeTerraform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_json = tmp_path / "not-json.txt"
    not_json.write_text("Plan: 3 to add, 0 to change, 0 to destroy.")
    monkeypatch.setenv("FAKE_TF_PLAN", str(not_json))
    with pytest.raises(TerraformError, match="show -json"):
        TerraformRunner("dev").plan({})


@pytest.mark.terraform
def test_plan_summary_agrees_with_terraforms_own_line(terraform_bin: str, tmp_path: Path) -> None:
    """A real plan (built-in terraform_data, no provider download) with an add, change, destroy and replace."""
    (tmp_path / "main.tf").write_text(
        'variable "v" {\n  default = "a"\n}\n'
        'resource "terraform_data" "kept" {\n  input = "same"\n}\n'
        'resource "terraform_data" "replaced" {\n  triggers_replace = var.v\n}\n'
        'resource "terraform_data" "changed" {\n  input = var.v\n}\n'
        'resource "terraform_data" "removed" {\n  count = var.v == "a" ? 1 : 0\n}\n'
        'resource "terraform_data" "added" {\n  count = var.v == "a" ? 0 : 1\n}\n'
    )

    def terraform(*args: str) -> str:
        done = subprocess.run(
            [terraform_bin, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode in (0, 2), done.stderr
        return done.stdout

    terraform("init", "-input=false", "-no-color")
    terraform("apply", "-auto-approve", "-input=false", "-no-color")
    text = terraform("plan", "-input=false", "-no-color", "-var=v=b", "-out=tfplan")
    summary = summarize_plan(json.loads(terraform("show", "-json", "tfplan")), "tfplan")
    assert (summary.add, summary.change, summary.destroy) == (2, 1, 2)
    assert "Plan: 2 to add, 1 to change, 2 to destroy." in text


def test_local_and_unknown_envs_have_no_root() -> None:
    for env in ("local", "qa"):
        with pytest.raises(ValidationError) as info:
            environment_dir(env)
        assert info.value.code is ErrorCode.VALIDATION


@pytest.mark.terraform
def test_fmt_check_finds_unformatted_files(terraform_bin: str, tmp_path: Path) -> None:
    (tmp_path / "ok.tf").write_text('variable "a" {\n  type = string\n}\n')
    assert fmt_check(tmp_path, terraform_bin) == []
    (tmp_path / "bad.tf").write_text('variable "b" {\ntype=string\n}\n')
    assert fmt_check(tmp_path, terraform_bin) == ["bad.tf"]


def test_every_environment_runs_the_one_stack_with_its_own_files() -> None:
    runners = {env: TerraformRunner(env, binary="terraform") for env in ("dev", "staging", "prod")}
    stack = repo_root() / "terraform" / "stack"
    for env, runner in runners.items():
        env_dir = repo_root() / "terraform" / "environments" / env
        assert runner.workdir == stack
        assert runner.data_dir == env_dir / ".terraform"
        assert runner.var_file == env_dir / "terraform.tfvars" and runner.var_file.is_file()
        assert runner.plan_file == env_dir / "terraform.tfplan"
        assert runner.backend_config() == [str(env_dir / "backend.hcl")]
    assert len({r.data_dir for r in runners.values()}) == 3, "environments must not share a data directory"


def test_data_directories_and_plan_files_are_git_ignored() -> None:
    if shutil.which("git") is None or not (repo_root() / ".git").exists():
        pytest.skip("not a git checkout")
    for env in ("dev", "staging", "prod"):
        runner = TerraformRunner(env, binary="terraform")
        for path in (runner.data_dir / "terraform.tfstate", runner.plan_file):
            rel = path.relative_to(repo_root())
            proc = subprocess.run(
                ["git", "check-ignore", "-q", "--no-index", str(rel)], cwd=repo_root(), check=False
            )
            assert proc.returncode == 0, f"{rel} is not git-ignored"
