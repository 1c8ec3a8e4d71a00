"""The local stack's moto server, with fixes for how recsys uses it (correctness first, then cost).

- Kinesis: moto 5.2.5 gives a new record the shard's last sequence number + 1 without a lock, so two
  concurrent `PutRecord` calls can get the same number and one record replaces the other (and `GetRecords`
  can iterate a shard while a put changes it). Every read and write of a shard's records takes one lock.
- Kinesis reads: moto's `GetRecords` walks every record of the shard from the first on each call (a
  long-running stack read its stream more slowly with every event) and writes its answer by walking the output
  shape; here it reads from the position asked and writes the JSON itself.
- DynamoDB transactions: moto deep-copies every table a `TransactWriteItems` touches (to roll back on a
  failed condition), so a transaction costs time in proportion to the tables' sizes. Here it copies only
  the items the transaction names, restores those on failure, and runs one transaction (or single-item
  write) at a time, so no write lands between a transaction's copy and its rollback. moto checks each
  item's condition twice (in the transaction, then again in the write it calls under the same lock); here
  the write skips the second check. A condition expression is parsed once, not once per item.
- Every request: moto 5.2.5 lists its own package directory (an `isdir` per service, about 200) to route each
  request; the listing is made once here. What else moto and Flask redo per request that never changes (the
  handler's method names, the service of a host name, a class that Flask's debug mode builds per request) is
  done once.
- DynamoDB items: moto checks an item's 400 KB limit again as it adds each attribute, summing the sizes of all
  those before it (quadratic in the number of attributes); here the whole item is sized once, which is the
  same check, since a prefix of the attributes is never larger than all of them.
- DynamoDB batch writes: moto 5.2.5 finds a key given twice in a BatchWriteItem by dumping every whole item to
  JSON and comparing the dumps, which let through one key put twice with different attributes (DynamoDB
  refuses it) and refused the same item bound for two tables (DynamoDB takes it). Here it compares each
  request's table and key: as DynamoDB does, and a sixth less of the emulator's time per tracked answer.
- DynamoDB queries: moto 5.2.5 answers a Query on a table by sorting every item of the table, then keeping
  the partition asked for, so a query costs in proportion to the table (a serving miss's query of a user's
  activity got five times dearer in one minute of load); here it sorts that partition's items only.
- DynamoDB responses: moto 5.2.5 serialises every response by walking the operation's output shape, member by
  member, which costs more than the operation itself when a response carries items (a BatchGetItem of 100
  items spends most of its time there). The item operations' results are already in DynamoDB's wire form, so
  they are written as JSON directly with orjson (binary values base64, as the generic serialiser writes
  them).
- DynamoDB requests: likewise moto reads each request by walking the input shape; an item operation's request
  is its JSON, with binary attribute values decoded from base64 (what the shape walk gives it).
- Garbage collection: every stored item is a tree of Python objects, so each of Python's full collections
  walked the whole store (190-290 ms with the GIL held after a minute of load, longer as the tables grow)
  and stalled every request meanwhile. The stored data is kept frozen out of the collector
  (`recsys.heap.FreezeLoop`).

- HTTP: moto's own server closes the connection after every answer; here it serves moto's application
  with cheroot, connections kept alive (`serve`).

`recsys local up` starts moto through this module, which applies them all before it serves moto's
application. A LocalStack (or any other endpoint you run yourself) is used as it is.

    python -m recsys.local.moto_server -H 127.0.0.1 -p 4566
"""

from __future__ import annotations

import base64
import copy
import functools
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import orjson

from recsys.dynamodb_wire import wire_value
from recsys.heap import FreezeLoop

MARKER = "recsys.local.moto_server"  # in the command line of the process (see ManagedProcess.marker)
_SHARD_LOCK = threading.RLock()


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _SHARD_LOCK:
            return method(*args, **kwargs)

    run.__recsys_locked__ = True  # type: ignore[attr-defined]
    return run


