"""Reads of the online store for many users at once (batch recommendations, the precomputed cache).

For a few users one Query per user is fastest (in a thread pool), the read a request makes. For many
users, or a small table (DescribeTable's item count), one paginated Scan of the activity table costs far
less than a Query each: it keeps only the wanted users and, for each, only the newest `limit` events and
the engaged set, so memory grows with the users asked for, not with the table. Both give what `OnlineFeatureStore.activity_and_engaged` gives.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from recsys.feature_store.online import ENGAGED_SORT_KEY, OnlineFeatureStore, deserialize_item

SCAN_FROM_USERS = 2_000  # from this many users a Scan beats one Query per user
SCAN_MIN_USERS = 50  # below this, one Query each (no DescribeTable call)
SCAN_ITEMS_PER_USER = 20  # a table this small per user asked for is read by one Scan
QUERY_THREADS = 8

Activity = tuple[list[dict[str, Any]], list[str]]


def _scan_is_cheaper(store: OnlineFeatureStore, n_users: int) -> bool:
    """From SCAN_FROM_USERS users, or when the whole activity table holds fewer than SCAN_ITEMS_PER_USER
    items per user asked for (e.g. the cache fill right after a deployment: few events since training)."""
    if n_users >= SCAN_FROM_USERS:
        return True
    if n_users < SCAN_MIN_USERS:
        return False
    count = getattr(store, "approximate_items", lambda _t: None)(store.activity_table)
    return count is not None and count <= SCAN_ITEMS_PER_USER * n_users


def activity_and_engaged_many(
    store: OnlineFeatureStore, user_ids: Collection[str], limit: int, scan: bool | None = None
) -> dict[str, Activity]:
    """Each user's newest `limit` events (newest first) and engaged video ids; ([], []) for a user without."""
    users = list(dict.fromkeys(str(u) for u in user_ids))
    if not users:
        return {}
    if not (_scan_is_cheaper(store, len(users)) if scan is None else scan):
        with ThreadPoolExecutor(min(QUERY_THREADS, len(users))) as pool:
            found = pool.map(lambda u: store.activity_and_engaged(u, limit), users)
            return dict(zip(users, found, strict=True))
    wanted = set(users)
    heaps: dict[str, list[tuple[str, int, dict[str, Any]]]] = {}
    engaged: dict[str, list[str]] = {}
    for n, raw in enumerate(store.scan(store.activity_table)):
        user = raw["user_id"]["S"]
        if user not in wanted:
            continue
        sort_key = raw["event_ts"]["S"]
        if sort_key == ENGAGED_SORT_KEY:
            engaged[user] = [str(v) for v in deserialize_item(raw).get("video_ids") or []]
            continue
        if limit <= 0:
            continue
        heap = heaps.setdefault(user, [])
        entry = (sort_key, n, raw)
        if len(heap) < limit:
            heapq.heappush(heap, entry)
        elif entry[0] > heap[0][0]:
            heapq.heapreplace(heap, entry)
    return {
        u: (
            [
                deserialize_item(raw)
                for _, _, raw in sorted(heaps.get(u, []), key=lambda e: e[0], reverse=True)
            ],
            engaged.get(u, []),
        )
        for u in users
    }
