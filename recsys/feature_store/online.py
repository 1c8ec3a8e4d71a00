"""The online feature store: user and video features and recent user activity in DynamoDB.

Reads are batched (BatchGetItem, 100 keys per call) and come back aligned with the requested keys
(None for a missing item), with DynamoDB's Decimals turned into floats. Writes convert floats (and
numpy scalars/arrays) into Decimals, as boto3 requires.

user_activity items: `user_id` (S), `event_ts` (S, `<ISO-8601 UTC, microseconds>Z#<event_id>`, unique and
sorting by time), `video_id`, `event_type`, `category`, `watch_time`, `recommendation_id`, `expires_at` (TTL).
One more item per user, `event_ts = "~engaged"` (it sorts after every time), holds `video_ids`: the last
ENGAGED_BOUND videos the user interacted with since the model was trained, newest last (the stream
processor, `recsys.event_processing`, keeps it); a newest-first query returns it first, so serving reads
it with the recent activity in one round trip (`activity_and_engaged`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from recsys.aws import client
from recsys.errors import UnavailableError, ValidationError
from recsys.timestamps import iso_at

if TYPE_CHECKING:
    from recsys.config import Settings

BATCH_GET_SIZE = 100
BATCH_WRITE_SIZE = 25
MAX_TRANSACTION_ITEMS = 100  # the most items TransactWriteItems takes
DYNAMODB_SMALLEST_NUMBER = 1e-130  # the smallest magnitude a DynamoDB number holds besides 0
WRITE_THREADS = 4  # BatchWriteItem calls in flight when writing many items
ACTIVITY_TTL_S = 30 * 24 * 3600
MAX_UNPROCESSED_RETRIES = 8
ENGAGED_SORT_KEY = "~engaged"
ENGAGED_BOUND = 5_000

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_dynamo(value: Any) -> Any:
    """A Python/numpy value in the form boto3 can store: floats -> Decimal, arrays -> lists, NaN -> None."""
    if value is None or isinstance(value, bool | str | Decimal | bytes):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        if abs(value) < DYNAMODB_SMALLEST_NUMBER:  # below what DynamoDB stores (it would refuse the item)
            return Decimal(0)
        return Decimal(repr(float(value)))  # float() first: a numpy float64 is a float with another repr
    if hasattr(value, "tolist"):  # numpy scalar or array
        return to_dynamo(value.tolist())
    if isinstance(value, dict):
        return {str(k): to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    if isinstance(value, set | frozenset) and all(isinstance(v, str) for v in value):
        return set(value) or None  # a string set (DynamoDB holds no empty set: left out)
    raise ValidationError(f"cannot store a value of type {type(value).__name__} in DynamoDB")


def from_dynamo(value: Any) -> Any:
    """A deserialised DynamoDB value with Decimals as float and sets as lists."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    if isinstance(value, set):
        return [from_dynamo(v) for v in value]
    if isinstance(value, Binary):
        return bytes(value)
    return value


def embedding_attribute(vector: Any) -> bytes:
    """A video's embedding as stored in its online features item: little-endian float32 bytes (a Binary of
    256 bytes for 64 dimensions; 64 Number attributes cost about 3x the size and the marshalling)."""
    return np.asarray(vector, dtype="<f4").tobytes()


def embedding_values(value: Any) -> np.ndarray:
    """The numbers of a stored embedding (the bytes above, or a list of numbers as earlier versions wrote)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return np.frombuffer(bytes(value), dtype="<f4").astype(np.float32)
    return np.asarray(value, dtype=np.float32)


def _typed_slow(value: Any) -> Any:
    """`value` in the typed wire form through boto3's serialiser (None: a value to leave out of a map)."""
    value = to_dynamo(value)
    return None if value is None else _serializer.serialize(value)


