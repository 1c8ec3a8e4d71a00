"""DynamoDB requests built in the service's own JSON form, sent without botocore walking them again.

The stream processor and the inference tracker build every item in DynamoDB's typed form themselves
(`recsys.feature_store.online.serialize_item`). botocore's JSON serializer then walks each request against
the operation's input shape, value by value, only to produce the same JSON: a quarter of the stream
processor's CPU for its transactions of 100 items. For the item operations in WIRE_FORM_OPERATIONS, the
bulk client's serializer writes the parameters as JSON directly; binary values are base64-encoded, as
botocore does. Every other operation, and any parameter this cannot write, goes through botocore.
`tests/foundation/test_dynamodb_wire.py` compares both serializers on every attribute type.

The JSON is written by orjson: a transaction of 100 items took the standard library 1.3 ms to write and
orjson 0.07 ms. Numbers are strings in DynamoDB's wire form; a request's only numbers are integers
(`Limit`, `Segment`).

botocore also resolves the endpoint of each request from the service's rules, and for `TransactWriteItems`
their `ResourceArnList` parameter is a JMESPath search over every item of the transaction (0.7 ms for 100
items); `table_names_resolver` gives the bulk client the same list from a plain loop.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

WIRE_FORM_OPERATIONS = frozenset(
    {
        "BatchGetItem",
        "BatchWriteItem",
        "DeleteItem",
        "GetItem",
        "PutItem",
        "Query",
        "TransactWriteItems",
        "UpdateItem",
    }
)


def wire_value(value: Any) -> Any:
    """The JSON writer's `default` for DynamoDB's JSON: binary attribute values as base64 (as botocore sends them
    and DynamoDB answers them); anything else not JSON is refused."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not in DynamoDB's wire form")


class WireFormSerializer:
    """botocore's request serializer for a DynamoDB client, writing WIRE_FORM_OPERATIONS' parameters as JSON."""

    def __init__(self, botocore_serializer: Any) -> None:
        self._botocore = botocore_serializer

    def serialize_to_request(self, parameters: dict[str, Any], operation_model: Any) -> dict[str, Any]:
        if operation_model.name not in WIRE_FORM_OPERATIONS:
            return self._botocore.serialize_to_request(parameters, operation_model)
        try:
            body = orjson.dumps(parameters, default=wire_value)
        except TypeError:  # not the wire form (e.g. a boto3 Binary, a key not a string): botocore writes it
            return self._botocore.serialize_to_request(parameters, operation_model)
        metadata = operation_model.metadata
        return {
            "url_path": "/",
            "query_string": "",
            "method": operation_model.http.get("method", "POST"),
            "headers": {
                "X-Amz-Target": f"{metadata['targetPrefix']}.{operation_model.name}",
                "Content-Type": f"application/x-amz-json-{metadata['jsonVersion']}",
            },
            "body": body,
        }

    def __getattr__(self, name: str) -> Any:  # anything else botocore asks of its serializer
        return getattr(self._botocore, name)


# The operation-context parameters that name every table of a transaction, and the members that hold them.
TRANSACTION_TABLE_MEMBERS = {
    ("TransactWriteItems", "ResourceArnList"): ("ConditionCheck", "Put", "Delete", "Update"),
    ("TransactGetItems", "ResourceArnList"): ("Get",),
}


def transaction_table_names(entries: Any, members: tuple[str, ...]) -> list[Any]:
    """The table names of a transaction's entries, in order: what botocore's JMESPath expression for the
    operation's `ResourceArnList` gives (`TransactItems[*].[Put.TableName, ...][]`, nulls left out)."""
    names: list[Any] = []
    for entry in entries if isinstance(entries, list) else ():
        for member in members:
            op = entry.get(member) if isinstance(entry, dict) else None
            name = op.get("TableName") if isinstance(op, dict) else None
            if name is not None:
                names.append(name)
    return names


def table_names_resolver(resolver: Any) -> None:
    """Make a DynamoDB client's endpoint resolver (botocore's `EndpointRulesetResolver`) list a transaction's
    tables with `transaction_table_names` instead of a JMESPath search; every other parameter as before."""
    original = resolver._resolve_param_as_operation_context_param

    def resolve(param_name: str, operation_model: Any, call_args: dict[str, Any]) -> Any:
        members = TRANSACTION_TABLE_MEMBERS.get((operation_model.name, param_name))
        if members is None:
            return original(param_name, operation_model, call_args)
        return transaction_table_names(call_args.get("TransactItems"), members)

    resolver._resolve_param_as_operation_context_param = resolve
