"""Every aws_* block against the AWS provider's schema (from the cdktf-cdktf-provider-aws wheel), offline."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from recsys.errors import RecsysError
from recsys.infra.provider_schema import PROVIDER_VERSION, extract_schema, load_schema
from recsys.infra.schema_check import check_tree
from recsys.infra.tools import run_schema_check
from tests.terraform.conftest import REPO, TERRAFORM

SYNTHETIC = """\
resource "aws_s3_bucket" "this" {
  count       = 1
  bucket      = "b"
  bucket_typo = "x"
  arn         = "computed"

  versionin {
    status = "Enabled"
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_lambda_function" "f" {
  function_name = "f"
  depends_on    = [aws_s3_bucket.this]

  dynamic "vpc_config" {
    for_each = [1]
    content {
      subnet_ids = []
    }
  }
}

resource "aws_no_such_thing" "x" {}

resource "random_id" "ignored" {
  byte_length = 4
}

data "aws_iam_policy_document" "p" {
  for_each = toset(["a"])

  dynamic "statement" {
    for_each = [1]
    content {
      actions = ["s3:GetObject"]
      principals {
        type        = "AWS"
        identifiers = ["*"]
      }
    }
  }

  dynamic "statement" {
    for_each = [1]
    content {
      action = ["s3:PutObject"]
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "l" {
  bucket = "b"

  rule {
    id     = "r"
    status = "Enabled"

    expiraton {
      days = 1
    }
  }

  timeouts {
    creat = "5m"
  }
}

provider "aws" {
  region = "eu-west-1"

  default_tags {
    tags = { a = "b" }
  }
}
"""

EXPECTED = [
    'terraform/main.tf:4 aws_s3_bucket.this: unknown argument "bucket_typo"',
    'terraform/main.tf:5 aws_s3_bucket.this: "arn" is computed-only and cannot be set',
    'terraform/main.tf:7 aws_s3_bucket.this: unknown block "versionin"',
    'terraform/main.tf:16 aws_lambda_function.f: missing required argument "role"',
    'terraform/main.tf:22 aws_lambda_function.f: missing required argument "security_group_ids" in vpc_config',
    'terraform/main.tf:28 aws_no_such_thing.x: unknown resource type "aws_no_such_thing"',
    'terraform/main.tf:51 data.aws_iam_policy_document.p: unknown argument "action" in statement',
    'terraform/main.tf:63 aws_s3_bucket_lifecycle_configuration.l: unknown block "expiraton" in rule',
    'terraform/main.tf:69 aws_s3_bucket_lifecycle_configuration.l: unknown argument "creat" in timeouts',
]


@pytest.fixture(scope="module")
def schema() -> dict:
    """The cached schema, downloaded on first use; skips without PyPI (fails under CI, which has it)."""
    try:
        return load_schema()
    except RecsysError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the AWS provider schema cannot be obtained: {exc.message}")


def test_the_real_terraform_matches_the_provider_schema(schema: dict) -> None:
    problems, checked = check_tree(TERRAFORM, schema, relative_to=REPO)
    assert checked > 100
    assert not problems, "\n".join(map(str, problems))


def test_each_kind_of_problem_is_flagged(schema: dict, tmp_path: Path) -> None:
    (tmp_path / "terraform").mkdir()
    (tmp_path / "terraform" / "main.tf").write_text(SYNTHETIC, encoding="utf-8")
    problems, checked = check_tree(tmp_path / "terraform", schema, relative_to=tmp_path)
    assert checked == 6  # five aws_* blocks and the provider; random_id is not the AWS provider's
    assert sorted(str(p) for p in problems) == sorted(EXPECTED)


def test_the_command_prints_one_line_per_problem(schema: dict, tmp_path: Path, capsys) -> None:
    (tmp_path / "terraform").mkdir()
    (tmp_path / "terraform" / "main.tf").write_text(SYNTHETIC, encoding="utf-8")
    assert run_schema_check(tmp_path / "terraform") == 1
    lines = capsys.readouterr().out.splitlines()
    assert 'terraform/main.tf:4 aws_s3_bucket.this: unknown argument "bucket_typo"' in lines
    assert lines[-1].endswith(f"6 blocks checked, {len(EXPECTED)} problems")
    assert run_schema_check() == 0


def test_hcl_names_come_from_the_docs_anchors(schema: dict) -> None:
    """jsii spells `equals` as `equalTo` and `get_password_data` as `fetchPasswordData`."""
    cloudtrail = schema["blocks"][schema["resources"]["aws_cloudtrail"]]
    selector = schema["blocks"][cloudtrail["args"]["advanced_event_selector"][1]]
    field = schema["blocks"][selector["args"]["field_selector"][1]]
    assert "equals" in field["args"] and "equal_to" not in field["args"]
    assert "get_password_data" in schema["blocks"][schema["resources"]["aws_instance"]]["args"]


def test_extract_schema_reads_a_minimal_assembly() -> None:
    link = "{@link https://registry.terraform.io/providers/hashicorp/aws/" + PROVIDER_VERSION + ".0/docs"

    def prop(name: str, anchor: str, optional: bool = True, **type_: object) -> dict:
        docs = {"summary": f"Docs: {link}/resources/thing#{anchor} Thing#{anchor}."}
        return {"name": name, "optional": optional, "docs": docs, "type": type_ or {"primitive": "string"}}

    types = {
        "@cdktf/provider-aws.thing.Thing": {
            "kind": "class",
            "base": "cdktf.TerraformResource",
            "docs": {"summary": f"Represents a {link}/resources/thing aws_thing}}."},
            "initializer": {
                "parameters": [{"name": "config", "type": {"fqn": "@cdktf/provider-aws.thing.ThingConfig"}}]
            },
            "properties": [
                {"name": "arn", "immutable": True},
                {"name": "nameInput", "immutable": True},
                {"name": "name"},
                {"name": "tfResourceType", "immutable": True, "static": True},
            ],
        },
        "@cdktf/provider-aws.thing.ThingConfig": {
            "kind": "interface",
            "datatype": True,
            "properties": [
                prop("name", "name", optional=False),
                prop("equalTo", "equals"),
                prop(
                    "rule",
                    "rule",
                    collection={
                        "kind": "array",
                        "elementtype": {"fqn": "@cdktf/provider-aws.thing.ThingRule"},
                    },
                ),
            ],
        },
        "@cdktf/provider-aws.thing.ThingRule": {
            "kind": "interface",
            "datatype": True,
            "properties": [prop("days", "days")],
        },
    }
    schema = extract_schema({"types": types})
    block = schema["blocks"][schema["resources"]["aws_thing"]]
    assert block == {
        "args": {"name": [True, None], "equals": [False, None], "rule": [False, "thing.ThingRule"]},
        "computed": ["arn"],
    }
    assert schema["blocks"]["thing.ThingRule"] == {"args": {"days": [False, None]}, "computed": []}


def test_every_aws_provider_requirement_pins_the_checked_major_version() -> None:
    major = PROVIDER_VERSION.split(".")[0]
    pins = {}
    for path in sorted(TERRAFORM.rglob("versions.tf")):
        match = re.search(r'aws\s*=\s*\{[^}]*version\s*=\s*"([^"]+)"', path.read_text(encoding="utf-8"))
        if match:
            pins[str(path.relative_to(TERRAFORM))] = match.group(1)
    assert len(pins) >= 10
    assert set(pins.values()) == {f"~> {major}.0"}, pins
