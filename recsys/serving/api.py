"""The recommendation API's routes on a Powertools resolver; `lambdas/api/handler.py` serves it.

Each route declares one response model as its return annotation (`-> RecommendationResponse`, or
`-> Response[HealthResponse]` where the status varies). Powertools validates every response against it
on the way out and documents it in `/openapi.json`, together with the route's error responses.

Every error is a JSON body `{"error": {"code", "message"}}`: 400 malformed JSON (also NaN, an integer of
thousands of digits, nesting deeper than 16), 403 a missing or wrong operator key, 413 body too large,
415 a body that is not application/json, 422 a missing/wrong-typed field, a parameter out of range or a
body that is not one object, 404 unknown route or user without precomputed items, 405 wrong method, 503
no model deployed or a write that cannot be made (with Retry-After), 500 an internal error, including a
response that does not fit its route's model (a programming error, logged with the offending fields; the
client gets a 500, never a malformed 200 nor a 422 that would blame its request). Error texts never carry
an endpoint or a secret (`recsys.serving.resilience.redact`). Every response has `nosniff`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import ValidationError

from recsys.catalogue_live import VideoChange, VideoIn
from recsys.errors import ErrorCode, RecsysError
from recsys.events import InteractionEvent
from recsys.serving.access import OPERATOR_KEY, key_matches, presented_key
from recsys.serving.direct_route import recommendation_query
from recsys.serving.request_guard import RequestRefused, check_body
from recsys.serving.resilience import RETRY_AFTER_S, ThrottledLog, describe, redact
from recsys.serving.schemas import (
    DEFAULT_K,
    MAX_K,
    CachedRecommendations,
    ErrorResponse,
    HealthResponse,
    InteractionAccepted,
    RecommendationResponse,
    UserForgotten,
)
from recsys.serving.service import RecommendationService
from recsys.serving.web import WEB_ROUTES, register_web_routes

log = logging.getLogger(__name__)
_bugs = ThrottledLog(log)

MAX_BODY_BYTES = 16 * 1024
API_TITLE = "recsys recommendation API"
UserId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$", description="User id")
]
_STATUS = {
    ErrorCode.VALIDATION: 422, ErrorCode.USAGE: 400, ErrorCode.NOT_FOUND: 404, ErrorCode.CONFLICT: 409,
    ErrorCode.UNAVAILABLE: 503,
}  # fmt: skip
# (path regex, methods) of every route, to tell 405 from 404.
_ROUTES: list[tuple[re.Pattern[str], set[str]]] = [
    (re.compile(r"^/health/?$"), {"GET"}),
    (re.compile(r"^/recommendations/[^/]+/?$"), {"GET"}),
    (re.compile(r"^/cached/[^/]+/?$"), {"GET"}),
    (re.compile(r"^/interactions/?$"), {"POST"}),
    *WEB_ROUTES,  # the page, the docs and the page's JSON routes (recsys.serving.web)
    (re.compile(r"^/users/[^/]+/?$"), {"DELETE"}),
    (re.compile(r"^/videos/?$"), {"POST"}),
    (re.compile(r"^/videos/[^/]+/?$"), {"DELETE"}),
]
_ERRORS = {
    400: "malformed JSON body (NaN, an over-long integer, nesting deeper than 16)",
    403: "missing or wrong API key (where the API requires one)",
    404: "not found",
    409: "the current state refuses it (e.g. a model version without a saved video tower)",
    405: "method not allowed on this path",
    413: "request body too large",
    415: "the body is not application/json",
    422: "invalid parameter or body",
    500: "internal error (including a response that did not fit its model)",
    503: "no model deployed, or a write that cannot be made now (see Retry-After)",
}
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def error_body(code: str, message: str) -> str:
    """The JSON text of the API's one error shape (the message redacted)."""
    return json.dumps({"error": {"code": code, "message": redact(message)}})


def _retry_after(status: int) -> dict[str, str]:
    """503s say when to retry."""
    return {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}


def error_result(status: int, code: str, message: str) -> dict[str, Any]:
    """The proxy result of `error_response` (for answers made without the resolver's routing)."""
    headers = {"Content-Type": content_types.APPLICATION_JSON, **_retry_after(status)}
    return {
        "statusCode": status,
        "headers": headers,
        "body": error_body(code, message),
        "isBase64Encoded": False,
    }


