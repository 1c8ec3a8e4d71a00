"""Interaction events: the schema of `POST /interactions`, and publishing onto the Kinesis stream.

Publishing also records the event in the user_activity table and drops the user's cached
recommendations, so the next recommendation reflects it at once, before the stream processor
(`recsys.event_processing`) applies it; that writes the same activity item again (the key, time + event
id, makes it idempotent) and updates the features.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, field_validator

from recsys.aws import request_client
from recsys.errors import UnavailableError
from recsys.serving.resilience import ThrottledLog, describe

if TYPE_CHECKING:
    from recsys.config import Settings
    from recsys.feature_store.online import OnlineFeatureStore

log = logging.getLogger(__name__)
_throttled = ThrottledLog(log)

EventType = Literal["view", "click", "watch", "complete", "like", "share", "skip", "dislike"]
Identifier = Annotated[
    Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
    | Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")],
    Field(description="An integer or a string id (letters, digits, _ . : @ -)", examples=[12345, "u-42"]),
]
MAX_FUTURE_S = 300


class InteractionEvent(BaseModel):
    """The body of `POST /interactions` (the reference example plus optional context)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    user_id: Identifier
    video_id: Identifier
    event_type: EventType = "view"
    category: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None
    watch_time: Annotated[StrictFloat | StrictInt, Field(ge=0, le=7 * 24 * 3600)] | None = Field(
        default=None, description="Seconds watched"
    )
    timestamp: StrictFloat | StrictInt | datetime | None = Field(
        default=None, description="Epoch seconds or ISO-8601; defaults to the time of arrival"
    )
    recommendation_id: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None

    @field_validator("timestamp")
    @classmethod
    def _not_in_future(cls, value: Any) -> Any:
        if value is None:
            return value
        try:
            ts = value.timestamp() if isinstance(value, datetime) else float(value)
        except (OverflowError, ValueError, OSError):
            ts = math.inf
        if not math.isfinite(ts) or ts < 0 or ts > time.time() + MAX_FUTURE_S:
            raise ValueError("timestamp must be epoch seconds (or ISO-8601) and not in the future")
        # Microseconds are what the stores keep (1e-300 would be a number DynamoDB cannot hold).
        return value if isinstance(value, datetime) else round(float(value), 6)

    @field_validator("watch_time")
    @classmethod
    def _milliseconds(cls, value: Any) -> Any:
        # DynamoDB numbers stop at 1e-130: keep watch time to the millisecond, as the stores do.
        return None if value is None else round(float(value), 3)

    def to_record(self, now: float | None = None) -> dict[str, Any]:
        """The event as it goes onto the stream: string ids, epoch seconds, a new event id."""
        now = time.time() if now is None else now
        if self.timestamp is None:
            ts = now
        elif isinstance(self.timestamp, datetime):
            stamp = self.timestamp if self.timestamp.tzinfo else self.timestamp.replace(tzinfo=UTC)
            ts = stamp.timestamp()
        else:
            ts = float(self.timestamp)
        record: dict[str, Any] = {
            "event_id": uuid.uuid4().hex,
            "user_id": str(self.user_id),
            "video_id": str(self.video_id),
            "event_type": self.event_type,
            "timestamp": ts,
            "received_at": now,
        }
        for name in ("category", "watch_time", "recommendation_id"):
            value = getattr(self, name)
            if value is not None:
                record[name] = value
        return record


class UserCache(Protocol):
    """Where a user's cached answers and serving state live (`recsys.serving.cache.RecommendationCache`)."""

    def record_events(self, events_by_user: dict[str, list[dict[str, Any]]]) -> bool: ...


_local_put_lock = threading.Lock()


