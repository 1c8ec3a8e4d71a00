"""The one wrapper around python-terraform: init with an environment's backend, plan to a file, apply it.

There is one root, `terraform/stack/`, for every environment; `terraform/environments/<env>/` holds only the
environment's `terraform.tfvars` and `backend.hcl`. Every call runs `terraform` in the stack with
`-input=false -no-color` and `TF_DATA_DIR=terraform/environments/<env>/.terraform`, so environments never share
the initialised backend or providers; init passes `-reconfigure -backend-config=<env>/backend.hcl`, plans pass
`-var-file=<env>/terraform.tfvars` and write `<env>/terraform.tfplan`, whose summary is read from
`show -json`. Outputs are read with `output -json` (python-terraform's `output(name)` helper does not work
with terraform 1.x).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from python_terraform import IsFlagged, Terraform

from recsys.config import AWS_ENVIRONMENTS
from recsys.errors import ErrorCode, NotFoundError, RecsysError, ValidationError

if TYPE_CHECKING:
    from recsys.config import Settings

TERRAFORM_DIR_SETTING = "RECSYS_TERRAFORM_DIR"
STACK_DIR = "stack"
BACKEND_FILE = "backend.hcl"
TFVARS_FILE = "terraform.tfvars"
PLAN_FILE = "terraform.tfplan"
# Terraform's working data (backend config, providers, modules), one per environment (git-ignored).
DATA_DIR = ".terraform"
# `plan -detailed-exitcode`: 0 = no changes, 2 = changes, anything else = error.
_PLAN_CHANGES = 2


class TerraformError(RecsysError):
    """A terraform command failed; the message carries the tail of its error output."""

    code = ErrorCode.FAILED


@dataclass(frozen=True)
class PlanSummary:
    """What a saved plan would do."""

    plan_file: str
    add: int
    change: int
    destroy: int

    @property
    def has_changes(self) -> bool:
        return (self.add + self.change + self.destroy) > 0

    def to_dict(self) -> dict[str, Any]:
        return {"plan_file": self.plan_file, "add": self.add, "change": self.change, "destroy": self.destroy}


def repo_root() -> Path:
    """The repository root (the directory holding `terraform/` and `recsys/`)."""
    return Path(__file__).resolve().parents[2]


def terraform_dir(override: Path | None = None) -> Path:
    """`terraform/` of the repository, or `override` (the settings' `terraform_dir`)."""
    return override or repo_root() / "terraform"


def stack_dir(root: Path | None = None) -> Path:
    """The one Terraform root (`terraform/stack/`), shared by every environment."""
    return terraform_dir(root) / STACK_DIR


def environment_dir(env: str, root: Path | None = None) -> Path:
    """`terraform/environments/<env>/` (tfvars and backend config) of an AWS environment.

    `local` has none (it runs on the embedded stack).
    """
    if env not in AWS_ENVIRONMENTS:
        raise ValidationError(
            f"environment {env!r} has no Terraform root",
            hint=f"use one of {', '.join(AWS_ENVIRONMENTS)}; `local` is `recsys local up`",
        )
    path = terraform_dir(root) / "environments" / env
    for required in (stack_dir(root) / "main.tf", path / TFVARS_FILE, path / BACKEND_FILE):
        if not required.is_file():
            raise NotFoundError(
                f"no Terraform configuration for {env}: {required} is missing",
                hint=f"set {TERRAFORM_DIR_SETTING} to the terraform/ folder",
            )
    return path


def find_terraform() -> str:
    """Path of the terraform executable on PATH, or a clear error."""
    found = shutil.which("terraform")
    if not found:
        raise RecsysError(
            "terraform is not installed (not found on PATH)",
            hint="install Terraform >= 1.10 from https://developer.hashicorp.com/terraform/install",
            code=ErrorCode.MISSING_TOOL,
        )
    return found


def check_credentials() -> None:
    """Fail clearly when boto3 finds no AWS credentials (terraform would fail later and less clearly)."""
    import boto3

    if boto3.session.Session().get_credentials() is None:
        raise RecsysError(
            "no AWS credentials found",
            hint="run `aws configure`, set AWS_PROFILE, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            code=ErrorCode.CREDENTIALS,
        )


@contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables for the terraform child process (python-terraform copies os.environ)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


class TerraformRunner:
    """Runs terraform in the stack for one environment (its tfvars, backend config and data directory)."""

    def __init__(
        self,
        env: str,
        binary: str | None = None,
        *,
        terraform_root: Path | None = None,
        state_bucket: str | None = None,
    ) -> None:
        self.env = env
        self.env_dir = environment_dir(env, terraform_root)
        self.workdir = stack_dir(terraform_root)
        self.state_bucket = state_bucket
        self.data_dir = self.env_dir / DATA_DIR
        self.var_file = self.env_dir / TFVARS_FILE
        self.plan_file = self.env_dir / PLAN_FILE
        self.binary = binary or find_terraform()
        self._tf = Terraform(working_dir=str(self.workdir), terraform_bin_path=self.binary)

    @classmethod
    def for_settings(cls, settings: Settings) -> TerraformRunner:
        """The runner of the settings' environment, with their Terraform folder and state bucket."""
        return cls(settings.env, terraform_root=settings.terraform_dir, state_bucket=settings.tf_state_bucket)

    def _run(self, command: str, *args: str, **options: Any) -> tuple[int, str, str]:
        with warnings.catch_warnings(), _environ(TF_DATA_DIR=str(self.data_dir)):
            # python-terraform logs non-zero exits (plan's "changes present" = 2) through a deprecated API.
            warnings.simplefilter("ignore", DeprecationWarning)
            code, out, err = self._tf.cmd(command, *args, no_color=IsFlagged, **options)
        return code, out or "", err or ""

    def _check(self, command: str, result: tuple[int, str, str], ok: tuple[int, ...] = (0,)) -> str:
        code, out, err = result
        if code not in ok:
            tail = (err.strip() or out.strip()).splitlines()[-8:]
            raise TerraformError(
                f"terraform {command} failed for {self.env} (exit {code}): " + " | ".join(tail),
                hint=(
                    f"run `TF_DATA_DIR={self.data_dir} terraform {command}` in {self.workdir} "
                    "to see the whole output"
                ),
            )
        return out

    def backend_config(self) -> list[str]:
        """`-backend-config` values: the environment's backend.hcl, then the state-bucket override."""
        configs = [str(self.env_dir / BACKEND_FILE)]
        if self.state_bucket:
            configs.append(f"bucket={self.state_bucket}")
        return configs

    def init(self) -> str:
        """`terraform init -reconfigure` with the environment's S3 backend, into its own data directory."""
        result = self._run("init", input=False, reconfigure=IsFlagged, backend_config=self.backend_config())
        return self._check("init", result)

    def is_initialised(self) -> bool:
        return self.data_dir.is_dir()

    def plan(
        self,
        variables: dict[str, str],
        destroy: bool = False,
        targets: list[str] | None = None,
    ) -> PlanSummary:
        """`terraform plan -out=<env>/terraform.tfplan` with the environment's tfvars and `variables`.

        Returns the adds/changes/destroys (from `terraform show -json` of the saved plan). `targets` limits
        the plan (e.g. the ECR repository before the first image push).
        """
        plan_file = self.plan_file
        plan_file.parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {
            "input": False,
            "var_file": [str(self.var_file)],
            "var": [f"{k}={v}" for k, v in sorted(variables.items())],
            "out": str(plan_file),
            "detailed_exitcode": IsFlagged,
            "lock_timeout": "5m",
        }
        if destroy:
            options["destroy"] = IsFlagged
        if targets:
            options["target"] = list(targets)
        self._check("plan", self._run("plan", **options), ok=(0, _PLAN_CHANGES))
        out = self._check("show", self._run("show", str(plan_file), json=IsFlagged))
        try:
            plan = json.loads(out)
        except json.JSONDecodeError:
            raise TerraformError(f"terraform show -json printed no JSON for {self.env}'s plan") from None
        return summarize_plan(plan, str(plan_file))

    def apply(self, plan_file: Path) -> str:
        """`terraform apply <plan_file>` (a saved plan applies without a prompt)."""
        return self._check("apply", self._run("apply", str(plan_file), input=False, lock_timeout="5m"))

    def output(self) -> dict[str, Any]:
        """All root outputs as `{name: value}` (from `terraform output -json`)."""
        out = self._check("output", self._run("output", json=IsFlagged))
        try:
            raw = json.loads(out or "{}")
        except json.JSONDecodeError:
            raise TerraformError(f"terraform output -json printed no JSON for {self.env}") from None
        return {name: item.get("value") for name, item in raw.items()}


def summarize_plan(plan: dict[str, Any], plan_file: str) -> PlanSummary:
    """Adds/changes/destroys of a `terraform show -json` plan, counted as terraform's "Plan:" line counts them.

    Each `resource_changes[].change.actions` is one of ["create"], ["update"], ["delete"], a replacement
    (["delete", "create"] or ["create", "delete"]: one add and one destroy), ["no-op"] or ["read"] (nothing).
    """
    add = change = destroy = 0
    for resource in plan.get("resource_changes") or []:
        actions = resource.get("change", {}).get("actions", [])
        add += "create" in actions
        change += "update" in actions
        destroy += "delete" in actions
    return PlanSummary(plan_file, add, change, destroy)


def fmt_check(path: Path, binary: str | None = None) -> list[str]:
    """`terraform fmt -check -recursive`: the files that are not formatted (empty when all are)."""
    tf = Terraform(working_dir=str(path), terraform_bin_path=binary or find_terraform())
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", DeprecationWarning
        )  # exit 3 (unformatted) is logged via a deprecated API
        code, out, err = tf.cmd("fmt", check=IsFlagged, recursive=IsFlagged, list="true")
    if code not in (0, 3):
        raise TerraformError(f"terraform fmt failed (exit {code}): {(err or out).strip()}")
    return [line for line in (out or "").splitlines() if line.strip()]
