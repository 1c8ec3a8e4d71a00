"""Rollback on live signals: a newly promoted version that serves badly goes back to the previous one.

Within the guard period after a promotion (`settings.guard.period_s`), production is rolled back through
`recsys.release.rollback` when, over enough requests, its 5xx share, p99 latency or share of empty lists
passes its limit, or its click-through falls below a share of the previous version's. Each rollback is
recorded on the version rolled back from (`rollback_reason`).

Click-through counts only where traffic allows: both the new version (since its promotion) and the previous
one (over the guard period before it) need `guard.min_impressions` items shown, and the drop must be
confident: the upper end of the new version's 95% interval below `guard.min_ctr_ratio` times the lower end
of the previous version's (`recsys.click_through.confident_drop`).

Two ways in, one decision:
- on AWS, a CloudWatch alarm (API 5xx, latency, empty results) goes to EventBridge, which invokes the
  `release_guard` function with the alarm's state change (`on_alarm`), and an EventBridge schedule invokes
  it every few minutes to `check` the live counters (click-through needs them: no alarm sees it);
- locally, `recsys model watch` reads the live counters that every server worker adds to
  (`recsys.serving.live_metrics`) and calls `check`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from recsys import release
from recsys.click_through import Rate, confident_drop
from recsys.errors import NotFoundError
from recsys.registry import ModelRegistry, ModelVersion
from recsys.serving.live_metrics import LiveSignals, read_signals
from recsys.timestamps import epoch_of

if TYPE_CHECKING:
    from recsys.config import GuardConfig, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GuardDecision:
    """What the guard found and did."""

    version: str | None
    action: (
        str  # "rolled_back", "healthy", "outside_guard_period", "too_little_traffic", "nothing_in_production"
    )
    reasons: list[str] = field(default_factory=list)
    restored: str | None = None
    signals: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _epoch(iso: str | None) -> float | None:
    return epoch_of(iso) if iso else None


def in_guard_period(version: ModelVersion, now_s: float, guard: GuardConfig) -> bool:
    """Whether `version` was promoted less than the guard period ago."""
    promoted = _epoch(version.promoted_at)
    return promoted is not None and now_s - promoted <= guard.period_s


def breaches(
    signals: LiveSignals, guard: GuardConfig, ctr: Rate | None = None, previous_ctr: Rate | None = None
) -> list[str]:
    """Each limit the signals pass, in words (empty when healthy or when traffic is too thin to tell).

    `ctr` and `previous_ctr` (click-through of the new and the previous version) count only when both have
    `guard.min_impressions` and the drop is confident (see the module docstring).
    """
    if signals.requests < guard.min_requests:
        return []
    found = []
    if signals.error_rate > guard.max_error_rate:
        found.append(f"5xx share {signals.error_rate:.1%} > {guard.max_error_rate:.1%}")
    if signals.p99_ms is not None and signals.p99_ms > guard.max_p99_ms:
        found.append(f"p99 latency {signals.p99_ms:.0f} ms > {guard.max_p99_ms:.0f} ms")
    if signals.empty_share > guard.max_empty_share:
        found.append(f"empty lists {signals.empty_share:.1%} > {guard.max_empty_share:.1%}")
    if (
        ctr is not None
        and previous_ctr is not None
        and min(ctr.impressions, previous_ctr.impressions) >= guard.min_impressions
        and confident_drop(ctr, previous_ctr, guard.min_ctr_ratio)
    ):
        found.append(
            f"click-through {ctr.describe()} < {guard.min_ctr_ratio:.0%} of the previous version's "
            f"{previous_ctr.describe()}"
        )
    return found


def click_through(signals: LiveSignals) -> Rate:
    """The click-through in live counters (engagements counted in the window, at most the impressions)."""
    return Rate(min(signals.engaged, signals.impressions), signals.impressions)


def previous_click_through(
    settings: Settings, registry: ModelRegistry, current: ModelVersion
) -> tuple[str, Rate] | None:
    """The version production would roll back to and its click-through over the guard period before the
    current version's promotion (None when there is none)."""
    promoted = _epoch(current.promoted_at)
    try:
        previous = release.rollback_target(registry)
    except NotFoundError:
        return None
    if promoted is None:
        return None
    before = read_signals(settings, previous.version, promoted - settings.guard.period_s, promoted)
    return previous.version, click_through(before)


