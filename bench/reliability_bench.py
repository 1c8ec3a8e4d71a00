"""Reliability benchmark: `recsys serve` under mixed load, faults, and a soak, on a local stack of its own.

    .venv/bin/python bench/reliability_bench.py load  [--duration 20 --repeat 3 --concurrency 32]
        [--clients threads,asyncio]
    .venv/bin/python bench/reliability_bench.py soak  [--duration 600]
    .venv/bin/python bench/reliability_bench.py faults
    .venv/bin/python bench/reliability_bench.py cost  [--duration 8 --servers granian,gunicorn,granian,gunicorn]

Each run starts its own local stack (moto + Redis on free ports, state in a temporary directory), publishes
a synthetic model (6 categories x 100 videos, 2,000 users, the tests' hand-written ranker), promotes it,
and starts `recsys serve` as a separate process. `load` drives mixed traffic (bench/http_load.py: 80 % cache
hits, 15 % misses, 5 % POST /interactions) against each of --servers (granian, `recsys serve`'s default, and
gunicorn; also `threaded`): as fast
as answers come (closed loop: the most the server answers), then at --rate requests/s (open loop, after a
warm-up at that rate: the latencies at that rate, each counted from when its request was due);
`soak` drives it for --duration seconds and samples the server processes' RSS; `faults` kills Redis and
then the AWS emulator under load and counts the answers; `cost` gives the CPU per request of each kind
(hits, misses, posts, the mix) by process (API server, AWS emulator, Redis, load generator; Linux /proc)
for each of --servers. Prints JSON; bench/results/reliability.md holds
the figures.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import http_load  # noqa: E402

from bench.machine import machine  # noqa: E402

N_USERS = 2000
PER_CATEGORY = 100


def start_world(home: Path) -> tuple[Any, Any, Any]:
    """A local stack of its own with a published, promoted synthetic model: (stack, settings, world)."""
    from recsys.config import load_settings
    from tests.conftest import start_stack
    from tests.serving.conftest import promote, publish_tiny_version

    stack, _env = start_stack(home)
    os.environ["RECSYS_REDIS_URL"] = stack.redis_url()
    settings = load_settings("local")
    world = publish_tiny_version(
        settings, "v20260101-000000-bench0", per_category=PER_CATEGORY, n_users=N_USERS
    )
    promote(settings, world.version)
    return stack, settings, world


def start_server(
    port: int, server: str = "granian", processes: int = 2, threads: int = 8
) -> subprocess.Popen:
    """`recsys serve` in a process of its own; returns once /health answers."""
    argv = [sys.executable, "-m", "recsys.cli.main", "serve", "--env", "local", "--port", str(port),
            "--server", server, "--processes", str(processes), "--workers", str(threads)]  # fmt: skip
    with open(Path(tempfile.gettempdir()) / f"recsys-bench-serve-{port}.log", "ab") as log:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
            stderr=log, start_new_session=True,
        )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise SystemExit(f"the server on port {port} did not come up")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (master and workers), then wait."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def users() -> list[str]:
    """The model's users first (hot users are known), then new ones (cold start)."""
    return [str(i) for i in range(1, N_USERS + 1)] + [f"new{i}" for i in range(1, 3001)]


