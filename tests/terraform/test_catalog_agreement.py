"""The HCL, evaluated by the real terraform binary, agrees with the catalogue and the local provisioner.

The expressions that the stack root passes to the modules are cut out of main.tf and evaluated
offline (no provider needed) next to the naming module; the results are compared with
`recsys.catalog.resource_names(env)` and with what `recsys local up` actually created in the moto server.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from recsys.catalog import load_catalog, resource_names
from tests.terraform.conftest import (
    CATALOG,
    ENVIRONMENTS,
    MODULES,
    REPO,
    STACK,
    evaluate,
    extract_attribute,
)

pytestmark = pytest.mark.terraform

FAKE_ACCOUNT = "123456789012"
ROOT_MAIN = STACK / "main.tf"


def _root_expressions() -> dict[str, str]:
    text = ROOT_MAIN.read_text()
    storage = (MODULES / "storage" / "dynamodb.tf").read_text()
    return {
        "buckets": extract_attribute(text, 'module "storage"', "buckets"),
        "tables": extract_attribute(text, 'module "storage"', "tables"),
        "secrets": extract_attribute(text, 'module "secrets"', "secrets"),
        "stream": extract_attribute(text, 'module "data_collection"', "stream"),
        "firehose": extract_attribute(text, 'module "data_collection"', "firehose"),
        "functions": extract_attribute(text, 'module "compute"', "functions"),
        "glue_tables": extract_attribute(text, 'module "feature_store"', "tables").replace(
            "module.storage.bucket_names", "module.naming.buckets"
        ),
        "pipeline_functions": extract_attribute(text, "locals {", "pipeline_functions"),
        "table_attributes": extract_attribute(storage, "locals {", "table_attributes").replace(
            "var.tables", "local.tables"
        ),
    }


def evaluate_root(terraform_bin: str, workdir: Path, env: str, account_id: str) -> dict[str, Any]:
    """What the stack would hand to its modules for `env`, evaluated by terraform."""
    exprs = _root_expressions()
    outputs = "\n".join(
        f'output "{name}" {{\n  value = {expr}\n}}' for name, expr in exprs.items() if name != "tables"
    )
    main_tf = f"""
locals {{
  catalog = jsondecode(file("{CATALOG.as_posix()}"))
  tables  = {exprs["tables"]}
}}

module "naming" {{
  source      = "{(MODULES / "naming").as_posix()}"
  catalog     = local.catalog
  environment = "{env}"
  account_id  = "{account_id}"
}}

output "names" {{
  value = module.naming
}}

output "tables" {{
  value = local.tables
}}

{outputs}
"""
    return evaluate(terraform_bin, workdir, main_tf)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_hcl_names_equal_the_catalogue(terraform_bin: str, tmp_path: Path, env: str) -> None:
    got = evaluate_root(terraform_bin, tmp_path, env, FAKE_ACCOUNT)
    want = resource_names(env)
    assert got["names"]["stack"] == want.stack
    assert {k: b["name"] for k, b in got["buckets"].items()} == {
        k: f"{v}-{FAKE_ACCOUNT}" for k, v in want.buckets.items()
    }
    assert {k: t["name"] for k, t in got["tables"].items()} == want.tables
    assert {k: s["name"] for k, s in got["secrets"].items()} == want.secrets
    assert got["stream"]["name"] == want.streams["events"]
    assert got["firehose"]["name"] == want.firehose["raw_events"]
    assert {k: f["name"] for k, f in got["functions"].items()} == want.functions
    assert got["names"]["glue_database"] == want.glue_database
    assert got["names"]["state_machines"] == want.state_machines
    assert set(got["glue_tables"]) == set(want.glue_tables)
    for key, table in got["glue_tables"].items():
        assert (
            table["bucket_name"]
            == f"{want.buckets[load_catalog()['glue']['tables'][key]['bucket']]}-{FAKE_ACCOUNT}"
        )
        assert table["columns"] == load_catalog()["glue"]["tables"][key]["columns"]


def test_redis_secret_only_where_the_catalogue_has_it(terraform_bin: str, tmp_path: Path) -> None:
    for env in ENVIRONMENTS:
        got = evaluate_root(terraform_bin, tmp_path / env, env, FAKE_ACCOUNT)
        assert ("redis_credentials" in got["secrets"]) == (env != "dev")


def _asl_placeholders() -> set[str]:
    text = (REPO / load_catalog()["state_machines"]["ml_pipeline"]["definition"]).read_text()
    return set(re.findall(r"\$\{([a-z0-9_]+)\}", text))


def test_asl_names_only_catalogue_functions_the_pipeline_may_invoke(
    terraform_bin: str, tmp_path: Path
) -> None:
    asl = REPO / load_catalog()["state_machines"]["ml_pipeline"]["definition"]
    if not asl.is_file():
        pytest.skip(f"{asl.name} is not written yet")
    placeholders = _asl_placeholders()
    assert placeholders, "the ASL file names no function"
    functions = set(load_catalog()["functions"])
    got = evaluate_root(terraform_bin, tmp_path, "dev", FAKE_ACCOUNT)
    invokable = set(got["pipeline_functions"])
    for placeholder in placeholders:
        assert placeholder.endswith("_function_arn"), placeholder
        key = placeholder.removesuffix("_function_arn")
        assert key in functions, f"the ASL names {key!r}, which is not in the catalogue"
        assert key in invokable, f"the state machine role may not invoke {key!r}"


def test_asl_renders_with_templatefile(terraform_bin: str, tmp_path: Path) -> None:
    asl = REPO / load_catalog()["state_machines"]["ml_pipeline"]["definition"]
    if not asl.is_file():
        pytest.skip(f"{asl.name} is not written yet")
    keys = sorted(load_catalog()["functions"])
    arns = ", ".join(
        f'"{k}_function_arn" = "arn:aws:lambda:us-east-1:{FAKE_ACCOUNT}:function:{k}"' for k in keys
    )
    main_tf = f"""
