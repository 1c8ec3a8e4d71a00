"""A stand-in `terraform` on PATH: records its arguments, prints canned plans (`show -json`) and outputs."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from recsys.catalog import resource_names
from recsys.infra.outputs import STACK_OUTPUTS
from recsys.infra.package import zip_functions

FAKE_ACCOUNT = "123456789012"

STAND_IN = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_TF_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps({{"args": args, "cwd": os.getcwd(), "data_dir": os.environ.get("TF_DATA_DIR")}}) + "\\n")
command = args[0] if args else ""
if command == "init":
    print("Terraform has been successfully initialized!")
elif command == "plan":
    print("Terraform will perform the following actions: (the summary is read from `show -json`)")
    sys.exit(2)  # -detailed-exitcode: changes present
elif command == "show":
    with open(os.environ["FAKE_TF_LOG"], encoding="utf-8") as log:
        plans = [c["args"] for c in map(json.loads, log) if c["args"][0] == "plan"]
    canned = "FAKE_TF_DESTROY_PLAN" if "-destroy" in plans[-1] else "FAKE_TF_PLAN"
    with open(os.environ[canned], encoding="utf-8") as fh:
        print(fh.read())
elif command == "apply":
    print("Apply complete! Resources: 3 added, 1 changed, 0 destroyed.")
elif command == "output":
    with open(os.environ["FAKE_TF_OUTPUTS"], encoding="utf-8") as fh:
        print(fh.read())
else:
    print("unexpected command", args, file=sys.stderr)
    sys.exit(1)
"""


def resource_change(address: str, *actions: str) -> dict[str, Any]:
    """One `resource_changes` entry of `terraform show -json`."""
    kind, name = address.rsplit(".", 1)
    mode = "data" if kind.startswith("data.") else "managed"
    return {
        "address": address,
        "mode": mode,
        "type": kind.removeprefix("data."),
        "name": name,
        "change": {"actions": list(actions), "before": None, "after": {}},
    }


def canned_plan(*changes: dict[str, Any]) -> dict[str, Any]:
    """A `terraform show -json` plan document with these resource changes."""
    return {"format_version": "1.2", "terraform_version": "1.10.0", "resource_changes": list(changes)}


# 3 to add, 1 to change, 0 to destroy (the no-op and the data source read count for nothing).
PLAN = canned_plan(
    resource_change("aws_s3_bucket.data", "create"),
    resource_change("aws_s3_bucket.models", "create"),
    resource_change("aws_dynamodb_table.registry", "create"),
    resource_change("aws_lambda_function.evaluation", "update"),
    resource_change("aws_iam_role.pipeline", "no-op"),
    resource_change("data.aws_caller_identity.current", "read"),
)
DESTROY_PLAN = canned_plan(*(resource_change(f"aws_s3_object.o{i}", "delete") for i in range(42)))


def canned_outputs(env: str) -> dict[str, Any]:
    """`terraform output -json` of a deployed stack: every reference output plus ResourceNames."""
    names = resource_names(env)
    buckets = {k: f"{v}-{FAKE_ACCOUNT}" for k, v in names.buckets.items()}
    values: dict[str, Any] = {name: f"{name.lower()}-{env}" for name in STACK_OUTPUTS}
    values.update(
        {
            "ApiUrl": f"https://abc123.execute-api.us-east-1.amazonaws.com/{env}/",
            "DataBucketName": buckets["data"],
            "ModelBucketName": buckets["models"],
            "ArtifactsBucketName": buckets["artifacts"],
            "RedisEndpoint": None if env == "dev" else f"master.{env}.cache.amazonaws.com",
            "ResourceNames": {
                "buckets": buckets,
                "tables": names.tables,
                "streams": names.streams,
                "firehose": names.firehose,
                "secrets": names.secrets,
                "functions": names.functions,
                "state_machines": names.state_machines,
                "glue_database": names.glue_database,
            },
        }
    )
    return {k: {"sensitive": False, "type": "string", "value": v} for k, v in values.items()}


class FakeTerraform:
    def __init__(self, log: Path) -> None:
        self.log = log

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def commands(self) -> list[str]:
        return [c["args"][0] for c in self.calls()]

    def call(self, command: str) -> dict[str, Any]:
        found = [c for c in self.calls() if c["args"][0] == command]
        assert len(found) == 1, f"expected one `terraform {command}`, got {self.commands()}"
        return found[0]


@pytest.fixture
def recsys_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("RECSYS_HOME", str(home))
    monkeypatch.delenv("RECSYS_ENV", raising=False)
    monkeypatch.delenv("RECSYS_TF_STATE_BUCKET", raising=False)
    monkeypatch.delenv("TF_DATA_DIR", raising=False)
    return home


@pytest.fixture
def fake_terraform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recsys_home: Path) -> FakeTerraform:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "terraform"
    script.write_text(STAND_IN.format(python=sys.executable), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(canned_outputs("dev")), encoding="utf-8")
    for variable, plan in (("FAKE_TF_PLAN", PLAN), ("FAKE_TF_DESTROY_PLAN", DESTROY_PLAN)):
        plan_json = tmp_path / f"{variable.lower()}.json"
        plan_json.write_text(json.dumps(plan), encoding="utf-8")
        monkeypatch.setenv(variable, str(plan_json))
    packages = tmp_path / "packages"
    packages.mkdir()
    for name in zip_functions():
        (packages / f"{name}.zip").write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip archive
    monkeypatch.setenv("RECSYS_PACKAGE_DIR", str(packages))
    log = tmp_path / "terraform-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_TF_LOG", str(log))
    monkeypatch.setenv("FAKE_TF_OUTPUTS", str(outputs_file))
    return FakeTerraform(log)


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    import shutil

    found = shutil.which("terraform")
    if not found:
        pytest.skip("terraform is not installed on this machine")
    return found
