"""Rollback on live signals and alarms, against the local stack's registry and serving-metrics table."""

from __future__ import annotations

import time
import uuid

import pytest

from recsys.aws import client
from recsys.click_through import Rate
from recsys.registry import ModelRegistry
from recsys.release_guard import breaches, check, on_alarm, on_event
from recsys.serving.live_metrics import LiveMetrics, LiveSignals, p99_from_histogram, read_signals

from .conftest import promote, publish_tiny_version


@pytest.fixture()
def guarded(local_stack, tiny_world):
    """A fresh version promoted over the tiny world's (so a rollback has somewhere to go)."""
    promote(local_stack, tiny_world.version)
    version = f"v{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    publish_tiny_version(local_stack, version)
    promote(local_stack, version)
    yield version
    promote(local_stack, tiny_world.version)


def _serve(
    settings, version: str, n: int, *, empty: int = 0, errors: int = 0, latency_ms: float = 5.0
) -> None:
    """What n responses of `version` add to the live counters (two workers, as two server processes would)."""
    workers = [LiveMetrics(settings, background=False), LiveMetrics(settings, background=False)]
    for i in range(n):
        status = 503 if i < errors else 200
        workers[i % 2].record(version, status, latency_ms, empty=i < empty)
    for w in workers:
        w.flush()


def test_counters_from_every_worker_add_up(local_stack):
    version = f"v-metrics-{uuid.uuid4().hex[:8]}"
    _serve(local_stack, version, 40, empty=10, errors=2, latency_ms=30)
    signals = read_signals(local_stack, version, time.time() - 120)
    assert (signals.requests, signals.empty, signals.errors_5xx) == (40, 10, 2)
    assert signals.p99_ms == 50.0  # 30 ms falls in the (20, 50] bucket


def test_p99_reads_the_histogram():
    assert p99_from_histogram([0] * 13) is None
    assert p99_from_histogram([99, 1] + [0] * 11) == 1.0
    assert p99_from_histogram([0] * 12 + [5]) == float("inf")


def test_a_version_that_answers_empty_lists_is_rolled_back_with_its_reason(local_stack, tiny_world, guarded):
    _serve(local_stack, guarded, 100, empty=60)
    decision = check(local_stack, now_s=time.time())
    assert decision.action == "rolled_back" and decision.restored == tiny_world.version
    assert any("empty lists" in r for r in decision.reasons)
    registry = ModelRegistry(local_stack)
    assert registry.production(consistent=True).version == tiny_world.version
    bad = registry.get(guarded)
    assert bad.status == "archived" and "empty lists" in bad.rollback_reason and bad.rolled_back_at


def test_healthy_thin_or_late_signals_change_nothing(local_stack, tiny_world, guarded):
    registry = ModelRegistry(local_stack)
    _serve(local_stack, guarded, 10, empty=10)
    assert check(local_stack, now_s=time.time()).action == "too_little_traffic"
    _serve(local_stack, guarded, 200)
    assert check(local_stack, now_s=time.time()).action == "healthy"
    late = time.time() + local_stack.guard.period_s + 60
    _serve(local_stack, guarded, 300, errors=300)
    assert check(local_stack, now_s=late).action == "outside_guard_period"
    assert registry.production(consistent=True).version == guarded


def test_an_alarm_in_the_guard_period_rolls_back_and_outside_it_does_not(local_stack, tiny_world, guarded):
    event = {
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {
            "alarmName": "VideoRecSystem-local-api-5xx",
            "state": {"value": "ALARM", "reason": "5xx > 1%"},
        },
    }
    late = time.time() + local_stack.guard.period_s + 60
    assert on_alarm(local_stack, event, now_s=late).action == "outside_guard_period"
    ok = {**event, "detail": {**event["detail"], "state": {"value": "OK"}}}
    assert on_alarm(local_stack, ok, now_s=time.time()).action == "healthy"
    decision = on_alarm(local_stack, event, now_s=time.time())
    assert decision.action == "rolled_back" and decision.restored == tiny_world.version
    assert "VideoRecSystem-local-api-5xx" in ModelRegistry(local_stack).get(guarded).rollback_reason