def load_phase(args: argparse.Namespace, world: Any) -> dict[str, Any]:
    """Per server: each of --clients in turn on the same server, --repeat times: a closed-loop run, then (after
    5 s at the rate, as before the clients alternated) a run at --rate."""
    from recsys.local.processes import free_port

    clients = args.clients.split(",")
    results: dict[str, Any] = {}
    for server in args.servers.split(","):
        port = free_port()
        proc = start_server(port, server, args.processes, args.threads)
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
        at_rate: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
        url = f"http://127.0.0.1:{port}"
        mixed = {  # mixed[client](seconds, rate=None): one run's summary
            c: functools.partial(
                http_load.run,
                url,
                "mixed",
                concurrency=args.concurrency,
                users=users(),
                k=20,
                videos=world.video_ids,
                client=c,
            )
            for c in clients
        }
        try:
            for client in clients:
                mixed[client](3)  # warm-up
            for _ in range(args.repeat):
                for client in clients:  # alternately, so that the host's drift falls on each alike
                    runs[client].append(mixed[client](args.duration))
                    if args.rate:
                        mixed[client](5, rate=args.rate)  # warm-up at the rate
                        at_rate[client].append(mixed[client](args.duration, rate=args.rate))
        finally:
            stop_server(proc)
        for client in clients:
            name = server if len(clients) == 1 else f"{server}+{client}"
            results[name] = {
                "client": client,
                "runs": runs[client],
                **summary(runs[client]),
                **(
                    {
                        "at_rate": {
                            "offered_rps": args.rate,
                            "runs": at_rate[client],
                            **summary(at_rate[client]),
                        }
                    }
                    if at_rate[client]
                    else {}
                ),
            }
    return results


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "median_rps": statistics.median(r["rps"] for r in runs),
        "median_p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "median_hit_p99_ms": statistics.median(r["by_kind"]["hit"]["p99_ms"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


def _rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def soak_phase(args: argparse.Namespace, world: Any) -> dict[str, Any]:
    from recsys.local.processes import free_port

    port = free_port()
    proc = start_server(port, "granian", args.processes, args.threads)
    url = f"http://127.0.0.1:{port}"
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        began = time.time()
        while not stop.wait(10):
            samples.append((round(time.time() - began), round(_rss_mb(proc.pid), 1)))

    try:
        http_load.run(url, "mixed", 10, args.concurrency, users(), 20, videos=world.video_ids)  # warm-up
        if args.warm_every_user:  # each process's online-feature cache holds every user: steady state
            for _ in range(2 * args.processes):
                http_load.run(url, "miss", 30, args.concurrency, users(), 20, videos=world.video_ids)
        first = _rss_mb(proc.pid)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = http_load.run(
            url, "mixed", args.duration, args.soak_concurrency, users(), 20, videos=world.video_ids
        )
        stop.set()
        last = _rss_mb(proc.pid)
    finally:
        stop_server(proc)
    return {
        "load": {k: v for k, v in result.items() if k != "sources"},
        "rss_after_warmup_mb": round(first, 1),
        "rss_end_mb": round(last, 1),
        "rss_growth_pct": round(100 * (last - first) / first, 2),
        "samples": samples,
    }


def faults_phase(args: argparse.Namespace, stack: Any, world: Any) -> dict[str, Any]:
    from recsys.local.processes import free_port

    port = free_port()
    proc = start_server(port, "granian", args.processes, args.threads)
    url = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {}
    try:
        http_load.run(url, "mixed", 3, args.concurrency, users(), 20, videos=world.video_ids)
        killer = threading.Timer(2.0, stack.redis.stop)
        killer.start()
        out["redis_killed"] = http_load.run(
            url, "mixed", 8, args.concurrency, users(), 20, videos=world.video_ids
        )
        killer = threading.Timer(2.0, stack.moto.stop)
        killer.start()
        out["aws_killed"] = http_load.run(
            url, "mixed", 8, args.concurrency, users(), 20, videos=world.video_ids
        )
        with urllib.request.urlopen(f"{url}/health", timeout=10) as resp:
            out["health_after"] = json.loads(resp.read())
    finally:
        stop_server(proc)
    return out


KIND_MIXES = {"hit": (100, 0, 0), "miss": (0, 100, 0), "post": (0, 0, 100), "mixed": (80, 15, 5),
              "interact": (0, 0, 100)}  # interact: a post, then that user's list at once (two requests)  # fmt: skip


