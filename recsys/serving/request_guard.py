"""What the API checks before a route sees a request body: media type, JSON that the stores can hold, shape.

Powertools parses bodies with Python's `json`, which accepts `NaN`/`Infinity`, raises on integers of more
than 4,300 digits and recurses on nesting; each would be a 500 or a value no store can keep. Here a body is
parsed once, strictly, and refused with a 4xx in the API's error shape when it is not one JSON object.
"""

from __future__ import annotations

import base64
import json
from typing import Any

MAX_DEPTH = 16
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class RequestRefused(Exception):
    """A request refused (its body, or its key): the status, the error code and the message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def header(event: dict[str, Any], name: str) -> str | None:
    """A request header of a proxy event, case-insensitively."""
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == wanted:
            return value
    return None


def is_json_media_type(content_type: str) -> bool:
    """`application/json`, parameters (charset) allowed."""
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON (iterative: no recursion on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def _raw_depth(text: str) -> int:
    """The deepest bracket nesting of a JSON text, strings skipped (checked before parsing it)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def check_body(event: dict[str, Any]) -> None:
    """Raise RequestRefused when a POST/PUT/PATCH body is not one JSON object the API could store."""
    if (event.get("httpMethod") or "").upper() not in BODY_METHODS:
        return
    body = event.get("body")
    content_type = header(event, "content-type")
    if content_type is not None and not is_json_media_type(content_type):
        raise RequestRefused(
            415,
            "unsupported_media_type",
            "send the body as application/json (Content-Type: application/json)",
        )
    if not body:
        return
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body).decode("utf-8")
        except ValueError:
            raise RequestRefused(400, "malformed_json", "the request body is not UTF-8 JSON") from None
    if _raw_depth(body) > MAX_DEPTH:
        raise RequestRefused(
            400, "malformed_json", f"the request body is nested deeper than {MAX_DEPTH} levels"
        )
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        reason = str(exc).split(":")[0] if "digits" in str(exc) or "allows" in str(exc) else "not valid JSON"
        raise RequestRefused(
            400, "malformed_json", f"the request body is not valid JSON ({reason})"
        ) from None
    if _depth(payload) > MAX_DEPTH:  # pragma: no cover - _raw_depth bounds it already
        raise RequestRefused(
            400, "malformed_json", f"the request body is nested deeper than {MAX_DEPTH} levels"
        )
    if not isinstance(payload, dict):
        raise RequestRefused(
            422, "validation", f"the request body must be a JSON object, not {type(payload).__name__}"
        )
