"""Per-environment values equal the reference environment table (and recsys.config.PROFILES); every reference output exists."""

from __future__ import annotations

import pytest

from recsys.config import PROFILES, EnvironmentProfile
from recsys.infra.outputs import STACK_OUTPUTS
from tests.terraform.conftest import ENVIRONMENTS, STACK, TERRAFORM, blocks, load_hcl

# The reference system's "Environment Configurations" table, transcribed column by column.
REFERENCE_TABLE = {
    "dev": {
        "lambda_memory_mb": 1024,
        "lambda_timeout_s": 30,
        "api_rate_limit_rps": 50,
        "dynamodb_billing_mode": "PAY_PER_REQUEST",
        "vpc_enabled": False,
        "redis_enabled": False,
        "redis_node_type": None,
        "alarms_enabled": False,
        "removal_policy": "destroy",
    },
    "staging": {
        "lambda_memory_mb": 1024,
        "lambda_timeout_s": 30,
        "api_rate_limit_rps": 200,
        "dynamodb_billing_mode": "PAY_PER_REQUEST",
        "vpc_enabled": True,
        "redis_enabled": True,
        "redis_node_type": "cache.t3.small",
        "alarms_enabled": False,
        "removal_policy": "destroy",
    },
    "prod": {
        "lambda_memory_mb": 2048,
        "lambda_timeout_s": 30,
        "api_rate_limit_rps": 1000,
        "dynamodb_billing_mode": "PROVISIONED",
        "vpc_enabled": True,
        "redis_enabled": True,
        "redis_node_type": "cache.r6g.large",
        "alarms_enabled": True,
        "removal_policy": "retain",
    },
}
# The reference system's cost section: Kinesis shards per environment; weekly training in prod only.
REFERENCE_SHARDS = {"dev": 1, "staging": 2, "prod": 4}


def tfvars(env: str) -> dict:
    return load_hcl(TERRAFORM / "environments" / env / "terraform.tfvars")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_tfvars_match_the_reference_table(env: str) -> None:
    values = tfvars(env)
    assert values["environment"] == env
    for field, expected in REFERENCE_TABLE[env].items():
        assert values[field] == expected, f"{env}.{field}: tfvars {values[field]!r}, seed {expected!r}"
    assert values["kinesis_shards"] == REFERENCE_SHARDS[env]
    assert (values["training_schedule"] is not None) == (env == "prod")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_tfvars_match_the_settings_profiles(env: str) -> None:
    values = tfvars(env)
    profile = PROFILES[env].model_dump()
    assert set(EnvironmentProfile.model_fields) <= set(values), "every profile field must be in the tfvars"
    for field, expected in profile.items():
        assert values[field] == expected, f"{env}.{field}: tfvars {values[field]!r}, PROFILES {expected!r}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_tfvars_only_set_declared_variables(env: str) -> None:
    declared = set(blocks(load_hcl(STACK / "variables.tf"), "variable"))
    unknown = set(tfvars(env)) - declared
    assert not unknown, f"{env}/terraform.tfvars sets undeclared variables {sorted(unknown)}"


def test_prod_rotates_redis_credentials_every_30_days() -> None:
    assert tfvars("prod")["redis_rotation_days"] == 30
    assert "redis_rotation_days" not in tfvars("staging")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_required_variables_are_set_by_every_environment(env: str) -> None:
    """A variable without a default must come from each environment's tfvars (plan would prompt otherwise)."""
    required = {
        n for n, body in blocks(load_hcl(STACK / "variables.tf"), "variable").items() if "default" not in body
    }
    missing = required - set(tfvars(env))
    assert not missing, f"{env}/terraform.tfvars does not set {sorted(missing)}"


def test_every_reference_output_exists() -> None:
    outputs = blocks(load_hcl(STACK / "outputs.tf"), "output")
    missing = [name for name in STACK_OUTPUTS if name not in outputs]
    assert not missing, f"the stack lacks the reference outputs {missing}"
    assert len(STACK_OUTPUTS) == 19


def test_no_output_exposes_a_secret_value() -> None:
    text = (STACK / "outputs.tf").read_text()
    for forbidden in ("auth_token", "secret_string", "random_password", "api_key_value", ".value"):
        assert forbidden not in text
    for name in ("RedisCredentialsSecretArn", "ApiKeysSecretArn", "ConfigSecretArn"):
        value = blocks(load_hcl(STACK / "outputs.tf"), "output")[name]["value"]
        assert "secret_arns" in value
