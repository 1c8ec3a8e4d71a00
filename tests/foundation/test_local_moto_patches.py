"""The local stack's faster DynamoDB paths give moto exactly what its own code gives it.

`recsys.local.moto_server` reads the item operations' requests as JSON and writes their results with
`json.dumps` instead of moto's shape-walking parser and serialiser, and sizes a new item once. Here moto runs
in-process and every item operation's request is parsed both ways and its result serialised both ways; the
two must be equal (every attribute type, binary values, sets, nested maps, empty results, pagination keys,
returned old values, a failed condition), an item over the size limit is refused as moto refuses it, and
requests are routed among the same service modules, and a Query answers as moto does. Kinesis' GetRecords,
which reads only the records it returns and writes its answer with `json.dumps`, answers as moto does from
every kind of shard position.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.responses import DynamoHandler, DynamoResult

from recsys.local import moto_server

TABLE = "recsys-test-responses"


@pytest.fixture
def compared():
    """Each item operation's request parsed and result serialised by moto and by the fast paths:
    (operation, moto's, ours) for requests and for responses."""
    requests: list[tuple[str, Any, Any]] = []
    responses: list[tuple[str, str, str]] = []
    original_result = DynamoResult.execute_result
    original_parse = DynamoHandler.parse_parameters
    moto_server.patch_dynamodb_responses()
    moto_server.patch_dynamodb_requests()
    fast_result = DynamoResult.execute_result
    fast_parse = DynamoHandler.parse_parameters

    def both_results(self: Any, context: Any) -> Any:
        status, headers, body = original_result(self, context)
        name = context.operation_model.name
        if name in moto_server.ITEM_OPERATIONS and not isinstance(self.result, Exception):
            fast_status, fast_headers, fast_body = fast_result(self, context)
            responses.append((name, body, fast_body))
            assert (fast_status, fast_headers) == (status, headers)
        return status, headers, body

    def both_parses(self: Any, request: Any) -> None:
        fast_parse(self, request)
        ours = self.params
        original_parse(self, request)
        if self._get_action() in moto_server.REQUEST_OPERATIONS:
            requests.append((self._get_action(), copy.deepcopy(self.params), ours))  # before moto uses it

    DynamoResult.execute_result = both_results
    DynamoHandler.parse_parameters = both_parses
    try:
        with mock_aws():
            yield requests, responses
    finally:
        DynamoResult.execute_result = original_result
        DynamoHandler.parse_parameters = original_parse


def _create_activity_table(ddb: Any, video_index: bool = False) -> None:
    """The activity table's shape (user, sort key), optionally with an index by video."""
    attributes = [{"AttributeName": name, "AttributeType": "S"} for name in ("user_id", "event_ts")]
    extra: dict[str, Any] = {}
    if video_index:
        attributes.append({"AttributeName": "video_id", "AttributeType": "S"})
        extra["GlobalSecondaryIndexes"] = [
            {
                "IndexName": "by-video",
                "KeySchema": [{"AttributeName": "video_id", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "user_id", "KeyType": "HASH"},
            {"AttributeName": "event_ts", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def _item(i: int) -> dict[str, Any]:
    return {
        "user_id": {"S": f"u{i % 3}"},
        "event_ts": {"S": f"{i:08d}#e{i}"},
        "n": {"N": str(i * 1.5)},
        "blob": {"B": bytes([i, 0, 255, 10])},
        "blobs": {"BS": [b"\x00\x01", bytes([i + 2])]},
        "tags": {"SS": ["a", "b"]},
        "nums": {"NS": ["1", "2.5"]},
        "nested": {"M": {"list": {"L": [{"S": "x"}, {"N": "3"}, {"NULL": True}]}, "flag": {"BOOL": False}}},
        "empty_list": {"L": []},
    }


def test_every_item_operation_says_what_moto_says(compared) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    _create_activity_table(ddb)
    items = [_item(i) for i in range(12)]
    ddb.put_item(TableName=TABLE, Item=items[0])
    ddb.put_item(TableName=TABLE, Item={**items[0], "n": {"N": "7"}}, ReturnValues="ALL_OLD")
    ddb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": item}} for item in items[1:]]})
    key = {"user_id": items[1]["user_id"], "event_ts": items[1]["event_ts"]}
    got = ddb.get_item(TableName=TABLE, Key=key)
    assert got["Item"]["blob"]["B"] == bytes([1, 0, 255, 10])  # binary values survive the round trip
    ddb.get_item(TableName=TABLE, Key={"user_id": {"S": "none"}, "event_ts": {"S": "none"}})
    ddb.get_item(
        TableName=TABLE, Key=key, ProjectionExpression="n, #b", ExpressionAttributeNames={"#b": "blob"}
    )
    ddb.batch_get_item(
        RequestItems={TABLE: {"Keys": [{"user_id": i["user_id"], "event_ts": i["event_ts"]} for i in items]}}
    )
    ddb.query(
        TableName=TABLE,
        KeyConditionExpression="user_id = :u",
        ExpressionAttributeValues={":u": {"S": "u1"}},
        Limit=2,
    )
    ddb.query(
        TableName=TABLE, KeyConditionExpression="user_id = :u", ExpressionAttributeValues={":u": {"S": "x"}}
    )
    ddb.scan(TableName=TABLE, Limit=5)
    ddb.scan(TableName=TABLE, Select="COUNT")
    ddb.update_item(
        TableName=TABLE,
        Key=key,
        UpdateExpression="SET n = n + :one ADD tags :t",
        ExpressionAttributeValues={":one": {"N": "1"}, ":t": {"SS": ["c"]}},
        ReturnValues="ALL_NEW",
    )
    ddb.update_item(
        TableName=TABLE, Key=key, UpdateExpression="REMOVE empty_list", ReturnValues="UPDATED_OLD"
    )
    ddb.delete_item(TableName=TABLE, Key=key, ReturnValues="ALL_OLD")
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": _item(40), "ConditionExpression": "attribute_not_exists(n)"}}
        ]
    )
    with pytest.raises(ClientError):
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": _item(40),
                        "ConditionExpression": "attribute_not_exists(n)",
                    }
                }
            ]
        )
    ddb.transact_get_items(
        TransactItems=[
            {"Get": {"TableName": TABLE, "Key": {"user_id": {"S": "u1"}, "event_ts": i["event_ts"]}}}
            for i in items[4:5]
        ]
    )

    ddb.batch_write_item(
        RequestItems={
            TABLE: [{"DeleteRequest": {"Key": {"user_id": {"S": "u2"}, "event_ts": items[2]["event_ts"]}}}]
        }
    )
    requests, responses = compared
    assert {name for name, _, _ in responses} == moto_server.ITEM_OPERATIONS
    for name, theirs, ours in responses:
        assert json.loads(ours) == json.loads(theirs), name
    assert {name for name, _, _ in requests} == moto_server.REQUEST_OPERATIONS
    for name, theirs, ours in requests:
        assert ours == theirs, name