def test_breaches_name_each_limit(local_stack):
    guard = local_stack.guard
    bad = LiveSignals("v", requests=1000, errors_5xx=100, empty=500, p99_ms=5000.0)
    found = breaches(bad, guard, ctr=Rate(20, 2000), previous_ctr=Rate(200, 2000))
    assert [f.split()[0] for f in found] == ["5xx", "p99", "empty", "click-through"]
    assert "1.00% (95% CI" in found[-1] and "of the previous version's 10.00%" in found[-1]
    healthy = LiveSignals("v", 1000, 0, 0, 10.0)
    assert breaches(healthy, guard, ctr=Rate(180, 2000), previous_ctr=Rate(200, 2000)) == []
    # a drop seen on too few impressions (either side) is no reason
    assert breaches(healthy, guard, ctr=Rate(0, 400), previous_ctr=Rate(200, 2000)) == []
    assert breaches(healthy, guard, ctr=Rate(10, 2000), previous_ctr=Rate(40, 400)) == []


def _add(settings, version: str, minute: int, **counts: int) -> None:
    """Add counters to one (version, minute) item, as serving and the stream processor do."""
    client("dynamodb", settings).update_item(
        TableName=settings.names.table("serving_metrics"),
        Key={"model_version": {"S": version}, "minute": {"N": str(minute)}},
        UpdateExpression="ADD " + ", ".join(f"#{k} :{k}" for k in counts),
        ExpressionAttributeNames={f"#{k}": k for k in counts},
        ExpressionAttributeValues={f":{k}": {"N": str(v)} for k, v in counts.items()},
    )


def test_a_confident_click_through_drop_against_the_previous_version_rolls_back(local_stack, tiny_world):
    run = uuid.uuid4().hex[:6]
    previous, new = (
        f"v{time.strftime('%Y%m%d-%H%M%S')}-prev-{run}",
        f"v{time.strftime('%Y%m%d-%H%M%S')}-new-{run}",
    )
    for version in (previous, new):
        publish_tiny_version(local_stack, version)
        promote(local_stack, version)
    registry = ModelRegistry(local_stack)
    try:
        promoted_minute = int(time.time() // 60)
        # The previous version before the promotion: 10% click-through over 2,000 items shown.
        _add(local_stack, previous, promoted_minute - 3, requests=400, impressions=2000, engaged=200)
        # The new one: too few impressions to tell, then as good, then a confident drop.
        _add(local_stack, new, promoted_minute, requests=300, impressions=100, engaged=0)
        assert check(local_stack, now_s=time.time()).action == "healthy"
        _add(local_stack, new, promoted_minute, impressions=1900, engaged=190)
        decision = check(local_stack, now_s=time.time())
        assert decision.action == "healthy" and decision.signals["previous_version"] == previous
        assert decision.signals["previous_impressions"] == 2000 and decision.signals["ctr"] == 0.095
        _add(local_stack, new, promoted_minute, impressions=8000)
        decision = check(local_stack, now_s=time.time())
        assert decision.action == "rolled_back" and decision.restored == previous
        assert [r.split()[0] for r in decision.reasons] == ["click-through"]
        assert registry.production(consistent=True).version == previous
        assert "click-through 1.90%" in registry.get(new).rollback_reason
    finally:
        promote(local_stack, tiny_world.version)


def test_the_functions_schedule_checks_the_counters_and_alarms_go_to_on_alarm(local_stack, guarded):
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    assert on_event(local_stack, scheduled, now_s=time.time()).action == "too_little_traffic"
    ok = {
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {"alarmName": "a", "state": {"value": "OK"}},
    }
    decision = on_event(local_stack, ok, now_s=time.time())
    assert decision.action == "healthy" and decision.reasons == ["a is OK"]
    assert ModelRegistry(local_stack).production(consistent=True).version == guarded
