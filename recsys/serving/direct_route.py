"""The plainly valid forms of the API's hot request, `GET /recommendations/{user_id}`, read without Powertools.

Powertools' resolver spends about 0.5 ms of CPU on each request (route matching, the validation middleware's
per-parameter pydantic fields, its JSON encoder), more than a cache hit costs itself. `recommendation_query`
reads the request when every part of it is in a form whose meaning is beyond doubt (a user id of the route's
pattern, `k` as plain decimal digits in range, a category of 1..64 characters, `exclude_watched` as
true/false/1/0, each parameter at most once, no other parameter), and returns None for anything else, which
the resolver then routes and validates as before (the same answers, the same errors). The caller still
validates the response against its model (`recsys.serving.api`); a test sends requests both ways and
compares the answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from recsys.serving.schemas import DEFAULT_K, MAX_K

# The route `/recommendations/<user_id>` with the `UserId` path pattern of recsys.serving.api.
_PATH = re.compile(r"/recommendations/([A-Za-z0-9_.:@-]{1,128})")
_DIGITS = re.compile(r"[1-9][0-9]{0,2}")
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
_PARAMETERS = frozenset({"k", "category", "exclude_watched"})
MAX_CATEGORY = 64


@dataclass(frozen=True)
class RecommendationQuery:
    """One `GET /recommendations/{user_id}` request, read."""

    user_id: str
    k: int = DEFAULT_K
    category: str | None = None
    exclude_watched: bool = True


def recommendation_query(event: dict[str, Any]) -> RecommendationQuery | None:
    """The request of a REST (v1) proxy `event` when it is a plainly valid recommendations request, else None."""
    if event.get("httpMethod") != "GET":
        return None
    path = event.get("path")
    if not isinstance(path, str):
        return None
    found = _PATH.fullmatch(path)
    if found is None:
        return None
    single = event.get("queryStringParameters") or {}
    multi = event.get("multiValueQueryStringParameters") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict) or not single.keys() <= _PARAMETERS:
        return None
    for name, value in multi.items():  # a parameter given twice (or in one form only) goes the long way
        if name not in single or not isinstance(value, list) or value != [single[name]]:
            return None
    if len(multi) != len(single) and multi:
        return None
    k, category, exclude = single.get("k"), single.get("category"), single.get("exclude_watched")
    if k is not None and not (isinstance(k, str) and _DIGITS.fullmatch(k) and int(k) <= MAX_K):
        return None
    if category is not None and not (isinstance(category, str) and 1 <= len(category) <= MAX_CATEGORY):
        return None
    if exclude is not None and not (isinstance(exclude, str) and exclude in _BOOLEANS):
        return None
    return RecommendationQuery(
        user_id=found.group(1),
        k=int(k) if k is not None else DEFAULT_K,
        category=category,
        exclude_watched=_BOOLEANS[exclude] if exclude is not None else True,
    )