def _first_sequence_number(shard: Any) -> int:
    return next(iter(shard.records), 0)


def _last_sequence_number(shard: Any) -> int:
    return next(reversed(shard.records), 0)  # moto lists every key to take the last one


def patch_kinesis() -> None:
    """Serialise moto's Kinesis shard operations (idempotent); sequence number bounds in O(1)."""
    from moto.kinesis import models

    if not getattr(models.Shard.get_max_sequence_number, "__recsys_locked__", False):
        models.Shard.get_min_sequence_number = _first_sequence_number
        models.Shard.get_max_sequence_number = _last_sequence_number
    for name in ("put_record", "get_records", "get_min_sequence_number", "get_max_sequence_number"):
        method = getattr(models.Shard, name)
        if not getattr(method, "__recsys_locked__", False):
            setattr(models.Shard, name, _locked(method))


MAX_GET_RECORDS = 10_000  # Kinesis' largest GetRecords Limit


def _records_after(shard: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
    """moto's `Shard.get_records` reading only the records asked for: moto numbers a shard's records one by
    one (1, 2, 3...), where moto walks every record from the first (slower with each record on the stream)."""
    last = int(last_sequence_id)
    records = shard.records
    if not records:
        return [], last, 0
    first, newest = next(iter(records)), next(reversed(records))
    wanted = min(limit or MAX_GET_RECORDS, MAX_GET_RECORDS)
    out: list[Any] = []
    seq = max(last + 1, first)
    while len(out) < wanted and seq <= newest:
        record = records.get(seq)
        if record is None:  # not numbered one by one: moto's own walk
            return shard.__recsys_walk__(last_sequence_id, limit)
        out.append(record)
        seq += 1
    if not out:
        return [], last, 0
    behind = records[newest].created_at - out[-1].created_at
    return out, out[-1].sequence_number, int(behind * 1000)


def get_records_body(result: tuple[str, list[Any], int]) -> str:
    """GetRecords' JSON body as moto's serialiser writes it: the stored base64 data as it came, arrival times in
    epoch seconds truncated to milliseconds."""
    from moto.core.serialize import TimestampSerializer

    next_iterator, records, millis_behind = result
    stamp = TimestampSerializer._timestamp_unixtimestamp
    body = {
        "Records": [
            {"SequenceNumber": str(r.sequence_number), "ApproximateArrivalTimestamp": stamp(r.created_at_datetime),
             "Data": r.data, "PartitionKey": r.partition_key}
            for r in records
        ],
        "NextShardIterator": next_iterator,
        "MillisBehindLatest": millis_behind,
    }  # fmt: skip
    return orjson.dumps(body).decode()  # moto reads a handler's bytes as a (status, headers, body) tuple


def patch_kinesis_reads() -> None:
    """GetRecords reads only the records it returns and writes its answer with orjson (idempotent)."""
    from moto.kinesis import models, responses

    if getattr(responses.KinesisResponse.get_records, "__recsys_locked__", False):
        return
    models.Shard.__recsys_walk__ = models.Shard.get_records
    models.Shard.get_records = _locked(_records_after)

    def get_records(self: Any) -> str:
        result = self.kinesis_backend.get_records(
            self._get_param("StreamARN"), self._get_param("ShardIterator"), self._get_param("Limit")
        )
        self.response_headers["Content-Type"] = "application/x-amz-json-1.1"
        return get_records_body(result)

    get_records.__recsys_locked__ = True  # type: ignore[attr-defined]
    responses.KinesisResponse.get_records = get_records


class _TablesNotCopied:
    """Stands in for the `copy` module inside moto's DynamoDB backend: a table's "backup" is the table itself
    (the items a transaction names are copied and restored by `patch_dynamodb_transactions` instead)."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, self._table_type):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def patch_dynamodb_transactions() -> None:
    """Copy only the named items around `TransactWriteItems` (idempotent)."""
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = models.DynamoDBBackend.transact_write_items
    if getattr(original, "__recsys_locked__", False):
        return
    lock = threading.RLock()
    in_transaction = threading.local()

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with lock:
            saved = []
            for entry in transact_items:
                kind, op = next(iter(entry.items()))
                try:
                    table = self.get_table(op["TableName"])
                    key = op.get("Key") or op["Item"]
                    hash_key = DynamoType(key[table.hash_key_attr])
                    range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                except Exception:  # moto reports the malformed entry itself
                    continue
                current = table.get_item(hash_key, range_key)
                # A Put or Delete replaces the stored item object; only an Update changes it in place.
                saved.append(
                    (table, hash_key, range_key, copy.deepcopy(current) if kind == "Update" else current)
                )
            in_transaction.active = True
            try:
                return original(self, transact_items)
            except Exception:
                for table, hash_key, range_key, item in reversed(saved):
                    if item is None:
                        table.delete_item(hash_key, range_key)
                    elif range_key is not None:
                        table.items[hash_key][range_key] = item
                    else:
                        table.items[hash_key] = item
                raise
            finally:
                in_transaction.active = False

    transact_write_items.__recsys_locked__ = True  # type: ignore[attr-defined]
    models.copy = _TablesNotCopied(Table)  # type: ignore[attr-defined]
    models.DynamoDBBackend.transact_write_items = transact_write_items
    # Single-item writes take the same lock: a transaction's items must not change under it between its
    # copy and a rollback (DynamoDB isolates transactions from other writes; moto does not). Called by a
    # transaction, a write's condition was checked a moment before against the same item under this lock.
    for name in ("put_item", "update_item", "delete_item"):
        method = getattr(models.DynamoDBBackend, name)

        def locked(self: Any, *args: Any, __method: Any = method, **kwargs: Any) -> Any:
            with lock:
                if getattr(in_transaction, "active", False):
                    kwargs["condition_expression"] = None
                return __method(self, *args, **kwargs)

        setattr(models.DynamoDBBackend, name, functools.wraps(method)(locked))


def _expression_key(expr: Any, names: Any, values: Any) -> str:
    """What a parsed expression depends on, as a string: the expression, its names and its values as JSON
    parses them (strings, numbers, booleans, None, lists, dicts: their `repr` is exact). Half the cost of
    `json.dumps`; two requests that list the same names in another order only miss the cache."""
    return repr((expr, names, values))


def patch_condition_parsing(max_entries: int = 4096) -> None:
    """Parse each distinct condition expression once (moto parses it again for every item, twice in a
    transaction); the parsed condition is a pure function of the expression, its names and its values."""
    from moto.dynamodb import models, responses
    from moto.dynamodb.comparisons import create_condition_expression_parser, get_filter_expression
    from moto.dynamodb.models import table

    if getattr(models.get_filter_expression, "__recsys_locked__", False):
        return
    parsed: dict[str, Any] = {}
    lock = threading.Lock()

    def cached(expr: Any, names: Any, values: Any) -> Any:
        if expr is None:
            return get_filter_expression(expr, names, values)
        key = _expression_key(expr, names, values)
        with lock:
            hit = parsed.get(key)
        if hit is None:
            hit = get_filter_expression(expr, names, values)
            with lock:
                if len(parsed) >= max_entries:
                    parsed.clear()
                parsed[key] = hit
        return hit

    class _Parsed:
        """What moto's transaction validation reads of a parser: its result and the names it found."""

        def __init__(self, op: Any, names_found: list[str], values_found: list[str]) -> None:
            self._op, self._names, self._values = op, names_found, values_found

        def parse(self) -> Any:
            return self._op

        @property
        def expr_attr_names_found(self) -> list[str]:
            return list(self._names)  # moto extends the list it gets

        @property
        def expr_attr_values_found(self) -> list[str]:
            return list(self._values)  # UpdateItem checks every value it was given is used

    validated: dict[str, _Parsed] = {}

    def cached_parser(expr: Any, names: Any, values: Any) -> Any:
        key = _expression_key(expr, names, values)
        with lock:
            hit = validated.get(key)
        if hit is None:
            parser = create_condition_expression_parser(expr, names, values)
            hit = _Parsed(
                parser.parse(),
                list(parser.expr_attr_names_found),
                list(getattr(parser, "expr_attr_values_found", [])),
            )
            with lock:
                if len(validated) >= max_entries:
                    validated.clear()
                validated[key] = hit
        return hit

    cached.__recsys_locked__ = True  # type: ignore[attr-defined]
    models.get_filter_expression = cached
    table.get_filter_expression = cached
    responses.create_condition_expression_parser = cached_parser


# moto's LimitedSizeDict limit (DynamoDB's 400 KB measured as between 409 and 410 KB)
ITEM_SIZE_LIMIT = 405_000


def patch_dynamodb_item_size() -> None:
    """Size a new item once instead of once per attribute (idempotent)."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models import dynamo_type
    from moto.dynamodb.models.utilities import bytesize

    if getattr(dynamo_type.Item.__init__, "__recsys_locked__", False):
        return

    def item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        values = {key: dynamo_type.DynamoType(value) for key, value in attrs.items()}
        if sum(bytesize(key) + value.size() for key, value in values.items()) > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        self.attrs = dynamo_type.LimitedSizeDict()
        dict.update(self.attrs, values)  # later single-attribute changes are still checked by moto

    item_init.__recsys_locked__ = True  # type: ignore[attr-defined]
    dynamo_type.Item.__init__ = item_init


_SCALAR_TYPES = frozenset({"S", "B", "BOOL"})  # a DynamoType of these casts to its value as it is
_BYTE_SIZED_SETS = frozenset({"SS", "BS"})  # sized by their members' bytes (a tracked answer's videos)
MOTO_DYNAMO_TYPE: dict[str, Callable[..., Any]] = {}  # moto's own methods, once patch_dynamodb_types ran


def patch_dynamodb_types() -> None:
    """moto's DynamoType answers `cast_value`, `__hash__`, `__eq__` and `size` by asking `is_number()`,
    `is_set()`, `is_list()`... one method call each, and every stored item is found by hashing and comparing
    its keys. Strings, binaries and booleans (every key here) take a direct path with the same answer; other
    types go through moto's code (idempotent)."""
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.utilities import bytesize

    if getattr(DynamoType.__hash__, "__recsys_locked__", False):
        return
    moto_init, moto_hash, moto_eq, moto_ne = (
        DynamoType.__init__,
        DynamoType.__hash__,
        DynamoType.__eq__,
        DynamoType.__ne__,
    )
    moto_cast, moto_size = DynamoType.cast_value.fget, DynamoType.size
    MOTO_DYNAMO_TYPE.update(__init__=moto_init, __hash__=moto_hash, __eq__=moto_eq, __ne__=moto_ne,
                            cast_value=moto_cast, size=moto_size)  # fmt: skip

    def init(self: Any, type_as_dict: Any) -> None:
        if type(type_as_dict) is dict and len(type_as_dict) == 1:
            for kind, value in type_as_dict.items():
                self.type, self.value = kind, value
            if kind == "L":
                self.value = [DynamoType(v) for v in value]
            elif kind == "M":
                self.value = {k: DynamoType(v) for k, v in value.items()}
            return
        moto_init(self, type_as_dict)

    def cast_value(self: Any) -> Any:
        return self.value if self.type in _SCALAR_TYPES else moto_cast(self)

    def hash_(self: Any) -> int:
        return hash((self.type, self.value)) if self.type in _SCALAR_TYPES else moto_hash(self)

    def eq(self: Any, other: Any) -> bool:
        kind = self.type
        if kind in _SCALAR_TYPES and type(other) is DynamoType:
            return kind == other.type and self.value == other.value
        return moto_eq(self, other)

    def ne(self: Any, other: Any) -> bool:
        kind = self.type
        if kind in _SCALAR_TYPES and type(other) is DynamoType:
            return kind != other.type or self.value != other.value
        return moto_ne(self, other)

    def size(self: Any) -> int:
        value = self.value
        if self.type in _SCALAR_TYPES and not isinstance(value, bool):
            return bytesize(value)
        if self.type in _BYTE_SIZED_SETS:  # moto wraps each member in a DynamoType only to ask its bytesize
            return sum(map(bytesize, value))
        return moto_size(self)

    hash_.__recsys_locked__ = True  # type: ignore[attr-defined]
    DynamoType.__init__ = init  # type: ignore[method-assign]
    DynamoType.cast_value = property(cast_value)  # type: ignore[method-assign,assignment]
    DynamoType.__hash__ = hash_  # type: ignore[method-assign,assignment]
    DynamoType.__eq__ = eq  # type: ignore[method-assign,assignment]
    DynamoType.__ne__ = ne  # type: ignore[method-assign,assignment]
    DynamoType.size = size  # type: ignore[method-assign]


# The attribute names on which moto's type check acts itself (an attribute named "N" is checked as a number...)
_CHECKED_NAMES = frozenset({"N", "S", "NULL"})
# The types whose value moto's type check does not look into (when the value is not a map)
_UNCHECKED_TYPES = frozenset({"B", "BOOL", "L", "SS", "NS", "BS"})
MOTO_VALIDATION: dict[str, Callable[..., Any]] = {}  # moto's own checks, once patch_dynamodb_validation ran


def patch_dynamodb_validation() -> None:
    """Two checks moto runs on every item written, with moto's answers and errors but less work (idempotent):

    - `Table._validate_item_types` (a number must parse, a string must not be a number, NULL must be true)
      calls itself once per attribute on its `{type: value}`. A string, binary, boolean, list or set attribute
      is passed over here directly and a number checked directly; anything else goes through moto's code.
    - `validate_put_has_empty_keys` (no key or index key may be an empty string) lists the table's key names
      for every item; here it runs only for an item that has an empty string or binary at all.
    """
    from moto.dynamodb import responses
    from moto.dynamodb.models.table import Table

    if getattr(Table._validate_item_types, "__recsys_locked__", False):
        return
    moto_types, moto_empty_keys = Table._validate_item_types, responses.validate_put_has_empty_keys
    MOTO_VALIDATION.update(validate_item_types=moto_types, validate_put_has_empty_keys=moto_empty_keys)
    check_number = Table._validate_number_type

    def validate_item_types(self: Any, item_attrs: dict[str, Any], attr: str | None = None) -> None:
        for key, value in item_attrs.items():
            if key not in _CHECKED_NAMES and type(value) is dict and len(value) == 1:
                [(kind, inner)] = value.items()
                if (kind == "S" and type(inner) is str) or (
                    kind in _UNCHECKED_TYPES and type(inner) is not dict
                ):
                    continue
                if kind == "N" and type(inner) is str:
                    check_number(self, inner)
                    continue
            moto_types(self, {key: value}, attr)

    def validate_put_has_empty_keys(
        field_updates: dict[str, Any], table: Any, custom_error_msg: str | None = None
    ) -> None:
        if table and type(field_updates) is dict:
            for value in field_updates.values():
                if type(value) is not dict or len(value) != 1:
                    break
                [(kind, inner)] = value.items()
                if kind in ("S", "B") and inner == "":
                    break
            else:
                return  # no empty string or binary, so no empty key
        moto_empty_keys(field_updates, table, custom_error_msg)

    validate_item_types.__recsys_locked__ = True  # type: ignore[attr-defined]
    Table._validate_item_types = validate_item_types  # type: ignore[method-assign]
    responses.validate_put_has_empty_keys = validate_put_has_empty_keys


_batch_keys = threading.local()


def patch_dynamodb_batch_keys() -> None:
    """BatchWriteItem's duplicate check compares each request's table and key, as DynamoDB does (idempotent).

    moto 5.2.5 dumps every whole item of the batch to JSON (the standard library's encoder) and compares those:
    a sixth of its time for a batch of inference tracking items. It also let through a batch that puts one key
    twice with different attributes, which DynamoDB refuses, and refused identical items bound for two tables,
    which DynamoDB takes. Here the dump moto's check makes of each request is its table and key; moto's code,
    its order of checks and its error are otherwise unchanged, and it still checks the puts and the deletes
    apart. A batch with a request whose key cannot be read (a missing key attribute, an unknown table) is
    dumped as moto dumps it, and moto reports what is wrong with it."""
    from moto.dynamodb import responses

    original = responses.DynamoHandler.batch_write_item
    if getattr(original, "__recsys_locked__", False):
        return
    dump = responses.dynamo_json_dump

    def key_or_dump(value: Any) -> Any:
        keys = getattr(_batch_keys, "by_id", None)
        found = keys.get(id(value)) if keys else None
        return found if found is not None else dump(value)

    def batch_write_item(self: Any) -> Any:
        by_id: dict[int, str] = {}
        try:
            for table_name, requests in self.body["RequestItems"].items():
                table = self.dynamodb_backend.get_table(table_name)
                names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
                for request in requests:
                    for kind, body in request.items():
                        attrs = body["Item"] if kind == "PutRequest" else body["Key"]
                        by_id[id(attrs)] = repr((table_name, [attrs[name] for name in names]))
        except Exception:  # moto reports the malformed request itself
            by_id = {}
        _batch_keys.by_id = by_id
        try:
            return original(self)
        finally:
            _batch_keys.by_id = None

    batch_write_item.__recsys_locked__ = True  # type: ignore[attr-defined]
    responses.DynamoHandler.batch_write_item = batch_write_item  # type: ignore[method-assign]
    responses.dynamo_json_dump = key_or_dump


_query_partition = threading.local()


def patch_dynamodb_query() -> None:
    """A Query on a table (not an index) reads its partition's items, not the whole table's (idempotent)."""
    from moto.dynamodb.models.table import Table

    original_query, original_all_items = Table.query, Table.all_items
    if getattr(original_query, "__recsys_locked__", False):
        return

    def all_items(self: Any) -> list[Any]:
        asked = getattr(_query_partition, "asked", None)
        if asked is None or asked[0] is not self:
            return original_all_items(self)
        found = self.items.get(asked[1])
        if found is None:
            return []
        if self.range_key_attr:  # as moto orders them: by range key within the partition
            return sorted(found.values(), key=lambda item: item.range_key)
        return [found]

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name or hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)
        _query_partition.asked = (self, hash_key)  # read by all_items, in this thread, during this call
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _query_partition.asked = None

    query.__recsys_locked__ = True  # type: ignore[attr-defined]
    Table.query = query
    Table.all_items = all_items


