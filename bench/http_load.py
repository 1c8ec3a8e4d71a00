"""Bounded HTTP load on a running `recsys serve`, from a second process: requests/s and latency.

    .venv/bin/python bench/http_load.py --url http://127.0.0.1:8080 --mode hit  --duration 10 --concurrency 8
    .venv/bin/python bench/http_load.py --url http://127.0.0.1:8080 --mode miss --duration 10 --concurrency 8

`hit`: a few users asked again and again (answers come from Redis after the first).
`miss`: every request is a new (user, k) pair, so each is computed (retrieval, ranking, rules, plus the
recent-activity read from the local DynamoDB). Keep-alive connections, one per client thread; the
number of requests in flight is bounded by --concurrency. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import threading
import time
from urllib.parse import urlsplit

import numpy as np


def run(url: str, mode: str, duration: float, concurrency: int, users: list[str], k: int) -> dict:
    parts = urlsplit(url)
    rng = random.Random()  # a new order each run: a miss run must not meet the previous run's cache entries
    if mode == "hit":
        paths = [f"/recommendations/{u}?k={k}" for u in users[:10]]
    else:
        pairs = [(u, kk) for u in users for kk in range(1, 101)]
        rng.shuffle(pairs)
        paths = [f"/recommendations/{u}?k={kk}" for u, kk in pairs]
    cursor = iter(range(10**9))
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sources: dict[str, int] = {}
    stop_at = time.perf_counter() + duration

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
        local_lat, local_status, local_src = [], {}, {}
        while time.perf_counter() < stop_at:
            with lock:
                i = next(cursor)
            path = paths[i % len(paths)]
            start = time.perf_counter()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
                local_status[-1] = local_status.get(-1, 0) + 1
                continue
            local_lat.append((time.perf_counter() - start) * 1e3)
            local_status[resp.status] = local_status.get(resp.status, 0) + 1
            if resp.status == 200:
                src = json.loads(body).get("source", "?")
                local_src[src] = local_src.get(src, 0) + 1
        conn.close()
        with lock:
            latencies.extend(local_lat)
            for key, v in local_status.items():
                statuses[key] = statuses.get(key, 0) + v
            for key, v in local_src.items():
                sources[key] = sources.get(key, 0) + v

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    lat = np.asarray(latencies)
    return {
        "mode": mode, "concurrency": concurrency, "duration_s": round(elapsed, 2), "requests": int(lat.size),
        "rps": round(lat.size / elapsed, 1), "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2), "statuses": statuses, "sources": sources,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--mode", choices=["hit", "miss"], default="hit")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--users", type=int, default=1000, help="how many user ids")
    parser.add_argument(
        "--first-user", type=int, default=12000, help="user ids are FIRST..FIRST+N-1 (synthetic data: 12000)"
    )
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args()
    if not 1 <= args.concurrency <= 64 or not 0 < args.duration <= 300:
        sys.exit("concurrency must be 1..64 and duration 0..300 s")
    result = run(
        args.url,
        args.mode,
        args.duration,
        args.concurrency,
        [str(args.first_user + i) for i in range(args.users)],
        args.k,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
