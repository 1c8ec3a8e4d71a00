"""Times as the stores write them, and back: ISO-8601 in UTC with microseconds and a `Z`, which sorts in time
order as text (the registry's `promoted_at`, the activity table's range keys), and epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime

ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def now_iso() -> str:
    """The current time as ISO-8601 UTC with microseconds (sorts in time order)."""
    return datetime.now(UTC).strftime(ISO_FORMAT)


def iso_at(epoch_s: float) -> str:
    """`epoch_s` as ISO-8601 UTC with microseconds, the form `now_iso` writes."""
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime(ISO_FORMAT)


def epoch_of(text: str) -> float:
    """Epoch seconds of an ISO-8601 time (`Z` or an offset; without either, UTC); ValueError if it is none."""
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
