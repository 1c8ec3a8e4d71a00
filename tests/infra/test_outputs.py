"""Name resolution: catalogue for local, bucket suffix inside Lambdas, stack outputs for the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys.catalog import resource_names
from recsys.config import load_settings
from recsys.errors import NotFoundError
from recsys.infra.outputs import cache_path, names_from_outputs, save_outputs, with_deployed_names
from tests.infra.conftest import FAKE_ACCOUNT, canned_outputs


@pytest.fixture(autouse=True)
def _no_bucket_suffix(monkeypatch) -> None:
    monkeypatch.delenv("RECSYS_BUCKET_SUFFIX", raising=False)


def _settings(env: str, home: Path, monkeypatch, **variables: str):
    monkeypatch.setenv("RECSYS_HOME", str(home))
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return load_settings(env)


def test_local_uses_the_catalogue(tmp_path: Path, monkeypatch) -> None:
    settings = _settings("local", tmp_path, monkeypatch)
    assert with_deployed_names(settings).names == resource_names("local")


def test_lambda_appends_the_bucket_suffix(tmp_path: Path, monkeypatch) -> None:
    settings = _settings("prod", tmp_path, monkeypatch, RECSYS_BUCKET_SUFFIX=f"-{FAKE_ACCOUNT}")
    names = with_deployed_names(settings).names
    assert names.bucket("data") == f"videorecsystem-prod-data-{FAKE_ACCOUNT}"
    assert names.table("user_features") == resource_names("prod").table("user_features")


def test_cli_reads_the_cached_outputs(tmp_path: Path, monkeypatch) -> None:
    settings = _settings("staging", tmp_path, monkeypatch)
    values = {k: v["value"] for k, v in canned_outputs("staging").items()}
    path = save_outputs("staging", values, settings)
    assert path == cache_path(settings, "staging") == tmp_path / "outputs-staging.json"
    assert json.loads(path.read_text())["ApiUrl"].endswith("/staging/")
    names = with_deployed_names(settings).names
    assert names.bucket("models") == f"videorecsystem-staging-models-{FAKE_ACCOUNT}"
    assert names.secret("redis_credentials") == "VideoRecSystem-staging/redis-credentials"
    assert names.functions == resource_names("staging").functions


def test_outputs_without_resource_names_are_a_clear_error() -> None:
    with pytest.raises(NotFoundError, match="ResourceNames"):
        names_from_outputs("dev", {"ApiUrl": "https://x/"})