# Operations whose result moto builds as a plain dict of wire names and attribute values.
ITEM_OPERATIONS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "TransactGetItems",
    }
)


def item_response_body(result: Any, members: Any) -> bytes:
    """The JSON body of an item operation's result: its output shape's `members` only, None members left out
    (at the top two levels, where moto's handlers leave them; attribute values never hold None)."""
    if isinstance(result, dict):
        result = {
            k: ({kk: vv for kk, vv in v.items() if vv is not None} if isinstance(v, dict) else v)
            for k, v in result.items()
            if v is not None and k in members
        }
    return orjson.dumps(result, default=wire_value)


def patch_dynamodb_responses() -> None:
    """Write the item operations' responses with orjson (idempotent)."""
    from moto import settings
    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result
    if getattr(original, "__recsys_locked__", False):
        return

    def execute_result(self: Any, context: Any) -> Any:
        if (
            context.operation_model.name not in ITEM_OPERATIONS
            or isinstance(self.result, Exception)
            or settings.PRETTIFY_RESPONSES
        ):
            return original(self, context)
        version = context.service_model.metadata.get("jsonVersion", "1.0")
        headers = {"Content-Type": f"application/x-amz-json-{version}"}
        try:
            body = item_response_body(self.result, context.operation_model.output_shape.members)
        except TypeError:  # a value this path does not know (moto's serialiser does)
            return original(self, context)
        return 200, headers, body

    execute_result.__recsys_locked__ = True  # type: ignore[attr-defined]
    DynamoResult.execute_result = execute_result