def _cpu_seconds() -> dict[int, tuple[str, float]]:
    """(command line, user + system CPU seconds) of every process this user can read (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, float]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(name)] = (cmd, (int(fields[11]) + int(fields[12])) / tick)
    return found


def _role(pid: int, cmd: str) -> str | None:
    if pid == os.getpid():
        return "load generator"
    if "recsys.cli.main serve" in cmd:
        return "API server"
    if "moto_server" in cmd:
        return "AWS emulator"
    if "redis-server" in cmd:
        return "Redis"
    if "events worker" in cmd:
        return "events worker"
    return None


def cpu_ms_per_request(before: dict[int, tuple[str, float]], requests: int) -> dict[str, float]:
    """CPU ms per request since `before` (`_cpu_seconds()`), by role (API server, AWS emulator, Redis, load
    generator, events worker)."""
    ms: dict[str, float] = {}
    for pid, (cmd, seconds) in _cpu_seconds().items():
        role = _role(pid, cmd)
        if role:
            ms[role] = ms.get(role, 0.0) + seconds - before.get(pid, (cmd, seconds))[1]
    n = max(requests, 1)
    return {role: round(1000 * value / n, 3) for role, value in sorted(ms.items())}


def cost_phase(args: argparse.Namespace, world: Any) -> dict[str, Any]:
    """CPU per request of each kind (hits, misses, posts, the 80/15/5 mix, a post followed by that user's list),
    by process, for each server."""
    from recsys.local.processes import free_port

    results: dict[str, Any] = {}
    for server in args.servers.split(","):
        port = free_port()
        proc = start_server(port, server, args.processes, args.threads)
        url = f"http://127.0.0.1:{port}"
        try:
            http_load.run(url, "mixed", 3, args.concurrency, users(), 20, videos=world.video_ids)  # warm-up
            per_kind = {}
            for kind in args.kinds.split(","):
                mix = KIND_MIXES[kind]
                before = _cpu_seconds()
                mode = "interact" if kind == "interact" else "mixed"
                run = http_load.run(url, mode, args.duration, args.concurrency, users(), 20, mix=mix,
                                    videos=world.video_ids)  # fmt: skip
                by_role = cpu_ms_per_request(before, run["requests"])
                per_kind[kind] = {"rps": run["rps"], "p99_ms": run["p99_ms"], "errors": run["errors"],
                                  "cpu_ms_per_request": by_role,
                                  "cpu_ms_per_request_total": round(sum(by_role.values()), 3)}  # fmt: skip
                print(f"{server} {kind}: {json.dumps(per_kind[kind])}", file=sys.stderr)
            results.setdefault(server, []).append(per_kind)
        finally:
            stop_server(proc)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["load", "soak", "faults", "cost"])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--soak-concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--servers", default="granian,gunicorn")
    parser.add_argument(
        "--clients",
        default="threads",
        help="load: the load generator's clients (bench/http_load.py), in turn",
    )
    parser.add_argument(
        "--rate", type=float, default=500.0, help="load: requests/s of the open-loop runs (0: none)"
    )
    parser.add_argument(
        "--warm-every-user", action="store_true", help="soak: warm every user's features first (steady state)"
    )
    parser.add_argument("--kinds", default="hit,miss,post,mixed", help="cost: the kinds of request measured")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    unknown = set(args.clients.split(",")) - set(http_load.CLIENTS)
    if unknown:
        parser.error(
            f"--clients: unknown {', '.join(sorted(unknown))} (known: {', '.join(http_load.CLIENTS)})"
        )
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with tempfile.TemporaryDirectory(prefix="recsys-bench-") as home:
        stack, _settings, world = start_world(Path(home))
        try:
            if args.phase == "load":
                result = load_phase(args, world)
            elif args.phase == "soak":
                result = soak_phase(args, world)
            elif args.phase == "cost":
                result = cost_phase(args, world)
            else:
                result = faults_phase(args, stack, world)
        finally:
            stack.down()
    result = {"phase": args.phase, "machine": machine(), **result}
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
