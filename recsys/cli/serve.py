"""`recsys serve`: the recommendation API's Lambda handler over HTTP on loopback."""

from __future__ import annotations

import functools
import os
import socket
import sys
import warnings
from collections.abc import Callable
from typing import Annotated, Any

import typer

from recsys.cli.common import EnvOption, JsonOption, emit, info, progress, settings_for
from recsys.errors import ConflictError, ErrorCode, RecsysError
from recsys.serving.resilience import redact

SERVERS = ("granian", "gunicorn", "threaded")


def api_handlers(service: Any, count: int, verbose: bool = False) -> tuple[list[Callable[..., Any]], Any]:
    """`count` request handlers over one service, shaped as the Lambda's (event, context) -> response.

    A resolver holds its current request, so each concurrent slot gets its own, as Lambda instances do. With
    `verbose`, each request logs a structured line and its EMF metrics on stdout, as the Lambda does.
    Returns the handlers and the first resolver (for the OpenAPI document).
    """
    from aws_lambda_powertools import Logger, Metrics

    from recsys.serving.api import create_app

    handlers: list[Callable[..., Any]] = []
    apps = []
    for _ in range(count):
        metrics = Metrics(namespace="RecSys", service="recsys-api") if verbose else None
        app = create_app(service, metrics)
        apps.append(app)
        handler: Callable[..., Any] = app.resolve
        if verbose:
            handler = Logger(service="recsys-api").inject_lambda_context(metrics.log_metrics(handler))
        handlers.append(handler)
    return handlers, apps[0]


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (gunicorn would retry binding for a while instead)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def serve(
    env: EnvOption = "local",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port on 127.0.0.1.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    poll_interval: Annotated[
        float | None, typer.Option(min=0, max=300, help="Seconds between model-registry checks (hot reload).")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=32, help="Requests handled concurrently by each process (threads).")
    ] = 4,
    processes: Annotated[
        int, typer.Option(min=1, max=16, help="Server processes (gunicorn workers), each with the model.")
    ] = 2,
    server: Annotated[
        str,
        typer.Option(
            help="granian (HTTP in Rust; processes, backlog, timeouts), gunicorn (the same in Python) or "
            "threaded (one process, for debugging)."
        ),
    ] = "granian",
    require_key: Annotated[
        bool,
        typer.Option(help="Require the api-keys secret's external_api_key in x-api-key (all but /health)."),
    ] = False,
    pin_cpus: Annotated[
        bool,
        typer.Option(
            help="Keep each server process on a CPU of its own when there is one process per CPU this "
            "server may use (Linux): its threads then hand the GIL over on one core. 1.2x misses/s on 2 cores."
        ),
    ] = True,
    verbose: Annotated[
        bool, typer.Option(help="Structured logs and EMF metrics of each request on stdout.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Serve the recommendation API (the same routes as the Lambda) over HTTP until Ctrl-C.

    Endpoints: GET /health, GET /recommendations/{user_id}?k=&category=&exclude_watched=,
    POST /interactions, GET /cached/{user_id}, DELETE /users/{user_id} (operator key), and GET
    /openapi.json (the OpenAPI description). By default granian serves it with --processes worker
    processes of --workers threads each (--server gunicorn: the same under gunicorn).

    **Examples**

        recsys serve --env local

        recsys serve --env local --port 9000 --poll-interval 5 --processes 4

        recsys serve --env local --require-key

        curl -s 127.0.0.1:8080/recommendations/12345?k=5
    """
    if server not in SERVERS:
        raise RecsysError(
            f"unknown --server {server!r}", hint=f"use {', '.join(SERVERS)}", code=ErrorCode.USAGE
        )
    settings = settings_for(env)
    if poll_interval is not None:
        settings = settings.model_copy(
            update={"serving": settings.serving.model_copy(update={"poll_interval_s": poll_interval})}
        )
    # Powertools reads its own switches from the environment; no X-Ray daemon runs locally.
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    if not verbose:
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    url = f"http://{host}:{port}"
    if server == "threaded":
        _serve_threaded(settings, host, port, workers, verbose, require_key, json_output)
        return
    try:
        from recsys.serving import asgi, wsgi

        __import__(server)
    except ImportError:
        raise RecsysError(
            f"{server} is not installed",
            hint=f"make install, or pip install {server} (or use --server threaded)",
            code=ErrorCode.MISSING_TOOL,
        ) from None
    if not port_free(host, port):
        raise ConflictError(f"cannot listen on {host}:{port}: address in use", hint="choose another --port")
    info(
        f"Serving the recommendation API on {url} (OpenAPI: {url}/openapi.json) with {server}, {processes} "
        f"processes x {workers} threads{'; API key required' if require_key else ''}. Ctrl-C stops."
    )
    emit({"url": url, "env": settings.env, "openapi": f"{url}/openapi.json"}, lambda: None)
    sys.stdout.flush()
    build = functools.partial(_worker_app, settings, workers, verbose, require_key, server == "granian")
    pinning = _pin_workers(processes) if pin_cpus else None
    try:
        if server == "granian":
            asgi.serve_granian(build, host, port, processes)
        else:
            sys.argv = sys.argv[:1]  # gunicorn parses the command line too: give it nothing of ours
            wsgi.serve(build, host, port, processes, workers)
    finally:
        if pinning is not None:
            pinning.stop()
    info("Stopped.")


def _pin_workers(processes: int) -> Any:
    """Pin the server's worker processes, each to a CPU of its own (`recsys.serving.worker_cpus`), when this
    system can and there is one process per CPU the server may use; None otherwise (said on stderr).

    Only then: with CPUs to spare, workers pinned to the first CPUs could crowd there while others stay idle.
    (A container held to a CPU quota rather than a CPU set usually may use every CPU of its host, so it is
    pinned only if it runs one process per host CPU; docs/serving.md says when to pass --no-pin-cpus.)"""
    from recsys.serving.worker_cpus import WorkerCpus, available_cpus, supported

    cpus = available_cpus()
    if not supported() or processes != len(cpus) or len(cpus) < 2:
        reason = "not supported here" if not supported() else f"{processes} processes, {len(cpus)} CPUs"
        info(f"Server processes are not pinned to CPUs ({reason}; pinned when there is one per CPU).")
        return None
    info(f"Each server process kept on a CPU of its own ({len(cpus)} CPUs; --no-pin-cpus leaves them free).")
    return WorkerCpus(cpus=cpus).start()


def _worker_app(settings: Any, workers: int, verbose: bool, require_key: bool, asgi: bool) -> Callable:
    """In each worker process, after the fork: its own clients, service, model and handlers (the ASGI app
    answering on `workers` threads, or the WSGI app); queued tracking items are written when it stops."""
    from recsys.aws import reset_clients
    from recsys.secrets import reset_secret_stores
    from recsys.serving.wsgi import at_worker_exit, wsgi_app

    reset_clients()
    reset_secret_stores()
    service, handler, spec = _build(settings, workers, verbose, require_key, quiet=True)
    at_worker_exit(service.tracker.flush)
    if asgi:
        from recsys.serving.asgi import asgi_app

        return asgi_app(handler, lambda: spec, workers)
    return wsgi_app(handler, lambda: spec)


def _build(
    settings: Any, workers: int, verbose: bool, require_key: bool, quiet: bool = False
) -> tuple[Any, Callable[..., Any], str]:
    """A service, one handler over `workers` resolvers (behind the key check) and the OpenAPI text."""
    from recsys.heap import freeze_long_lived
    from recsys.serving.access import key_matches
    from recsys.serving.api import openapi_json
    from recsys.serving.http_server import pooled, require_api_key
    from recsys.serving.service import RecommendationService

    service = RecommendationService(settings)
    handlers, app = api_handlers(service, workers, verbose)
    say = (lambda _msg: None) if quiet else info
    try:
        model = service.models.current()
        # what the first request would pay: the AWS clients and their connections
        service.store.activity_and_engaged("__warmup__", 1)
        say(f"Model {model.version}: {model.n_videos} videos, {model.index.kind} retrieval, "
            f"ranker {'on' if model.ranker else 'off'}")  # fmt: skip
    except Exception as exc:  # serve anyway: /health says why, and a later promotion is picked up
        info(f"[yellow]No model loaded yet:[/] {redact(str(exc))}")
    freeze_long_lived(full=True)  # no request waits yet: later collections skip all that start-up made
    handler = pooled(handlers)
    if require_key:
        handler = require_api_key(handler, lambda presented: key_matches(settings, presented))
    return service, handler, openapi_json(app)


def _serve_threaded(
    settings: Any, host: str, port: int, workers: int, verbose: bool, require_key: bool, json_output: bool
) -> None:
    from recsys.serving.http_server import make_server

    with progress("Loading the production model…"):
        service, handler, spec = _build(settings, workers, verbose, require_key)
    try:
        server = make_server(handler, lambda: spec, host, port)
    except OSError as exc:
        raise ConflictError(
            f"cannot listen on {host}:{port}: {exc.strerror}", hint="choose another --port"
        ) from None
    url = f"http://{host}:{server.server_address[1]}"
    info(f"Serving the recommendation API on {url} (OpenAPI: {url}/openapi.json). Ctrl-C stops.")
    emit({"url": url, "env": settings.env, "openapi": f"{url}/openapi.json"}, lambda: None)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        service.tracker.flush()
        info("Stopped.")
