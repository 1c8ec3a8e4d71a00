"""The web page, the API docs and the JSON routes the page reads, registered on the API's resolver.

- `GET /` the page (pick a user, see and change their recommendations, the model, the catalogue);
- `GET /docs` Swagger UI over `GET /openapi.json`, its assets served from the `swagger-ui-bundle-v2`
  package (nothing is fetched from a CDN, so the docs work offline);
- `GET /static/<name>` the page's and Swagger UI's files;
- `GET /model`, `GET /model/report`, `GET /catalog`: API routes in the OpenAPI document like the others.

The HTML carries no secret: on AWS the person types the API key into the page, which keeps it in the
browser session (sessionStorage) and sends it as `x-api-key`. The page, its files, the docs and the OpenAPI
document are public (they hold no data); every data route keeps its API key on API Gateway.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query

from recsys import artifacts
from recsys.errors import NotFoundError
from recsys.registry import ModelRegistry, validate_version
from recsys.serving.schemas import ErrorResponse
from recsys.serving.web_schemas import (
    DEFAULT_CATALOG_PAGE,
    MAX_CATALOG_PAGE,
    CatalogPage,
    ModelInfo,
)
from recsys.storage import get_bytes_if_exists

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from recsys.serving.model_store import ServingModel
    from recsys.serving.service import RecommendationService

STATIC_DIR = Path(__file__).parent / "static"
EXAMPLE_USERS = 12
# The reference system's example user: listed first when the model knows it.
REFERENCE_USER = "12345"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# Our own files, then the Swagger UI files taken from the swagger-ui-bundle-v2 package.
OWN_FILES = ("app.js", "app.css", "docs.js")
SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js")
# Scripts only from this origin; Swagger UI sets inline styles; the page reads only this API.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
# (path regex, methods) of these routes, so that a wrong method is a 405 like the API's other routes.
WEB_ROUTES: list[tuple[re.Pattern[str], set[str]]] = [
    (re.compile(r"^/?$"), {"GET"}),
    (re.compile(r"^/docs/?$"), {"GET"}),
    (re.compile(r"^/openapi\.json$"), {"GET"}),
    (re.compile(r"^/static/[^/]+$"), {"GET"}),
    (re.compile(r"^/model/?$"), {"GET"}),
    (re.compile(r"^/model/report/?$"), {"GET"}),
    (re.compile(r"^/catalog/?$"), {"GET"}),
]


def swagger_ui_dir() -> Path:
    """The folder of the Swagger UI release shipped by the swagger-ui-bundle-v2 package."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


@cache
def static_file(name: str) -> tuple[str, str] | None:
    """(text, content type) of a file `/static/<name>` serves, None for any other name."""
    if name in OWN_FILES:
        path = STATIC_DIR / name
    elif name in SWAGGER_FILES:
        path = swagger_ui_dir() / name
    else:
        return None
    return path.read_text(encoding="utf-8"), _TYPES[path.suffix]


@cache
def _template(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


def base_path(event: dict[str, Any]) -> str:
    """The path the API is mounted on as the browser sees it ('/dev/' behind API Gateway, '/' locally).

    API Gateway passes the route's path in `path` and the whole requested path (stage or base-path
    mapping first) in `requestContext.path`; what precedes the route is the mount point.
    """
    path = str(event.get("path") or "/")
    full = str((event.get("requestContext") or {}).get("path") or path)
    prefix = full[: len(full) - len(path)] if full.endswith(path) else ""
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    return prefix + "/"


def html_page(name: str, event: dict[str, Any]) -> Response[str]:
    """One of the HTML pages with its `<base href>` set to where the API is mounted."""
    body = _template(name).replace("{{BASE}}", html.escape(base_path(event), quote=True))
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=body,
        headers={
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        },
    )


def example_users(model: ServingModel, count: int = EXAMPLE_USERS) -> list[str]:
    """Users the model was trained on, the longest histories first (the reference user 12345 leads)."""
    if not len(model.user_ids):
        return []
    lengths = np.diff(model.history_offsets)[: len(model.user_ids)]
    order = np.argsort(-lengths, kind="stable")[:count]
    users = [str(model.user_ids[i]) for i in order]
    if REFERENCE_USER in model.user_row:
        users = [REFERENCE_USER, *[u for u in users if u != REFERENCE_USER]][:count]
    return users


def model_info(service: RecommendationService) -> dict[str, Any]:
    """The production model: registry entry, gates, metrics, what this instance serves, example users."""
    found = ModelRegistry(service.settings).production()
    if found is None:
        raise NotFoundError(
            "no model in production", hint="run the pipeline: `recsys pipeline run --env ENV`"
        )
    metrics = dict(found.metrics)
    gates = metrics.pop("gates", None)
    serving = None
    users: list[str] = []
    try:
        model = service.models.current()
    except Exception:  # the registry answered; loading the bundle failed: /health says why
        model = None
    if model is not None and model.version == found.version:
        serving = {
            "videos": model.n_videos,
            "users": len(model.user_ids),
            "retrieval": model.index.kind,
            "ranker": model.ranker is not None,
            "categories": model.categories,
        }
        users = example_users(model)
    return {
        "version": found.version,
        "status": found.status,
        "job_id": found.job_id,
        "created_at": found.created_at,
        "promoted_at": found.promoted_at,
        "gates": gates,
        "metrics": metrics,
        "report_available": bool(metrics),
        "serving": serving,
        "example_users": users,
    }


