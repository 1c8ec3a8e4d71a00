"""Rollback on live signals and alarms, against the local stack's registry and serving-metrics table."""

from __future__ import annotations

import time
import uuid

import pytest

from recsys.registry import ModelRegistry
from recsys.release_guard import breaches, check, on_alarm
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
    found = breaches(bad, guard, ctr=0.01, previous_ctr=0.10)
    assert [f.split()[0] for f in found] == ["5xx", "p99", "empty", "click-through"]
    assert breaches(LiveSignals("v", 1000, 0, 0, 10.0), guard, ctr=0.09, previous_ctr=0.10) == []
