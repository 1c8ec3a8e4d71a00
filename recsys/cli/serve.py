"""`recsys serve`: the recommendation API's Lambda handler over HTTP on loopback."""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from recsys.cli.common import EnvOption, JsonOption, emit, info, progress, settings_for
from recsys.errors import ConflictError, NotFoundError

HANDLER_PATH = Path("lambdas") / "api" / "handler.py"


def load_api_handler(name: str = "recsys_api_handler") -> Any:
    """Import `lambdas/api/handler.py` (the file the Lambda runs) from the project root, as module `name`."""
    root = Path(__file__).resolve().parents[2]
    path = root / HANDLER_PATH
    if not path.is_file():
        raise NotFoundError(
            f"the API handler {HANDLER_PATH} is not next to the recsys package",
            hint="run recsys serve from a checkout of the project (pip install -e .)",
        )
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


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
    """Serve the recommendation API (the same Lambda handler) over HTTP until Ctrl-C.

    Endpoints: GET /health, GET /recommendations/{user_id}?k=&category=&exclude_watched=,
    POST /interactions, GET /cached/{user_id}, and GET /openapi.json (the OpenAPI description).

    **Examples**

        recsys serve --env local

        recsys serve --env local --port 9000 --poll-interval 5

        curl -s 127.0.0.1:8080/recommendations/12345?k=5
    """
    settings = settings_for(env)
    os.environ["RECSYS_ENV"] = settings.env
    if poll_interval is not None:
        os.environ["RECSYS_SERVING_POLL_INTERVAL_S"] = str(poll_interval)
    if not verbose:
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    from recsys.serving.api import openapi_json
    from recsys.serving.http_server import make_server
    from recsys.serving.service import get_service

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    # One handler instance per concurrent request (a resolver holds its current request, as in Lambda).
    modules = [load_api_handler(f"recsys_api_handler_{i}") for i in range(workers)]
    module = modules[0]
    service = get_service()
    with progress("Loading the production model…"):
        try:
            model = service.models.current()
            # what the first request would pay: the catalogue's online features and the AWS clients
            service.features.warm(model, service.config.warm_features_max_videos)
            service.store.recent_activity("__warmup__", 1)
            info(f"Model {model.version}: {model.n_videos} videos, {model.index.kind} retrieval, "
                 f"ranker {'on' if model.ranker else 'off'}")  # fmt: skip
        except Exception as exc:  # serve anyway: /health says why, and a later promotion is picked up
            info(f"[yellow]No model loaded yet:[/] {exc}")
    spec = openapi_json(module.app)
    try:
        server = make_server([m.handler for m in modules], lambda: spec, host, port)
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
