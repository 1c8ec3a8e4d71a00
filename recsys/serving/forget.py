"""Erase what the online system keeps about one user (`recsys users forget ID`, `DELETE /users/{id}`).

Deleted at once: the user's recent activity, online user features, precomputed recommendations (the
recommendations cache table), computed recommendations in Redis and inference-tracking items. The user's
features item is replaced by a tombstone (`forgotten_at`, a new `rev`), before anything is deleted: events
still on the stream, dated at or before the erasure, are dropped by the stream processor instead of writing
the user back (`recsys.event_processing`), also when it is applying them at that moment (its conditional
write fails on the new `rev` and it reads the tombstone). Raw events in the data-lake bucket are not
rewritten: they expire under the bucket's lifecycle rule (`raw_events_retention_days`, see docs/serving.md).
A user the trained model knows keeps an embedding in the serving bundle until the next training run, which
no longer sees the erased activity.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from recsys.aws import client

if TYPE_CHECKING:
    from recsys.config import Settings
    from recsys.serving.cache import RecommendationCache

BATCH = 25


def _delete_keys(ddb: Any, table: str, keys: list[dict[str, Any]]) -> int:
    deleted = 0
    for start in range(0, len(keys), BATCH):
        request = {table: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + BATCH]]}
        for _ in range(8):
            response = ddb.batch_write_item(RequestItems=request)
            request = response.get("UnprocessedItems") or {}
            if not request:
                break
        else:
            raise RuntimeError(f"{table}: deletes left unprocessed")
        deleted += len(keys[start : start + BATCH])
    return deleted


def _query_keys(
    ddb: Any, table: str, key_names: list[str], user_id: str, index: str | None = None
) -> list[dict]:
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "user_id = :u",
        "ExpressionAttributeValues": {":u": {"S": user_id}},
        "ProjectionExpression": ", ".join(f"#k{i}" for i in range(len(key_names))),
        "ExpressionAttributeNames": {f"#k{i}": name for i, name in enumerate(key_names)},
    }
    if index:
        kwargs["IndexName"] = index
    keys: list[dict] = []
    while True:
        response = ddb.query(**kwargs)
        keys.extend({name: item[name] for name in key_names} for item in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return keys
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def forget_user(settings: Settings, user_id: str, cache: RecommendationCache | None = None) -> dict[str, Any]:
    """Delete every online record of `user_id`; returns what was deleted in each store."""
    from recsys.serving.cache import RecommendationCache

    user_id = str(user_id)
    names = settings.names
    ddb = client("dynamodb", settings)
    activity_table = names.table("user_activity")
    tracking_table = names.table("inference_tracking")
    # The tombstone first: from here on the stream processor's transactions for this user fail their condition
    # and drop the events dated before it, so what the queries below find is all there is to delete (a
    # transaction committed before the tombstone is found; deleting first could miss its items).
    now = time.time()
    tombstone = {
        "user_id": {"S": user_id},
        "forgotten_at": {"N": repr(now)},
        "rev": {"N": str(int(now * 1e6))},  # differs from any rev a concurrent writer read
    }
    response = ddb.put_item(TableName=names.table("user_features"), Item=tombstone, ReturnValues="ALL_OLD")
    features = int(bool(set(response.get("Attributes", {})) - {"user_id", "forgotten_at", "rev"}))
    activity = _query_keys(ddb, activity_table, ["user_id", "event_ts"], user_id)
    tracking = _query_keys(ddb, tracking_table, ["recommendation_id"], user_id, index="user-index")
    report: dict[str, Any] = {
        "user_id": user_id,
        "activity": _delete_keys(ddb, activity_table, activity),
        "tracking": _delete_keys(
            ddb, tracking_table, [{"recommendation_id": k["recommendation_id"]} for k in tracking]
        ),
        "features": features,
    }
    response = ddb.delete_item(
        TableName=names.table("recommendations_cache"),
        Key={"user_id": {"S": user_id}},
        ReturnValues="ALL_OLD",
    )
    report["precomputed"] = int("Attributes" in response)
    cache = cache or RecommendationCache(settings)
    report["cached"] = (
        "deleted" if cache.invalidate(user_id) else ("none" if not cache.enabled else "unavailable")
    )
    report["raw_events"] = "expire under the raw-events lifecycle rule"
    return report
