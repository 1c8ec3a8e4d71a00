"""The python-terraform wrapper: plan summaries and the real `terraform fmt` check."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.errors import ErrorCode, ValidationError
from recsys.infra.terraform import TerraformError, environment_dir, fmt_check, parse_plan_summary


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
