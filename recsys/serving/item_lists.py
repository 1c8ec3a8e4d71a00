"""Lists of items stored as one compact JSON attribute: a user's precomputed recommendations (the
recommendations-cache table, GET /cached) and what a tracked response showed (the inference tracking table).

One attribute to store and to read, instead of a list of maps that DynamoDB's marshalling (boto3's and
botocore's on the way out, moto's locally) handles field by field, about 100 values for 20 items. Readers
also accept the list of maps that versions before it wrote under `items`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson

ITEMS_JSON = "items_json"  # the attribute holding the list
# A tuple, not `float | np.floating`: a union written in the loop is built anew at each check (most of the time
# this took for the items of an answer).
_FLOATS = (float, np.floating)


def items_text(items: list[dict[str, Any]]) -> str:
    """A list of items as one compact JSON string (orjson: a tenth of the standard library's time for the 20
    items of a tracked answer); ValueError for a number JSON cannot hold (NaN, infinity), as before."""
    for item in items:
        for value in item.values():
            if isinstance(value, _FLOATS) and not math.isfinite(value):
                raise ValueError(f"a non-finite number cannot be stored as JSON: {value}")
    return orjson.dumps(items, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def stored_items(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of a stored item (the JSON attribute, or the older list of maps); ValueError when the JSON
    attribute does not hold a list."""
    if ITEMS_JSON in item:
        items = orjson.loads(str(item[ITEMS_JSON]))
        if not isinstance(items, list):
            raise ValueError("the stored items are not a list")
        return items
    return list(item.get("items") or [])