def evaluation_report(service: RecommendationService, version: str | None) -> bytes:
    """The evaluation report (HTML) of `version`, the production version by default."""
    if version is None:
        found = ModelRegistry(service.settings).production()
        if found is None:
            raise NotFoundError("no model in production", hint="run the pipeline first")
        version = found.version
    validate_version(version)
    body = get_bytes_if_exists(
        service.settings,
        service.settings.names.bucket("artifacts"),
        artifacts.evaluation_key(version, "report.html"),
    )
    if body is None:
        raise NotFoundError(
            f"no evaluation report for model {version}",
            hint="`recsys model list --env ENV` shows the versions; the Evaluation stage writes the report",
        )
    return body


def catalog_page(
    model: ServingModel, q: str | None, category: str | None, limit: int, offset: int
) -> dict[str, Any]:
    """Videos of the served catalogue, most popular first, filtered by id or category text and category."""
    rows = model.popular_rows
    if category is not None:
        rows = rows[model.category[rows] == category]
    if q:
        needle = q.strip().lower()
        ids = np.char.lower(model.video_ids[rows].astype(str))
        cats = np.char.lower(model.category[rows].astype(str))
        rows = rows[(np.char.find(ids, needle) >= 0) | (np.char.find(cats, needle) >= 0)]
    rank = np.empty(model.n_videos, dtype=np.int64)
    rank[model.popular_rows] = np.arange(1, model.n_videos + 1)
    page = rows[offset : offset + limit]
    items = [
        {
            "video_id": str(model.video_ids[r]),
            "category": str(model.category[r]),
            "popularity": round(float(model.popularity[r]), 6),
            "trending": round(float(model.trending[r]), 6),
            "popularity_rank": int(rank[r]),
            "duration": float(model.duration[r]),
            "upload_ts": int(model.upload_ts[r]),
        }
        for r in page.tolist()
    ]
    return {
        "model_version": model.version,
        "total": len(rows),
        "offset": offset,
        "limit": limit,
        "categories": model.categories,
        "items": items,
    }


def register_web_routes(
    app: APIGatewayRestResolver,
    service: RecommendationService,
    route: Callable[..., Callable[[Callable[..., Any]], Callable[..., Any]]],
    openapi: Callable[[], str],
) -> None:
    """Add the page, the docs, the static files and the page's JSON routes to `app`.

    `route` registers a documented, validated JSON route (the API's own helper); `openapi` returns the
    OpenAPI document.
    """

    @app.get("/", include_in_schema=False)
    def page() -> Response[str]:
        return html_page("index.html", app.current_event.raw_event)

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response[str]:
        return html_page("docs.html", app.current_event.raw_event)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_document() -> Response[str]:
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi())

    @app.get("/static/<name>", include_in_schema=False)
    def static(name: str) -> Response[str]:
        found = static_file(name)
        if found is None:
            raise NotFoundError(f"no static file {name!r}")
        text, kind = found
        cache_for = 86_400 if name in SWAGGER_FILES else 0
        return Response(
            status_code=200,
            content_type=kind,
            body=text,
            headers={
                "Cache-Control": f"public, max-age={cache_for}" if cache_for else "no-cache",
                "X-Content-Type-Options": "nosniff",
            },
        )

    @route(
        "GET", "/model", errors=(404,), summary="The production model: version, gates, metrics, example users"
    )
    def model() -> ModelInfo:
        return model_info(service)

    @app.get(
        "/model/report",
        summary="The evaluation report (HTML) of the production model, or of ?version=",
        responses={
            200: {"description": "The report", "content": {"text/html": {}}},
            404: {
                "description": "No such model or report",
                "content": {"application/json": {"model": ErrorResponse}},
            },
        },
    )
    def report(
        version: Annotated[
            str | None,
            Query(min_length=1, max_length=100, description="A model version (default: production)"),
        ] = None,
    ) -> Response[str]:
        body = evaluation_report(service, version)
        return Response(
            status_code=200,
            content_type="text/html; charset=utf-8",
            body=body.decode("utf-8"),
            headers={"X-Content-Type-Options": "nosniff"},
        )

    @route(
        "GET",
        "/catalog",
        errors=(503,),
        summary="Browse and search the served catalogue (most popular first)",
    )
    def catalog(
        q: Annotated[
            str | None, Query(min_length=1, max_length=64, description="Text in the video id or category")
        ] = None,
        category: Annotated[
            str | None, Query(min_length=1, max_length=64, description="Only this category")
        ] = None,
        limit: Annotated[
            int, Query(ge=1, le=MAX_CATALOG_PAGE, description="Videos per page")
        ] = DEFAULT_CATALOG_PAGE,
        offset: Annotated[int, Query(ge=0, le=10_000_000, description="Videos to skip")] = 0,
    ) -> CatalogPage:
        return catalog_page(service.models.current(), q, category, limit, offset)
