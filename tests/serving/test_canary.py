"""Canaries against the local stack: sticky buckets, the variant on every answer, per-variant caches, --stop."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from typer.testing import CliRunner

from recsys.aws import client
from recsys.cli.main import app as cli
from recsys.config import ServingConfig
from recsys.feature_store.online import deserialize_item
from recsys.registry import ModelRegistry
from recsys.serving.api import create_app, openapi_json
from recsys.serving.batch import fill_cache
from recsys.serving.http_server import proxy_event
from recsys.serving.service import RecommendationService
from recsys.serving.tracking import InferenceTracker
from recsys.serving.variants import bucket, variant_of

from .conftest import promote, publish_tiny_version

runner = CliRunner()


def _service(settings) -> RecommendationService:
    return RecommendationService(
        settings,
        ServingConfig(poll_interval_s=0.2),
        tracker=InferenceTracker(settings, background=False),
    )


def _get(app, path: str, query: str = "") -> tuple[int, dict]:
    result = app.resolve(proxy_event("GET", path, query), None)
    return result["statusCode"], json.loads(result["body"])


@pytest.fixture()
def canary(local_stack, tiny_world):
    """A second version (user tastes reversed, so its answers differ) serving 10% of users beside production."""
    promote(local_stack, tiny_world.version)
    version = f"v{time.strftime('%Y%m%d-%H%M%S')}-canary-{uuid.uuid4().hex[:6]}"
    publish_tiny_version(local_stack, version, seed=0, flip=True)
    registry = ModelRegistry(local_stack)
    registry.register(version, {"recall_at_100": 0.5}, f"job-{version}")
    result = runner.invoke(cli, ["model", "canary", version, "--share", "10", "--env", "local", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"]["canary_share"] == 10
    listed = runner.invoke(cli, ["model", "list", "--env", "local"])
    assert listed.exit_code == 0 and "(canary 10%)" in listed.stdout
    yield version
    running = registry.canary()
    if running is not None:
        registry.clear_canary(running.version)


def _split(service, users) -> tuple[set[str], set[str]]:
    found: dict[str, set[str]] = {"canary": set(), "production": set()}
    for user in users:
        found[service.models.for_user(user)[1]].add(user)
    return found["canary"], found["production"]


def test_buckets_are_stable_hashes_of_the_user_id() -> None:
    assert bucket("12345") == bucket("12345") and 0 <= bucket("12345") < 100
    assert [variant_of(u, 0) for u in ("2", "4", "9")] == ["production"] * 3  # no canary: nobody
    assert {variant_of(str(u), 50) for u in range(200)} == {"canary", "production"}
    # raising the share keeps every canary user in the canary
    small = {str(u) for u in range(500) if variant_of(str(u), 5) == "canary"}
    assert small <= {str(u) for u in range(500) if variant_of(str(u), 20) == "canary"}


def test_a_10_percent_canary_gets_about_10_percent_of_2000_users_the_same_on_every_call(
    local_stack, tiny_world, canary
):
    users = [f"user-{i}" for i in range(2000)]
    service = _service(local_stack)
    first, rest = _split(service, users)
    assert 140 <= len(first) <= 260 and len(first) + len(rest) == 2000
    assert _split(service, users)[0] == first  # the same users on a second call
    restarted = _service(local_stack)  # a new process or instance: the same buckets
    assert _split(restarted, users)[0] == first
    model, variant = restarted.models.for_user(sorted(first)[0])
    assert (variant, model.version) == ("canary", canary)
    assert restarted.models.for_user(sorted(rest)[0])[0].version == tiny_world.version


def test_each_answer_tracking_item_and_cached_list_carries_its_variant(local_stack, tiny_world, canary):
    service = _service(local_stack)
    web = create_app(service)
    users = tiny_world.user_ids
    in_canary = next(u for u in users if variant_of(u, 10) == "canary")
    in_production = next(u for u in users if variant_of(u, 10) == "production")
    service.cache.invalidate(in_canary)
    service.cache.invalidate(in_production)

    status, body = _get(web, f"/recommendations/{in_canary}", "k=5")
    assert status == 200 and (body["variant"], body["model_version"]) == ("canary", canary)
    assert body["source"] == "model"
    status, again = _get(web, f"/recommendations/{in_canary}", "k=5")
    assert (again["source"], again["variant"], again["model_version"]) == ("cache", "canary", canary)
    assert [i["video_id"] for i in again["items"]] == [i["video_id"] for i in body["items"]]
    status, other = _get(web, f"/recommendations/{in_production}", "k=5")
    assert (other["variant"], other["model_version"]) == ("production", tiny_world.version)

    # The canary's answer is its own: production's model would have answered this user differently.
    production = service.models.current()
    picks, _, _ = service.compute_selection(production, in_canary, 5, None, True, [])
    assert [str(v) for v in production.video_ids[picks.rows]] != [i["video_id"] for i in body["items"]]

    # Tracking items record the variant and version that answered.
    service.tracker.flush()
    ddb = client("dynamodb", local_stack)
    table = local_stack.names.table("inference_tracking")
    for answer in (body, again, other):
        raw = ddb.get_item(TableName=table, Key={"recommendation_id": {"S": answer["recommendation_id"]}})
        item = deserialize_item(raw["Item"])
        assert (item["variant"], item["model_version"]) == (answer["variant"], answer["model_version"])

    # /cached holds each user's variant's list.
    assert fill_cache(service, [in_canary, in_production], k=4) == 2
    try:
        status, cached = _get(web, f"/cached/{in_canary}")
        assert status == 200 and cached["source"] == "precomputed"
        assert (cached["variant"], cached["model_version"]) == ("canary", canary)
        status, cached = _get(web, f"/cached/{in_production}")
        assert (cached["variant"], cached["model_version"]) == ("production", tiny_world.version)
    finally:
        for user in (in_canary, in_production):
            ddb.delete_item(TableName=service.precomputed_table, Key={"user_id": {"S": user}})

    spec = json.loads(openapi_json(web))["components"]["schemas"]
    for name in ("RecommendationResponse", "CachedRecommendations"):
        assert {"variant", "model_version"} <= set(spec[name]["properties"])
    assert "canary" in spec["HealthResponse"]["properties"]


def test_stopping_the_canary_returns_its_users_to_production_without_their_canary_lists(
    local_stack, tiny_world, canary
):
    service = _service(local_stack)
    in_canary = next(u for u in tiny_world.user_ids if variant_of(u, 10) == "canary")
    service.cache.invalidate(in_canary)
    assert service.recommend(in_canary, k=5, track=False)["variant"] == "canary"
    assert service.recommend(in_canary, k=5, track=False)["source"] == "cache"
    assert fill_cache(service, [in_canary], k=5) == 1
    ddb = client("dynamodb", local_stack)
    try:
        assert service.cached(in_canary)["model_version"] == canary

        result = runner.invoke(cli, ["model", "canary", "--stop", "--env", "local", "--json"])
        assert result.exit_code == 0 and json.loads(result.stdout)["data"]["stopped"] == canary
        service.models.refresh(force=True)  # what the next registry check (poll interval) does

        assert _split(service, [f"user-{i}" for i in range(300)])[0] == set()
        after = service.recommend(in_canary, k=5, track=False)
        assert (after["variant"], after["model_version"]) == ("production", tiny_world.version)
        assert after["source"] == "model"  # not the canary's cached list
        cached = service.cached(in_canary)
        assert (cached["variant"], cached["model_version"]) == ("production", tiny_world.version)
        assert cached["source"] != "precomputed"  # the canary's precomputed list is not served
    finally:
        ddb.delete_item(TableName=service.precomputed_table, Key={"user_id": {"S": in_canary}})


def test_a_canary_that_cannot_be_loaded_leaves_its_users_on_production_and_health_says_so(
    local_stack, tiny_world
):
    promote(local_stack, tiny_world.version)
    registry = ModelRegistry(local_stack)
    version = f"v-unloadable-{uuid.uuid4().hex[:8]}"  # registered, but no serving bundle in S3
    registry.register(version, {}, "job-none")
    registry.set_canary(version, 50)
    service = _service(local_stack)
    user = next(u for u in tiny_world.user_ids if variant_of(u, 50) == "canary")
    try:
        web = create_app(service)
        status, body = _get(web, f"/recommendations/{user}", "k=3")
        assert status == 200, body
        assert (body["variant"], body["model_version"]) == ("production", tiny_world.version)
        status, health = _get(web, "/health")
        assert status == 200 and health["status"] == "degraded" and "canary" in health["degraded"]
        assert health["canary"]["version"] == version and health["canary"]["served"] is False
        assert version in health["detail"] and "get production" in health["detail"]
    finally:
        registry.clear_canary(version)
        service.cache.invalidate(user)  # other tests ask for this user's list afresh


def test_promote_requiring_the_canary_no_worse_refuses_without_enough_traffic(
    local_stack, tiny_world, canary
):
    result = runner.invoke(
        cli, ["model", "promote", canary, "--require-canary-no-worse", "--env", "local", "--json"]
    )
    assert result.exit_code == 7, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "gate_failed" and "too little traffic" in error["message"]
    assert "(each needs 500)" in error["message"] and "production unchanged" in error["message"]
    registry = ModelRegistry(local_stack)
    assert registry.production(consistent=True).version == tiny_world.version
    assert registry.canary().version == canary
