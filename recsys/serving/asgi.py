"""`recsys serve` under granian (the default): the Lambda handler as an ASGI application over a thread pool.

The request body is read on the worker's event loop, bounded in time (`READ_TIMEOUT_S`, then 408) and size
(`MAX_READ_BYTES`; the handler answers 413 past the API's own limit), so a client that stalls in the middle
of its body holds a coroutine, not a thread. Only a complete request is handed to one of `threads` threads,
which calls the same proxy-event handler as the WSGI application (`recsys.serving.wsgi.answer`) and the
Lambda. `serve_granian` runs it: HTTP parsed and written in Rust, `processes` worker processes, a listen
backlog of 2048, HTTP/1.1 keep-alive, a header read timeout.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from recsys.serving.http_server import Handler
from recsys.serving.wsgi import (
    BACKLOG,
    MAX_READ_BYTES,
    READ_TIMEOUT_S,
    answer,
    json_error,
    limit_malloc_arenas,
    response_headers,
)

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def request_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """An ASGI request's headers as the proxy event carries them (`Content-Type`, repeated ones joined)."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").title()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


async def read_body(receive: Receive, limit: int = MAX_READ_BYTES) -> bytes | None:
    """The request body (at most `limit` bytes; None when empty); TimeoutError past READ_TIMEOUT_S."""
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(READ_TIMEOUT_S):
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                break
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > limit or not message.get("more_body"):
                break
    body = b"".join(chunks)[: limit + 1]
    return body or None


def _declares_body(raw: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in raw)


def asgi_app(handler: Handler, openapi: Callable[[], str], threads: int) -> Callable:
    """The ASGI application of `handler` (a proxy-event function, safe on `threads` threads at once)."""
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="recsys-api")

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"].upper()
        raw_headers = scope.get("headers") or []
        try:
            # A request without Content-Length or Transfer-Encoding has no body (RFC 9112 6.3): none to wait for.
            body = await read_body(receive) if _declares_body(raw_headers) else None
        except TimeoutError:
            status, headers, data = json_error(
                408, "request_timeout", f"the request body did not arrive within {READ_TIMEOUT_S:.0f} s"
            )
        else:
            query = scope.get("query_string", b"").decode("latin-1")
            status, headers, data = await asyncio.get_running_loop().run_in_executor(
                pool, answer, handler, openapi, method, scope["path"], query,
                request_headers(raw_headers), body,
            )  # fmt: skip
        await send({
            "type": "http.response.start", "status": status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response_headers(headers, len(data))],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else data})

    return app


def serve_granian(
    build: Callable[[], Callable],
    host: str,
    port: int,
    processes: int,
) -> None:
    """Serve the ASGI app that `build()` makes in each worker process under granian, until SIGINT/SIGTERM.

    `build` travels to the workers (a module-level function or a partial of one, so that it pickles where
    workers are spawned); what a worker must do when it stops, it registers with `at_worker_exit`."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    server = Granian(
        "recsys.serving.asgi",  # a name for granian's logs: the app comes from `build`
        address=host,
        port=port,
        interface=Interfaces.ASGINL,  # ASGI without lifespan events: a worker builds its app when it starts
        workers=processes,
        backlog=BACKLOG,
        http=HTTPModes.http1,
        websockets=False,
        http1_settings=HTTP1Settings(header_read_timeout=int(READ_TIMEOUT_S * 1000), keep_alive=True),
        log_level=LogLevels.warning,
        respawn_failed_workers=True,
        workers_kill_timeout=10,
    )
    server.serve(target_loader=functools.partial(_granian_worker_app, build), wrap_loader=True)


def _granian_worker_app(build: Callable[[], Callable], _target: str) -> Callable:
    """In a granian worker process: cap malloc arenas, then build the app."""
    limit_malloc_arenas()
    return build()