def error_response(status: int, code: str, message: str) -> Response:
    """The API's one error shape (503s say when to retry)."""
    headers = _retry_after(status) or None
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=error_body(code, message),
        headers=headers,
    )


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body",)) or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


class ApiResolver(APIGatewayRestResolver):
    """REST resolver that refuses oversized bodies before anything parses them, and counts every response.

    With a Powertools `Metrics`, each request adds EMF metrics `Requests`, `Latency` (ms), `Errors4xx`, `Errors5xx`.
    """

    def __init__(self, metrics: Any | None = None, live_metrics: Any | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from aws_lambda_powertools.metrics.functions import is_metrics_disabled

        # Powertools flushes a full metric set even when disabled (POWERTOOLS_METRICS_DISABLED): skip them.
        self.metrics = None if is_metrics_disabled() else metrics
        self.live_metrics = live_metrics
        # (version, items shown) of the recommendation answered
        self.served: tuple[str, int] | None = None
        # Answers the hot route's plainly valid requests without Powertools' routing (None: not one of them).
        self.direct: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None

    # Powertools keeps the current request on its base class (`BaseRouter.current_event = ...`), which every
    # resolver in a process shares: two requests on two threads would read each other's. Each resolver here
    # keeps its own (the local server gives each concurrent request its own resolver).
    @property
    def current_event(self) -> Any:
        return self.__dict__.get("_current_event")

    @current_event.setter
    def current_event(self, value: Any) -> None:
        self.__dict__["_current_event"] = value

    @property
    def lambda_context(self) -> Any:
        return self.__dict__.get("_lambda_context")

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self.__dict__["_lambda_context"] = value

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        start = time.perf_counter()
        if isinstance(event, dict):
            self.current_event, self.lambda_context = self._to_proxy_event(event), context
        body = event.get("body") if isinstance(event, dict) else None
        refused: RequestRefused | None = None
        if body is not None and len(body) > MAX_BODY_BYTES * (4 / 3 if event.get("isBase64Encoded") else 1):
            refused = RequestRefused(
                413, "payload_too_large", f"request body is larger than {MAX_BODY_BYTES} bytes"
            )
        else:
            try:
                check_body(event)
            except RequestRefused as exc:
                refused = exc
        result = None
        if refused is not None:
            result = error_result(refused.status, refused.code, refused.message)
        elif self.direct is not None and isinstance(event, dict):
            result = self.direct(event)
        if result is None:
            result = super().resolve(event, context)
        result["headers"] = {**(result.get("headers") or {}), **SECURITY_HEADERS}
        status, latency_ms = int(result.get("statusCode", 200)), (time.perf_counter() - start) * 1e3
        served, self.served = self.served, None
        shown = served[1] if served is not None else 0
        if self.metrics is not None:
            self._count(status, latency_ms, served is not None and not shown)
        if self.live_metrics is not None and (served is not None or status >= 500):
            # Recommendation answers and server errors count for the release guard (recsys.release_guard).
            version = served[0] if served is not None else self.current_version()
            self.live_metrics.record(
                version, status, latency_ms, served is not None and not shown, impressions=shown
            )
        return result

    def current_version(self) -> str | None:
        """The version being served (set by `create_app`; None before a model is loaded)."""
        return None

    def _count(self, status: int, latency_ms: float, empty: bool = False) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        self.metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
        if empty:  # the empty-results alarm (share of empty lists) reads this
            self.metrics.add_metric(name="EmptyResults", unit=MetricUnit.Count, value=1)
        self.metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=latency_ms)
        if status >= 400:
            name = "Errors5xx" if status >= 500 else "Errors4xx"
            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def misfit_message(where: str, errors: list[dict[str, Any]]) -> str:
    """The 500's message for a response that does not fit its route's model (`errors` located within the
    response), logged with the offending fields: a bug on our side, never the client's."""
    fields = "; ".join(
        f"{'.'.join(str(x) for x in e.get('loc', ())) or 'response'} ({e.get('type', 'invalid')})"
        for e in errors[:5]
    )
    log.error("response of %s does not fit its model: %s", where, _describe(errors))
    return f"internal error: the response did not fit its schema: {fields}"


def log_unexpected(exc: Exception) -> None:
    """Log an unexpected error: one traceback per kind of error and interval, not one per request."""
    _bugs.warning(type(exc).__name__, "unhandled error: %s", describe(exc), level=logging.ERROR, exc_info=exc)


