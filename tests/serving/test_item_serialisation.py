"""Items in DynamoDB's wire form: `serialize_item` writes exactly what boto3's serialiser writes.

`recsys.feature_store.online.serialize_item` builds the typed form itself for the common types (boto3's
`TypeSerializer` was most of the API workers' CPU under load, through the inference tracking writes). Here
seeded random items of every kind of value the code stores are serialised both ways. A tracked response keeps
what it showed in one JSON attribute, and older tracking items still read.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from boto3.dynamodb.types import TypeSerializer

from recsys.errors import ValidationError
from recsys.feature_store.online import deserialize_item, serialize_item, to_dynamo

_boto3 = TypeSerializer()


def boto3_form(item: dict[str, Any]) -> dict[str, Any]:
    """What serialize_item wrote before: every value through to_dynamo, then boto3's serialiser."""
    return {k: _boto3.serialize(v) for k, v in to_dynamo(item).items() if v is not None}


def _number(rng: random.Random) -> Any:
    return rng.choice(
        [
            rng.randint(-(10**12), 10**12),
            rng.randint(-(10**37), 10**37),
            rng.uniform(-1e6, 1e6),
            rng.random() * 10 ** rng.randint(-140, 120),
            -rng.random() * 10 ** rng.randint(-20, 20),
            0.0,
            -0.0,
            1e-200,
            float("nan"),
            float("inf"),
            np.float32(rng.random()),
            np.float64(rng.uniform(-5, 5)),
            np.int64(rng.randint(-100, 100)),
            Decimal("12.50"),
        ]
    )


def _value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["str", "bool", "number", "none", "bytes", "str_set"] + (
        ["list", "dict", "tuple", "array"] if depth < 3 else []
    )
    kind = rng.choice(kinds)
    if kind == "str":
        return rng.choice(["", "v1", "é ü", "a" * 50])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "number":
        return _number(rng)
    if kind == "none":
        return None
    if kind == "str_set":
        return {rng.choice(["v1", "v2", "é ü", "a" * 50]) for _ in range(rng.randint(0, 3))}
    if kind == "bytes":
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    if kind == "array":
        return np.asarray([rng.random() for _ in range(rng.randint(0, 4))], dtype=rng.choice(["<f4", "<f8"]))
    members = [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if kind == "list":
        return members
    if kind == "tuple":
        return tuple(members)
    return {rng.choice(["a", "b", "c", 7]): m for m in members}


def test_random_items_serialise_as_boto3_serialises_them() -> None:
    rng = random.Random(20261202)
    for _ in range(3000):
        item = {f"attr{i}": _value(rng) for i in range(rng.randint(1, 6))}
        assert serialize_item(item) == boto3_form(item), item


def test_a_tracking_shaped_item_round_trips() -> None:
    item = {
        "recommendation_id": "r1",
        "timestamp": 1_800_000_000_123,
        "items": [{"video_id": "v1", "rank": 1, "score": 0.25, "source": "ease"}],
        "video_ids": ["v1"],
        "request": {"k": 20, "category": None, "exclude_watched": True},
        "nan": math.nan,
    }
    assert serialize_item(item) == boto3_form(item)
    back = deserialize_item(serialize_item(item))
    assert back["items"][0]["score"] == 0.25
    assert back["request"] == {"k": 20, "exclude_watched": True}
    assert "nan" not in back


@pytest.mark.parametrize("value", [1e200, 10**40, {1, 2}, bytearray(b"x"), object()])
def test_what_boto3_refuses_is_refused(value: Any) -> None:
    with pytest.raises(Exception) as ours:
        serialize_item({"v": value})
    with pytest.raises(Exception) as theirs:
        boto3_form({"v": value})
    assert type(ours.value) is type(theirs.value)
    assert isinstance(ours.value, ValidationError | ArithmeticError | TypeError)


def test_a_tracked_response_keeps_what_it_showed_in_one_attribute() -> None:
    from recsys.serving.item_lists import ITEMS_JSON
    from recsys.serving.tracking import shown_items, tracking_item

    shown = [
        {"video_id": "v1", "rank": 1, "score": 0.5, "source": "ease", "category": "news"},
        {"video_id": "v2", "rank": 2, "score": 0.25},
    ]
    item = tracking_item("r1", "u1", "v20260101", "model", shown, {"k": 2}, 1_800_000_000.5)
    wire = serialize_item(item)
    assert set(wire[ITEMS_JSON]) == {"S"} and sorted(wire["video_ids"]["SS"]) == ["v1", "v2"]
    back = deserialize_item(wire)
    assert shown_items(back) == [
        {"video_id": "v1", "rank": 1, "score": 0.5, "source": "ease"},
        {"video_id": "v2", "rank": 2, "score": 0.25},
    ]
    older = {k: v for k, v in back.items() if k != ITEMS_JSON} | {"items": [{"video_id": "v9", "rank": 1}]}
    assert shown_items(older) == [{"video_id": "v9", "rank": 1}]  # written before items_json
    assert shown_items({ITEMS_JSON: "not json"}) == []
    assert sorted(back["video_ids"]) == ["v1", "v2"]  # what the stream processor matches engagements with
    assert "video_ids" not in serialize_item(
        tracking_item("r2", "u1", None, "model", [], {}, 1.0)
    )  # no empty set


def test_an_item_list_round_trips_through_its_json_and_refuses_non_finite_numbers():
    from recsys.serving.item_lists import ITEMS_JSON, items_text, stored_items

    items = [{"video_id": "1", "score": np.float64(0.5), "rank": 1, "source": "two_tower"},
             {"video_id": "2", "score": np.float32(0.25), "rank": np.int64(2)},
             {"video_id": "3", "score": 1e-07, "rank": 3, "reason": "because you watched 1"}]  # fmt: skip
    assert stored_items({ITEMS_JSON: items_text(items)}) == [
        {"video_id": "1", "score": 0.5, "rank": 1, "source": "two_tower"},
        {"video_id": "2", "score": 0.25, "rank": 2},
        {"video_id": "3", "score": 1e-07, "rank": 3, "reason": "because you watched 1"},
    ]
    for bad in (float("nan"), float("inf"), np.float32("-inf")):
        with pytest.raises(ValueError, match="non-finite"):
            items_text([{"video_id": "1", "score": bad, "rank": 1}])
