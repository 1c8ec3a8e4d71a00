"""The recommendations-cache item (GET /cached): how a user's precomputed items are stored and read back."""

from __future__ import annotations

import json
from typing import Any

CACHED_ITEMS = "items_json"  # the attribute holding a user's items


def cached_items_text(items: list[dict[str, Any]]) -> str:
    """A user's precomputed items as one compact JSON string: one attribute to store and to read, instead of
    a list of maps that DynamoDB (and moto, at several ms per such item) marshals field by field."""
    return json.dumps(items, separators=(",", ":"), allow_nan=False)


def cached_items(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of a recommendations-cache item (the JSON attribute, or the list of maps older fills wrote)."""
    if CACHED_ITEMS in item:
        items = json.loads(str(item[CACHED_ITEMS]))
        if not isinstance(items, list):
            raise ValueError("precomputed items are not a list")
        return items
    return list(item.get("items") or [])