output "definition" {{
  value = jsondecode(templatefile("{asl.as_posix()}", {{ {arns} }}))
}}
"""
    definition = evaluate(terraform_bin, tmp_path, main_tf)["definition"]
    assert definition["StartAt"] in definition["States"]
    text = str(definition)
    assert "${" not in text
    for placeholder in _asl_placeholders():
        assert f"function:{placeholder.removesuffix('_function_arn')}" in text


def _key_schema(hash_key: dict, range_key: dict | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key["name"], "KeyType": "HASH"}]
    if range_key:
        schema.append({"AttributeName": range_key["name"], "KeyType": "RANGE"})
    return schema


def test_local_provisioner_and_hcl_agree(terraform_bin: str, tmp_path: Path, local_stack) -> None:
    """Buckets, tables (keys, attributes, indexes, TTL), stream and secrets: HCL for `local` vs the moto server."""
    from recsys.aws import client

    got = evaluate_root(terraform_bin, tmp_path, "local", "")
    settings = local_stack

    buckets = {b["Name"] for b in client("s3", settings).list_buckets()["Buckets"]}
    assert {b["name"] for b in got["buckets"].values()} <= buckets

    ddb = client("dynamodb", settings)
    for key, table in got["tables"].items():
        desc = ddb.describe_table(TableName=table["name"])["Table"]
        assert desc["KeySchema"] == _key_schema(table["hash_key"], table["range_key"]), key
        attributes = {a["AttributeName"]: a["AttributeType"] for a in desc["AttributeDefinitions"]}
        assert attributes == {n: types[0] for n, types in got["table_attributes"][key].items()}, key
        local_gsis = {
            g["IndexName"]: (g["KeySchema"], g["Projection"]["ProjectionType"])
            for g in desc.get("GlobalSecondaryIndexes", [])
        }
        hcl_gsis = {
            g["name"]: (_key_schema(g["hash_key"], g["range_key"]), g["projection"])
            for g in table["global_secondary_indexes"]
        }
        assert local_gsis == hcl_gsis, key
        ttl = ddb.describe_time_to_live(TableName=table["name"])["TimeToLiveDescription"]
        if table["ttl_attribute"]:
            assert ttl.get("AttributeName") == table["ttl_attribute"], key
            assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING"), key
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED", key

    streams = client("kinesis", settings).list_streams()["StreamNames"]
    assert got["stream"]["name"] in streams

    secrets = {s["Name"] for s in client("secretsmanager", settings).list_secrets()["SecretList"]}
    assert {s["name"] for s in got["secrets"].values()} <= secrets
