"""Stream processing: interaction events applied to the online stores, exactly once per event id.

What one event changes (the event processor Lambda on AWS, `recsys events worker` locally, the same code):

- `user_activity`: the event's item (key: user, `<time>#<event id>`), and the user's engaged set (the item
  `event_ts = "~engaged"`: the last ENGAGED_BOUND video ids the user interacted with, newest last), which
  serving reads with the recent activity in one query and leaves out of every answer;
- `user_features`: interaction_count, total_weight, last_interaction_ts, category_affinity, top_category
  (the training-time features, updated the way training computes them: the event's weight by type and
  watch ratio, added to its category's share);
- `video_features`: interaction_count, last_event_ts and the trending score (events decayed with a
  half-life of TRENDING_HALF_LIFE_S); a video the store does not know yet gets an item (its category from
  the event), so the next training run on the events source knows it;
- `inference_tracking`: the recommendation the event answers (`recommendation_id`) records the engaged
  video (`engaged_video_ids`, `engaged_at`): an impression became an engagement. Each newly engaged item is
  also counted for the model version that showed it in the live serving counters
  (`recsys.serving.live_metrics`, written once per batch), which the release guard compares.

Exactly once: an event's activity item (its key is the user and `<time>#<event id>`) is its marker. It is
written with `applied_at` in the same DynamoDB transaction as the changes the event causes, on the condition
that it has no `applied_at` yet (the API writes the same item first, without it, so that serving sees the
event at once). The features are read whole, updated in memory and put back on the condition that nobody
changed them meanwhile (a revision number, and the model version, so a deployment's rewrite is never
overwritten with older values); a user's items come from the processor's cache when it holds them
(`UserItemCache`, the local worker only), and a stale copy fails the same condition. The markers are not
read beforehand: a redelivered or replayed event fails its marker's condition, which cancels its group's
transaction; the cancellation names those events (without reasons, the group's markers are read), they are
counted as duplicates and change nothing, and the rest is retried. A conflict on an entity re-reads it and retries.
Events are applied in groups of up to 100 transaction items, a user's events together (their order kept).
Users who interacted with the same video are put side by side (`transaction_order`), so that a popular
video's item is rewritten once per group that holds it rather than once per user's group.
The marker lives as long as the activity item (ACTIVITY_TTL_S, 30 days): `recsys events replay` refuses to
start earlier than that.

A malformed record (not JSON, a missing or invalid field, an unknown event type, larger than
MAX_RECORD_BYTES) is stored with its reason under the raw-events bucket's dead-letter prefix and counts as
handled: it never blocks its batch. A record whose transaction keeps failing is reported as a batch item
failure, so the stream delivers it again.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_args

from botocore.exceptions import ClientError

from recsys.aws import bulk_client
from recsys.events import EventType, events_by_user
from recsys.feature_store.online import (
    BATCH_GET_SIZE,
    ENGAGED_SORT_KEY,
    MAX_TRANSACTION_ITEMS,
    activity_item,
    deserialize_item,
    engaged_after,
    event_sort_key,
    serialize_item,
)
from recsys.pipeline_config import WeightsConfig
from recsys.raw_events import write_dead_letter
from recsys.serving.live_metrics import LiveMetrics

if TYPE_CHECKING:
    from recsys.config import Settings

log = logging.getLogger(__name__)

EVENT_TYPES = frozenset(get_args(EventType))
ENGAGING_TYPES = frozenset({"view", "click", "watch", "complete", "like", "share"})
MAX_RECORD_BYTES = 16 * 1024  # the API's body limit
MAX_TRANSACTION_BYTES = 3_500_000  # DynamoDB refuses transactions over 4 MB
EVENT_ITEM_BYTES = 1024
MAX_ATTEMPTS = 8
TRENDING_HALF_LIFE_S = 7 * 24 * 3600
MAX_AFFINITY_CATEGORIES = 10
ID_MAX = 128


@dataclass
class StreamRecord:
    """One record as the stream delivers it (data bytes and where it came from)."""

    data: bytes
    sequence: str | None = None
    shard: str | None = None
    arrival_ts: float | None = None


@dataclass
class ApplyResult:
    """What one call applied."""

    applied: list[str] = field(default_factory=list)  # event ids applied by this call
    duplicates: int = 0  # already applied (a redelivery or replay), or repeated within the batch
    dead_letters: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # record id (sequence) or event id -> reason
    transactions: int = 0
    conflicts: int = 0
    erased: int = 0  # dated at or before their user's erasure (`recsys users forget`): dropped

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": len(self.applied),
            "erased": self.erased,
            "duplicates": self.duplicates,
            "dead_letters": self.dead_letters,
            "failed": len(self.failed),
            "transactions": self.transactions,
            "conflicts": self.conflicts,
        }


def _identifier(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if 0 < len(text) <= ID_MAX else None


def validate(data: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The event in a record, or None and the reason it is malformed."""
    if len(data) > MAX_RECORD_BYTES:
        return None, f"record of {len(data)} bytes is larger than {MAX_RECORD_BYTES}"
    try:
        event = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None, "not JSON"
    if not isinstance(event, dict):
        return None, f"not a JSON object ({type(event).__name__})"
    missing = [f for f in ("event_id", "user_id", "video_id", "timestamp") if event.get(f) in (None, "")]
    if missing:
        return None, f"missing {', '.join(missing)}"
    for name in ("event_id", "user_id", "video_id"):
        if _identifier(event[name]) is None:
            return None, f"{name} must be a string or integer of 1..{ID_MAX} characters"
    event_type = event.get("event_type", "view")
    if event_type not in EVENT_TYPES:
        return None, f"unknown event type {event_type!r}"
    ts = event["timestamp"]
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts) or ts < 0:
        return None, "timestamp must be epoch seconds"
    watch = event.get("watch_time")
    if watch is not None and (isinstance(watch, bool) or not isinstance(watch, int | float) or watch < 0):
        return None, "watch_time must be a number >= 0"
    category = event.get("category")
    if category is not None and (not isinstance(category, str) or not 0 < len(category) <= 64):
        return None, "category must be a string of 1..64 characters"
    rid = event.get("recommendation_id")
    if rid is not None and _identifier(rid) is None:
        return None, "recommendation_id must be a string of 1..128 characters"
    clean = {**event, "event_type": event_type, "timestamp": float(ts)}
    for name in ("event_id", "user_id", "video_id"):
        clean[name] = str(event[name])
    return clean, None


