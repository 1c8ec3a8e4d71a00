"""The local stack's moto server, with two fixes for how the stream processor uses it.

- Kinesis: moto 5.2.5 gives a new record the shard's last sequence number + 1 without a lock, so two
  concurrent `PutRecord` calls can get the same number and one record replaces the other (and `GetRecords`
  can iterate a shard while a put changes it). Every read and write of a shard's records takes one lock.
- DynamoDB transactions: moto deep-copies every table a `TransactWriteItems` touches (to roll back on a
  failed condition), so a transaction costs time in proportion to the tables' sizes. Here it copies only
  the items the transaction names, restores those on failure, and runs one transaction (or single-item
  write) at a time, so no write lands between a transaction's copy and its rollback; and a condition
  expression is parsed once, not once per item.

`recsys local up` starts moto through this module, which applies both before it runs moto's own server
entry point. A LocalStack (or any other endpoint you run yourself) is used as it is.

    python -m recsys.local.moto_server -H 127.0.0.1 -p 4566
"""

from __future__ import annotations

import copy
import functools
import json
import sys
import threading
from collections.abc import Callable
from typing import Any

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


class _TablesNotCopied:
    """Stands in for the `copy` module inside moto's DynamoDB backend: a table's "backup" is the table itself
    (the items a transaction names are copied and restored by `_transact_write_items` instead)."""

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

    transact_write_items.__recsys_locked__ = True  # type: ignore[attr-defined]
    models.copy = _TablesNotCopied(Table)  # type: ignore[attr-defined]
    models.DynamoDBBackend.transact_write_items = transact_write_items
    # Single-item writes take the same lock: a transaction's items must not change under it between its
    # copy and a rollback (DynamoDB isolates transactions from other writes; moto does not).
    for name in ("put_item", "update_item", "delete_item"):
        method = getattr(models.DynamoDBBackend, name)

        def locked(self: Any, *args: Any, __method: Any = method, **kwargs: Any) -> Any:
            with lock:
                return __method(self, *args, **kwargs)

        setattr(models.DynamoDBBackend, name, functools.wraps(method)(locked))


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
        key = json.dumps([expr, names, values], sort_keys=True, default=str)
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
        key = json.dumps([expr, names, values], sort_keys=True, default=str)
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


def main(argv: list[str]) -> None:
    """Apply the fixes, then run moto's server with `argv`."""
    patch_kinesis()
    patch_dynamodb_transactions()
    patch_condition_parsing()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
