"""The raw-events bucket: where every interaction event lands, in Firehose's layout, and how to read it back.

Layout (s3://{raw_events bucket}/, the catalogue's `firehose.raw_events` prefix):

    events/date=YYYY-MM-DD/hour=HH/{delivery stream}-1-YYYY-MM-DD-HH-MM-SS-{suffix}.gz
        gzip, one JSON event per line (Firehose's AppendDelimiterToRecord); date and hour are the UTC
        *arrival* time of the object's first record, not the event's own `timestamp`
    dead-letter/date=YYYY-MM-DD/{shard}-{sequence}.json
        one malformed record: {"reason", "data" (the record as text), "shard", "sequence", "arrival"}

On AWS, Firehose writes `events/` (suffix: its own uuid); locally the stream worker does, with the suffix
`{shard}-{first sequence number}`, so delivering the same stream records again overwrites the same object.
Readers deduplicate by `event_id` (Firehose delivers at least once).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from recsys.aws import client
from recsys.catalog import load_catalog
from recsys.storage import get_bytes, list_keys

if TYPE_CHECKING:
    from recsys.config import Settings

EVENTS_PREFIX = "events/"


def bucket(settings: Settings) -> str:
    """The raw-events bucket of `settings`."""
    return settings.names.bucket(load_catalog()["firehose"]["raw_events"]["destination_bucket"])


def dead_letter_prefix() -> str:
    """Prefix (in the raw-events bucket) of malformed records."""
    return str(load_catalog()["streams"]["events"]["dead_letter_prefix"])


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def object_key(settings: Settings, arrival_ts: float, suffix: str) -> str:
    """Key of one delivered object whose first record arrived at `arrival_ts` (Firehose's naming)."""
    at = _utc(arrival_ts)
    stream = settings.names.firehose["raw_events"]
    return f"{EVENTS_PREFIX}date={at:%Y-%m-%d}/hour={at:%H}/{stream}-1-{at:%Y-%m-%d-%H-%M-%S}-{suffix}.gz"


def encode(records: Iterable[bytes]) -> bytes:
    """An object's body: gzip of the records, one per line."""
    return gzip.compress(b"".join(r.rstrip(b"\n") + b"\n" for r in records), mtime=0)


def put_object(settings: Settings, key: str, records: list[bytes]) -> None:
    """Write one delivered object."""
    client("s3", settings).put_object(
        Bucket=bucket(settings), Key=key, Body=encode(records), ContentType="application/x-ndjson",
        ContentEncoding="gzip", ServerSideEncryption="AES256",
    )  # fmt: skip


def parse_records(body: bytes) -> list[dict[str, Any]]:
    """JSON records of one object: gzip or not, newline-separated or concatenated; corrupt lines skipped."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    text = body.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    records: list[dict[str, Any]] = []
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            nxt = text.find("\n", pos)  # skip a corrupt line, keep the rest
            if nxt < 0:
                break
            pos = nxt + 1
            continue
        if isinstance(obj, dict):
            records.append(obj)
    return records


def day_prefix(day: date) -> str:
    """Prefix of one arrival day."""
    return f"{EVENTS_PREFIX}date={day.isoformat()}/"


def event_keys(settings: Settings, first_day: date | None = None, last_day: date | None = None) -> list[str]:
    """Keys of every delivered object, optionally only of arrival days in [first_day, last_day]."""
    if first_day is None and last_day is None:
        return sorted(list_keys(settings, bucket(settings), EVENTS_PREFIX))
    first = first_day or date(1970, 1, 1)
    last = last_day or datetime.now(UTC).date()
    if (last - first).days > 400:  # a long window: list everything once instead of day by day
        keys = list_keys(settings, bucket(settings), EVENTS_PREFIX)
        return sorted(k for k in keys if _in_days(k, first, last))
    keys: list[str] = []
    day = first
    while day <= last:
        keys += list_keys(settings, bucket(settings), day_prefix(day))
        day += timedelta(days=1)
    return sorted(keys)


def _in_days(key: str, first: date, last: date) -> bool:
    try:
        day = date.fromisoformat(key.split("date=", 1)[1][:10])
    except (IndexError, ValueError):
        return False
    return first <= day <= last


def iter_events(settings: Settings, keys: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Every record of the objects `keys`, in key order (duplicates included)."""
    for key in keys:
        yield from parse_records(get_bytes(settings, bucket(settings), key))


def read_events(
    settings: Settings,
    since_ts: float | None = None,
    until_ts: float | None = None,
    arrived_after_ts: float | None = None,
) -> list[dict[str, Any]]:
    """Collected events, deduplicated by event id (first delivery wins), in arrival order.

    `since_ts`/`until_ts` bound the events' own `timestamp` ([since, until)); `arrived_after_ts` skips
    arrival days before that time (an object's partition is its arrival time, so no event is missed).
    """
    first_day = _utc(arrived_after_ts).date() if arrived_after_ts is not None else None
    keys = event_keys(settings, first_day, None) if first_day else event_keys(settings)
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for event in iter_events(settings, keys):
        event_id = event.get("event_id")
        if not isinstance(event_id, str) or event_id in seen:
            continue
        ts = event.get("timestamp")
        if not isinstance(ts, int | float):
            continue
        if (since_ts is not None and ts < since_ts) or (until_ts is not None and ts >= until_ts):
            continue
        seen.add(event_id)
        out.append(event)
    return out


def write_dead_letter(
    settings: Settings,
    reason: str,
    data: bytes,
    shard: str | None = None,
    sequence: str | None = None,
    arrival_ts: float | None = None,
) -> str:
    """Store one malformed record with its reason; returns its key. The same record always gets the same key."""
    arrival = arrival_ts if arrival_ts is not None else datetime.now(UTC).timestamp()
    ident = f"{shard}-{sequence}" if shard and sequence else hashlib.sha256(data).hexdigest()[:32]
    key = f"{dead_letter_prefix()}date={_utc(arrival):%Y-%m-%d}/{ident}.json"
    body = {
        "reason": reason,
        "data": data[:65_536].decode("utf-8", errors="replace"),
        "bytes": len(data),
        "shard": shard,
        "sequence": sequence,
        "arrival": arrival,
    }
    client("s3", settings).put_object(
        Bucket=bucket(settings), Key=key, Body=json.dumps(body).encode(), ContentType="application/json",
        ServerSideEncryption="AES256",
    )  # fmt: skip
    return key


def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    """Every stored malformed record (with its key)."""
    out = []
    for key in sorted(list_keys(settings, bucket(settings), dead_letter_prefix())):
        out.append({"key": key, **json.loads(get_bytes(settings, bucket(settings), key))})
    return out
