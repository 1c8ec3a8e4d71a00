"""The query vector of a user: the trained embedding blended with the videos of their recent activity.

Both parts are unit-normalised before blending, so `activity_weight` is the share of the direction that
comes from recent activity. Recent events are weighted by type and decay with recency (newest first), so
that a few new interactions move the recommendations at once. A user unknown to the model gets the
activity part alone; a user with neither gets None (cold start).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# How much an event says about what the user wants; 0 drops it (a skip is not a preference).
EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0, "click": 1.0, "watch": 1.0, "complete": 1.5, "like": 2.0, "share": 2.0, "skip": 0.0,
    "dislike": 0.0,
}  # fmt: skip
DEFAULT_ACTIVITY_WEIGHT = 0.6
DEFAULT_RECENCY_DECAY = 0.85


@dataclass(frozen=True)
class UserVector:
    """The query vector and which parts it came from."""

    vector: np.ndarray
    from_model: bool
    from_activity: bool


def event_weights(events: Sequence[dict[str, Any]], decay: float = DEFAULT_RECENCY_DECAY) -> np.ndarray:
    """Weight of each event (newest first): type weight times `decay ** position`."""
    types = [EVENT_WEIGHTS.get(str(e.get("event_type", "view")), 1.0) for e in events]
    return np.asarray(types, dtype=np.float64) * decay ** np.arange(len(events))


def _norm(v: np.ndarray) -> float:
    return math.sqrt(float(v @ v))


def _unit(v: np.ndarray) -> np.ndarray | None:
    norm = _norm(v)
    return None if norm == 0.0 or not math.isfinite(norm) else v / norm


def blend_user_vector(
    user_embedding: np.ndarray | None,
    activity_embeddings: np.ndarray,
    activity_weights: np.ndarray,
    activity_weight: float = DEFAULT_ACTIVITY_WEIGHT,
) -> UserVector | None:
    """Blend the trained embedding with the weighted mean of recent activity; None when neither exists."""
    act = None
    total = float(np.add.reduce(activity_weights)) if activity_embeddings.shape[0] else 0.0
    if total > 0:  # the weighted mean's direction (the mean itself is unit-normalised)
        act = _unit(activity_weights @ activity_embeddings.astype(np.float64))
    base = _unit(user_embedding) if user_embedding is not None else None
    if base is None and act is None:
        return None
    scale = _norm(user_embedding) if base is not None and user_embedding is not None else 1.0
    if base is None:
        vec = act
    elif act is None:
        vec = base
    else:
        vec = (1.0 - activity_weight) * base + activity_weight * act
    return UserVector((vec * scale).astype(np.float32), base is not None, act is not None)
