"""The Redis cache of computed recommendations; every Redis failure is a miss, never an error.

One Redis hash per user (`recsys:{env}:recs:{user_id}`), one field per request shape (variant, model
version, k, category, exclude_watched), so a user's new interaction invalidates all their entries with one
DEL, a new model version never sees old entries, and a user who moves between production and a canary
never gets the other variant's answer. The hash also holds the user's state (`USER_STATE_FIELD`: recent
activity and engaged set), so a miss of another request shape reads it here; the first miss reads it
from DynamoDB in one query (`OnlineFeatureStore.activity_and_engaged`) and stores it. A request makes at
most two round trips: one `lookup` (its answer, else the user's state: a Lua script) and, on a miss, one
write of the answer (and the state read from DynamoDB).

A new interaction (the API as it accepts it, the stream processor as it applies it) drops the user's cached
answers and writes itself through into the stored state (`record_events`), so the user's next request needs
no DynamoDB read and already leaves out what they just watched. The hash's time to live runs from the read
of its state (answers stored later do not extend it), so a state is never older than one TTL, and a state
that changed between its read and its rewrite is dropped instead (the next miss reads DynamoDB). Every such
write (and an erasure) counts in the hash (`WRITES_FIELD`); a miss stores its answer, and the state it read,
only if the count is still the one its lookup saw, so nothing computed before an interaction is cached
after it. After a failure Redis is skipped for `retry_after_s`, so a dead Redis costs one short timeout, not
one per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from recsys.errors import ValidationError
from recsys.feature_store.online import serving_state_after
from recsys.secrets import redis_settings
from recsys.serving.resilience import describe

if TYPE_CHECKING:
    from recsys.config import Settings

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 300
DEFAULT_TIMEOUT_S = 0.25
DEFAULT_RETRY_AFTER_S = 5.0
USER_STATE_FIELD = "user_state"  # the user's recent activity and engaged videos, beside the cached answers
WRITES_FIELD = "writes"  # how many times interactions (or an erasure) changed the user's hash: a miss's guard
ANY_WRITES = "*"  # `set_many` without the guard
# One round trip for a request: its cached answer if there is one, else the user's state (a miss needs it)
# and the hash's write count, which the miss's store then checks.
_LOOKUP = """
local answer = redis.call('HGET', KEYS[1], ARGV[1])
if answer then return {answer} end
return {false, redis.call('HGET', KEYS[1], ARGV[2]), redis.call('HGET', KEYS[1], ARGV[3]) or ''}
"""
# Store fields (ARGV[5..]: field, value, ...) unless the write count differs from ARGV[4] (what the request
# saw; ANY_WRITES: no check): an answer or state computed before an interaction landed is not stored after
# it. The TTL (ARGV[1]) starts anew only with a state (ARGV[2] = 1) or a new hash.
_STORE = """
if ARGV[4] ~= '*' and (redis.call('HGET', KEYS[1], ARGV[3]) or '') ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
if ARGV[2] == '1' or redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return 1
"""
# After new interactions: drop the user's answers and count the write; put back the state rewritten from
# ARGV[2] (what was read; '' for none) as ARGV[3], with the time to live it had, unless it changed meanwhile.
# A hash left with its count alone lives ARGV[5] seconds (a request in flight meanwhile finds it).
_REWRITE_STATE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
local writes = tonumber(redis.call('HGET', KEYS[1], ARGV[4]) or '0') + 1
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], ARGV[4], writes)
if ARGV[2] ~= '' and current == ARGV[2] and ttl > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 1
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 0
"""