@contextlib.contextmanager
def _serialised(settings: Settings) -> Iterator[None]:
    """Locally, one put at a time across every process of the stack's home: moto's Kinesis `put_record`
    numbers records without a lock, so two concurrent puts can get one sequence number and one is lost."""
    if not settings.is_local:
        yield
        return
    with _local_put_lock:
        settings.home.mkdir(parents=True, exist_ok=True)
        with open(settings.home / "stream-put.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


MAX_RECORDS_PER_PUT = 100  # PutRecords takes 500 (5 MB); a group this size already makes one call of many


def put_many_on_stream(settings: Settings, records: list[dict[str, Any]]) -> list[str | UnavailableError]:
    """Put event records onto the events stream (partitioned by user) in one call (PutRecord for one,
    PutRecords for more, at most MAX_RECORDS_PER_PUT); returns, for each record in order, its sequence number
    or the error that kept it off the stream."""
    if not records:
        return []
    if len(records) > MAX_RECORDS_PER_PUT:
        raise ValueError(f"at most {MAX_RECORDS_PER_PUT} records in one put, not {len(records)}")
    stream = settings.names.streams["events"]
    entries = [
        {"Data": json.dumps(r, separators=(",", ":"), allow_nan=False).encode(), "PartitionKey": r["user_id"]}
        for r in records
    ]
    try:
        with _serialised(settings):
            kinesis = request_client("kinesis", settings)
            if len(entries) == 1:
                answers = [kinesis.put_record(StreamName=stream, **entries[0])]
            else:
                answers = kinesis.put_records(StreamName=stream, Records=entries).get("Records") or []
    except Exception as exc:
        _throttled.warning("kinesis", "the event stream is unavailable, refusing events: %s", describe(exc))
        return [_unavailable(f"the event stream is unavailable ({type(exc).__name__})") for _ in records]
    if len(answers) != len(records):  # never from Kinesis; refuse rather than guess which landed
        return [_refused("an answer of the wrong length") for _ in records]
    return [
        _refused(str(a["ErrorCode"])) if a.get("ErrorCode") else str(a.get("SequenceNumber", ""))
        for a in answers
    ]


def _refused(reason: str) -> UnavailableError:
    _throttled.warning("kinesis-record", "the event stream refused an event: %s", reason)
    return _unavailable(f"the event stream refused the event ({reason})")


def _unavailable(what: str) -> UnavailableError:
    """One post's 503 (each its own instance: the posts of a group are answered on different threads)."""
    return UnavailableError(f"{what}; the event was not recorded", hint="retry the request later")


def publish_interaction(
    settings: Settings,
    event: InteractionEvent,
    feature_store: OnlineFeatureStore | None = None,
    cache: UserCache | None = None,
) -> dict[str, Any]:
    """Stream the event, record it as recent activity, drop the user's cached answers and write the event into
    their cached serving state; returns the record."""
    outcome = publish_records(settings, [event.to_record()], feature_store, cache)[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def publish_records(
    settings: Settings,
    records: list[dict[str, Any]],
    feature_store: OnlineFeatureStore | None = None,
    cache: UserCache | None = None,
) -> list[dict[str, Any] | UnavailableError]:
    """`publish_interaction` for many event records (`InteractionEvent.to_record`) at once: one put onto the
    stream, then, for the records it took, their activity items (one write) and each user's cached answers
    dropped and events written into their cached state (one Redis round trip). Those two writes are best
    effort: the events are on the stream, and its consumer records the activity and rewrites the cached state
    too. Returns, for each record in order, the record or the error that kept it off the stream (then nothing
    else is written for it)."""
    outcomes = put_many_on_stream(settings, records)  # the system of record: what fails here goes no further
    streamed = [r for r, o in zip(records, outcomes, strict=True) if not isinstance(o, BaseException)]
    if streamed and feature_store is not None:
        try:
            feature_store.record_new_activity(streamed)
        except Exception as exc:
            _throttled.warning(
                "activity", "recording recent activity failed (on the stream): %s", describe(exc)
            )
    if streamed and cache is not None:
        cache.record_events(events_by_user(streamed))
    return [r if not isinstance(o, BaseException) else o for r, o in zip(records, outcomes, strict=True)]


def events_by_user(events: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each user's events, in the order given (what `UserCache.record_events` takes)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event["user_id"], []).append(event)
    return grouped
