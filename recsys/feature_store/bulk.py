"""Reads of the online store for many users at once (batch recommendations, the precomputed cache).

For a few users the per-user reads are fastest (a Query of the activity table each, in a thread pool;
user items by BatchGetItem). For many users one paginated Scan of each table costs far less than a
Query per user; it keeps only the wanted users, and for each of them only the newest `limit` events,
so memory grows with the active users asked for, not with the table.
Both give what `OnlineFeatureStore.recent_activity` / `get_users` give for the same user.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from recsys.feature_store.online import OnlineFeatureStore, deserialize_item

SCAN_FROM_USERS = 2_000  # from this many users a Scan beats one Query per user
QUERY_THREADS = 8
ACTIVITY_ATTRIBUTES = ("user_id", "event_ts", "video_id", "event_type", "timestamp", "category")


def recent_activity_many(
    store: OnlineFeatureStore, user_ids: Collection[str], limit: int, scan: bool | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Each user's newest `limit` events, newest first (users without events are left out)."""
    if limit <= 0 or not user_ids:
        return {}
    scan = len(user_ids) >= SCAN_FROM_USERS if scan is None else scan
    if not scan:
        users = list(user_ids)
        with ThreadPoolExecutor(min(QUERY_THREADS, len(users))) as pool:
            found = pool.map(lambda u: store.recent_activity(u, limit), users)
            return {u: events for u, events in zip(users, found, strict=True) if events}
    wanted = user_ids if isinstance(user_ids, set | frozenset | dict) else set(user_ids)
    heaps: dict[str, list[tuple[str, int, dict[str, Any]]]] = {}
    for n, raw in enumerate(store.scan(store.activity_table, ACTIVITY_ATTRIBUTES)):
        user = raw["user_id"]["S"]
        if user not in wanted:
            continue
        heap = heaps.setdefault(user, [])
        entry = (raw["event_ts"]["S"], n, raw)
        if len(heap) < limit:
            heapq.heappush(heap, entry)
        elif entry[0] > heap[0][0]:
            heapq.heapreplace(heap, entry)
    return {
        u: [deserialize_item(raw) for _, _, raw in sorted(heap, key=lambda e: e[0], reverse=True)]
        for u, heap in heaps.items()
    }


def activity_and_engaged_many(
    store: OnlineFeatureStore, user_ids: Collection[str], limit: int
) -> dict[str, tuple[list[dict[str, Any]], list[str]]]:
    """Each user's newest `limit` events and engaged video ids (one Query per user, as a request makes)."""
    users = list(user_ids)
    if not users:
        return {}
    with ThreadPoolExecutor(min(QUERY_THREADS, len(users))) as pool:
        found = pool.map(lambda u: store.activity_and_engaged(u, limit), users)
        return dict(zip(users, found, strict=True))


def users_many(
    store: OnlineFeatureStore, user_ids: Collection[str], scan: bool | None = None
) -> dict[str, dict[str, Any]]:
    """User feature items of `user_ids` (users without one are left out)."""
    if not user_ids:
        return {}
    scan = len(user_ids) >= SCAN_FROM_USERS if scan is None else scan
    if not scan:
        users = list(user_ids)
        return {u: item for u, item in zip(users, store.get_users(users), strict=True) if item is not None}
    wanted = user_ids if isinstance(user_ids, set | frozenset | dict) else set(user_ids)
    return {
        raw["user_id"]["S"]: deserialize_item(raw)
        for raw in store.scan(store.user_table)
        if raw["user_id"]["S"] in wanted
    }
