"""Faults under `recsys serve` (granian, two worker processes) on a stack of this module's own: Redis killed
under load, the AWS emulator killed and restarted empty, concurrent posts, and what the HTTP server does with
odd connections and stalled bodies (also under `--server gunicorn`). Each test restores what it killed."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from recsys.aws import client
from recsys.local.processes import free_port, wait_until
from recsys.serving.worker_cpus import available_cpus, child_pids, supported, thread_ids
from tests.reliability.conftest import http, post_event, start_server, stop_server
from tests.serving.conftest import promote, publish_tiny_version


def _load(url: str, paths: list[str], seconds: float, threads: int = 8) -> dict[int, int]:
    """GET `paths` round-robin from `threads` clients for `seconds`; status -> count (-1: no answer)."""
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(offset: int) -> None:
        i = offset
        while time.monotonic() < stop_at:
            try:
                status = http(url + paths[i % len(paths)], timeout=30)[0]
            except OSError:
                status = -1
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
            i += threads

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return statuses


def _stream_event_ids(settings) -> set[str]:
    """Every event id on the events stream (all shards, from the oldest record)."""
    kinesis = client("kinesis", settings)
    name = settings.names.streams["events"]
    found: set[str] = set()
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            found.update(json.loads(r["Data"])["event_id"] for r in page["Records"])
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return found


def _wait_for(predicate, timeout_s: float = 60.0, interval_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def test_concurrent_posts_from_16_clients_are_all_on_the_stream(fault_stack):
    world = fault_stack.world

    def post(i: int) -> str | None:
        status, _, body = post_event(
            fault_stack.url, f"conc-{i % 40}", world.video_ids[i % len(world.video_ids)]
        )
        return body["event_id"] if status == 202 else None

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(post, range(320)))
    accepted = {a for a in answers if a}
    assert len(accepted) == 320
    assert accepted <= _stream_event_ids(fault_stack.settings)  # accepted = stored: none lost


def test_http_server_answers_odd_requests_with_json(fault_stack):
    parts = urlsplit(fault_stack.url)
    for method in ("HEAD", "OPTIONS", "TRACE"):
        status, headers, _ = http(f"{fault_stack.url}/interactions", method)
        assert status == 405 and headers["Content-Type"].startswith("application/json")
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"POST /interactions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")
    # 48 connections at once: all answered (a listen backlog of 5 would reset some)
    with ThreadPoolExecutor(max_workers=48) as pool:
        statuses = list(pool.map(lambda _: http(f"{fault_stack.url}/health", timeout=60)[0], range(48)))
    assert statuses == [200] * 48


STALLED_BODY = (
    b"POST /interactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    b'{"user_id": 1'
)


def test_stalled_bodies_hold_no_thread_and_get_a_408(fault_stack):
    """Clients that stop in the middle of their bodies, more of them than the server has threads (2 x 4), do
    not keep others waiting: a recommendation is answered while they still wait, then each gets a 408."""
    parts = urlsplit(fault_stack.url)
    stalled = [socket.create_connection((parts.hostname, parts.port), timeout=60) for _ in range(12)]
    try:
        for sock in stalled:
            sock.sendall(STALLED_BODY)
        status, _, body = http(f"{fault_stack.url}/recommendations/{fault_stack.world.user_ids[0]}?k=3")
        assert status == 200 and len(body["items"]) == 3
        for sock in stalled:  # none has been answered yet: the answer above did not wait for them
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
            sock.setblocking(True)
        for sock in stalled:
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
    finally:
        for sock in stalled:
            sock.close()


def test_bodies_in_chunks_are_read_whole_and_oversized_ones_get_a_413(fault_stack):
    parts = urlsplit(fault_stack.url)
    event = json.dumps({"user_id": "chunked-user", "video_id": fault_stack.world.video_ids[2]}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (event[:7], event[7:])) + b"0\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(b"POST /interactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + chunks)  # fmt: skip
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 202") and b'"accepted"' in answer
    big = json.dumps({"user_id": 1, "video_id": 1, "category": "x" * 100_000}).encode()
    status, headers, body = http(
        f"{fault_stack.url}/interactions", "POST", big, {"Content-Type": "application/json"}
    )
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert headers["Content-Type"].startswith("application/json")


def _workers_each_on_a_cpu_of_their_own(server_pid: int, processes: int = 2) -> bool:
    """Whether every thread of each of the server's worker processes runs on one CPU, a different one per
    worker."""
    held = []
    for pid in child_pids(server_pid):
        masks = {frozenset(os.sched_getaffinity(tid)) for tid in thread_ids(pid)}
        if len(masks) != 1 or len(next(iter(masks))) != 1:
            return False
        held.append(next(iter(masks)))
    return len(held) == processes and len(set(held)) == processes


PINNED = supported() and len(available_cpus()) == 2  # the servers here run 2 processes: one per CPU
pinning_possible = pytest.mark.skipif(not PINNED, reason="pinned only on Linux with one CPU per process (2)")


@pinning_possible
def test_each_worker_process_keeps_to_a_cpu_of_its_own(fault_stack):
    assert wait_until(lambda: _workers_each_on_a_cpu_of_their_own(fault_stack.process.pid), 30)


def test_the_gunicorn_server_answers_alike(fault_stack):
    port = free_port()
    proc = start_server(port, ["--server", "gunicorn"])
    try:
        base = f"http://127.0.0.1:{port}"
        status, _, body = http(f"{base}/recommendations/{fault_stack.world.user_ids[1]}?k=4")
        assert status == 200 and len(body["items"]) == 4
        status, headers, _ = http(f"{base}/interactions", "HEAD")
        assert status == 405 and headers["Content-Type"].startswith("application/json")
        status, _, body = post_event(base, "gunicorn-user", fault_stack.world.video_ids[0])
        assert status == 202 and body["status"] == "accepted"
        if PINNED:  # gunicorn's workers are pinned alike
            assert wait_until(lambda: _workers_each_on_a_cpu_of_their_own(proc.pid), 30)
    finally:
        stop_server(proc)


def test_redis_killed_under_load_gives_no_500(fault_stack):
    world = fault_stack.world
    paths = [f"/recommendations/{u}?k=5" for u in world.user_ids] + ["/cached/1", "/health"]
    _load(fault_stack.url, paths, 1.0)  # warm the cache: these answers now come from Redis
    killer = threading.Timer(1.0, fault_stack.stack.redis.stop)
    killer.start()
    try:
        statuses = _load(fault_stack.url, paths, 5.0)
        killer.join()
        assert set(statuses) <= {200, 404}, statuses  # 404: /cached of a user without precomputed items
        status, _, health = http(f"{fault_stack.url}/health")
        assert status == 200 and health["status"] == "degraded" and "cache" in health["degraded"]
        assert health["dependencies"]["cache"]["status"] == "down"
    finally:
        fault_stack.stack.up(do_provision=False)
    healed = _wait_for(lambda: http(f"{fault_stack.url}/health")[2]["status"] == "healthy", 30)
    assert healed


def test_aws_emulator_killed_then_restarted_empty(fault_stack):
    world, url = fault_stack.world, fault_stack.url
    known = world.user_ids[3]
    fault_stack.stack.moto.stop()
    try:
        # Known users are still served from the model in memory, without their recent activity, and say so.
        for k in (3, 4, 6):
            status, _, body = http(f"{url}/recommendations/{known}?k={k}&exclude_watched=false")
            assert status == 200, body
            assert body["source"] == "model" and body["degraded"] is True and len(body["items"]) == k
        status, _, body = http(f"{url}/cached/{known}")
        assert status == 200 and body["degraded"] is True
        # A write that cannot be made is refused with 503 and Retry-After, never accepted and lost.
        status, headers, body = post_event(url, known, world.video_ids[0])
        assert status == 503 and headers["Retry-After"].isdigit() and body["error"]["code"] == "unavailable"
        status, _, health = http(f"{url}/health")
        assert status == 200 and health["status"] == "degraded"
        assert {"store", "stream", "registry"} <= set(health["degraded"])
        text = json.dumps(health) + json.dumps(body)
        assert "127.0.0.1" not in text and "http://" not in text  # no internal endpoint in what clients see
    finally:
        fault_stack.stack.up()  # moto again, every resource provisioned, but an empty registry
    # Writes recover at once; /health says the registry no longer lists the model it serves.
    assert post_event(url, known, world.video_ids[0])[0] == 202
    status, _, health = http(f"{url}/health")
    assert health["status"] == "degraded" and health["registry_version"] is None
    assert world.version in health["detail"]
    # Once the version is published and promoted again, it is healthy again.
    publish_tiny_version(fault_stack.settings, world.version)
    promote(fault_stack.settings, world.version)
    assert _wait_for(lambda: http(f"{url}/health")[2]["status"] == "healthy", 30)


@pytest.mark.parametrize("key", ["none", "wrong"])
def test_forget_needs_the_operator_key_then_erases(fault_stack, key):
    from recsys.secrets import api_key

    url, world = fault_stack.url, fault_stack.world
    user = f"forget-{key}"
    assert post_event(url, user, world.video_ids[0])[0] == 202
    assert http(f"{url}/recommendations/{user}?k=3")[0] == 200
    assert _wait_for(lambda: _tracked(fault_stack.settings, user), 30)  # written in the background
    headers = {} if key == "none" else {"x-api-key": "not-the-key"}
    assert http(f"{url}/users/{user}", "DELETE", headers=headers)[0] == 403
    operator = api_key(fault_stack.settings, "operator_api_key")
    status, _, body = http(f"{url}/users/{user}", "DELETE", headers={"x-api-key": operator})
    assert status == 200, body
    # the event, plus the user's engaged set where the events worker has applied it already
    assert body["activity"] in (1, 2) and body["tracking"] >= 1
    # a worker whose Redis breaker is still open from the Redis test says so; erasing again (idempotent)
    # reaches Redis once the breaker closes (5 s)
    assert body["cached"] == "deleted" or _wait_for(
        lambda: (
            http(f"{url}/users/{user}", "DELETE", headers={"x-api-key": operator})[2]["cached"] == "deleted"
        ),
        30,
    )
    from recsys.feature_store.online import OnlineFeatureStore

    assert OnlineFeatureStore(fault_stack.settings).activity_and_engaged(user, 10) == ([], [])
    assert _tracked(fault_stack.settings, user) == 0


def _tracked(settings, user: str) -> int:
    """How many inference-tracking items the user has."""
    return client("dynamodb", settings).query(
        TableName=settings.names.table("inference_tracking"),
        IndexName="user-index",
        KeyConditionExpression="user_id = :u",
        ExpressionAttributeValues={":u": {"S": user}},
        Select="COUNT",
    )["Count"]