def _typed(value: Any) -> Any:
    """`value` in the typed wire form, as `_typed_slow` gives it, without boto3's per-value dispatch for the
    common types (str, bool, int, float, list, dict, bytes); any other type takes `_typed_slow`."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is int and -(10**38) < value < 10**38:
        return {"N": str(value)}
    if kind is float:
        if math.isnan(value) or math.isinf(value):
            return None
        if abs(value) < DYNAMODB_SMALLEST_NUMBER:
            return {"N": "0"}
        if abs(value) >= 1e125:  # past what DynamoDB holds: boto3's serialiser refuses it
            return _typed_slow(value)
        return {"N": str(Decimal(repr(value)))}
    if kind is dict:
        members = {}
        for key, member in value.items():
            if member is None:
                continue
            typed = _typed(member)
            members[str(key)] = {"NULL": True} if typed is None else typed
        return {"M": members}
    if kind is list or kind is tuple:
        return {"L": [{"NULL": True} if v is None else (_typed(v) or {"NULL": True}) for v in value]}
    if kind is bytes:
        return {"B": value}
    if (kind is set or kind is frozenset) and all(type(v) is str for v in value):
        return {"SS": list(value)} if value else None
    if value is None:
        return None
    return _typed_slow(value)


def serialize_item(item: dict[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB's typed wire form (low-level client); attributes that are None (or NaN) are left
    out."""
    out = {}
    for key, value in item.items():
        if value is None:
            continue
        typed = _typed(value)
        if typed is not None:
            out[str(key)] = typed
    return out


def deserialize_item(raw: dict[str, Any]) -> dict[str, Any]:
    """A wire-form item as plain Python values (Decimals as float)."""
    return from_dynamo({k: _deserializer.deserialize(v) for k, v in raw.items()})


def event_sort_key(timestamp: float, event_id: str) -> str:
    """The user_activity range key: ISO-8601 UTC with microseconds, `#`, the event id."""
    return f"{iso_at(timestamp)}#{event_id}"


def activity_item(event: dict[str, Any]) -> dict[str, Any]:
    """The user_activity item of one event (needs user_id, video_id, event_id, timestamp)."""
    for name in ("user_id", "video_id", "event_id", "timestamp"):
        if event.get(name) in (None, ""):
            raise ValidationError(f"an activity event lacks {name!r}")
    ts = float(event["timestamp"])
    item = {
        "user_id": str(event["user_id"]),
        "event_ts": event_sort_key(ts, str(event["event_id"])),
        "video_id": str(event["video_id"]),
        "event_type": str(event.get("event_type") or "view"),
        "timestamp": ts,
        "expires_at": int(ts) + ACTIVITY_TTL_S,
    }
    for optional in ("category", "watch_time", "recommendation_id"):
        if event.get(optional) is not None:
            item[optional] = event[optional]
    return item


def engaged_after(videos: list[str], events: list[dict[str, Any]], bound: int = ENGAGED_BOUND) -> list[str]:
    """The engaged list (newest last, no repeats, at most `bound`) after `events`."""
    order = dict.fromkeys(videos)
    for event in events:
        order.pop(event["video_id"], None)
        order[event["video_id"]] = None
    out = list(order)
    return out[-bound:] if len(out) > bound else out


