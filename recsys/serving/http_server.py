"""HTTP to the Lambda handler: the proxy event of a request, a pool of handlers, and a small threaded server.

Each HTTP request becomes an API Gateway REST proxy event for the same `handler(event, context)` that
runs in AWS; `/openapi.json` returns the resolver's OpenAPI description. `recsys serve` puts the handler
behind gunicorn (`recsys.serving.wsgi`); the threaded server here is `recsys serve --server threaded`
and the tests' in-process server.
"""

from __future__ import annotations

import json
import logging
import queue
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
MAX_READ_BYTES = 1024 * 1024  # bodies over the API's limit are still read (then refused with 413) up to this


class LocalContext:
    """The parts of a Lambda context that Powertools reads."""

    function_name = "recsys-api-local"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:recsys-api-local"
    memory_limit_in_mb = 1024
    log_group_name = "/aws/lambda/recsys-api-local"
    log_stream_name = "local"

    def __init__(self) -> None:
        self.aws_request_id = uuid.uuid4().hex

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def proxy_event(
    method: str, path: str, query: str = "", headers: dict[str, str] | None = None, body: str | None = None
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event for one HTTP request."""
    multi = parse_qs(query, keep_blank_values=True) if query else {}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method.upper(),
        "headers": dict(headers or {}),
        "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
        "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
        "multiValueQueryStringParameters": multi or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": uuid.uuid4().hex,
            "stage": "local",
            "httpMethod": method.upper(),
            "path": path,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def pooled(handlers: Handler | list[Handler]) -> Handler:
    """One handler over several instances, each serving one request at a time (a resolver holds its request)."""
    pool: queue.Queue[Handler] = queue.Queue()
    for h in handlers if isinstance(handlers, list) else [handlers]:
        pool.put(h)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        instance = pool.get()
        try:
            return instance(event, context)
        finally:
            pool.put(instance)

    return handler


def require_api_key(handler: Handler, matches: Callable[[str | None], bool]) -> Handler:
    """`handler` behind an API key check on every route but /health, as API Gateway's usage plan does."""

    def keyed(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if (event.get("path") or "").rstrip("/") != "/health":
            presented = next(
                (v for k, v in (event.get("headers") or {}).items() if k.lower() == "x-api-key"), None
            )
            if not matches(presented):
                return {
                    "statusCode": 403,
                    "headers": {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"},
                    "body": json.dumps(
                        {
                            "error": {
                                "code": "forbidden",
                                "message": "a valid API key is required in x-api-key",
                            }
                        }
                    ),
                }
        return handler(event, context)

    return keyed


def internal_error() -> dict[str, Any]:
    """The proxy result of a handler that raised (the handler maps errors itself: this is a bug)."""
    return {
        "statusCode": 500,
        "headers": {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"},
        "body": json.dumps({"error": {"code": "internal", "message": "internal error"}}),
    }


def result_bytes(result: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body bytes of a proxy result."""
    headers = dict(result.get("headers") or {})
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key] = ", ".join(values)
    payload = result.get("body") or ""
    if result.get("isBase64Encoded"):
        import base64

        data = base64.b64decode(payload)
    else:
        data = payload.encode()
    return int(result.get("statusCode", 200)), headers, data


def make_server(
    handlers: Handler | list[Handler], openapi: Callable[[], str], host: str = "127.0.0.1", port: int = 8080
) -> ThreadingHTTPServer:
    """A ThreadingHTTPServer on host:port that translates HTTP to proxy events for the handler.

    A Powertools resolver keeps the current request on itself (a Lambda runs one request at a time), so
    each handler instance serves one request at a time here: pass several instances (separately
    imported handler modules) to serve requests concurrently.
    """
    handler = pooled(handlers)

    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "recsys-local"
        # Keep-alive + Nagle + the client's delayed ACK would add ~40 ms to every response.
        disable_nagle_algorithm = True
        timeout = 10  # seconds a connection may stall (an unfinished body no longer holds a thread)

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/openapi.json" and self.command == "GET":
                self._write(200, {"Content-Type": "application/json"}, openapi().encode())
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length < 0:
                    raise ValueError(length)
            except ValueError:
                body = json.dumps({"error": {"code": "bad_request", "message": "invalid Content-Length"}})
                self.close_connection = True
                self._write(400, {"Content-Type": "application/json"}, body.encode())
                return
            raw = self.rfile.read(min(length, MAX_READ_BYTES)) if length else b""
            body = raw.decode("utf-8", errors="replace") if length else None
            event = proxy_event(self.command, parts.path, parts.query, dict(self.headers.items()), body)
            try:
                result = handler(event, LocalContext())
            except Exception:  # the handler maps errors itself; this is a bug, still answered as JSON
                log.exception("handler failed")
                result = internal_error()
            status, headers, data = result_bytes(result)
            self._write(status, headers, b"" if self.command == "HEAD" else data)

        def _write(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() not in ("content-length", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self._headers_buffer.append(b"\r\n")  # end_headers() without its own flush:
            self._headers_buffer.append(data)  # headers and body go out in one send
            self.flush_headers()

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s - %s", self.address_string(), format % args)

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # listen backlog (socketserver's default is 5)

    server = Server((host, port), RequestHandler)
    server.daemon_threads = True
    return server
