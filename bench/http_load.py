"""Bounded HTTP load on a running `recsys serve`, from a second process: requests/s and latency.

    .venv/bin/python bench/http_load.py --url http://127.0.0.1:8080 --mode hit  --duration 10 --concurrency 8
    .venv/bin/python bench/http_load.py --url http://127.0.0.1:8080 --mode miss --duration 10 --concurrency 8

    .venv/bin/python bench/http_load.py --url http://127.0.0.1:8080 --mode mixed --duration 10 --concurrency 32

`hit`: a few users asked again and again (answers come from Redis after the first).
`miss`: every request is a new (user, k) pair, so each is computed (retrieval, ranking, rules, plus the
recent-activity read from the local DynamoDB).
`mixed`: --mix hit,miss,post shares (default 80,15,5): hits on the hot users, misses on new (user, k)
pairs, and POST /interactions by users outside the hot set (so hits stay hits); latency reported per kind.
`interact`: each client posts an interaction for a user, then asks for that user's recommendations at once
(`after_post`: the request a user makes right after acting, which their interaction made a miss).
Keep-alive connections, one per client thread; the number of requests in flight is bounded by
--concurrency. Prints one JSON line.

Without --rate the clients send as fast as answers come back (closed loop): that measures the most the server
can answer, and the latencies are those of a saturated server (by Little's law the mean is concurrency / rate).
With --rate R the requests are due at a fixed R per second (open loop, as wrk2 or k6's constant arrival rate
do): each latency runs from the moment its request was due, so a request that waited for a free connection
counts the wait (no coordinated omission). That measures the latency a service level is written against.
A server too slow to catch up within another --duration leaves requests unsent: they count as errors
(`unsent`).
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


def _summary(latencies: list[float]) -> dict:
    if not latencies:
        return {"requests": 0}
    lat = np.asarray(latencies)
    return {
        "requests": int(lat.size),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "max_ms": round(float(lat.max()), 2),
    }


def run(
    url: str,
    mode: str,
    duration: float,
    concurrency: int,
    users: list[str],
    k: int,
    mix: tuple[int, int, int] = (80, 15, 5),
    videos: list[str] | None = None,
    rate: float | None = None,
) -> dict:
    """Drive the server for `duration` seconds from `concurrency` keep-alive clients; a summary dict.

    `rate`: requests due per second (open loop); None sends each request as soon as a client is free."""
    parts = urlsplit(url)
    rng = random.Random()  # a new order each run: a miss run must not meet the previous run's cache entries
    hot = [f"/recommendations/{u}?k={k}" for u in users[:10]]
    pairs = [(u, kk) for u in users[10:] or users for kk in range(1, 101)]
    rng.shuffle(pairs)
    misses = [f"/recommendations/{u}?k={kk}" for u, kk in pairs]
    posters = users[10:] or users
    videos = videos or [str(v) for v in range(1000, 1012)]
    weights = {"hit": (1, 0, 0), "miss": (0, 1, 0), "mixed": mix, "interact": (0, 0, 1)}[mode]
    kinds = rng.choices(["hit", "miss", "post"], weights=weights, k=100_000)
    cursor = iter(range(10**9))
    lock = threading.Lock()
    latencies: dict[str, list[float]] = {"hit": [], "miss": [], "post": [], "after_post": []}
    statuses: dict[int, int] = {}
    sources: dict[str, int] = {}
    degraded = [0]
    unsent = [0]  # open loop: requests due that the clients were too far behind to send
    began = time.perf_counter()
    stop_at = began + duration

    def request(i: int) -> tuple[str, str, str, bytes | None]:
        kind = kinds[i % len(kinds)]
        if kind == "hit":
            return kind, "GET", hot[i % len(hot)], None
        if kind == "miss":
            return kind, "GET", misses[i % len(misses)], None
        body = {
            "user_id": posters[i % len(posters)],
            "video_id": videos[i % len(videos)],
            "event_type": "view",
        }
        return kind, "POST", "/interactions", json.dumps(body).encode()

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
        local_lat: dict[str, list[float]] = {"hit": [], "miss": [], "post": [], "after_post": []}
        local_status: dict[int, int] = {}
        local_src: dict[str, int] = {}
        local_degraded = 0
        # Open loop: every request due before the end is sent, however late (the lag is in its latency), until
        # `duration` past the end; what is still unsent then counts as an error.
        while rate is not None or time.perf_counter() < stop_at:
            with lock:
                i = next(cursor)
            kind, method, path, body = request(i)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            start = time.perf_counter()
            if rate is not None:
                due = began + i / rate
                if due >= stop_at:
                    break
                if start > stop_at + duration:  # too far behind to finish: report what was never sent
                    with lock:
                        unsent[0] += 1
                    continue
                if due > start:
                    time.sleep(due - start)
                start = due  # the latency counts any wait for a free client
            exchanges = [(kind, method, path, body, headers)]
            if mode == "interact":  # the user's next request, right after their interaction
                user = json.loads(body or b"{}")["user_id"]
                exchanges.append(("after_post", "GET", f"/recommendations/{user}?k={k}", None, {}))
            for kind, method, path, body, headers in exchanges:
                try:
                    conn.request(method, path, body=body, headers=headers)
                    resp = conn.getresponse()
                    payload = resp.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
                    local_status[-1] = local_status.get(-1, 0) + 1
                    break
                local_lat[kind].append((time.perf_counter() - start) * 1e3)
                local_status[resp.status] = local_status.get(resp.status, 0) + 1
                if resp.status == 200:
                    answer = json.loads(payload)
                    src = answer.get("source", "?")
                    local_src[src] = local_src.get(src, 0) + 1
                    local_degraded += bool(answer.get("degraded"))
                start = time.perf_counter()
        conn.close()
        with lock:
            for key, values in local_lat.items():
                latencies[key].extend(values)
            for key, v in local_status.items():
                statuses[key] = statuses.get(key, 0) + v
            for key, v in local_src.items():
                sources[key] = sources.get(key, 0) + v
            degraded[0] += local_degraded

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    every = [x for values in latencies.values() for x in values]
    overall = _summary(every)
    errors = sum(v for key, v in statuses.items() if key < 0 or key >= 500) + unsent[0]
    return {
        "mode": mode, "concurrency": concurrency, "offered_rps": rate, "duration_s": round(elapsed, 2), **overall,
        "rps": round(overall["requests"] / elapsed, 1), "errors": errors, "statuses": statuses,
        "sources": sources, "degraded": degraded[0], "unsent": unsent[0],
        "by_kind": {kind: _summary(values) for kind, values in latencies.items() if values},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--mode", choices=["hit", "miss", "mixed", "interact"], default="hit")
    parser.add_argument("--mix", default="80,15,5", help="mixed mode: shares of hit,miss,post")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--users", type=int, default=1000, help="how many user ids")
    parser.add_argument(
        "--first-user", type=int, default=12000, help="user ids are FIRST..FIRST+N-1 (synthetic data: 12000)"
    )
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument(
        "--rate", type=float, help="requests due per second (open loop); default: closed loop"
    )
    args = parser.parse_args()
    if not 1 <= args.concurrency <= 64 or not 0 < args.duration <= 300:
        sys.exit("concurrency must be 1..64 and duration 0..300 s")
    if args.rate is not None and not 0 < args.rate <= 100_000:
        sys.exit("rate must be 0..100000 requests per second")
    result = run(
        args.url,
        args.mode,
        args.duration,
        args.concurrency,
        [str(args.first_user + i) for i in range(args.users)],
        args.k,
        tuple(int(x) for x in args.mix.split(",")),  # type: ignore[arg-type]
        rate=args.rate,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
