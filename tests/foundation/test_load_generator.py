"""The benchmarks' HTTP load generator (bench/http_load.py) counts what a server answered, whichever client
sends the requests: the figures quoted in bench/results come from it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.http_load import CLIENTS, run


class _Counting(BaseHTTPRequestHandler):
    """Answers every request with a small JSON body; every fifth answer closes its connection, and every third
    arrives in two parts a moment apart."""

    protocol_version = "HTTP/1.1"
    served = 0
    posted = 0
    lock = threading.Lock()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with _Counting.lock:
            _Counting.served += 1
            _Counting.posted += bool(body)
            close = _Counting.served % 5 == 0
        payload = json.dumps({"source": "model", "degraded": False, "pad": "x" * 3000}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if _Counting.served % 3:
            self.wfile.write(payload)
        else:
            self.wfile.write(payload[:100])
            self.wfile.flush()
            time.sleep(0.005)
            self.wfile.write(payload[100:])

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A counting server; `@pytest.mark.parametrize("server", [seconds], indirect=True)` closes connections
    idle that long."""
    _Counting.served = _Counting.posted = 0
    handler = type("Handler", (_Counting,), {"timeout": getattr(request, "param", None)})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_every_answer_is_counted_once_across_closed_connections(server: str, client: str) -> None:
    result = run(server, "miss", 0.5, 4, [str(u) for u in range(20)], 5, client=client, seed=1)

    assert result["errors"] == 0
    assert result["requests"] == _Counting.served > 5  # answers on connections the server closed count too
    assert result["sources"] == {"model": result["requests"]}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_interact_mode_sends_the_post_then_the_users_request(server: str, client: str) -> None:
    result = run(server, "interact", 0.5, 3, [str(u) for u in range(20)], 5, client=client, seed=1)

    assert result["errors"] == 0
    posts, after = result["by_kind"]["post"]["requests"], result["by_kind"]["after_post"]["requests"]
    assert posts == _Counting.posted > 0
    assert after == posts  # a client that posted finishes the pair, even past the end of the run
    assert result["requests"] == _Counting.served


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_open_loop_sends_the_requests_due_at_the_rate(server: str, client: str) -> None:
    result = run(server, "miss", 1.0, 4, [str(u) for u in range(20)], 5, rate=40, client=client, seed=1)

    assert result["errors"] == 0
    assert result["requests"] == _Counting.served == 40  # due at 0, 1/40, ... 39/40 s
    assert result["duration_s"] >= 0.97  # sent when due, not all at once


@pytest.mark.parametrize("server", [0.02], indirect=True)
def test_a_connection_the_server_closed_while_idle_is_opened_again(server: str) -> None:
    result = run(server, "miss", 1.0, 2, [str(u) for u in range(20)], 5, rate=10, client="selector", seed=1)

    assert result["errors"] == 0  # each request 200 ms apart on a connection the server drops after 20 ms
    assert result["requests"] == _Counting.served == 10


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_request_the_server_never_answers_fails_after_the_timeout(client: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (the kernel's backlog), never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = run(url, "miss", 0.2, 2, [str(u) for u in range(20)], 5, client=client, timeout_s=0.5)

    assert result["requests"] == 0
    assert result["errors"] >= 2  # each connection's request, failed rather than waited for forever