def event_weight(event: dict[str, Any], duration: float | None, weights: WeightsConfig) -> float:
    """The weight training gives the event: event type weight x (1 + factor x watch ratio)."""
    base = weights.event_weights.get(
        str(event.get("event_type", "view")).lower(), weights.default_event_weight
    )
    ratio = 0.0
    watch = event.get("watch_time")
    if watch is not None and duration and duration > 0:
        ratio = min(max(float(watch) / float(duration), 0.0), 1.0)
    return float(base) * (1.0 + weights.watch_ratio_factor * ratio)


# ----- the new state of each entity (pure functions)


def user_after(
    item: dict[str, Any] | None, events: list[tuple[dict[str, Any], float, str]]
) -> dict[str, Any]:
    """User feature attributes after `events` ((event, weight, category) in stream order)."""
    item = item or {}
    count = int(item.get("interaction_count") or 0)
    total = float(item.get("total_weight") or 0.0)
    last = item.get("last_interaction_ts")
    shares = item.get("category_affinity") or {}
    if isinstance(shares, str):
        try:
            shares = json.loads(shares)
        except ValueError:
            shares = {}
    per_cat = {str(c): float(s) * total for c, s in shares.items()} if total > 0 else {}
    for event, weight, category in events:
        if weight > 0:
            count += 1
            total += weight
            per_cat[category] = per_cat.get(category, 0.0) + weight
        ts = int(event["timestamp"])
        last = ts if last is None else max(int(last), ts)
    out: dict[str, Any] = {"interaction_count": count, "total_weight": round(total, 6)}
    if last is not None:
        out["last_interaction_ts"] = int(last)
    weight_sum = sum(per_cat.values())
    if weight_sum > 0:
        ranked = sorted(per_cat.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_AFFINITY_CATEGORIES]
        kept = sum(w for _, w in ranked)
        out["category_affinity"] = {c: round(w / kept, 4) for c, w in ranked}
        out["top_category"] = ranked[0][0]
    return out


