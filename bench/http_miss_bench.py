"""Cache misses through today's `recsys serve` on a fresh local stack: requests/s and latency, medians of runs.

    .venv/bin/python bench/http_miss_bench.py [--videos 500] [--users 1000] [--concurrency 32] [--runs 3]

Starts a local stack (moto + Redis on free ports, state in a temporary folder), publishes a synthetic version
with a 300-tree ranker and its online features (`bench/batch_bench.publish`), starts `recsys serve` on it in
a second process and drives it from this one with `bench/http_load.run` in `miss` mode (every request a new
(user, k) pair, so every answer is computed). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.batch_bench import publish, start_stack  # noqa: E402
from bench.http_load import run as load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=500)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--categories", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from recsys.local.processes import free_port, port_open, wait_until

    with tempfile.TemporaryDirectory() as home:
        stack, settings = start_stack(Path(home))
        server = None
        try:
            publish(settings, args.videos, args.users, args.categories, online=True)
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "recsys.cli.main", "serve", "--env", "local", "--port", str(port)],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if not wait_until(lambda: port_open("127.0.0.1", port), 120):
                raise SystemExit("recsys serve did not start")
            url = f"http://127.0.0.1:{port}"
            users = [str(i + 1) for i in range(args.users)]
            load(url, "miss", 3.0, 4, users, 20)  # warm-up: model load, video features
            runs = []
            for i in range(args.runs):
                runs.append(load(url, "miss", args.duration, args.concurrency, users, 20))
                runs[-1]["load_avg"] = os.getloadavg()[0]
                print(f"run {i + 1}: {json.dumps(runs[-1])}", file=sys.stderr)
                time.sleep(1)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
            stack.down()
    median = {key: statistics.median(r[key] for r in runs) for key in ("rps", "p50_ms", "p99_ms")}
    print(json.dumps({"cpus": os.cpu_count(), "args": vars(args), "runs": runs, "median": median}, indent=2))


if __name__ == "__main__":
    main()
