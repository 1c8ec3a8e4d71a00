"""Live serving through the API: counters per version, rollback of a bad promotion, flags from the config secret."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from recsys.aws import client
from recsys.config import ServingConfig
from recsys.registry import ModelRegistry
from recsys.release_guard import check
from recsys.secrets import reset_secret_stores, secret_store
from recsys.serving.api import create_app
from recsys.serving.http_server import proxy_event
from recsys.serving.live_metrics import read_signals
from recsys.serving.service import RecommendationService
from recsys.serving.tracking import InferenceTracker

from .conftest import promote, publish_tiny_version


def _service(settings, **config) -> RecommendationService:
    return RecommendationService(
        settings,
        ServingConfig(poll_interval_s=0.1, **config),
        tracker=InferenceTracker(settings, background=False),
    )


def _get(app, path: str, query: str = "") -> tuple[int, dict]:
    result = app.resolve(proxy_event("GET", path, query), None)
    return result["statusCode"], json.loads(result["body"])


def test_a_bad_promotion_is_rolled_back_and_production_serves_the_previous_version(local_stack, tiny_world):
    promote(local_stack, tiny_world.version)
    bad = f"v{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    publish_tiny_version(local_stack, bad)
    promote(local_stack, bad)
    service = _service(local_stack)
    app = create_app(service)
    try:
        user = tiny_world.user_ids[0]
        assert _get(app, f"/recommendations/{user}")[1]["model_version"] == bad
        # The new version answers empty lists (here: for a category it does not have), 60 times in 100.
        for i in range(100):
            status, _ = _get(app, f"/recommendations/{user}", "category=nowhere" if i < 60 else "")
            assert status == 200
        service.live_metrics.flush()
        signals = read_signals(local_stack, bad, time.time() - 300)
        assert signals.requests >= 100 and signals.empty >= 60
        decision = check(local_stack, now_s=time.time())
        assert decision.action == "rolled_back" and decision.restored == tiny_world.version
        assert "empty lists" in ModelRegistry(local_stack).get(bad).rollback_reason
        time.sleep(0.3)  # the service notices the registry within its poll interval
        assert _get(app, f"/recommendations/{user}")[1]["model_version"] == tiny_world.version
    finally:
        promote(local_stack, tiny_world.version)


@pytest.fixture()
def flags(local_stack):
    """Write `{stack}/config` feature flags; secrets are re-read after a 1 s TTL for the test."""
    sm = client("secretsmanager", local_stack)
    name = local_stack.names.secret("config")
    original = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"]
    reset_secret_stores()
    secret_store(local_stack.model_copy(update={"secrets_ttl_s": 1.0}))

    def set_flags(**values: bool) -> None:
        sm.put_secret_value(SecretId=name, SecretString=json.dumps({"feature_flags": values}))

    yield set_flags
    sm.put_secret_value(SecretId=name, SecretString=original)
    reset_secret_stores()


def test_a_flag_flipped_in_the_config_secret_changes_answers_within_the_ttl(local_stack, tiny_world, flags):
    promote(local_stack, tiny_world.version)
    service = _service(local_stack)
    unranked = _service(local_stack, ranking=False)
    users = tiny_world.user_ids[:8]

    def answers(svc) -> list[list[tuple[str, float]]]:
        out = []
        for u in users:
            items = svc.recommend(u, k=5, use_cache=False, track=False)["items"]
            out.append([(i["video_id"], i["score"]) for i in items])
        return out

    flags(ranking_enabled=True, diversity_enabled=True)
    time.sleep(1.1)
    ranked = answers(service)
    assert ranked != answers(unranked), "the ranker must change something for the flag to be visible"
    flags(ranking_enabled=False, diversity_enabled=True)
    time.sleep(1.1)  # the secrets TTL of this test
    assert service.request_config().ranking is False
    assert answers(service) == answers(unranked)
    flags(ranking_enabled=True, diversity_enabled=True)
    time.sleep(1.1)
    assert answers(service) == ranked