def _roll_back(settings: Settings, registry: ModelRegistry, current: ModelVersion, reasons: list[str],
               publisher: Any = None) -> GuardDecision:  # fmt: skip
    reason = "automatic rollback: " + "; ".join(reasons)
    try:
        result = release.rollback(settings, reason=reason, registry=registry, publisher=publisher)
    except NotFoundError as exc:
        log.error(
            "version %s breaches its limits but cannot be rolled back: %s", current.version, exc.message
        )
        return GuardDecision(current.version, "no_previous_version", reasons)
    log.warning("rolled back %s to %s: %s", current.version, result.version.version, reason)
    return GuardDecision(current.version, "rolled_back", reasons, restored=result.version.version)


def check(
    settings: Settings,
    *,
    now_s: float,
    registry: ModelRegistry | None = None,
    publisher: Any = None,
) -> GuardDecision:
    """Read the production version's live signals since its promotion and roll back if they breach.

    Click-through is compared with the version a rollback would restore (see the module docstring).
    """
    registry = registry or ModelRegistry(settings)
    current = registry.production(consistent=True)
    if current is None:
        return GuardDecision(None, "nothing_in_production")
    if not in_guard_period(current, now_s, settings.guard):
        return GuardDecision(current.version, "outside_guard_period")
    signals = read_signals(settings, current.version, _epoch(current.promoted_at) or now_s)
    ctr = click_through(signals)
    previous = previous_click_through(settings, registry, current)
    found = breaches(signals, settings.guard, ctr, previous[1] if previous else None)
    summary = {
        **asdict(signals),
        "error_rate": signals.error_rate,
        "empty_share": signals.empty_share,
        "ctr": round(ctr.value, 6),
        "previous_version": previous[0] if previous else None,
        "previous_impressions": previous[1].impressions if previous else None,
        "previous_ctr": round(previous[1].value, 6) if previous else None,
    }
    if signals.requests < settings.guard.min_requests:
        return GuardDecision(current.version, "too_little_traffic", signals=summary)
    if not found:
        return GuardDecision(current.version, "healthy", signals=summary)
    decision = _roll_back(settings, registry, current, found, publisher)
    return GuardDecision(decision.version, decision.action, found, decision.restored, summary)


def on_alarm(
    settings: Settings,
    event: dict[str, Any],
    *,
    now_s: float,
    registry: ModelRegistry | None = None,
    publisher: Any = None,
) -> GuardDecision:
    """An EventBridge "CloudWatch Alarm State Change" event: roll back when an alarm fires in the guard period."""
    detail = event.get("detail") or {}
    state = (detail.get("state") or {}).get("value")
    alarm = str(detail.get("alarmName") or "an alarm")
    registry = registry or ModelRegistry(settings)
    current = registry.production(consistent=True)
    if current is None:
        return GuardDecision(None, "nothing_in_production")
    if state != "ALARM":
        return GuardDecision(current.version, "healthy", [f"{alarm} is {state}"])
    if not in_guard_period(current, now_s, settings.guard):
        return GuardDecision(current.version, "outside_guard_period", [f"{alarm} fired"])
    reason = f"alarm {alarm}: {detail.get('state', {}).get('reason', 'in ALARM')}"[:400]
    return _roll_back(settings, registry, current, [reason], publisher)


def on_event(
    settings: Settings,
    event: dict[str, Any],
    *,
    now_s: float,
    registry: ModelRegistry | None = None,
    publisher: Any = None,
) -> GuardDecision:
    """What the release_guard function does with an EventBridge event: `check` on its schedule, else `on_alarm`."""
    if event.get("detail-type") == "Scheduled Event":
        return check(settings, now_s=now_s, registry=registry, publisher=publisher)
    return on_alarm(settings, event, now_s=now_s, registry=registry, publisher=publisher)
