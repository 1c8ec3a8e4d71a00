"""Settings of every environment against the reference environment table, and environment overrides."""

from __future__ import annotations

import pytest

from recsys.catalog import resource_names
from recsys.config import ENVIRONMENTS, PROFILES, load_settings
from recsys.errors import RecsysError, ValidationError

# The reference system's "Environment Configurations" table, verbatim.
REFERENCE_TABLE = {
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
REFERENCE_SHARDS = {"dev": 1, "staging": 2, "prod": 4}  # the reference system's cost section


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path) -> None:
    """No RECSYS_* variable and no settings file from the test session leaks into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("RECSYS_") or name in ("AWS_ENDPOINT_URL", "LOCALSTACK_HOST"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings_with(monkeypatch, env: str | None = None, **variables: str):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return load_settings(env)


@pytest.mark.parametrize("env", sorted(REFERENCE_TABLE))
def test_profile_matches_reference_table(env: str) -> None:
    seed = REFERENCE_TABLE[env]
    p = load_settings(env).profile
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
    assert p.kinesis_shards == REFERENCE_SHARDS[env]


def test_weekly_training_only_in_prod() -> None:
    assert PROFILES["prod"].training_schedule == "rate(7 days)"
    assert all(PROFILES[e].training_schedule is None for e in ("local", "dev", "staging"))
    assert PROFILES["prod"].training_backend == "sagemaker"
    assert PROFILES["dev"].training_backend == "lambda"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_names_derive_from_stack(env: str) -> None:
    names = resource_names(env)
    assert load_settings(env).stack_name == f"VideoRecSystem-{env}"
    assert names.table("user_features") == f"VideoRecSystem-{env}-user-features"
    assert names.bucket("models") == f"videorecsystem-{env}-models"
    assert names.secret("api_keys") == f"VideoRecSystem-{env}/api-keys"
    assert ("redis_credentials" in names.secrets) is (env != "dev")


def test_local_settings_use_catalogue_names() -> None:
    assert load_settings("local").names == resource_names("local")


def test_deployed_lambda_names_carry_the_account_suffix(monkeypatch) -> None:
    monkeypatch.setenv("RECSYS_BUCKET_SUFFIX", "-123456789012")
    names = load_settings("prod").names
    assert names.bucket("models") == "videorecsystem-prod-models-123456789012"
    assert names.table("model_registry") == "VideoRecSystem-prod-model-registry"


def test_aws_names_without_deployment_are_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("RECSYS_BUCKET_SUFFIX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no terraform to ask
    with pytest.raises(RecsysError) as exc:
        _ = settings_with(monkeypatch, "dev", RECSYS_HOME=str(tmp_path)).names
    assert exc.value.hint


def test_environment_variables_override(monkeypatch) -> None:
    s = settings_with(monkeypatch, "dev", RECSYS_LAMBDA_MEMORY_MB="3008", RECSYS_REGION="eu-west-1")
    assert s.profile.lambda_memory_mb == 3008
    assert s.region == "eu-west-1"
    assert settings_with(monkeypatch, RECSYS_ENV="staging").env == "staging"
    s = settings_with(
        monkeypatch, "dev", RECSYS_SERVING_ACTIVITY_LIMIT="200", RECSYS_SERVING_TRACKING="false"
    )
    assert s.serving.activity_limit == 200 and s.serving.tracking is False


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RECSYS_KINESIS_SHARDS", "zero"),
        ("RECSYS_LAMBDA_MEMORY_MB", "64"),
        ("RECSYS_SERVING_MAX_CATEGORY_SHARE", "5"),
    ],
)
def test_bad_override_names_the_variable(monkeypatch, variable: str, value: str) -> None:
    with pytest.raises(ValidationError) as exc:
        settings_with(monkeypatch, "dev", **{variable: value})
    assert variable in exc.value.message


def test_settings_file_is_read_and_environment_wins(monkeypatch, tmp_path) -> None:
    (tmp_path / "recsys.toml").write_text(
        'env = "staging"\nregion = "eu-central-1"\nlambda_memory_mb = 4096\n[serving]\nactivity_limit = 300\n'
    )
    s = load_settings()
    assert (s.env, s.region, s.profile.lambda_memory_mb, s.serving.activity_limit) == (
        "staging",
        "eu-central-1",
        4096,
        300,
    )
    s = settings_with(monkeypatch, RECSYS_REGION="ap-south-1", RECSYS_SERVING_ACTIVITY_LIMIT="50")
    assert (s.env, s.region, s.serving.activity_limit) == ("staging", "ap-south-1", 50)
    elsewhere = tmp_path / "other.toml"
    elsewhere.write_text('env = "prod"\n')
    assert settings_with(monkeypatch, RECSYS_CONFIG_FILE=str(elsewhere)).env == "prod"


def test_a_broken_settings_file_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "recsys.toml").write_text("env = \n")
    with pytest.raises(ValidationError, match=r"recsys\.toml"):
        load_settings()
    (tmp_path / "recsys.toml").write_text("[serving]\nactivity_limit = 0\n")
    with pytest.raises(ValidationError, match="RECSYS_SERVING_ACTIVITY_LIMIT"):
        load_settings()


def test_settings_are_a_frozen_value() -> None:
    s = load_settings("local")
    with pytest.raises(Exception):  # noqa: B017 (pydantic's frozen-instance error)
        s.env = "prod"  # type: ignore[misc]
    assert load_settings("local") == s


def test_unknown_environment_is_a_clear_error() -> None:
    with pytest.raises(ValidationError) as exc:
        load_settings("qa")
    assert "qa" in exc.value.message and "prod" in exc.value.hint


def test_local_endpoint_default_and_override(monkeypatch) -> None:
    assert load_settings("local").aws_endpoint_url == "http://localhost:4566"
    assert settings_with(monkeypatch, "local", LOCALSTACK_HOST="127.0.0.1:4599").aws_endpoint_url == (
        "http://127.0.0.1:4599"
    )
    s = settings_with(monkeypatch, "local", RECSYS_AWS_ENDPOINT="http://127.0.0.1:5000")
    assert s.aws_endpoint_url == "http://127.0.0.1:5000"
    assert load_settings("prod").aws_endpoint_url is None


def test_dev_has_no_redis() -> None:
    from recsys.secrets import redis_settings

    assert redis_settings(load_settings("dev")) is None
