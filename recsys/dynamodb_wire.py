"""DynamoDB requests built in the service's own JSON form, sent without botocore walking them again.

The stream processor and the inference tracker build every item in DynamoDB's typed form themselves
(`recsys.feature_store.online.serialize_item`). botocore's JSON serializer then walks each request against
the operation's input shape, value by value, only to produce the same JSON: a quarter of the stream
processor's CPU for its transactions of 100 items. For the item operations in WIRE_FORM_OPERATIONS, the
bulk client's serializer writes the parameters as JSON directly; binary values are base64-encoded, as
botocore does. Every other operation, and any parameter this cannot write, goes through botocore.
`tests/foundation/test_dynamodb_wire.py` compares both serializers on every attribute type.
"""

from __future__ import annotations

import base64
import json
from typing import Any

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
    """`json.dumps`'s `default` for DynamoDB's JSON: binary attribute values as base64 (as botocore sends them
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
            body = json.dumps(parameters, default=wire_value, allow_nan=False)
        except (TypeError, ValueError):  # not the wire form (e.g. a boto3 Binary): botocore writes it
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
            "body": body.encode("utf-8"),
        }

    def __getattr__(self, name: str) -> Any:  # anything else botocore asks of its serializer
        return getattr(self._botocore, name)
