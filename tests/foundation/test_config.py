"""Settings of every environment against the seed's table, and environment overrides."""

from __future__ import annotations

import pytest

from recsys.catalog import resource_names
from recsys.config import ENVIRONMENTS, PROFILES, get_settings, load_settings
from recsys.errors import RecsysError, ValidationError

# The seed's "Environment Configurations" table, verbatim.
SEED_TABLE = {
    "dev": {
        "memory": 1024,
        "timeout": 30,
        "rate": 50,
        "dynamodb": "On-Demand",
        "vpc": False,
        "redis": None,
        "alarms": False,
        "removal": "Destroy",
    },
    "staging": {
        "memory": 1024,
        "timeout": 30,
        "rate": 200,
        "dynamodb": "On-Demand",
        "vpc": True,
        "redis": "t3.small",
        "alarms": False,
        "removal": "Destroy",
    },
    "prod": {
        "memory": 2048,
        "timeout": 30,
        "rate": 1000,
        "dynamodb": "Provisioned",
        "vpc": True,
        "redis": "r6g.large",
        "alarms": True,
        "removal": "Retain",
    },
}
SEED_SHARDS = {"dev": 1, "staging": 2, "prod": 4}  # the seed's cost section


@pytest.mark.parametrize("env", sorted(SEED_TABLE))
def test_profile_matches_seed_table(env: str) -> None:
    seed = SEED_TABLE[env]
    p = load_settings(env, environ={}).profile
    assert p.lambda_memory_mb == seed["memory"]
    assert p.lambda_timeout_s == seed["timeout"]
    assert p.api_rate_limit_rps == seed["rate"]
    assert (
        p.dynamodb_billing_mode
        == {"On-Demand": "PAY_PER_REQUEST", "Provisioned": "PROVISIONED"}[seed["dynamodb"]]
    )
    assert p.vpc_enabled is seed["vpc"]
    assert p.redis_enabled is (seed["redis"] is not None)
    assert p.redis_node_type == (f"cache.{seed['redis']}" if seed["redis"] else None)
    assert p.alarms_enabled is seed["alarms"]
    assert p.removal_policy == seed["removal"].lower()
    assert p.kinesis_shards == SEED_SHARDS[env]


def test_weekly_training_only_in_prod() -> None:
    assert PROFILES["prod"].training_schedule == "rate(7 days)"
    assert all(PROFILES[e].training_schedule is None for e in ("local", "dev", "staging"))
    assert PROFILES["prod"].training_backend == "sagemaker"
    assert PROFILES["dev"].training_backend == "lambda"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_names_derive_from_stack(env: str) -> None:
    names = resource_names(env)
    assert load_settings(env, environ={}).stack_name == f"VideoRecSystem-{env}"
    assert names.table("user_features") == f"VideoRecSystem-{env}-user-features"
    assert names.bucket("models") == f"videorecsystem-{env}-models"
    assert names.secret("api_keys") == f"VideoRecSystem-{env}/api-keys"
    assert ("redis_credentials" in names.secrets) is (env != "dev")


def test_local_settings_use_catalogue_names() -> None:
    assert load_settings("local", environ={}).names == resource_names("local")


def test_deployed_lambda_names_carry_the_account_suffix(monkeypatch) -> None:
    monkeypatch.setenv("RECSYS_BUCKET_SUFFIX", "-123456789012")
    names = load_settings("prod", environ={}).names
    assert names.bucket("models") == "videorecsystem-prod-models-123456789012"
    assert names.table("model_registry") == "VideoRecSystem-prod-model-registry"


def test_aws_names_without_deployment_are_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("RECSYS_BUCKET_SUFFIX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no terraform to ask
    with pytest.raises(RecsysError) as exc:
        _ = load_settings("dev", environ={"RECSYS_HOME": str(tmp_path)}).names
    assert exc.value.hint


def test_environment_variables_override() -> None:
    s = load_settings("dev", environ={"RECSYS_LAMBDA_MEMORY_MB": "3008", "RECSYS_REGION": "eu-west-1"})
    assert s.profile.lambda_memory_mb == 3008
    assert s.region == "eu-west-1"
    assert load_settings(environ={"RECSYS_ENV": "staging"}).env == "staging"


def test_bad_override_names_the_variable() -> None:
    with pytest.raises(ValidationError) as exc:
        load_settings("dev", environ={"RECSYS_KINESIS_SHARDS": "zero"})
    assert "RECSYS_KINESIS_SHARDS" in exc.value.message


def test_unknown_environment_is_a_clear_error() -> None:
    with pytest.raises(ValidationError) as exc:
        load_settings("qa", environ={})
    assert "qa" in exc.value.message and "prod" in exc.value.hint


def test_get_settings_is_cached(monkeypatch) -> None:
    get_settings.cache_clear()
    try:
        assert get_settings("dev") is get_settings("dev")
    finally:
        get_settings.cache_clear()


def test_local_endpoint_default_and_override() -> None:
    assert load_settings("local", environ={}).aws_endpoint_url == "http://localhost:4566"
    assert (
        load_settings("local", environ={"LOCALSTACK_HOST": "127.0.0.1:4599"}).aws_endpoint_url
        == "http://127.0.0.1:4599"
    )
    s = load_settings("local", environ={"RECSYS_AWS_ENDPOINT": "http://127.0.0.1:5000"})
    assert s.aws_endpoint_url == "http://127.0.0.1:5000"
    assert load_settings("prod", environ={"RECSYS_AWS_ENDPOINT": "http://x:1"}).aws_endpoint_url is None


def test_dev_has_no_redis() -> None:
    assert load_settings("dev", environ={}).redis is None
