"""The python-terraform wrapper: one stack per environment's files, plan summaries, the real `terraform fmt`."""

from __future__ import annotations

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
    parse_plan_summary,
    repo_root,
)


def test_plan_summary_with_changes() -> None:
    text = "...\nPlan: 12 to add, 3 to change, 1 to destroy.\n"
    summary = parse_plan_summary(text, "/tmp/x.tfplan")
    assert (summary.add, summary.change, summary.destroy) == (12, 3, 1)
    assert summary.has_changes and summary.to_dict()["plan_file"] == "/tmp/x.tfplan"


def test_plan_summary_without_changes() -> None:
    text = "No changes. Your infrastructure matches the configuration."
    summary = parse_plan_summary(text, "p", changed=False)
    assert not summary.has_changes


def test_plan_summary_unreadable() -> None:
    with pytest.raises(TerraformError):
        parse_plan_summary("something else entirely", "p", changed=True)


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