def response_model(func: Callable[..., Any]) -> type:
    """The model a route function returns: its return annotation, `Response[Model]` unwrapped."""
    returned = get_type_hints(func)["return"]
    return get_args(returned)[0] if get_origin(returned) is Response else returned


def _documented(func: Callable[..., Any], statuses: tuple[int, ...], errors: tuple[int, ...]) -> dict:
    """OpenAPI responses of a route: its return model for each success status, the error shape for the rest."""
    model = response_model(func)
    docs: dict[int, Any] = {
        s: {"description": model.__name__, "content": {"application/json": {"model": model}}}
        for s in statuses
    }
    # 404: an id with characters the router does not match is no route; 422: Powertools documents one anyway.
    for code in (*errors, 404, 405, 422, 500):
        docs[code] = {"description": _ERRORS[code], "content": {"application/json": {"model": ErrorResponse}}}
    return docs


def create_app(service: RecommendationService, metrics: Any | None = None) -> ApiResolver:
    """The resolver over `service` with every route and error mapping (requests and responses validated).

    The Lambda handler builds one at cold start; the local server builds one per concurrent request slot
    (a resolver holds its current request), all over the same service.
    """
    app = ApiResolver(metrics, getattr(service, "live_metrics", None), enable_validation=True)
    if hasattr(service, "models"):
        app.current_version = lambda: service.models.status().get("version")  # type: ignore[method-assign]

    def route(
        method: str,
        path: str,
        *,
        status: int = 200,
        also: tuple[int, ...] = (),
        errors: tuple[int, ...] = (),
        **kw,
    ):
        """Register a route whose return annotation is validated (500 when the response does not fit it)."""

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            return app.route(
                path,
                method=method,
                status_code=status,
                responses=_documented(func, (status, *also), errors),
                custom_response_validation_http_code=500,
                **kw,
            )(func)

        return register

    @route("GET", "/health", also=(503,), summary="Service status and the state of each dependency")
    def health() -> Response[HealthResponse]:
        data = service.health()
        status = 503 if data["status"] == "unhealthy" else 200
        if not service.settings.is_local and not key_matches(
            service.settings, presented_key(app.current_event.headers)
        ):  # on AWS /health is public (load balancers): details only for callers with the API key
            data = {k: data[k] for k in ("status", "model_version")}
        return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=data)

    @route(
        "GET",
        "/recommendations/<user_id>",
        errors=(403, 422, 503),
        summary="Top-k recommendations for a user",
    )
    def recommendations(
        user_id: UserId,
        k: Annotated[int, Query(ge=1, le=MAX_K, description="How many items")] = DEFAULT_K,
        category: Annotated[
            str | None, Query(min_length=1, max_length=64, description="Only this category")
        ] = None,
        exclude_watched: Annotated[bool, Query(description="Leave out what the user watched")] = True,
    ) -> RecommendationResponse:
        response = service.recommend(user_id, k=k, category=category, exclude_watched=exclude_watched)
        if isinstance(response, dict):  # anything else fails its response model next (a 500)
            note_served(response)
        return response

    def note_served(response: dict[str, Any]) -> None:
        """Keep (version, items shown) of a recommendation answer for the resolver's metrics."""
        items = response.get("items")
        app.served = (str(response.get("model_version")), len(items) if isinstance(items, list) else 0)

    def recommendations_directly(event: dict[str, Any]) -> dict[str, Any] | None:
        """`recommendations` for a plainly valid request (`recsys.serving.direct_route`), else None: the same
        service call, the same error answers and the same response model, without the resolver's routing."""
        query = recommendation_query(event)
        if query is None:
            return None
        try:
            response = service.recommend(
                query.user_id, k=query.k, category=query.category, exclude_watched=query.exclude_watched
            )
            body = RecommendationResponse.model_validate(response).model_dump_json()
        except RecsysError as exc:
            return error_result(_STATUS.get(exc.code, 500), exc.code.value, exc.message)
        except ValidationError as exc:
            return error_result(
                500, "internal", misfit_message(f"GET {event.get('path')}", list(exc.errors()))
            )
        except Exception as exc:
            log_unexpected(exc)
            return error_result(500, "internal", "internal error")
        note_served(response)
        headers = {"Content-Type": content_types.APPLICATION_JSON}
        return {"statusCode": 200, "headers": headers, "body": body, "isBase64Encoded": False}

    app.direct = recommendations_directly

    @route(
        "GET",
        "/cached/<user_id>",
        errors=(403, 404, 422, 503),
        summary="Precomputed recommendations (batch job) for a user",
    )
    def cached(user_id: UserId) -> CachedRecommendations:
        return service.cached(user_id)

    @route(
        "POST",
        "/interactions",
        status=202,
        errors=(400, 403, 413, 415, 422, 503),
        summary="Record an interaction (202; the event goes onto the stream)",
    )
    def interactions(event: InteractionEvent) -> InteractionAccepted:
        record = service.record_interaction(event)
        return InteractionAccepted(event_id=record["event_id"])

    register_web_routes(app, service, route, lambda: openapi_json(app))

    @route(
        "DELETE",
        "/users/<user_id>",
        errors=(403, 422, 503),
        summary="Erase a user's activity, features, cached recommendations and tracking (operators only)",
    )
    def forget(user_id: UserId) -> UserForgotten:
        if not key_matches(service.settings, presented_key(app.current_event.headers), OPERATOR_KEY):
            raise RequestRefused(
                403, "forbidden", f"an operator key ({OPERATOR_KEY}) in x-api-key is required"
            )
        return service.forget(user_id)

    @route(
        "POST",
        "/videos",
        status=201,
        errors=(400, 409, 413, 422, 503),
        summary="Add a video to the live catalogue",
    )
    def add_video(video: VideoIn) -> VideoChange:
        return VideoChange(**service.add_video(video))

    @route("DELETE", "/videos/<video_id>", errors=(404, 422), summary="Remove a video from every answer now")
    def remove_video(video_id: UserId) -> VideoChange:
        return VideoChange(**service.remove_video(video_id))

    @app.exception_handler(ResponseValidationError)
    def bad_response(exc: ResponseValidationError) -> Response:
        # A route returned something its model rejects: a bug on our side, never the client's.
        where = f"{app.current_event.http_method} {app.current_event.path}"
        errors = [{**e, "loc": tuple(e.get("loc", ()))[1:]} for e in exc.errors()]  # without "response"
        return error_response(500, "internal", misfit_message(where, errors))

    @app.exception_handler(RequestValidationError)
    def invalid(exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "the request body is not valid JSON")
        return error_response(422, "validation", _describe(errors))

    @app.exception_handler(RecsysError)
    def expected(exc: RecsysError) -> Response:
        return error_response(_STATUS.get(exc.code, 500), exc.code.value, exc.message)

    @app.exception_handler(RequestRefused)
    def refused(exc: RequestRefused) -> Response:
        return error_response(exc.status, exc.code, exc.message)

    @app.not_found
    def not_found(exc: Exception) -> Response:
        path = app.current_event.path or ""
        method = (app.current_event.http_method or "").upper()
        allowed = next((methods for pattern, methods in _ROUTES if pattern.match(path)), None)
        if allowed is not None and method not in allowed:
            resp = error_response(405, "method_not_allowed", f"{method} is not allowed on {path}")
            resp.headers["Allow"] = ", ".join(sorted(allowed))
            return resp
        return error_response(404, "not_found", f"no route {method} {path}")

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response:
        log_unexpected(exc)
        return error_response(500, "internal", "internal error")

    return app


