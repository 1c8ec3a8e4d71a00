"""`recsys serve`'s HTTP adapter: the Lambda handler as a WSGI application, and gunicorn serving it.

`wsgi_app` turns each WSGI request into the API Gateway proxy event the Lambda receives and the handler's
answer back into HTTP, with a body-size limit and a read timeout on unfinished bodies (the API key check
of `--require-key` wraps the handler: `recsys.serving.http_server.require_api_key`).
`answer` is the part it shares with the ASGI form (`recsys.serving.asgi`, which granian serves by default).
`serve` runs it under gunicorn's threaded workers (`processes` x `threads`, the same backlog, keep-alive,
a worker timeout). Either way each worker builds its own service after the fork (its own model in memory,
AWS clients and Redis connections), so the master holds no connection that workers would share. granian
is the default because a client that stalls in its body holds no thread there; per request, the two
spend the same CPU within this machine's noise (bench/results/reliability.md, "Tenth session").
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from recsys.serving.http_server import Handler, LocalContext, internal_error, proxy_event, result_bytes

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 10.0
MAX_READ_BYTES = 64 * 1024  # more than the API's 16 KiB limit, so the handler answers 413 itself
BACKLOG = 2048


def json_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}, body


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").title(): value
        for key, value in environ.items()
        if key.startswith("HTTP_") and key != "HTTP_PROXY"  # httpoxy: never taken as a request header
    }
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        headers["Content-Length"] = environ["CONTENT_LENGTH"]
    return headers


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The request body (at most MAX_READ_BYTES), bounded by READ_TIMEOUT_S on a stalled client."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length < 0:
        raise ValueError("invalid Content-Length")
    if not length:
        return None
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        sock.settimeout(READ_TIMEOUT_S)
    return environ["wsgi.input"].read(min(length, MAX_READ_BYTES))


def answer(
    handler: Handler,
    openapi: Callable[[], str],
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes | None,
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP request answered by `handler` (a proxy-event function), and
    `GET /openapi.json`; the same for the WSGI and the ASGI application."""
    if path == "/openapi.json" and method == "GET":
        return 200, {"Content-Type": "application/json"}, openapi().encode()
    text = body.decode("utf-8", errors="replace") if body is not None else None
    event = proxy_event(method, path, query, headers, text)
    try:
        return result_bytes(handler(event, LocalContext()))
    except Exception:  # the handler maps errors itself; this is a bug, still answered as JSON
        log.exception("handler failed")
        return result_bytes(internal_error())


def response_headers(headers: dict[str, str], length: int) -> list[tuple[str, str]]:
    """The response's headers with its Content-Length (the server decides about the connection)."""
    kept = [(k, v) for k, v in headers.items() if k.lower() not in ("content-length", "connection")]
    return [*kept, ("Content-Length", str(length))]


def wsgi_app(handler: Handler, openapi: Callable[[], str]) -> Callable:
    """The WSGI application of `handler` (a proxy-event function) with `/openapi.json`."""

    def respond(environ: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        method = environ["REQUEST_METHOD"].upper()
        # PATH_INFO is the request's bytes decoded as latin-1 (PEP 3333); the proxy event carries text.
        path = (environ.get("PATH_INFO") or "/").encode("latin-1").decode("utf-8", errors="replace")
        try:
            raw = _read_body(environ)
        except ValueError:
            return json_error(400, "bad_request", "invalid Content-Length")
        except OSError:  # socket.timeout included: the client stopped sending its body
            return json_error(
                408, "request_timeout", f"the request body did not arrive within {READ_TIMEOUT_S:.0f} s"
            )
        return answer(handler, openapi, method, path, environ.get("QUERY_STRING", ""), _headers(environ), raw)

    def app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        status, headers, data = respond(environ)
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        start_response(f"{status} {reason}", response_headers(headers, len(data)))
        return [b"" if environ["REQUEST_METHOD"].upper() == "HEAD" else data]

    return app


MALLOC_ARENAS = 2  # per worker process; glibc's default (8 x cores) lets 8 threads grow 8 heaps


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas in this process (before its threads start); False where that is not glibc.

    Each thread otherwise gets an arena of its own that keeps freed memory, so a threaded worker's RSS
    climbs for minutes under load while its Python heap stays flat (bench/results/reliability.md).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(-8, int(arenas)))  # M_ARENA_MAX
    except (OSError, AttributeError):
        return False


def at_worker_exit(callback: Callable[[], None]) -> None:
    """Run `callback` when this worker process stops, under either server.

    A granian worker is a multiprocessing child, which ends with `os._exit` after multiprocessing's exit
    finalizers, so atexit handlers would not run there; gunicorn's workers run those finalizers at exit too."""
    from multiprocessing.util import Finalize

    Finalize(None, callback, exitpriority=10)


def serve(
    build: Callable[[], Callable],
    host: str,
    port: int,
    processes: int,
    threads: int,
) -> None:
    """Serve the WSGI app that `build()` makes in each worker process under gunicorn, until SIGINT/SIGTERM."""
    from gunicorn.app.base import BaseApplication

    options = {
        "bind": f"{host}:{port}",
        "workers": processes,
        "worker_class": "gthread",
        "threads": threads,
        "backlog": BACKLOG,
        "keepalive": 5,
        "timeout": 30,  # a worker silent for this long is replaced
        "graceful_timeout": 10,
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "loglevel": "warning",
        "accesslog": None,
        "errorlog": "-",
        "preload_app": False,  # each worker builds its own service after the fork
        "post_fork": lambda server, worker: limit_malloc_arenas(),
    }

    class Application(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                if value is not None:
                    self.cfg.set(key, value)

        def load(self) -> Callable:
            return build()

    Application().run()