# Item operations whose request is read here as JSON.
REQUEST_OPERATIONS = ITEM_OPERATIONS | {"BatchWriteItem", "TransactWriteItems"}


def _decoded_binary(value: Any) -> Any:
    """A request's JSON with binary attribute values ({"B": base64} and {"BS": [base64]}) as bytes."""
    if isinstance(value, dict):
        if len(value) == 1:
            if isinstance(value.get("B"), str):
                return {"B": base64.b64decode(value["B"])}
            if isinstance(value.get("BS"), list):
                return {"BS": [base64.b64decode(v) for v in value["BS"]]}
        return {k: _decoded_binary(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_decoded_binary(v) for v in value]
    return value


def item_request_params(body: bytes | str, members: Any) -> dict[str, Any]:
    """The parameters of an item operation's JSON request, as moto's parser gives them (its input shape's
    `members` only, None left out, binary values decoded)."""
    raw = body.encode() if isinstance(body, str) else body
    parsed = orjson.loads(raw) if raw else {}
    if not isinstance(parsed, dict):
        raise ValueError("the request body is not a JSON object")
    # Walking every value costs as much as moto's parser: only a body that has a binary value (or a null)
    # needs it; any other is its JSON as it is.
    walk = b'"B"' in raw or b'"BS"' in raw or b"null" in raw
    return {
        k: (_decoded_binary(v) if walk else v) for k, v in parsed.items() if k in members and v is not None
    }


def patch_dynamodb_requests() -> None:
    """Read the item operations' requests as JSON (idempotent)."""
    from moto.core.utils import get_service_model
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.parse_parameters
    if getattr(original, "__recsys_locked__", False):
        return

    def parse_parameters(self: Any, request: Any) -> None:
        try:
            action = self._get_action()
            if action in REQUEST_OPERATIONS:
                model = get_service_model(self.boto3_service_name).operation_model(action)
                self.params = item_request_params(request.data, model.input_shape.members)
                return
        except (ValueError, TypeError, AttributeError):  # moto's own parser reports what is wrong
            pass
        original(self, request)

    parse_parameters.__recsys_locked__ = True  # type: ignore[attr-defined]
    DynamoHandler.parse_parameters = parse_parameters


def patch_request_routing() -> None:
    """List moto's service modules once, not once per request (idempotent)."""
    from moto import backends

    listing = backends.list_of_moto_modules
    if not getattr(listing, "__recsys_locked__", False):
        modules = tuple(listing())

        def list_of_moto_modules() -> tuple[str, ...]:
            return modules

        list_of_moto_modules.__recsys_locked__ = True  # type: ignore[attr-defined]
        backends.list_of_moto_modules = list_of_moto_modules


def patch_request_dispatch() -> None:
    """Do once what moto and Flask redo on every request although it never changes (idempotent):

    - the handler's method names, which moto lists with `inspect.getmembers` to check that an action exists;
    - the service of a host name, which moto finds by trying every service's URL patterns in turn;
    - the class that Flask's debug mode (which moto switches on) builds for every request's form data, only to
      word a KeyError on a missing upload better (debug mode's other behaviour, such as which errors
      become 500s, is kept);
    - the request id, 52 random characters drawn one at a time (here from 26 random bytes).
    """
    from flask import debughelpers
    from moto.core import responses
    from moto.moto_server import werkzeug_app

    if getattr(responses.method_names_from_class, "__recsys_locked__", False):
        return
    list_methods = responses.method_names_from_class

    @functools.cache
    def method_names_from_class(clazz: object) -> frozenset[str]:
        return frozenset(list_methods(clazz))

    find_backend = werkzeug_app.DomainDispatcherApplication.get_backend_for_host
    backend_of: dict[str, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        backend = backend_of.get(host) if host is not None else None
        if backend is None:
            backend = find_backend(self, host)
            if backend is not None and host is not None and len(backend_of) < 1024:
                backend_of[host] = backend  # bounded: the host comes from the request
        return backend

    def attach_enctype_error_multidict(request: Any) -> None:
        return None

    def gen_amzn_requestid_long(headerdict: dict[str, Any] | None = None) -> str:
        request_id = os.urandom(26).hex().upper()
        if isinstance(headerdict, dict):
            headerdict["x-amzn-requestid"] = request_id
        return request_id

    method_names_from_class.__recsys_locked__ = True  # type: ignore[attr-defined]
    responses.method_names_from_class = method_names_from_class
    responses.gen_amzn_requestid_long = gen_amzn_requestid_long
    werkzeug_app.DomainDispatcherApplication.get_backend_for_host = get_backend_for_host
    debughelpers.attach_enctype_error_multidict = attach_enctype_error_multidict


# Requests handled at once (the store is one process under one GIL: more threads only let slow clients wait
# without holding others up), and connections held open at once (every client's pool of kept-alive ones).
SERVER_THREADS = 16
SERVER_CONNECTIONS = 2000


def serve(host: str, port: int) -> None:
    """Serve moto's application with cheroot: HTTP/1.1 connections kept alive between requests.

    moto's own server (werkzeug's development server) answers every request with `Connection: close`, so each
    AWS call of every client opened a new TCP connection, and the server a new thread for it. With
    connections kept alive, a small DynamoDB request (PutItem, GetItem) costs the emulator about a fifth less
    CPU (bench/results/loop.md, "Ninth session"). moto's application, its routing and its responses are the
    same; only the HTTP server around them changes. (waitress was tried: it title-cases response header
    names, and S3 user metadata must come back with the names it was given, lowercase as AWS answers.)"""
    from cheroot import wsgi
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    os.environ.setdefault("MOTO_PORT", str(port))  # moto builds some answers' URLs from it
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # as moto's own entry point (its error answers depend on it)
    server = wsgi.Server(
        (host, port),
        app,
        numthreads=SERVER_THREADS,
        server_name="moto",
        request_queue_size=2048,  # the listen backlog (cheroot's default is 5)
        timeout=120,  # a connection idle this long is closed (clients reconnect)
    )
    server.keep_alive_conn_limit = SERVER_CONNECTIONS  # idle kept-alive connections (cheroot's default: 10)
    server.safe_start()


def _address(argv: list[str]) -> tuple[str, int]:
    """The host and port of `-H HOST -p PORT` (moto's own options for them; the only ones recsys passes)."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m {MARKER}", description="recsys's local AWS emulator")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    return args.host, args.port


def main(argv: list[str]) -> None:
    """Apply the fixes, then serve moto on `-H HOST -p PORT`."""
    host, port = _address(argv)
    patch_kinesis()
    patch_kinesis_reads()
    patch_dynamodb_transactions()
    patch_condition_parsing()
    patch_dynamodb_responses()
    patch_dynamodb_item_size()
    patch_dynamodb_requests()
    patch_request_routing()
    patch_request_dispatch()
    patch_dynamodb_query()
    patch_dynamodb_types()
    patch_dynamodb_validation()
    patch_dynamodb_batch_keys()
    FreezeLoop().start()
    serve(host, port)


if __name__ == "__main__":
    main(sys.argv[1:])