def openapi_json(app: APIGatewayRestResolver) -> str:
    """The OpenAPI description of the API (what `/openapi.json` of the local server returns).

    Powertools' own validation-error schemas are left out (every error is `ErrorResponse`), and each 503
    documents its Retry-After header.
    """
    spec = json.loads(
        app.get_openapi_json_schema(title=API_TITLE, version="1", description=__doc__.split("\n")[0])
    )
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            unavailable = operation.get("responses", {}).get("503")
            if unavailable is not None and "ErrorResponse" in json.dumps(unavailable):
                unavailable["headers"] = {
                    "Retry-After": {
                        "description": "Seconds to wait before retrying",
                        "schema": {"type": "integer"},
                    }
                }
    text = json.dumps({k: v for k, v in spec.items() if k != "components"})
    schemas = spec.get("components", {}).get("schemas", {})
    referenced = {name for name in schemas if f"#/components/schemas/{name}" in text}
    while True:  # schemas referenced from the referenced ones
        more = {
            name
            for name in schemas
            if name not in referenced
            and any(f"#/components/schemas/{name}" in json.dumps(schemas[r]) for r in referenced)
        }
        if not more:
            break
        referenced |= more
    if schemas:
        spec["components"]["schemas"] = {k: v for k, v in schemas.items() if k in referenced}
    return json.dumps(spec)
