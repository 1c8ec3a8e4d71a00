"""`recsys serve`: the recommendation API's Lambda handler over HTTP on loopback."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Annotated, Any

import typer

from recsys.cli.common import EnvOption, JsonOption, emit, info, progress, settings_for
from recsys.errors import ConflictError


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


def serve(
    env: EnvOption = "local",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port on 127.0.0.1.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    poll_interval: Annotated[
        float | None, typer.Option(min=0, max=300, help="Seconds between model-registry checks (hot reload).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=32, help="Requests handled concurrently.")] = 4,
    verbose: Annotated[
        bool, typer.Option(help="Structured logs and EMF metrics of each request on stdout.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Serve the recommendation API (the same routes as the Lambda) over HTTP until Ctrl-C.

    Endpoints: GET /health, GET /recommendations/{user_id}?k=&category=&exclude_watched=,
    POST /interactions, GET /cached/{user_id}, and GET /openapi.json (the OpenAPI description).

    **Examples**

        recsys serve --env local

        recsys serve --env local --port 9000 --poll-interval 5

        curl -s 127.0.0.1:8080/recommendations/12345?k=5
    """
    settings = settings_for(env)
    if poll_interval is not None:
        settings = settings.model_copy(
            update={"serving": settings.serving.model_copy(update={"poll_interval_s": poll_interval})}
        )
    # Powertools reads its own switches from the environment; no X-Ray daemon runs locally.
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    if not verbose:
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from recsys.serving.api import openapi_json
    from recsys.serving.http_server import make_server
    from recsys.serving.service import RecommendationService

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    service = RecommendationService(settings)
    handlers, app = api_handlers(service, workers, verbose)
    with progress("Loading the production model…"):
        try:
            model = service.models.current()
            # what the first request would pay: the catalogue's online features and the AWS clients
            service.features.warm(model, service.config.warm_features_max_videos)
            service.store.recent_activity("__warmup__", 1)
            info(f"Model {model.version}: {model.n_videos} videos, {model.index.kind} retrieval, "
                 f"ranker {'on' if model.candidate_ranker else 'off'}")  # fmt: skip
        except Exception as exc:  # serve anyway: /health says why, and a later promotion is picked up
            info(f"[yellow]No model loaded yet:[/] {exc}")
    spec = openapi_json(app)
    try:
        server = make_server(handlers, lambda: spec, host, port)
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
