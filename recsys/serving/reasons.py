"""Why an item is shown, from the source that brought it (one sentence per item, never one for all).

- item-item and recent-activity neighbours: "because you watched <the watched video with the largest
  neighbour weight to it>";
- two-tower: "because you watched <the watched video whose embedding is closest>" when one is close,
  else "matches your interest in <category>" or "recommended for you";
- popularity and the popular fill-up: "new in <category>" (uploaded in the last NEW_DAYS days),
  "popular in <category> this week" (trending), else "popular in <category>".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from recsys.serving.model_store import ServingModel

UNKNOWN_CATEGORY = "unknown"  # preprocessing's category for videos without one
NEW_DAYS = 7
ANCHORS = 50  # the user's latest watched videos a reason may name
TRENDING_MIN = 0.2


def _in(cat: str) -> str:
    return "" if cat in ("", UNKNOWN_CATEGORY) else f" in {cat}"


def popular_reason(model: ServingModel, row: int, now_ts: float) -> str:
    """Reason of a popular or trending item."""
    cat = str(model.category[row])
    if now_ts - float(model.upload_ts[row]) <= NEW_DAYS * 86_400:
        return f"new{_in(cat)}"
    if float(model.trending[row]) >= TRENDING_MIN:
        return f"popular{_in(cat)} this week"
    return f"popular{_in(cat)}"


def reason(
    model: ServingModel, row: int, source: str, history: np.ndarray, preferred: list[str], now_ts: float
) -> str:
    """The sentence for one item brought by `source` ("two_tower", "item_item", "recent", "popularity",
    or the fill-up's "popular" / "trending")."""
    anchors = np.asarray(history, dtype=np.int64)[-ANCHORS:]
    if source in ("item_item", "recent") and anchors.size:
        nearest = model.catalogue.neighbours.nearest(anchors[::-1], row)
        if nearest is not None:
            return f"because you watched {model.video_ids[nearest]}"
    if source in ("two_tower", "item_item", "recent"):
        if anchors.size:
            sims = model.video_embeddings[anchors] @ model.video_embeddings[row]
            best = int(np.argmax(sims))
            if sims[best] > 0:
                return f"because you watched {model.video_ids[anchors[best]]}"
        cat = str(model.category[row])
        return f"matches your interest{_in(cat)}" if cat in preferred and _in(cat) else "recommended for you"
    return popular_reason(model, row, now_ts)
