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
Keep-alive connections, one per client (`--client threads`: a thread each, http.client; `--client asyncio`:
coroutines on one event loop, about a third less CPU per request; `--client selector`: non-blocking sockets
on one epoll loop with no coroutine or thread per request, about half the CPU of threads); the number of
requests in flight is bounded by --concurrency. Each run also reports the load generator's CPU per request and the share of the
machine's CPU time stolen by the hypervisor meanwhile (Linux; a shared host's slowness). Prints one JSON line.

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
import asyncio
import heapq
import http.client
import json
import random
import selectors
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
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


def cpu_times() -> list[int] | None:
    """The machine's CPU time counters (Linux /proc/stat: user, nice, system, idle, iowait, irq, softirq,
    steal); None elsewhere."""
    try:
        with open("/proc/stat") as stat:
            return [int(x) for x in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


def steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of CPU time between two `cpu_times` that the hypervisor gave to other guests (steal): a
    shared host's slowness, in numbers."""
    if before is None or after is None:
        return None
    spent = [b - a for a, b in zip(before, after, strict=True)]
    return round(spent[7] / sum(spent), 4) if sum(spent) > 0 else None


class _Tally:
    """What one client saw: latencies by kind, statuses, answer sources, degraded answers."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {"hit": [], "miss": [], "post": [], "after_post": []}
        self.statuses: Counter[int] = Counter()
        self.sources: Counter[str] = Counter()
        self.degraded = 0
        self.unsent = 0  # open loop: requests due that the client was too far behind to send

    def answered(self, kind: str, latency_ms: float, status: int, payload: bytes) -> None:
        self.latencies[kind].append(latency_ms)
        self.statuses[status] += 1
        if status == 200:
            answer = json.loads(payload)
            self.sources[answer.get("source", "?")] += 1
            self.degraded += bool(answer.get("degraded"))

    def failed(self) -> None:
        self.statuses[-1] += 1

    def add(self, other: _Tally) -> None:
        for key, values in other.latencies.items():
            self.latencies[key].extend(values)
        self.statuses.update(other.statuses)
        self.sources.update(other.sources)
        self.degraded += other.degraded
        self.unsent += other.unsent


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
    client: str = "threads",
    seed: int | None = None,
    miss_start: int = 0,
    timeout_s: float = 30.0,
) -> dict:
    """Drive the server for `duration` seconds from `concurrency` keep-alive clients; a summary dict.

    `rate`: requests due per second (open loop); None sends each request as soon as a client is free.
    `client`: `threads` (one http.client connection per thread), `asyncio` (every connection on one event loop
    in this thread: less CPU taken from the server on a shared host, and no wait for the GIL between a
    response arriving and its time being taken) or `selector` (non-blocking sockets on one epoll loop in this
    thread, no coroutine per request: the least CPU of the three).
    `timeout_s`: a request not answered within it fails.
    `seed` and `miss_start`: runs given the same seed draw the same order of (user, k) pairs for misses, and
    each starts at its `miss_start`-th pair, so that runs given disjoint ranges never ask a pair an earlier
    run cached (without a seed each run draws its own order, and runs overlap by chance)."""
    if client not in CLIENTS:
        raise ValueError(f"client must be one of {sorted(CLIENTS)}")
    parts = urlsplit(url)
    rng = random.Random(seed)
    hot = [f"/recommendations/{u}?k={k}" for u in users[:10]]
    pairs = [(u, kk) for u in users[10:] or users for kk in range(1, 101)]
    rng.shuffle(pairs)
    misses = [f"/recommendations/{u}?k={kk}" for u, kk in pairs]
    posters = users[10:] or users
    videos = videos or [str(v) for v in range(1000, 1012)]
    weights = {"hit": (1, 0, 0), "miss": (0, 1, 0), "mixed": mix, "interact": (0, 0, 1)}[mode]
    kinds = rng.choices(["hit", "miss", "post"], weights=weights, k=100_000)

    def exchanges(i: int) -> list[tuple[str, str, str, bytes | None]]:
        """Request `i`: (kind, method, path, body), and in `interact` mode the user's next request after it."""
        kind = kinds[i % len(kinds)]
        if kind == "hit":
            return [(kind, "GET", hot[i % len(hot)], None)]
        if kind == "miss":
            return [(kind, "GET", misses[(miss_start + i) % len(misses)], None)]
        user = posters[i % len(posters)]
        body = json.dumps({"user_id": user, "video_id": videos[i % len(videos)], "event_type": "view"})
        first = (kind, "POST", "/interactions", body.encode())
        if mode == "interact":  # the user's next request, right after their interaction
            return [first, ("after_post", "GET", f"/recommendations/{user}?k={k}", None)]
        return [first]

    cpu_before, machine_before, began = time.process_time(), cpu_times(), time.perf_counter()
    tally = CLIENTS[client](parts.hostname or "127.0.0.1", parts.port or 80, exchanges, duration, concurrency,
                            rate, began, timeout_s)  # fmt: skip
    elapsed, cpu_s = time.perf_counter() - began, time.process_time() - cpu_before
    every = [x for values in tally.latencies.values() for x in values]
    overall = _summary(every)
    errors = sum(v for key, v in tally.statuses.items() if key < 0 or key >= 500) + tally.unsent
    return {
        "mode": mode, "client": client, "concurrency": concurrency, "offered_rps": rate,
        "duration_s": round(elapsed, 2), **overall, "rps": round(overall["requests"] / elapsed, 1),
        "errors": errors, "statuses": tally.statuses, "sources": tally.sources, "degraded": tally.degraded,
        "unsent": tally.unsent,
        # this process's CPU (the load generator's own, when nothing else runs in it) per request answered
        "client_cpu_ms_per_request": round(cpu_s * 1e3 / max(overall["requests"], 1), 3),
        "cpu_steal_share": steal_share(machine_before, cpu_times()),
        "by_kind": {kind: _summary(values) for kind, values in tally.latencies.items() if values},
    }  # fmt: skip


Exchanges = Callable[[int], list[tuple[str, str, str, "bytes | None"]]]


def _requests(
    next_index: Callable[[], int], rate: float | None, began: float, stop_at: float, give_up_at: float,
    tally: _Tally,
) -> Iterator[tuple[int, float]]:  # fmt: skip
    """(index, start) of each request one client sends: due at `began + index / rate` in the open loop, now
    in the closed loop, until that passes `stop_at`. Open loop: every request due is sent, however late (the
    lag is in its latency), until the client is past `give_up_at`; what it could not send then counts as
    unsent (an error)."""
    while True:
        i = next_index()
        start = began + i / rate if rate is not None else time.perf_counter()
        if start >= stop_at:
            return
        if time.perf_counter() > give_up_at:
            tally.unsent += 1
            continue
        yield i, start


def _threads(host: str, port: int, exchanges: Exchanges, duration: float, concurrency: int,
             rate: float | None, began: float, timeout_s: float) -> _Tally:  # fmt: skip
    """`concurrency` threads, each with its own keep-alive http.client connection."""
    cursor = iter(range(10**9))
    lock = threading.Lock()
    total = _Tally()
    stop_at = began + duration

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        tally = _Tally()

        def next_index() -> int:
            with lock:
                return next(cursor)

        for i, start in _requests(next_index, rate, began, stop_at, stop_at + duration, tally):
            if start > (now := time.perf_counter()):
                time.sleep(start - now)
            for kind, method, path, body in exchanges(i):  # the latency counts any wait for a free client
                headers = {"Content-Type": "application/json"} if body is not None else {}
                try:
                    conn.request(method, path, body=body, headers=headers)
                    resp = conn.getresponse()
                    payload = resp.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
                    tally.failed()
                    break
                tally.answered(kind, (time.perf_counter() - start) * 1e3, resp.status, payload)
                start = time.perf_counter()
        conn.close()
        with lock:
            total.add(tally)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total


def _request_bytes(host: str, port: int, method: str, path: str, body: bytes | None) -> bytes:
    """One HTTP/1.1 request as sent on a kept-alive connection (a JSON body when there is one)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode("latin-1") + b"\r\n" + (body or b"")


class _Connection:
    """One keep-alive HTTP/1.1 connection on the event loop, opened when a request needs it and again after
    the server closed it (`Connection: close`, an error)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def exchange(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        """One request and its response: (status, body). OSError, ValueError or IncompleteReadError when
        the exchange fails (the connection is closed, the next request opens a new one)."""
        try:
            return await self._exchange(method, path, body)
        except BaseException:
            self.close()
            raise

    async def _exchange(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        writer.write(_request_bytes(self.host, self.port, method, path, body))
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split(None, 2)[1])
        headers: dict[bytes, bytes] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"content-length" not in headers:  # chunked or read-to-close: not what `recsys serve` sends
            raise ValueError("a response without Content-Length")
        length = int(headers[b"content-length"])
        payload = await reader.readexactly(length) if length else b""
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, payload

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


def _asyncio(host: str, port: int, exchanges: Exchanges, duration: float, concurrency: int,
             rate: float | None, began: float, timeout_s: float) -> _Tally:  # fmt: skip
    """`concurrency` keep-alive connections, each served by a coroutine, all on one event loop."""
    cursor = iter(range(10**9))
    tally = _Tally()
    stop_at = began + duration

    async def worker() -> None:
        conn = _Connection(host, port)
        for i, start in _requests(cursor.__next__, rate, began, stop_at, stop_at + duration, tally):
            if start > (now := time.perf_counter()):
                await asyncio.sleep(start - now)
            for kind, method, path, body in exchanges(i):  # the latency counts any wait for a free client
                try:
                    status, payload = await asyncio.wait_for(conn.exchange(method, path, body), timeout_s)
                except (OSError, ValueError, IndexError, TimeoutError, asyncio.IncompleteReadError):
                    tally.failed()
                    break
                tally.answered(kind, (time.perf_counter() - start) * 1e3, status, payload)
                start = time.perf_counter()
        conn.close()

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(concurrency)))

    asyncio.run(main())
    return tally