class RecommendationCache:
    """Computed recommendations in Redis, when the environment has Redis (`recsys.secrets.redis_settings`)."""

    def __init__(
        self,
        settings: Settings,
        ttl_s: int = DEFAULT_TTL_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry_after_s: float = DEFAULT_RETRY_AFTER_S,
        clock=time.monotonic,
        activity_limit: int | None = None,
    ) -> None:
        self.settings = settings
        self.ttl_s = int(ttl_s)
        # How many recent events a stored state holds (serving's `activity_limit`), kept when events are added.
        self.activity_limit = int(
            activity_limit if activity_limit is not None else settings.serving.activity_limit
        )
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._client: Any = None
        self._configured: bool | None = None
        self._down_until = -float("inf")
        self._lock = threading.Lock()
        self._lookup_script: Any = None
        self._rewrite_script: Any = None
        self._store_script: Any = None
        self.last_error: str | None = None

    def _redis(self) -> Any | None:
        if self._configured is False or self._clock() < self._down_until:
            return None
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        conf = redis_settings(self.settings)
                    except Exception as exc:  # the credentials secret cannot be read
                        self._failed("settings", exc)
                        return None
                    if conf is None:
                        self._configured = False
                        return None
                    import redis

                    self._client = redis.Redis(
                        host=conf.host,
                        port=conf.port,
                        db=conf.db,
                        password=conf.auth_token,
                        ssl=conf.tls,
                        socket_timeout=self.timeout_s,
                        socket_connect_timeout=self.timeout_s,
                        health_check_interval=30,
                    )
                    self._configured = True
        return self._client

    def _key(self, user_id: str) -> str:
        return f"recsys:{self.settings.env}:recs:{user_id}"

    def _failed(self, op: str, exc: Exception) -> None:
        self._down_until = self._clock() + self.retry_after_s
        self.last_error = f"{op}: {describe(exc)}"
        log.warning("redis %s failed, serving uncached for %.0fs: %s", op, self.retry_after_s, describe(exc))

    @property
    def enabled(self) -> bool:
        """False where the environment has no Redis."""
        self._redis()
        return self._configured is not False

    def lookup(self, user_id: str, field: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(the cached response for the request shape `field`, None) on a hit; (None, the user's stored
        state or None) on a miss; (None, None) when Redis is unavailable. One round trip (a Lua script)."""
        answer, state, _ = self.lookup_for_store(user_id, field)
        return answer, state

    def lookup_for_store(
        self, user_id: str, field: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str]:
        """`lookup`, plus the hash's write count to hand `set_many` (`seen`), so that what a miss computes is
        not stored if an interaction lands meanwhile (ANY_WRITES when Redis is unavailable)."""
        r = self._redis()
        if r is None:
            return None, None, ANY_WRITES
        try:
            if self._lookup_script is None:
                self._lookup_script = r.register_script(_LOOKUP)
            found = self._lookup_script(
                keys=[self._key(user_id)], args=[field, USER_STATE_FIELD, WRITES_FIELD]
            )
        except Exception as exc:
            self._failed("get", exc)
            return None, None, ANY_WRITES
        if not isinstance(found, list) or not found:
            return None, None, ANY_WRITES
        answer = _parsed(found[0])
        if answer is not None:
            return answer, None, ANY_WRITES
        state = _parsed(found[1]) if len(found) > 1 else None
        seen = found[2] if len(found) > 2 else b""
        return None, state, seen.decode() if isinstance(seen, bytes) else str(seen)

    def set(self, user_id: str, field: str, value: dict[str, Any]) -> bool:
        """Store a response with the TTL; False when Redis is unavailable."""
        return self.set_many(user_id, {field: value})

    def set_many(self, user_id: str, values: dict[str, dict[str, Any]], seen: str = ANY_WRITES) -> bool:
        """Store several fields of the user's hash (answers, state) in one round trip; False when Redis is
        unavailable, or when `seen` (the write count `lookup_for_store` gave) is no longer the hash's: an
        interaction landed after the lookup, so what was computed before it is not stored. The hash's TTL
        starts when it is made or a state read from DynamoDB is stored, not when an answer is added, so a
        stored state is never older than one TTL."""
        r = self._redis()
        if r is None or not values:
            return False
        try:
            mapping = {f: orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY) for f, v in values.items()}
        except TypeError as exc:  # a value JSON cannot hold: not cached (a bug, not a Redis failure)
            log.warning("not cached: %s", exc)
            return False
        fields = [item for pair in mapping.items() for item in pair]
        try:
            if self._store_script is None:
                self._store_script = r.register_script(_STORE)
            renew = "1" if USER_STATE_FIELD in mapping else "0"
            stored = self._store_script(
                keys=[self._key(user_id)], args=[self.ttl_s, renew, WRITES_FIELD, seen, *fields]
            )
            return bool(stored)
        except Exception as exc:
            self._failed("set", exc)
            return False

    def invalidate(self, user_id: str) -> bool:
        """Drop every cached response of the user (after a new interaction)."""
        return self.invalidate_many([user_id])

    def invalidate_many(self, user_ids: Iterable[str], chunk: int = 500) -> bool:
        """Drop every cached response and the stored state of each user (an erasure), counted as a write so
        that no request in flight stores what it read before; False when Redis is absent or failed."""
        return self.record_events({user_id: [] for user_id in user_ids}, chunk, keep_state=False)

    def record_events(
        self, events_by_user: dict[str, list[dict[str, Any]]], chunk: int = 500, keep_state: bool = True
    ) -> bool:
        """After new interactions (each user's events in stream order): drop each user's cached answers, count
        the write, and write the events into their stored state where one is stored (`serving_state_after`;
        `keep_state=False` drops it too); two pipelined round trips per `chunk` users. False when Redis is
        absent or failed (then, as for any write Redis missed, what it holds can be stale until its TTL)."""
        r = self._redis()
        if r is None:
            return False
        users = list(events_by_user)
        try:
            if self._rewrite_script is None:
                self._rewrite_script = r.register_script(_REWRITE_STATE)
            for start in range(0, len(users), chunk):
                part = users[start : start + chunk]
                stored: list[bytes | None] = [None] * len(part)
                if keep_state:
                    read = r.pipeline(transaction=False)
                    for user_id in part:
                        read.hget(self._key(user_id), USER_STATE_FIELD)
                    stored = read.execute()
                rewrites = []
                for user_id, raw in zip(part, stored, strict=True):
                    after = self._state_after(raw, events_by_user[user_id])
                    kept = (raw, after) if after is not None else (b"", b"")  # no state, or one dropped
                    rewrites.append((self._key(user_id), (USER_STATE_FIELD, *kept, WRITES_FIELD, self.ttl_s)))
                self._rewrite(r, rewrites)
            return True
        except Exception as exc:
            self._failed("record events", exc)
            return False

    def _rewrite(self, r: Any, rewrites: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Run the rewrite script on each (key, args) in one pipelined round trip.

        By its hash (EVALSHA), not as a pipeline's registered script: redis-py would first ask whether the
        script exists (SCRIPT EXISTS), a round trip of its own at every call. Where Redis does not hold the
        script (its first use, a restart), the pipeline fails with NOSCRIPT: the script is loaded and the whole
        pipeline sent again, also when another client loaded it meanwhile and some rewrites ran. A rewrite run
        twice is safe: the answers are dropped again, the write count rises once more, and the state is kept
        when it was left as it was or else dropped (the next miss reads it from DynamoDB)."""
        import redis

        script = self._rewrite_script
        for attempt in range(2):
            write = r.pipeline(transaction=False)
            for key, args in rewrites:
                write.evalsha(script.sha, 1, key, *args)
            try:
                write.execute()
                return
            except redis.exceptions.NoScriptError:
                if attempt:
                    raise
                script.sha = r.script_load(script.script)

    def _state_after(self, raw: bytes | None, events: list[dict[str, Any]]) -> bytes | None:
        """The stored state `raw` with `events` written in (JSON), or None: no state, or one that cannot
        take them. A state that holds every event already (the API wrote them through as it accepted them,
        and the stream processor applies them now) is kept as it is, unparsed: most of the processor's
        users cost no JSON work."""
        if raw is None:
            return None
        if all(f'#{event.get("event_id")}"'.encode() in raw for event in events):
            return raw
        state = _parsed(raw)
        if state is None or not isinstance(state.get("activity"), list):
            return None
        try:
            return orjson.dumps(serving_state_after(state, events, self.activity_limit))
        except (ValidationError, KeyError, TypeError, ValueError) as exc:
            log.warning("stored state of a user dropped (an event it cannot hold): %s", exc)
            return None

    def ping(self) -> str:
        """`ok`, `disabled` (no Redis in this environment) or `down` (for /health)."""
        r = self._redis()
        if r is None:
            return "disabled" if self._configured is False else "down"
        try:
            r.ping()
            return "ok"
        except Exception as exc:
            self._failed("ping", exc)
            return "down"


def _parsed(raw: bytes | str | None) -> dict[str, Any] | None:
    """A stored JSON object, or None (absent or unreadable)."""
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def cache_field(variant: str, model_version: str, k: int, category: str | None, exclude_watched: bool) -> str:
    """The hash field of one request shape of one variant and model version."""
    return f"{variant}|{model_version}|{k}|{category or ''}|{int(exclude_watched)}"
