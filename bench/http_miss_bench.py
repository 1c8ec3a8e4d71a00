"""Cache misses through today's `recsys serve` on a fresh local stack: requests/s and latency, medians of runs.

    .venv/bin/python bench/http_miss_bench.py [--videos 500] [--users 1000] [--concurrency 32] [--runs 3]

Starts a local stack (moto + Redis on free ports, state in a temporary folder), publishes a synthetic version
with a ranker of the pipeline's shape, a neighbour table and its online features (`bench/batch_bench.publish`), starts `recsys serve` on it in
a second process and drives it from this one with `bench/http_load.run` in `miss` mode (every request a new
(user, k) pair, so every answer is computed; `--mode interact`: a post, then that user's list at once;
`--mode post`: interactions only; `--mode mixed`: http_load's 80/15/5 mix of hits, misses and posts), with
the CPU spent per request by the server, the emulator, Redis and the load generator. The load generator shares
the machine's cores with the server: by default its connections all run on one epoll loop (`--client
selector`), which takes about 0.1 ms of CPU per request where a thread per connection took 0.2. Prints one
JSON object.
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
from bench.http_load import CLIENTS  # noqa: E402
from bench.http_load import run as load  # noqa: E402
from bench.machine import machine  # noqa: E402
from bench.reliability_bench import _cpu_seconds, cpu_ms_per_request  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=500)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--categories", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", choices=["miss", "interact", "post", "mixed"], default="miss",
                        help="interact: each client posts an interaction, then asks for that user's list; post: "
                             "interactions only; mixed: 80 %% hits, 15 %% misses, 5 %% posts")  # fmt: skip
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a checkout of other code (e.g. `git archive` of main), served beside this one on the "
                             "same stack, the two taking turns run by run")  # fmt: skip
    parser.add_argument("--serve-args", default="",
                        help="more options for `recsys serve`, e.g. \"--processes 3 --workers 2\"")  # fmt: skip
    parser.add_argument("--client", default="selector",
                        help="the load generator's clients (bench/http_load.py): selector (every connection on one "
                             "epoll loop, the least CPU taken from the server), asyncio (coroutines) or threads (a "
                             "thread each); several, comma-separated, take turns run by run on each server")  # fmt: skip
    parser.add_argument("--rate", type=float, default=None,
                        help="requests due per second (open loop, latency from when each was due); default: "
                             "closed loop (each client sends when its answer came)")  # fmt: skip
    args = parser.parse_args()
    clients = [c for c in args.client.split(",") if c]
    if not clients or not set(clients) <= set(CLIENTS):
        parser.error(f"--client takes {', '.join(sorted(CLIENTS))}, comma-separated")
    with tempfile.TemporaryDirectory() as home:
        stack, settings = start_stack(Path(home))
        servers: dict[str, subprocess.Popen] = {}
        try:
            publish(settings, args.videos, args.users, args.categories, online=True)
            users = [str(i + 1) for i in range(args.users)]
            for name, code in ([("baseline", args.baseline)] if args.baseline else []) + [("this", ROOT)]:
                servers[name] = serve(code, args.serve_args.split())
                # Warm-up: model load, video features, and each user's state once (a steady-state server
                # has seen its users); the measured requests are still new (user, k) pairs, so misses.
                # each user's answer with what was watched: one the measured requests never ask for
                for u in users:
                    load_one(
                        f"http://127.0.0.1:{servers[name].port}",
                        f"/recommendations/{u}?k=100&exclude_watched=false",
                    )
            # The versions take turns, run by run: what the stores accumulate over the runs (activity, the
            # stream) weighs on both alike.
            labels = {
                (name, c): name if len(clients) == 1 else f"{name}+{c}" for name in servers for c in clients
            }
            runs: dict[str, list[dict]] = {label: [] for label in labels.values()}
            asked = 0  # (user, k) pairs of one fixed order handed out so far: each run starts past them
            for i in range(args.runs):
                for (name, client), label in labels.items():
                    server = servers[name]
                    before = _cpu_seconds()
                    run = load(
                        f"http://127.0.0.1:{server.port}",
                        "mixed" if args.mode == "post" else args.mode,
                        args.duration,
                        args.concurrency,
                        users,
                        20,
                        mix=(0, 0, 1) if args.mode == "post" else (80, 15, 5),
                        seed=0,
                        miss_start=asked,
                        rate=args.rate,
                        client=client,
                    )
                    # every pair a client took: answered, failed, and one more per client at the end
                    asked += run["requests"] + run["errors"] + args.concurrency
                    by_role = cpu_ms_per_request(
                        before, run["requests"]
                    )  # server, emulator, Redis, this process
                    run["cpu_ms_per_request"] = by_role
                    run["cpu_ms_per_request_total"] = round(sum(by_role.values()), 3)
                    for kind, figures in run["by_kind"].items():
                        run[f"{kind}_p50_ms"] = figures["p50_ms"]
                    run["load_avg"] = os.getloadavg()[0]
                    runs[label].append(run)
                    print(f"{label} run {i + 1}: {json.dumps(run)}", file=sys.stderr)
                    time.sleep(1)
            results = {}
            for name, done in runs.items():
                keys = ["rps", "p50_ms", "p99_ms", "cpu_ms_per_request_total"]
                keys += [f"{kind}_p50_ms" for kind in done[0]["by_kind"]]
                results[name] = {"runs": done, "median": {key: statistics.median(r[key] for r in done)
                                                          for key in keys}}  # fmt: skip
        finally:
            for server in servers.values():
                server.terminate()
                server.wait(timeout=30)
            stack.down()
    print(json.dumps({"machine": machine(), "args": {**vars(args), "baseline": str(args.baseline)},
                      "results": results}, indent=2))  # fmt: skip


def serve(code: Path, extra: list[str] | None = None) -> subprocess.Popen:
    """`recsys serve` of the code in `code` on a free port (`.port` set), once it answers."""
    from recsys.local.processes import free_port, port_open, wait_until

    port = free_port()
    command = [sys.executable, "-m", "recsys.cli.main", "serve", "--env", "local", "--port", str(port)]
    server = subprocess.Popen(
        command + (extra or []),
        cwd=code,
        env={**os.environ, "PYTHONPATH": str(code)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if not wait_until(lambda: port_open("127.0.0.1", port), 120):
        server.terminate()
        raise SystemExit("recsys serve did not start")
    server.port = port  # type: ignore[attr-defined]
    return server


def load_one(url: str, path: str) -> None:
    """One GET (warm-up)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", path)
    conn.getresponse().read()
    conn.close()


if __name__ == "__main__":
    main()