class _SelectorConnection:
    """One keep-alive HTTP/1.1 connection of the selector client: a non-blocking socket (opened when a request
    needs one, again after the server closed it), the exchanges of its request still to make, and the bytes
    of the response read so far."""

    def __init__(self, host: str, port: int, index: int, timeout_s: float) -> None:
        self.host, self.port, self.index, self.timeout_s = host, port, index, timeout_s
        self.sock: socket.socket | None = None
        self.pending: list[tuple[str, str, str, bytes | None]] = []
        self.kind = ""
        self.start = 0.0  # when the exchange's latency began (when its request was due)
        self.deadline = 0.0  # when the request sent fails if its response has not come
        self.buffer = bytearray()
        self.closing = False  # the last response said `Connection: close`
        self.waiting = False  # a request sent, its response not read yet

    def open(self, selector: selectors.BaseSelector) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)  # a bounded connect
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, self.index)
        self.sock = sock

    def close(self, selector: selectors.BaseSelector) -> None:
        if self.sock is not None:
            selector.unregister(self.sock)
            self.sock.close()
            self.sock = None
        self.buffer.clear()

    def send(self, selector: selectors.BaseSelector, method: str, path: str, body: bytes | None) -> None:
        """Send one request (OSError when it cannot be sent)."""
        if self.sock is None:
            self.open(selector)
        assert self.sock is not None
        data = _request_bytes(self.host, self.port, method, path, body)
        sent = self.sock.send(data)  # a request of a few hundred bytes into an empty send buffer: at once
        if sent < len(data):  # else the rest, waiting for room, within the timeout
            self.sock.settimeout(self.timeout_s)
            try:
                self.sock.sendall(data[sent:])
            finally:
                self.sock.setblocking(False)
        self.deadline = time.perf_counter() + self.timeout_s

    def response(self) -> tuple[int, bytes] | None:
        """(status, body) once the whole response is in the buffer, else None; ValueError on a response
        `recsys serve` does not send (no Content-Length, or bytes past the one response asked for)."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buffer[:end]).lower()
        found = head.find(b"\r\ncontent-length:")
        if found < 0:
            raise ValueError("a response without Content-Length")
        line_end = head.find(b"\r\n", found + 2)
        length = int(head[found + 17 : line_end if line_end >= 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return None
        if len(self.buffer) > end + 4 + length:
            raise ValueError("bytes past the response")
        status = int(head.split(None, 2)[1])
        payload = bytes(self.buffer[end + 4 :])
        self.closing = b"\r\nconnection: close" in head
        self.buffer.clear()
        return status, payload


def _selector(host: str, port: int, exchanges: Exchanges, duration: float, concurrency: int,
              rate: float | None, began: float, timeout_s: float) -> _Tally:  # fmt: skip
    """`concurrency` non-blocking keep-alive connections on one selector (epoll) in this thread: no thread or
    coroutine per request, the least CPU taken from the server of the three clients. A request not answered
    within `timeout_s` fails (its connection is closed)."""
    cursor = iter(range(10**9))
    tally = _Tally()
    stop_at = began + duration
    selector = selectors.DefaultSelector()
    connections = [_SelectorConnection(host, port, c, timeout_s) for c in range(concurrency)]
    plans = [_requests(cursor.__next__, rate, began, stop_at, stop_at + duration, tally) for _ in connections]
    timers: list[tuple[float, int, int]] = []  # (due, request index, connection index) of idle connections

    def send(c: int) -> None:
        """Connection `c`'s next exchange sent, or its next request planned (or nothing: it is done)."""
        conn = connections[c]
        while True:
            if not conn.pending:
                planned = next(plans[c], None)
                if planned is None:
                    return
                i, start = planned
                if start > time.perf_counter():
                    heapq.heappush(timers, (start, i, c))
                    return
                conn.pending, conn.start = exchanges(i), start
            conn.kind, method, path, body = conn.pending.pop(0)
            try:
                conn.send(selector, method, path, body)
            except OSError:
                conn.close(selector)
                conn.pending = []
                tally.failed()
                continue
            conn.waiting = True
            return

    def fail(c: int) -> None:
        """The request connection `c` waits for failed: closed, counted, and the connection's next one sent."""
        conn = connections[c]
        conn.waiting = False
        conn.close(selector)
        conn.pending = []
        tally.failed()
        send(c)

    for c in range(concurrency):
        send(c)
    while True:
        deadlines = [conn.deadline for conn in connections if conn.waiting]
        if not deadlines and not timers:
            break
        now = time.perf_counter()
        wake = min(deadlines + ([timers[0][0]] if timers else []))
        for key, _ in selector.select(max(0.0, wake - now)):
            c, conn = key.data, connections[key.data]
            if not conn.waiting:  # an idle connection the server closed: opened again when next needed
                conn.close(selector)
                continue
            try:
                chunk = conn.sock.recv(262144) if conn.sock is not None else b""
            except BlockingIOError:  # woken with nothing to read after all
                continue
            except OSError:
                fail(c)
                continue
            if not chunk:  # the server closed the connection before answering
                fail(c)
                continue
            conn.buffer += chunk
            try:
                answer = conn.response()
            except (ValueError, IndexError):
                fail(c)
                continue
            if answer is None:
                continue
            conn.waiting = False
            now = time.perf_counter()
            tally.answered(conn.kind, (now - conn.start) * 1e3, *answer)
            if conn.closing:
                conn.close(selector)
            conn.start = now  # an exchange that follows (interact mode) starts now
            send(c)
        now = time.perf_counter()
        for c, conn in enumerate(connections):
            if conn.waiting and conn.deadline <= now:
                fail(c)
        while timers and timers[0][0] <= now:
            start, i, c = heapq.heappop(timers)
            connections[c].pending, connections[c].start = exchanges(i), start
            send(c)
    for conn in connections:
        conn.close(selector)
    selector.close()
    return tally


CLIENTS = {"threads": _threads, "asyncio": _asyncio, "selector": _selector}


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
    parser.add_argument("--client", choices=sorted(CLIENTS), default="threads", help="how requests are sent")
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
        client=args.client,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