def test_an_item_over_the_size_limit_is_refused_as_moto_refuses_it() -> None:
    original = dynamo_type.Item.__init__
    outcomes: dict[str, list[str]] = {}
    try:
        for label in ("moto", "ours"):
            if label == "ours":
                moto_server.patch_dynamodb_item_size()
            with mock_aws():
                ddb = boto3.client("dynamodb", region_name="us-east-1")
                ddb.create_table(
                    TableName=TABLE,
                    KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
                seen = []
                for size in (1_000, 404_000, 406_000):
                    # many attributes, so that the sizes of those before each one add up to the limit
                    item = {"k": {"S": str(size)}} | {
                        f"a{i:03d}": {"S": "x" * (size // 100)} for i in range(100)
                    }
                    try:
                        ddb.put_item(TableName=TABLE, Item=item)
                        seen.append("stored")
                    except ClientError as exc:
                        seen.append(exc.response["Error"]["Message"])
                outcomes[label] = seen
    finally:
        dynamo_type.Item.__init__ = original
    assert outcomes["ours"] == outcomes["moto"]
    assert outcomes["ours"][:2] == ["stored", "stored"]
    assert "size" in outcomes["ours"][2]


def test_request_routing_sees_the_same_service_modules() -> None:
    from moto import backends

    original = backends.list_of_moto_modules
    try:
        moto_server.patch_request_routing()
        assert backends.list_of_moto_modules is not original
        assert list(backends.list_of_moto_modules()) == list(original())
        assert {"dynamodb", "kinesis", "s3"} <= set(backends.list_of_moto_modules())
    finally:
        backends.list_of_moto_modules = original


def _queries(ddb: Any) -> list[dict[str, Any]]:
    """The same Query calls on a table with a range key and an index, and on one without a range key."""
    _create_activity_table(ddb, video_index=True)
    ddb.create_table(
        TableName="recsys-test-hash-only",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in reversed(range(60)):  # written out of order: answers must come sorted by range key
        item = {"user_id": {"S": f"u{i % 4}"}, "event_ts": {"S": f"{i:04d}"}, "video_id": {"S": f"v{i % 5}"}}
        ddb.put_item(TableName=TABLE, Item={**item, "n": {"N": str(i)}})
        ddb.put_item(TableName="recsys-test-hash-only", Item={"k": {"S": f"k{i}"}, "n": {"N": str(i)}})
    user = {":u": {"S": "u1"}}
    calls: list[dict[str, Any]] = [
        {"KeyConditionExpression": "user_id = :u", "ExpressionAttributeValues": user},
        {
            "KeyConditionExpression": "user_id = :u",
            "ExpressionAttributeValues": user,
            "ScanIndexForward": False,
        },
        {
            "KeyConditionExpression": "user_id = :u AND event_ts BETWEEN :a AND :b",
            "ExpressionAttributeValues": {**user, ":a": {"S": "0010"}, ":b": {"S": "0040"}},
        },
        {
            "KeyConditionExpression": "user_id = :u AND begins_with(event_ts, :p)",
            "ExpressionAttributeValues": {**user, ":p": {"S": "002"}},
        },
        {
            "KeyConditionExpression": "user_id = :u",
            "FilterExpression": "n > :n",
            "ExpressionAttributeValues": {**user, ":n": {"N": "30"}},
        },
        {"KeyConditionExpression": "user_id = :u", "ExpressionAttributeValues": user, "Select": "COUNT"},
        {"KeyConditionExpression": "user_id = :x", "ExpressionAttributeValues": {":x": {"S": "nobody"}}},
        {
            "IndexName": "by-video",
            "KeyConditionExpression": "video_id = :v",
            "ExpressionAttributeValues": {":v": {"S": "v2"}},
        },
    ]
    answers = []
    for call in calls:
        pages, start = [], None
        while True:  # pages of 4, so the exclusive start key is exercised
            page = ddb.query(
                TableName=TABLE, Limit=4, **call, **({"ExclusiveStartKey": start} if start else {})
            )
            page.pop("ResponseMetadata")
            pages.append(page)
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        answers.append({"call": call, "pages": pages})
    one = ddb.query(
        TableName="recsys-test-hash-only",
        KeyConditionExpression="k = :k",
        ExpressionAttributeValues={":k": {"S": "k7"}},
    )
    one.pop("ResponseMetadata")
    answers.append({"call": "hash only", "pages": [one]})
    return answers


def test_a_query_reads_its_partition_and_answers_as_moto_does() -> None:
    from moto.dynamodb.models.table import Table

    original_query, original_all_items = Table.query, Table.all_items
    try:
        with mock_aws():
            theirs = _queries(boto3.client("dynamodb", region_name="us-east-1"))
        moto_server.patch_dynamodb_query()
        with mock_aws():
            ddb = boto3.client("dynamodb", region_name="us-east-1")
            ours = _queries(ddb)
            assert moto_server._query_partition.asked is None  # nothing left behind for the next call
            assert len(ddb.scan(TableName=TABLE)["Items"]) == 60  # a Scan still reads the whole table
    finally:
        Table.query, Table.all_items = original_query, original_all_items
    assert ours == theirs
    assert [len(p["Items"]) for p in theirs[0]["pages"]] == [4, 4, 4, 3]


def test_request_dispatch_answers_as_moto_does() -> None:
    """The per-request work done once still answers every request as moto does, each service found by its
    host name; request ids stay unique and in moto's form."""
    from flask import debughelpers
    from moto.core import responses
    from moto.moto_server import werkzeug_app
    from werkzeug.test import Client

    saved = (
        responses.method_names_from_class,
        responses.gen_amzn_requestid_long,
        werkzeug_app.DomainDispatcherApplication.get_backend_for_host,
        debughelpers.attach_enctype_error_multidict,
    )

    def calls() -> list[tuple[int, Any, str]]:
        client = Client(werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app))
        out = []
        for service, target in [
            ("dynamodb", "DynamoDB_20120810.ListTables"),
            ("kinesis", "Kinesis_20131202.ListStreams"),
            ("dynamodb", "DynamoDB_20120810.ListTables"),
        ]:
            headers = {
                "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, "
                "SignedHeaders=host, Signature=x",
                "X-Amz-Target": target,
                "Content-Type": "application/x-amz-json-1.1",
            }
            response = client.post("/", data="{}", headers=headers)
            out.append(
                (
                    response.status_code,
                    response.get_json(force=True),
                    response.headers.get("x-amzn-requestid", ""),
                )
            )
        return out

    try:
        with mock_aws():
            before = calls()
            moto_server.patch_request_dispatch()
            moto_server.patch_request_dispatch()  # idempotent
            after = calls()
    finally:
        (responses.method_names_from_class, responses.gen_amzn_requestid_long,
         werkzeug_app.DomainDispatcherApplication.get_backend_for_host,
         debughelpers.attach_enctype_error_multidict) = saved  # fmt: skip
    assert [(status, body) for status, body, _ in after] == [(status, body) for status, body, _ in before]
    assert after[0][:2] == (200, {"TableNames": []}) and after[1][1]["StreamNames"] == []
    ids = [request_id for _, _, request_id in after]
    assert len(set(ids)) == 3 and all(len(i) == 52 and i.isalnum() and i.isupper() for i in ids)


def _get_records_answers(kinesis: Any) -> list[dict[str, Any]]:
    """GetRecords from every kind of position of a 2-shard stream, as boto3 parses the answers."""
    shards = [s["ShardId"] for s in kinesis.list_shards(StreamName="events")["Shards"]]
    answers = []
    for shard in shards:
        positions: list[dict[str, Any]] = [
            {"ShardIteratorType": "TRIM_HORIZON"},
            {"ShardIteratorType": "LATEST"},
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": "3"},
            {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": "2"},
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": "10000"},
        ]
        for position in positions:
            for limit in (None, 1, 4, 10_000):
                it = kinesis.get_shard_iterator(StreamName="events", ShardId=shard, **position)[
                    "ShardIterator"
                ]
                answer = kinesis.get_records(ShardIterator=it, **({"Limit": limit} if limit else {}))
                answer.pop("ResponseMetadata")
                answers.append(answer)
                if answer["Records"]:  # and on from there, as a consumer reads
                    again = kinesis.get_records(ShardIterator=answer["NextShardIterator"], Limit=3)
                    again.pop("ResponseMetadata")
                    answers.append(again)
    return answers


def test_get_records_reads_only_what_it_returns_and_answers_as_moto_does() -> None:
    from moto.kinesis import models, responses

    saved = (models.Shard.get_records, responses.KinesisResponse.get_records)
    try:
        with mock_aws():
            kinesis = boto3.client("kinesis", region_name="us-east-1")
            kinesis.create_stream(StreamName="events", ShardCount=2)
            for i in range(40):
                data = bytes([i % 256]) * (i + 1) + "é".encode()  # binary, not text
                kinesis.put_record(StreamName="events", Data=data, PartitionKey=f"user-{i % 7}")
            theirs = _get_records_answers(kinesis)
            moto_server.patch_kinesis()
            moto_server.patch_kinesis_reads()
            moto_server.patch_kinesis_reads()  # idempotent
            ours = _get_records_answers(kinesis)
            assert ours == theirs
            assert sum(len(a["Records"]) for a in ours) > 40 and any(not a["Records"] for a in ours)
            # A shard whose records are not numbered one by one is read by moto's own walk.
            backend = models.kinesis_backends["123456789012"]["us-east-1"]
            shard = next(s for s in backend.streams["events"].shards.values() if len(s.records) > 4)
            del shard.records[next(iter(shard.records)) + 1]
            assert _get_records_answers(kinesis) == _get_records_answers_with(saved, kinesis)
    finally:
        models.Shard.get_records, responses.KinesisResponse.get_records = saved


def _get_records_answers_with(saved: tuple[Any, Any], kinesis: Any) -> list[dict[str, Any]]:
    from moto.kinesis import models, responses

    patched = (models.Shard.get_records, responses.KinesisResponse.get_records)
    models.Shard.get_records, responses.KinesisResponse.get_records = saved
    try:
        return _get_records_answers(kinesis)
    finally:
        models.Shard.get_records, responses.KinesisResponse.get_records = patched


def _transaction_script(ddb: Any) -> list[Any]:
    """Transactions of every kind of entry, some cancelled by one failed condition; what each answered."""
    seen: list[Any] = []

    def attempt(entries: list[dict[str, Any]]) -> None:
        try:
            ddb.transact_write_items(TransactItems=entries)
            seen.append("committed")
        except ClientError as exc:
            seen.append([r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])])

    def key(i: int) -> dict[str, Any]:
        return {"user_id": _item(i)["user_id"], "event_ts": _item(i)["event_ts"]}

    new = "attribute_not_exists(n)"
    attempt([{"Put": {"TableName": TABLE, "Item": _item(i), "ConditionExpression": new}} for i in range(4)])
    attempt(
        [{"Put": {"TableName": TABLE, "Item": _item(0), "ConditionExpression": new}}]
    )  # exists: cancelled
    moves = [
        {
            "Put": {
                "TableName": TABLE,
                "Item": {**_item(1), "n": {"N": "99"}},
                "ConditionExpression": "n = :n",
            }
        },
        {
            "Update": {
                "TableName": TABLE,
                "Key": key(2),
                "UpdateExpression": "SET n = n + :one ADD tags :t",
                "ConditionExpression": "attribute_exists(n)",
            }
        },
        {"Delete": {"TableName": TABLE, "Key": key(3), "ConditionExpression": "attribute_exists(n)"}},
        {"Put": {"TableName": TABLE, "Item": _item(5), "ConditionExpression": new}},
    ]
    values = {":n": {"N": "1.5"}, ":one": {"N": "1"}, ":t": {"SS": ["z"]}}
    moves[0]["Put"]["ExpressionAttributeValues"] = {":n": values[":n"]}
    moves[1]["Update"]["ExpressionAttributeValues"] = {":one": values[":one"], ":t": values[":t"]}
    check_fails = {"ConditionCheck": {"TableName": TABLE, "Key": key(0), "ConditionExpression": new}}
    attempt([*moves, check_fails])  # the last condition fails: nothing of the four may stay
    attempt(moves)
    attempt(moves)  # n is 99 now, item 3 is gone and item 5 exists: three conditions fail
    seen.append(
        sorted(json.dumps(i, sort_keys=True, default=repr) for i in ddb.scan(TableName=TABLE)["Items"])
    )
    return seen


def test_transactions_commit_and_roll_back_as_moto_does(monkeypatch) -> None:
    """A transaction's conditions are checked once in ours; what commits, what is cancelled (and why) and
    what is stored afterwards are moto's."""
    from moto.dynamodb import models, responses
    from moto.dynamodb.models import table

    for owner, name in [
        (models, "copy"),
        (models, "get_filter_expression"),
        (table, "get_filter_expression"),
        (responses, "create_condition_expression_parser"),
        *[
            (models.DynamoDBBackend, n)
            for n in ("transact_write_items", "put_item", "update_item", "delete_item")
        ],
    ]:
        monkeypatch.setattr(owner, name, getattr(owner, name))  # put back after the test
    assert not getattr(models.DynamoDBBackend.transact_write_items, "__recsys_locked__", False)
    outcomes = {}
    for label in ("moto", "ours"):
        if label == "ours":
            moto_server.patch_dynamodb_transactions()
            moto_server.patch_condition_parsing()
        with mock_aws():
            ddb = boto3.client("dynamodb", region_name="us-east-1")
            _create_activity_table(ddb)
            outcomes[label] = _transaction_script(ddb)
    assert outcomes["ours"] == outcomes["moto"]
    assert outcomes["ours"][:5] == [
        "committed",
        ["ConditionalCheckFailed"],
        ["None", "None", "None", "None", "ConditionalCheckFailed"],
        "committed",
        ["ConditionalCheckFailed", "None", "ConditionalCheckFailed", "ConditionalCheckFailed"],
    ]


ATTRIBUTE_VALUES: list[dict[str, Any]] = [
    {"S": "u1"}, {"S": "u1"}, {"S": ""}, {"S": "ünïcode ✓"}, {"S": "1"},
    {"N": "1"}, {"N": "1.0"}, {"N": "-0"}, {"N": "12345678901234567890.5"},
    {"B": b"\x00\xff"}, {"B": b"\x00\xff"}, {"B": "AP8="}, {"BOOL": True}, {"BOOL": False}, {"NULL": True},
    {"SS": ["a", "b"]}, {"SS": ["b", "a"]}, {"NS": ["1", "2.50"]}, {"BS": [b"\x01", b"\x02"]},
    {"L": [{"S": "x"}, {"N": "3"}, {"L": [{"BOOL": True}]}]}, {"L": []},
    {"M": {"a": {"S": "x"}, "b": {"M": {"c": {"N": "1"}}}}}, {"M": {}},
]  # fmt: skip


def test_dynamo_type_fast_paths_answer_as_moto_does() -> None:
    """Keys are hashed and compared (and items sized) through a direct path for strings, binaries and
    booleans: every attribute type, built and compared both ways, gives moto's answers."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    moto_server.patch_dynamodb_types()
    moto = moto_server.MOTO_DYNAMO_TYPE

    def moto_built(value: dict[str, Any]) -> DynamoType:
        built = DynamoType.__new__(DynamoType)
        moto["__init__"](built, value)
        return built

    for raw in ATTRIBUTE_VALUES:
        ours, theirs = DynamoType(copy.deepcopy(raw)), moto_built(copy.deepcopy(raw))
        assert (ours.type, ours.value == theirs.value) == (theirs.type, True)
        assert ours.cast_value == moto["cast_value"](theirs)
        assert ours.size() == moto["size"](theirs)
        try:
            expected: Any = moto["__hash__"](theirs)
        except TypeError:  # sets, lists and maps cast to what does not hash, for moto as here
            expected = TypeError
        if expected is TypeError:
            with pytest.raises(TypeError):
                hash(ours)
        else:
            assert hash(ours) == expected
        assert DynamoType(ours) == ours  # built from another DynamoType (moto's own path)
        for other_raw in ATTRIBUTE_VALUES:
            other = DynamoType(copy.deepcopy(other_raw))
            assert (ours == other) == moto["__eq__"](theirs, other), (raw, other_raw)
            assert (ours != other) == moto["__ne__"](theirs, other), (raw, other_raw)


INVALID_ATTRIBUTE_VALUES: list[Any] = [
    {"N": "abc"}, {"N": " 1"}, {"N": "NaN"}, {"N": "1e400"}, {"N": 1}, {"N": 1.5}, {"N": {"S": "1"}},
    {"S": 5}, {"S": True}, {"S": {"S": "x"}}, {"NULL": False}, {"B": {"N": "x"}}, {"BOOL": {"N": "x"}},
    {"M": {"x": {"N": "bad"}}}, {"L": [{"N": "bad"}]}, {"S": "a", "N": "1"}, {}, "text", None,
]  # fmt: skip


def _outcome(check: Any, *args: Any) -> Any:
    """None, or the type and text of what `check` raised."""
    try:
        check(*args)
    except Exception as exc:
        return type(exc), str(exc)
    return None


def test_item_checks_answer_as_moto_does(monkeypatch) -> None:
    """The type check and the empty-key check of every written item pass over plain attributes directly: valid
    and invalid values of every type, under key, index-key and ordinary names (and names moto's type check
    acts on), pass or fail with moto's own error."""
    from moto.dynamodb import responses
    from moto.dynamodb.models.table import Table

    moto_server.patch_dynamodb_validation()
    moto = moto_server.MOTO_VALIDATION
    table = Table(
        TABLE,
        account_id="123456789012",
        region="us-east-1",
        schema=[
            {"AttributeName": "user_id", "KeyType": "HASH"},
            {"AttributeName": "event_ts", "KeyType": "RANGE"},
        ],
        attr=[{"AttributeName": n, "AttributeType": "S"} for n in ("user_id", "event_ts", "video_id")],
        global_indexes=[
            {
                "IndexName": "by-video",
                "KeySchema": [{"AttributeName": "video_id", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    ours_types, ours_empty = Table._validate_item_types, responses.validate_put_has_empty_keys

    def moto_types(item: dict[str, Any]) -> Any:
        with monkeypatch.context() as m:  # moto's check calls itself: all moto's own while it runs
            m.setattr(Table, "_validate_item_types", moto["validate_item_types"])
            return _outcome(table._validate_item_types, item)

    names = ("user_id", "event_ts", "video_id", "plain", "N", "S", "NULL", "B")
    values = ATTRIBUTE_VALUES + INVALID_ATTRIBUTE_VALUES + [{"B": ""}, {"S": " "}]
    checked = failed = 0
    for name in names:
        for value in values:
            for item in ({"user_id": {"S": "u"}, name: value}, {name: value, "n": {"N": "1"}}):
                theirs = moto_types(copy.deepcopy(item))
                assert _outcome(ours_types, table, copy.deepcopy(item)) == theirs, item
                for message in (None, "custom {}"):
                    expected = _outcome(
                        moto["validate_put_has_empty_keys"], copy.deepcopy(item), table, message
                    )
                    assert _outcome(ours_empty, copy.deepcopy(item), table, message) == expected, item
                    failed += expected is not None
                assert _outcome(ours_empty, item, None) == _outcome(
                    moto["validate_put_has_empty_keys"], item, None
                )
                checked += 1
                failed += theirs is not None
    assert checked == 2 * len(names) * len(values) and failed > len(names) * len(INVALID_ATTRIBUTE_VALUES)


def test_a_batch_write_refuses_one_key_twice_and_takes_equal_items_for_two_tables(monkeypatch) -> None:
    """BatchWriteItem compares keys, as DynamoDB does: a key put twice (whatever the attributes) or deleted
    twice is refused and nothing is written; the same item bound for two tables is written to both; items
    without their key get moto's own error."""
    from moto.dynamodb import responses

    monkeypatch.setattr(responses.DynamoHandler, "batch_write_item", responses.DynamoHandler.batch_write_item)
    monkeypatch.setattr(responses, "dynamo_json_dump", responses.dynamo_json_dump)
    moto_server.patch_dynamodb_batch_keys()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        _create_activity_table(ddb)
        other = TABLE + "-other"
        ddb.create_table(
            TableName=other,
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        item = {"user_id": {"S": "u1"}, "event_ts": {"S": "1"}, "n": {"N": "1"}}
        ddb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": item}}],
                                           other: [{"PutRequest": {"Item": item}}]})  # fmt: skip
        assert ddb.scan(TableName=TABLE)["Count"] == ddb.scan(TableName=other)["Count"] == 1

        twice = [
            {"PutRequest": {"Item": {**item, "event_ts": {"S": "2"}, "n": {"N": str(n)}}}} for n in (1, 2)
        ]
        deleted_twice = [{"DeleteRequest": {"Key": {"user_id": {"S": "u1"}, "event_ts": {"S": "1"}}}}] * 2
        for requests in (twice, deleted_twice):
            with pytest.raises(ClientError, match="Provided list of item keys contains duplicates"):
                ddb.batch_write_item(RequestItems={TABLE: requests})
        assert ddb.scan(TableName=TABLE)["Items"] == [item]  # neither batch wrote anything

        ddb.batch_write_item(RequestItems={TABLE: [twice[0], deleted_twice[0]]})  # two keys: both done
        assert [i["event_ts"]["S"] for i in ddb.scan(TableName=TABLE)["Items"]] == ["2"]

        keyless = [{"PutRequest": {"Item": {"user_id": {"S": "u2"}, "n": {"N": str(n)}}}} for n in (1, 2)]
        with pytest.raises(ClientError, match="Missing the key event_ts"):  # moto's own answer, as before
            ddb.batch_write_item(RequestItems={TABLE: keyless})