def trending_after(score: float, at: float | None, ts: float) -> tuple[float, float]:
    """(score, at) after one event at `ts`: events decay with TRENDING_HALF_LIFE_S (order does not matter)."""
    if at is None:
        return 1.0, ts
    if ts >= at:
        return score * 2.0 ** (-(ts - at) / TRENDING_HALF_LIFE_S) + 1.0, ts
    return score + 2.0 ** (-(at - ts) / TRENDING_HALF_LIFE_S), at


def video_after(item: dict[str, Any] | None, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Video feature attributes after `events` (the counts only grow with engaging events)."""
    item = item or {}
    count = int(item.get("interaction_count") or 0)
    score = float(item.get("trending_score") or 0.0)
    at = item.get("trending_at")
    at = float(at) if at is not None else None
    last = item.get("last_event_ts")
    for event in events:
        ts = float(event["timestamp"])
        last = int(ts) if last is None else max(int(last), int(ts))
        if event["event_type"] in ENGAGING_TYPES:
            count += 1
            score, at = trending_after(score, at, ts)
    out: dict[str, Any] = {"interaction_count": count, "last_event_ts": int(last)}
    if at is not None:
        out["trending_score"] = round(score, 6)
        out["trending_at"] = round(at, 3)
    if not item.get("category"):
        out["category"] = next((e["category"] for e in events if e.get("category")), "unknown")
    return out


# ----- applying events


class EventApplier:
    """Applies validated events to the online stores, exactly once per event id (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        cache: Any | None = None,
        weights: WeightsConfig | None = None,
        dynamodb: Any | None = None,
        clock=time.time,
        live_metrics: LiveMetrics | None = None,
        user_items: UserItemCache | None = None,
    ) -> None:
        self.settings = settings
        # The user and engaged-set items kept between batches (a returning user costs no read), where this
        # applier is the only processor of the stream; by default nothing is kept (see UserItemCache).
        self.user_items = user_items if user_items is not None else UserItemCache(max_cost=0)
        # Engagements per model version for the release guard, written at the end of each batch.
        self.live_metrics = live_metrics or LiveMetrics(settings, background=False)
        self.ddb = dynamodb or bulk_client("dynamodb", settings)
        names = settings.names
        self.users_table = names.table("user_features")
        self.videos_table = names.table("video_features")
        self.activity_table = names.table("user_activity")
        self.tracking_table = names.table("inference_tracking")
        self.cache = cache
        self.weights = weights or WeightsConfig()
        self.clock = clock
        self.last_result: ApplyResult | None = None

    # -- records (what the stream delivers)
    def apply_records(self, records: list[StreamRecord]) -> ApplyResult:
        """Validate, dead-letter the malformed, apply the rest; `failed` is keyed by sequence number."""
        result = ApplyResult()
        events: list[dict[str, Any]] = []
        records_of: dict[str, list[str]] = defaultdict(list)
        for i, record in enumerate(records):
            event, reason = validate(record.data)
            if event is None:
                write_dead_letter(
                    self.settings, str(reason), record.data, record.shard, record.sequence, record.arrival_ts
                )
                result.dead_letters += 1
                continue
            events.append(event)
            records_of[event["event_id"]].append(record.sequence or str(i))
        applied = self.apply_events(events)
        result.applied = applied.applied
        result.duplicates = applied.duplicates
        result.transactions, result.conflicts = applied.transactions, applied.conflicts
        result.erased = applied.erased
        for event_id, reason in applied.failed.items():
            for ident in records_of[event_id]:
                result.failed[ident] = reason
        self.last_result = result
        return result

    # -- events
    def apply_events(self, events: list[dict[str, Any]]) -> ApplyResult:
        """Apply validated events (stream order); `failed` is keyed by event id."""
        result = ApplyResult()
        unique: dict[str, dict[str, Any]] = {}
        for event in events:
            if event["event_id"] in unique:
                result.duplicates += 1
            else:
                unique[event["event_id"]] = event
        # No read of the markers first: an event applied before fails its marker's condition, which cancels its
        # group's transaction and names the event (`_after_cancel`), so a batch of new events (the usual case)
        # costs no read per event.
        pending = transaction_order(list(unique.values()))
        if not pending:
            return result
        state = _State()
        self._read(state, pending)
        for group in self._groups(pending, state):
            self._apply_group(group, state, result)
        self.live_metrics.flush()  # never raises: a failed write is logged and its counts dropped
        if self.cache is not None:  # each user's cached answers dropped, their serving state updated
            applied = set(result.applied)
            self.cache.record_events(events_by_user(e for e in pending if e["event_id"] in applied))
        return result

    def _processed(self, events: list[dict[str, Any]]) -> set[str]:
        """Event ids whose activity item carries `applied_at` (applied before)."""
        keys = [
            serialize_item(
                {"user_id": e["user_id"], "event_ts": event_sort_key(e["timestamp"], e["event_id"])}
            )
            for e in events
        ]
        found = self._batch_get(self.activity_table, keys, ["event_ts", "applied_at"])
        return {str(i["event_ts"]).rsplit("#", 1)[1] for i in found if i.get("applied_at") is not None}

    def _batch_get(self, table: str, keys: list[dict[str, Any]], attributes: list[str] | None) -> list[dict]:
        out: list[dict[str, Any]] = []
        projection: dict[str, Any] = {}
        if attributes:
            projection = {
                "ProjectionExpression": ", ".join(f"#a{i}" for i in range(len(attributes))),
                "ExpressionAttributeNames": {f"#a{i}": a for i, a in enumerate(attributes)},
            }
        for start in range(0, len(keys), BATCH_GET_SIZE):
            request: dict[str, Any] = {
                table: {"Keys": keys[start : start + BATCH_GET_SIZE], "ConsistentRead": True, **projection}
            }
            for attempt in range(MAX_ATTEMPTS):
                response = self.ddb.batch_get_item(RequestItems=request)
                out += [deserialize_item(raw) for raw in response.get("Responses", {}).get(table, [])]
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
        return out

    def _read(
        self, state: _State, events: list[dict[str, Any]], only: set[tuple[str, str]] | None = None
    ) -> None:
        """Read the current items of the entities `events` touch (or only those in `only`)."""

        def wanted(kind: str, values) -> list[str]:
            return [v for v in dict.fromkeys(values) if only is None or (kind, v) in only]

        users = wanted("user", (e["user_id"] for e in events))
        videos = wanted("video", (e["video_id"] for e in events))
        engaged = wanted("engaged", (e["user_id"] for e in events))
        recs = wanted("rec", (str(e["recommendation_id"]) for e in events if e.get("recommendation_id")))
        if only is None:  # a first read takes what the cache holds (a re-read after a conflict does not)
            users = self._from_cache("user", users, state.users)
            engaged = self._from_cache("engaged", engaged, state.engaged)
        for uid in users:
            state.users[uid] = None
        for item in self._batch_get(self.users_table, [{"user_id": {"S": u}} for u in users], None):
            state.users[str(item["user_id"])] = item
        for vid in videos:
            state.videos[vid] = None
        video_keys = [{"video_id": {"S": v}} for v in videos]
        for item in self._batch_get(self.videos_table, video_keys, None):  # whole items: they are put back
            state.videos[str(item["video_id"])] = item
        for uid in engaged:
            state.engaged[uid] = None
        keys = [{"user_id": {"S": u}, "event_ts": {"S": ENGAGED_SORT_KEY}} for u in engaged]
        for item in self._batch_get(self.activity_table, keys, None):
            state.engaged[str(item["user_id"])] = item
        for uid in users:
            self.user_items.put("user", uid, state.users[uid])
        for uid in engaged:
            self.user_items.put("engaged", uid, state.engaged[uid])
        for rid in recs:
            state.recs[rid] = None
        rec_keys = [{"recommendation_id": {"S": r}} for r in recs]
        shown = ["recommendation_id", "video_ids", "model_version", "engaged_video_ids"]
        for item in self._batch_get(self.tracking_table, rec_keys, shown):
            state.recs[str(item["recommendation_id"])] = item

    def _from_cache(self, kind: str, keys: list[str], into: dict[str, dict[str, Any] | None]) -> list[str]:
        """Put the cached items of `keys` in `into`; the keys left to read."""
        missing = []
        for key in keys:
            item = self.user_items.get(kind, key)
            if item is None:
                missing.append(key)
            else:
                into[key] = item
        return missing

    def _entities(self, event: dict[str, Any], state: _State) -> set[tuple[str, str]]:
        keys = {("user", event["user_id"]), ("engaged", event["user_id"]), ("video", event["video_id"])}
        rid = event.get("recommendation_id")
        if rid and event["event_type"] in ENGAGING_TYPES and state.recs.get(str(rid)) is not None:
            keys.add(("rec", str(rid)))
        return keys

    def _groups(self, events: list[dict[str, Any]], state: _State) -> list[list[dict[str, Any]]]:
        """Consecutive events whose transaction (1 item per event + 1 per entity) fits MAX_TRANSACTION_ITEMS
        items and MAX_TRANSACTION_BYTES (an engaged set of 5,000 videos is ~100 KB)."""
        groups: list[list[dict[str, Any]]] = []
        current: list[dict[str, Any]] = []
        entities: set[tuple[str, str]] = set()
        size = 0
        for event in events:
            new = self._entities(event, state) - entities
            grown = EVENT_ITEM_BYTES + sum(_item_bytes(state, kind, key) for kind, key in new)
            if current and (
                len(current) + 1 + len(entities) + len(new) > MAX_TRANSACTION_ITEMS
                or size + grown > MAX_TRANSACTION_BYTES
            ):
                groups.append(current)
                current, entities, size = [], set(), 0
                new = self._entities(event, state)
                grown = EVENT_ITEM_BYTES + sum(_item_bytes(state, kind, key) for kind, key in new)
            current.append(event)
            entities |= new
            size += grown
        if current:
            groups.append(current)
        return groups

    @staticmethod
    def _not_erased(group: list[dict[str, Any]], state: _State) -> list[dict[str, Any]]:
        """The events not dated at or before their user's erasure (the tombstone `forgotten_at`)."""
        kept = []
        for event in group:
            forgotten_at = (state.users.get(event["user_id"]) or {}).get("forgotten_at")
            if forgotten_at is None or float(event["timestamp"]) > float(forgotten_at):
                kept.append(event)
        return kept

    def _apply_group(self, group: list[dict[str, Any]], state: _State, result: ApplyResult) -> None:
        for attempt in range(MAX_ATTEMPTS):
            kept = self._not_erased(group, state)  # state is read again after a conflict
            result.erased += len(group) - len(kept)
            group = kept
            if not group:
                return
            items, writes = self._transaction(group, state)
            try:
                self.ddb.transact_write_items(TransactItems=items)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code != "TransactionCanceledException":
                    if code in (
                        "ThrottlingException",
                        "ProvisionedThroughputExceededException",
                        "InternalServerError",
                    ):
                        time.sleep(min(0.05 * 2**attempt, 1.0))
                        continue
                    self._fail(group, f"{code}: {exc}", result)
                    return
                group, conflicted = self._after_cancel(group, exc, writes, state, result)
                # Another writer changed an entity: back off. Only events applied before: retry at once.
                if conflicted:
                    result.conflicts += 1
                    time.sleep(min(0.01 * 2**attempt, 0.5))
                continue
            except Exception as exc:  # the endpoint is unreachable: let the stream deliver the records again
                self._fail(group, f"{type(exc).__name__}: {exc}", result)
                return
            result.transactions += 1
            for kind, key, item in writes:
                if kind == "rec":
                    self._count_engaged(state.recs.get(key), item)
                if kind != "event":
                    state.of(kind)[key] = item
                if kind in UserItemCache.KINDS:
                    self.user_items.put(kind, key, item)
            result.applied += [e["event_id"] for e in group]
            return
        self._fail(group, f"gave up after {MAX_ATTEMPTS} conflicting attempts", result)

    def _count_engaged(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Count the items of a recommendation newly engaged with, for the version that showed them."""
        if not old or not new or not old.get("model_version"):
            return
        before = set(old.get("engaged_video_ids") or ())
        added = len(set(new.get("engaged_video_ids") or ()) - before)
        self.live_metrics.count_engaged(str(old["model_version"]), added, new.get("engaged_at"))

    @staticmethod
    def _fail(group: list[dict[str, Any]], reason: str, result: ApplyResult) -> None:
        log.warning("%d events not applied: %s", len(group), reason)
        for event in group:
            result.failed[event["event_id"]] = reason

    def _after_cancel(
        self,
        group: list[dict[str, Any]],
        exc: ClientError,
        writes: list[tuple[str, str, Any]],
        state: _State,
        result: ApplyResult,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Drop events applied before (a redelivery, a replay, another processor meanwhile); re-read entities
        that changed. Returns the group to retry and whether an entity had changed (a conflict)."""
        reasons = exc.response.get("CancellationReasons") or []
        already: set[str] = set()
        stale: set[tuple[str, str]] = set()
        for (kind, key, _), reason in zip(writes, reasons, strict=False):
            if (reason or {}).get("Code") != "ConditionalCheckFailed":
                continue
            if kind == "event":
                already.add(key)
            else:
                stale.add((kind, key))
        if not reasons or (not already and not stale):
            stale = {(kind, key) for kind, key, _ in writes if kind != "event"}
            already = self._processed(group)
        result.duplicates += len(already)
        remaining = [e for e in group if e["event_id"] not in already]
        if stale and remaining:
            self._read(state, remaining, only=stale)
        return remaining, bool(stale)

    def _transaction(
        self, group: list[dict[str, Any]], state: _State
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str, Any]]]:
        """The transaction items of a group and, aligned with them, (kind, key, new item) of each."""
        now = self.clock()
        items: list[dict[str, Any]] = []
        writes: list[tuple[str, str, Any]] = []
        for event in group:
            marker = {**activity_item(event), "applied_at": round(now, 3)}
            items.append(
                {
                    "Put": {
                        "TableName": self.activity_table,
                        "Item": serialize_item(marker),
                        "ConditionExpression": "attribute_not_exists(applied_at)",
                    }
                }
            )
            writes.append(("event", event["event_id"], None))
        by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
        by_video: dict[str, list[dict[str, Any]]] = defaultdict(list)
        by_rec: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in group:
            by_user[event["user_id"]].append(event)
            by_video[event["video_id"]].append(event)
            if ("rec", str(event.get("recommendation_id"))) in self._entities(event, state):
                by_rec[str(event["recommendation_id"])].append(event)
        for uid, events in by_user.items():
            old = state.users.get(uid)
            weighted = []
            for event in events:
                video = state.videos.get(event["video_id"]) or {}
                category = str(video.get("category") or event.get("category") or "unknown")
                weighted.append((event, event_weight(event, video.get("duration"), self.weights), category))
            item = {
                **(old or {"user_id": uid}),
                **user_after(old, weighted),
                "rev": _rev(old) + 1,
                "updated_at": int(now),
            }
            items.append(self._put(self.users_table, item, old))
            writes.append(("user", uid, item))
            old_engaged = state.engaged.get(uid)
            videos = engaged_after(list((old_engaged or {}).get("video_ids") or []), events)
            engaged_item = {
                **(old_engaged or {"user_id": uid, "event_ts": ENGAGED_SORT_KEY}),
                "video_ids": videos,
                "rev": _rev(old_engaged) + 1,
                "updated_at": int(now),
            }
            items.append(self._put(self.activity_table, engaged_item, old_engaged))
            writes.append(("engaged", uid, engaged_item))
        for vid, events in by_video.items():
            old = state.videos.get(vid)
            item = {
                **(old or {"video_id": vid}),
                **video_after(old, events),
                "rev": _rev(old) + 1,
                "updated_at": int(now),
            }
            items.append(self._put(self.videos_table, item, old))
            writes.append(("video", vid, item))
        for rid, events in by_rec.items():
            old = state.recs.get(rid) or {}
            shown = set(old.get("video_ids") or [])
            engaged = sorted({e["video_id"] for e in events if e["video_id"] in shown})
            if not engaged:
                continue
            at = round(max(e["timestamp"] for e in events), 3)
            items.append(
                {
                    "Update": {
                        "TableName": self.tracking_table,
                        "Key": serialize_item({"recommendation_id": rid}),
                        "UpdateExpression": "ADD engaged_video_ids :v SET engaged_at = :t",
                        "ConditionExpression": "attribute_exists(recommendation_id)",
                        "ExpressionAttributeValues": {
                            ":v": {"SS": engaged},
                            ":t": serialize_item({"t": at})["t"],
                        },
                    }
                }
            )
            after = {**old, "engaged_video_ids": set(old.get("engaged_video_ids") or ()) | set(engaged)}
            writes.append(("rec", rid, {**after, "engaged_at": at}))
        return items, writes

    @staticmethod
    def _put(table: str, item: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        """A Put of the whole new item, conditional on the stored item being the one that was read."""
        names = {"#rev": "rev", "#mv": "model_version"}
        values: dict[str, Any] = {}
        if old is None or old.get("rev") is None:
            condition = "attribute_not_exists(#rev)"
        else:
            condition = "#rev = :old_rev"
            values[":old_rev"] = {"N": str(int(old["rev"]))}
        if old is not None and old.get("model_version") is not None:
            condition += " AND #mv = :old_mv"
            values[":old_mv"] = {"S": str(old["model_version"])}
        else:
            condition += " AND attribute_not_exists(#mv)"
        put: dict[str, Any] = {
            "TableName": table,
            "Item": serialize_item(item),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}


def transaction_order(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The order in which a batch's events go into transaction groups: each user's events together and in
    stream order; users side by side when the video they share is the batch's most frequent among theirs
    (ties by video id, then by user id).

    A group's transaction holds one item per event plus one per user, engaged set and video it touches, so
    users who watched the same video in one group write that video's item once. On the benchmark's stream
    the items per event fall from 3.0 to 2.6; on a long-tailed one from 2.95 to 2.8."""
    counts: dict[str, int] = defaultdict(int)
    for event in events:
        counts[event["video_id"]] += 1
    anchor: dict[str, tuple[int, str]] = {}
    for event in events:
        video = event["video_id"]
        key = (-counts[video], video)
        user = event["user_id"]
        if user not in anchor or key < anchor[user]:
            anchor[user] = key
    return sorted(events, key=lambda e: (anchor[e["user_id"]], e["user_id"]))  # stable: stream order kept


def _item_bytes(state: _State, kind: str, key: str) -> int:
    """A generous estimate of an entity item's size once written (its JSON plus one new video id)."""
    item = state.of(kind).get(key)
    return 512 + (len(json.dumps(item, default=str)) if item else 0)


def _rev(item: dict[str, Any] | None) -> int:
    return int((item or {}).get("rev") or 0)


class UserItemCache:
    """The user items (features, engaged set) last read or written, kept between batches: least recently used
    first out, bounded by a cost of one per item plus one per engaged video id (`max_cost`).

    For the local events worker, which processes every shard of the stream in one process: between two of a
    user's batches, only a deployment's rewrite or an erasure changes these items. Each changes `rev` or
    `model_version` (or deletes the item), so the conditional Put built from a stale copy fails, and the
    processor reads the item again, as after any conflict: one cancelled transaction per cached user after
    a deployment. Video items are written from every shard and are read once per batch. The Lambda keeps
    none (`max_cost=0`): a warm execution environment is not tied to a shard, so another one may have
    processed the same users in between, and each stale copy would cost a cancelled transaction.
    """

    KINDS = ("user", "engaged")

    def __init__(self, max_cost: int = 200_000) -> None:
        self.max_cost = max_cost
        self._items: OrderedDict[tuple[str, str], tuple[dict[str, Any], int]] = OrderedDict()
        self._cost = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The cached item, or None (never seen, evicted, or known not to exist)."""
        hit = self._items.get((kind, key))
        if hit is None:
            return None
        self._items.move_to_end((kind, key))
        return hit[0]

    def put(self, kind: str, key: str, item: dict[str, Any] | None) -> None:
        """Remember `item` as the stored one (None: forget the key)."""
        old = self._items.pop((kind, key), None)
        if old is not None:
            self._cost -= old[1]
        if item is None:
            return
        cost = 1 + len(item.get("video_ids") or ())
        self._items[(kind, key)] = (item, cost)
        self._cost += cost
        while self._cost > self.max_cost and self._items:
            _, (_, evicted) = self._items.popitem(last=False)
            self._cost -= evicted


@dataclass
class _State:
    """Items as last read or written during one batch (None: the item does not exist)."""

    users: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    videos: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    engaged: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    recs: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def of(self, kind: str) -> dict[str, dict[str, Any] | None]:
        return {"user": self.users, "video": self.videos, "engaged": self.engaged, "rec": self.recs}.get(
            kind, {}
        )


# ----- Kinesis batches (the Lambda's event, and the local worker's)


def kinesis_records(event: dict[str, Any]) -> list[StreamRecord]:
    """The records of a Kinesis event-source-mapping event, decoded."""
    import base64

    out = []
    for raw in event.get("Records", []):
        kinesis = raw.get("kinesis", {})
        try:
            data = base64.b64decode(kinesis.get("data", ""), validate=False)
        except (ValueError, TypeError):
            data = b""
        shard = str(raw.get("eventID", "")).split(":", 1)[0] or None
        arrival = kinesis.get("approximateArrivalTimestamp")
        out.append(
            StreamRecord(data, str(kinesis.get("sequenceNumber")), shard, float(arrival) if arrival else None)
        )
    return out


def handle_kinesis_event(
    event: dict[str, Any], applier: EventApplier, processor: Any, context: Any = None
) -> dict:
    """Apply a Kinesis batch and answer with Powertools' partial batch response (failed sequence numbers).

    `processor` is a Powertools `BatchProcessor(EventType.KinesisDataStreams)`: the batch is applied at once
    (batched reads, grouped transactions), then each record is reported as succeeded or failed through it.
    """
    from aws_lambda_powertools.utilities.batch import process_partial_response

    result = applier.apply_records(kinesis_records(event))

    def record_handler(record: Any) -> str:
        reason = result.failed.get(str(record.kinesis.sequence_number))
        if reason is not None:
            raise RuntimeError(reason)
        return "ok"

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    log.info("batch applied: %s", result.to_dict())
    return response
