"""Lists of items stored as one compact JSON attribute: a user's precomputed recommendations (the
recommendations-cache table, GET /cached) and what a tracked response showed (the inference tracking table).

One attribute to store and to read, instead of a list of maps that DynamoDB's marshalling (boto3's and
botocore's on the way out, moto's locally) handles field by field, about 100 values for 20 items. Readers
also accept the list of maps that versions before it wrote under `items`.
"""

from __future__ import annotations

import json
from typing import Any

ITEMS_JSON = "items_json"  # the attribute holding the list


def items_text(items: list[dict[str, Any]]) -> str:
    """A list of items as one compact JSON string."""
    return json.dumps(items, separators=(",", ":"), allow_nan=False)


def stored_items(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of a stored item (the JSON attribute, or the older list of maps); ValueError when the JSON
    attribute does not hold a list."""
    if ITEMS_JSON in item:
        items = json.loads(str(item[ITEMS_JSON]))
        if not isinstance(items, list):
            raise ValueError("the stored items are not a list")
        return items
    return list(item.get("items") or [])