def serving_state_after(state: dict[str, Any], events: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A user's serving state (`activity`: recent activity items newest first, at most `limit`; `engaged`: the
    engaged video ids) after `events` (stream order), as `activity_and_engaged` reads it once the events are
    recorded and applied: each event's activity item (the same item, attribute types and all, as the table
    returns it) in time order, an event already there once, and its video in the engaged list."""
    activity = {
        str(item.get("event_ts")): item for item in state.get("activity") or [] if isinstance(item, dict)
    }
    for event in events:
        item = deserialize_item(serialize_item(activity_item(event)))
        activity[str(item["event_ts"])] = item
    newest = [activity[key] for key in sorted(activity, reverse=True)[: max(int(limit), 0)]]
    engaged = engaged_after([str(v) for v in state.get("engaged") or []], events)
    return {"activity": newest, "engaged": engaged}


class OnlineFeatureStore:
    """Batched, key-aligned access to the online feature tables of one environment."""

    def __init__(self, settings: Settings, dynamodb: Any | None = None) -> None:
        self._settings = settings
        self._ddb = dynamodb or client("dynamodb", settings)
        names = settings.names
        self.user_table = names.table("user_features")
        self.video_table = names.table("video_features")
        self.activity_table = names.table("user_activity")

    # ----- reads
    def get_users(self, user_ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """User feature items aligned with `user_ids` (None where a user has none)."""
        return self._batch_get(self.user_table, "user_id", user_ids)

    def get_videos(
        self, video_ids: Sequence[str], attributes: Sequence[str] | None = None
    ) -> list[dict[str, Any] | None]:
        """Video feature items aligned with `video_ids` (None where a video has none).

        `attributes` limits what is read (e.g. everything but the 64-number embedding, which is most of
        an item's size and deserialisation time).
        """
        return self._batch_get(self.video_table, "video_id", video_ids, attributes)

    def _batch_get(
        self, table: str, key: str, ids: Sequence[str], attributes: Sequence[str] | None = None
    ) -> list[dict[str, Any] | None]:
        wanted = [str(i) for i in ids]
        unique = list(dict.fromkeys(wanted))
        found: dict[str, dict[str, Any]] = {}
        projection: dict[str, Any] = {}
        if attributes:
            names = list(dict.fromkeys([key, *attributes]))
            projection = {
                "ProjectionExpression": ", ".join(f"#a{i}" for i in range(len(names))),
                "ExpressionAttributeNames": {f"#a{i}": n for i, n in enumerate(names)},
            }
        for start in range(0, len(unique), BATCH_GET_SIZE):
            chunk = unique[start : start + BATCH_GET_SIZE]
            request: dict[str, Any] = {table: {"Keys": [{key: {"S": i}} for i in chunk], **projection}}
            for attempt in range(MAX_UNPROCESSED_RETRIES + 1):
                response = self._ddb.batch_get_item(RequestItems=request)
                for raw in response.get("Responses", {}).get(table, []):
                    item = deserialize_item(raw)
                    found[str(item[key])] = item
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
        return [found.get(i) for i in wanted]

    def approximate_items(self, table: str) -> int | None:
        """The table's item count as DynamoDB reports it (refreshed about every six hours on AWS), or None
        when it cannot be read."""
        try:
            return int(self._ddb.describe_table(TableName=table)["Table"]["ItemCount"])
        except Exception:  # a cost heuristic only: callers fall back to their default
            return None

    def scan(self, table: str, attributes: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of one of these tables in wire form, page by page (bulk reads, `feature_store.bulk`)."""
        request: dict[str, Any] = {"TableName": table}
        if attributes:
            request["ProjectionExpression"] = ", ".join(f"#a{i}" for i in range(len(attributes)))
            request["ExpressionAttributeNames"] = {f"#a{i}": a for i, a in enumerate(attributes)}
        while True:
            page = self._ddb.scan(**request)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ----- writes
    def put_users(self, items: Iterable[dict[str, Any]]) -> int:
        """Write user feature items (each needs `user_id`); returns how many were written."""
        return self._batch_put(self.user_table, "user_id", items)

    def put_videos(self, items: Iterable[dict[str, Any]]) -> int:
        """Write video feature items (each needs `video_id`); returns how many were written."""
        return self._batch_put(self.video_table, "video_id", items)

    def _batch_put(self, table: str, key: str, items: Iterable[dict[str, Any]]) -> int:
        # Last write wins for a key that appears twice (BatchWriteItem rejects duplicates in one call).
        by_key: dict[str, dict[str, Any]] = {}
        for item in items:
            if item.get(key) in (None, ""):
                raise ValidationError(f"an item for table {table!r} lacks its key {key!r}")
            by_key[str(item[key])] = {**item, key: str(item[key])}
        rows = list(by_key.values())
        requests = [
            {
                table: [
                    {"PutRequest": {"Item": serialize_item(r)}}
                    for r in rows[start : start + BATCH_WRITE_SIZE]
                ]
            }
            for start in range(0, len(rows), BATCH_WRITE_SIZE)
        ]
        if len(requests) <= 1:
            for request in requests:
                self._write_all(request)
            return len(rows)
        # Several calls in flight: the next request is serialised and sent while DynamoDB stores the last.
        with ThreadPoolExecutor(min(WRITE_THREADS, len(requests))) as pool:
            for _ in pool.map(self._write_all, requests):
                pass
        return len(rows)

    def _write_all(self, request: dict[str, Any]) -> None:
        for attempt in range(MAX_UNPROCESSED_RETRIES + 1):
            response = self._ddb.batch_write_item(RequestItems=request)
            request = response.get("UnprocessedItems") or {}
            if not request:
                return
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise UnavailableError("DynamoDB left items unprocessed after retries", hint="retry later")

    # ----- activity
    def record_activity(self, event: dict[str, Any]) -> dict[str, Any]:
        """Store one interaction event (needs user_id, video_id, event_id, timestamp); returns the item."""
        item = activity_item(event)
        # Never replace the stream processor's copy: it carries `applied_at`, the exactly-once marker.
        with contextlib.suppress(self._ddb.exceptions.ConditionalCheckFailedException):
            self._ddb.put_item(
                TableName=self.activity_table,
                Item=serialize_item(item),
                ConditionExpression="attribute_not_exists(event_ts)",
            )
        return item

    def record_new_activity(self, events: list[dict[str, Any]]) -> None:
        """`record_activity` for many events (distinct event ids): each written unless the stream processor
        has stored it already, up to MAX_TRANSACTION_ITEMS in one transaction. A transaction that a stored event
        cancels is written again item by item (the first failure of those is raised once all were tried)."""
        if len(events) == 1:
            self.record_activity(events[0])
            return
        for start in range(0, len(events), MAX_TRANSACTION_ITEMS):
            chunk = events[start : start + MAX_TRANSACTION_ITEMS]
            puts = [
                {
                    "Put": {
                        "TableName": self.activity_table,
                        "Item": serialize_item(activity_item(e)),
                        "ConditionExpression": "attribute_not_exists(event_ts)",
                    }
                }
                for e in chunk
            ]
            try:
                self._ddb.transact_write_items(TransactItems=puts)
            except self._ddb.exceptions.TransactionCanceledException:
                failed = self._record_each(chunk)
                if failed is not None:
                    raise failed from None

    def _record_each(self, events: list[dict[str, Any]]) -> Exception | None:
        """`record_activity` of each event, one failing write not keeping the others out; the first failure."""
        first: Exception | None = None
        for event in events:
            try:
                self.record_activity(event)
            except Exception as exc:
                if first is None:
                    first = exc
        return first

    def record_activities(self, events: Iterable[dict[str, Any]]) -> int:
        """Store many events with batch writes (an event seen twice is written once); returns how many."""
        by_key = {(i["user_id"], i["event_ts"]): i for i in map(activity_item, events)}
        rows = list(by_key.values())
        for start in range(0, len(rows), BATCH_WRITE_SIZE):
            chunk = rows[start : start + BATCH_WRITE_SIZE]
            self._write_all(
                {self.activity_table: [{"PutRequest": {"Item": serialize_item(r)}} for r in chunk]}
            )
        return len(rows)

    def recent_activity(self, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The user's most recent `limit` events, newest first."""
        if limit <= 0:
            return []
        response = self._ddb.query(
            TableName=self.activity_table,
            KeyConditionExpression="user_id = :u AND event_ts < :engaged",
            ExpressionAttributeValues={":u": {"S": str(user_id)}, ":engaged": {"S": ENGAGED_SORT_KEY}},
            ScanIndexForward=False,
            Limit=int(limit),
        )
        return [deserialize_item(raw) for raw in response.get("Items", [])]

    def activity_and_engaged(self, user_id: str, limit: int = 20) -> tuple[list[dict[str, Any]], list[str]]:
        """The user's most recent `limit` events (newest first) and engaged video ids, in one query."""
        response = self._ddb.query(
            TableName=self.activity_table,
            KeyConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": {"S": str(user_id)}},
            ScanIndexForward=False,
            Limit=max(int(limit), 0) + 1,
        )
        items = [deserialize_item(raw) for raw in response.get("Items", [])]
        engaged: list[str] = []
        if items and items[0].get("event_ts") == ENGAGED_SORT_KEY:
            engaged = [str(v) for v in items.pop(0).get("video_ids") or []]
        return items[: max(int(limit), 0)], engaged
