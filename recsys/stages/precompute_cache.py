"""PrecomputeCache, the step after Deployment: recommendations of the new production version for GET /cached.

`run(event)` loads the production model (as serving does), and, when it is the version just deployed, fills
the recommendations cache table with `recsys.serving.batch.fill_cache` (blocks of users, one retrieval call per
block, the API's rules) for every user the model knows, or the `max_users` most active ones (the longest
training histories) where a run must fit the function's time limit. When production has already moved on to
another version it stores nothing ("skipped"): those answers would be stale at once.

Input: `{"version", "k"?, "max_users"?}`. Output: `{"version", "status", "users", "k", "seconds"}`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from recsys.config import Settings


def run(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Fill the precomputed recommendations of the deployed version (see the module docstring)."""
    from recsys.serving.batch import fill_cache
    from recsys.serving.service import RecommendationService
    from recsys.serving.tracking import InferenceTracker

    started = time.monotonic()
    version, k = str(event["version"]), int(event.get("k") or 20)
    service = RecommendationService(settings, tracker=InferenceTracker(settings, background=False))
    service.models.refresh(force=True)
    model = service.models.current()
    if model.version != version:
        return {"version": version, "status": "skipped", "users": 0, "k": k, "seconds": 0.0,
                "production_version": model.version}  # fmt: skip
    users = model.user_ids
    if event.get("max_users") and int(event["max_users"]) < users.shape[0]:
        activity = np.diff(model.history_offsets)
        users = users[np.argsort(-activity, kind="stable")[: int(event["max_users"])]]
    written = fill_cache(service, users.tolist(), k=k)
    return {"version": version, "status": "filled", "users": written, "k": k,
            "seconds": round(time.monotonic() - started, 3)}  # fmt: skip
