"""The local stack's DynamoDB write ceiling: items per second that moto takes, with no recsys code in the way.

    .venv/bin/python bench/store_ceiling_bench.py [--items 6000] [--repeat 3]

Starts its own local stack (moto through recsys.local.moto_server, as the events worker uses it) and writes
`--items` activity-shaped items (user, sort key, video, type, timestamp, category) to the activity table:
BatchWriteItem of 25 from 1 and from 4 threads, and TransactWriteItems of 25 Puts with the exactly-once
condition the stream processor uses. The stream processor writes at least one item per event (its
exactly-once marker is the activity item), so events per second from the stream into the stores cannot
exceed these figures on this stack. Prints a JSON summary; bench/results/loop.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine  # noqa: E402


def _items(n: int) -> list[dict[str, Any]]:
    run = uuid.uuid4().hex[:8]
    return [
        {
            "user_id": {"S": f"ceil-{run}-u{i % 500}"},
            "event_ts": {"S": f"{1_800_000_000_000 + i:016d}#{uuid.uuid4().hex[:12]}"},
            "video_id": {"S": f"v{(i * 7) % 300}"},
            "event_type": {"S": "view"},
            "timestamp": {"N": str(1_800_000_000 + i)},
            "category": {"S": "news"},
        }
        for i in range(n)
    ]


def _chunks(items: list[dict[str, Any]], size: int = 25) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def batch_write(ddb: Any, table: str, items: list[dict[str, Any]], threads: int) -> float:
    def one(chunk: list[dict[str, Any]]) -> None:
        request = {table: [{"PutRequest": {"Item": item}} for item in chunk]}
        while request:
            request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, _chunks(items)))
    return len(items) / (time.perf_counter() - started)


def transact_write(ddb: Any, table: str, items: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for chunk in _chunks(items):
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(user_id)",
                    }
                }
                for item in chunk
            ]
        )
    return len(items) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=6000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from bench.loop_bench import start_local_stack

    stack = start_local_stack("recsys-ceiling-bench-")
    runs: list[dict[str, float]] = []
    try:
        from recsys.aws import client
        from recsys.config import load_settings

        settings = load_settings("local")
        ddb = client("dynamodb", settings)
        table = settings.names.table("user_activity")
        for _ in range(args.repeat):
            runs.append(
                {
                    "batch_write_1_thread": batch_write(ddb, table, _items(args.items), 1),
                    "batch_write_4_threads": batch_write(ddb, table, _items(args.items), 4),
                    "transact_write_1_thread": transact_write(ddb, table, _items(args.items)),
                }
            )
            print(json.dumps(runs[-1]), file=sys.stderr)
    finally:
        stack.down()
    print(json.dumps({
        "machine": machine(),
        "items": args.items,
        "median_items_per_s": {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]},
        "runs": runs,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
