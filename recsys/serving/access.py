"""API keys of the `{stack}/api-keys` secret: who may call (`recsys serve --require-key`, as API Gateway
checks its usage plan's key), who sees `/health` in detail on AWS, and who may erase a user's data."""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Any

from recsys.secrets import api_key
from recsys.serving.resilience import ThrottledLog, describe

if TYPE_CHECKING:
    from recsys.config import Settings

log = logging.getLogger(__name__)
_throttled = ThrottledLog(log)

CLIENT_KEY = "external_api_key"
OPERATOR_KEY = "operator_api_key"
HEADER = "x-api-key"


def presented_key(headers: dict[str, Any] | None) -> str | None:
    """The `x-api-key` header of a request, case-insensitively."""
    for name, value in (headers or {}).items():
        if name.lower() == HEADER:
            return str(value)
    return None


def key_matches(settings: Settings, presented: str | None, key: str = CLIENT_KEY) -> bool:
    """True when `presented` equals the secret's `key` (constant time). An empty or unreadable key
    matches nothing: a route that needs it is closed rather than open."""
    if not presented:
        return False
    try:
        expected = api_key(settings, key)
    except Exception as exc:
        _throttled.warning(key, "API key %s cannot be read, refusing callers: %s", key, describe(exc))
        return False
    return bool(expected) and hmac.compare_digest(expected.encode(), presented.encode())
