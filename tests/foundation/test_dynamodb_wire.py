"""Item requests written as JSON directly (`recsys.dynamodb_wire`) are the requests botocore would write.

The bulk DynamoDB client (stream processor, inference tracking) skips botocore's walk of each request against
the input shape. Here seeded random items of every attribute type go into every operation the fast path
takes, and both serializers' requests must be equal (method, path, headers, JSON body); operations outside
it, and values not in the wire form, go through botocore.
"""

from __future__ import annotations

import json
import random
from typing import Any

import boto3
import jmespath
import pytest
from botocore.config import Config

from recsys.aws import bulk_client, client, reset_clients
from recsys.config import load_settings
from recsys.dynamodb_wire import (
    TRANSACTION_TABLE_MEMBERS,
    WIRE_FORM_OPERATIONS,
    WireFormSerializer,
    transaction_table_names,
)
from recsys.feature_store.online import serialize_item
from tests.serving.test_item_serialisation import _value

TABLE = "recsys-wire-test"


@pytest.fixture(scope="module")
def ddb() -> Any:
    return boto3.client(  # as the bulk client: no client-side validation
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(parameter_validation=False),
    )


def _both(ddb: Any, operation: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    model = ddb.meta.service_model.operation_model(operation)
    botocore_request = ddb._serializer.serialize_to_request(params, model)
    wire_request = WireFormSerializer(ddb._serializer).serialize_to_request(params, model)
    for request in (botocore_request, wire_request):
        request["body"] = json.loads(request["body"] or b"{}")
    return botocore_request, wire_request


def _requests(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    item = serialize_item({"user_id": "u1", "event_ts": "1#e", **{f"a{i}": _value(rng) for i in range(4)}})
    key = {"user_id": {"S": "u1"}, "event_ts": {"S": "1#e"}}
    values = {":v": serialize_item({"v": _value(rng)}).get("v", {"NULL": True}), ":n": {"N": "3"}}
    condition = {
        "ConditionExpression": "attribute_not_exists(#r) OR #r = :n",
        "ExpressionAttributeNames": {"#r": "rev"},
    }
    return [
        ("PutItem", {"TableName": TABLE, "Item": item, **condition, "ExpressionAttributeValues": values}),
        ("GetItem", {"TableName": TABLE, "Key": key, "ConsistentRead": True, "ProjectionExpression": "#r",
                     "ExpressionAttributeNames": {"#r": "rev"}}),
        ("UpdateItem", {"TableName": TABLE, "Key": key, "UpdateExpression": "SET a0 = :v ADD c :n",
                        "ExpressionAttributeValues": values, "ReturnValues": "ALL_NEW"}),
        ("DeleteItem", {"TableName": TABLE, "Key": key, "ReturnValues": "ALL_OLD"}),
        ("Query", {"TableName": TABLE, "KeyConditionExpression": "user_id = :u", "ScanIndexForward": False,
                   "Limit": 21, "ExpressionAttributeValues": {":u": {"S": "u1"}}, "ExclusiveStartKey": key}),
        ("BatchGetItem", {"RequestItems": {TABLE: {"Keys": [key, key], "ConsistentRead": True}}}),
        ("BatchWriteItem", {"RequestItems": {TABLE: [{"PutRequest": {"Item": item}},
                                                     {"DeleteRequest": {"Key": key}}]}}),
        ("TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": TABLE, "Item": item, **condition, "ExpressionAttributeValues": values}},
            {"Update": {"TableName": TABLE, "Key": key, "UpdateExpression": "ADD c :n",
                        "ExpressionAttributeValues": {":n": {"N": "1"}}}},
            {"Delete": {"TableName": TABLE, "Key": key}},
            {"ConditionCheck": {"TableName": TABLE, "Key": key, "ConditionExpression": "attribute_exists(c)"}},
        ]}),
    ]  # fmt: skip


def test_item_requests_are_the_requests_botocore_writes(ddb) -> None:
    rng = random.Random(20261202)
    seen: set[str] = set()
    for _ in range(300):
        for operation, params in _requests(rng):
            botocore_request, wire_request = _both(ddb, operation, params)
            assert wire_request == botocore_request, operation
            seen.add(operation)
    assert seen == WIRE_FORM_OPERATIONS


def test_other_operations_and_values_go_through_botocore(ddb) -> None:
    model = ddb.meta.service_model.operation_model("Scan")
    wire = WireFormSerializer(ddb._serializer)
    params = {"TableName": TABLE, "Limit": 5}
    assert wire.serialize_to_request(params, model) == ddb._serializer.serialize_to_request(params, model)
    # A memoryview is not the wire form (bytes): botocore writes it (as base64 of its bytes).
    put = {"TableName": TABLE, "Item": {"user_id": {"S": "u"}, "blob": {"B": memoryview(b"\x00\x01")}}}
    botocore_request, wire_request = _both(ddb, "PutItem", put)
    assert wire_request == botocore_request
    assert wire_request["body"]["Item"]["blob"] == {"B": "AAE="}


def test_only_the_bulk_dynamodb_client_writes_requests_itself() -> None:
    settings = load_settings("local")  # building a client opens no connection
    reset_clients()
    try:
        assert isinstance(bulk_client("dynamodb", settings)._serializer, WireFormSerializer)
        assert not isinstance(client("dynamodb", settings)._serializer, WireFormSerializer)
        assert not isinstance(bulk_client("kinesis", settings)._serializer, WireFormSerializer)
    finally:
        reset_clients()


def test_a_transaction_lists_its_tables_as_botocore_s_expression_does(ddb) -> None:
    """The endpoint rules' `ResourceArnList` of a transaction: the bulk client's loop and botocore's JMESPath
    give the same list, also for entries without a table, unknown members and no entries at all."""
    rng = random.Random(7)
    kinds = ["ConditionCheck", "Put", "Delete", "Update", "Get", "Other"]
    for (operation, param), members in TRANSACTION_TABLE_MEMBERS.items():
        path = ddb.meta.service_model.operation_model(operation).operation_context_parameters[param]["path"]
        for n in [0, 1, 5, 100]:
            entries = [
                {rng.choice(kinds): ({"TableName": f"t{rng.randrange(3)}"} if rng.random() < 0.9 else {})}
                for _ in range(n)
            ]
            expected = jmespath.search(path, {"TransactItems": entries})
            assert transaction_table_names(entries, members) == (expected or []), (operation, entries)


def test_the_bulk_client_resolves_a_transaction_s_endpoint_as_botocore_does() -> None:
    settings = load_settings("local")
    reset_clients()
    try:
        bulk, plain = bulk_client("dynamodb", settings), client("dynamodb", settings)
        model = plain.meta.service_model.operation_model("TransactWriteItems")
        args = {"TransactItems": [{"Put": {"TableName": "a", "Item": {}}}, {"Delete": {"TableName": "b"}}]}
        ours = bulk._ruleset_resolver._get_provider_params(model, args, {})
        theirs = plain._ruleset_resolver._get_provider_params(model, args, {})
        assert ours == theirs and ours["ResourceArnList"] == ["a", "b"]
    finally:
        reset_clients()
