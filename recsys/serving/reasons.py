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
    from recsys.ranking.candidates import NeighbourHits
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


def reasons(
    model: ServingModel,
    rows: np.ndarray,
    sources: list[str],
    history: np.ndarray,
    preferred: list[str],
    now_ts: float,
    hits: NeighbourHits | None = None,
) -> list[str]:
    """The sentence for each item `rows[i]` brought by `sources[i]` ("two_tower", "item_item", "recent",
    "popularity", or the fill-up's "popular" / "trending"); the anchors' lookups done once for all items.
    `hits`: the neighbour entries of this `history` that the candidate step read (else read again here)."""
    rows = np.asarray(rows, dtype=np.int64)
    history = np.asarray(history, dtype=np.int64)
    anchors = history[-ANCHORS:]
    out: list[str | None] = [None] * rows.size
    if anchors.size:
        by_neighbours = [i for i, s in enumerate(sources) if s in ("item_item", "recent")]
        if by_neighbours:
            if hits is not None:  # the candidate step's entries: an index into the history
                at = hits.nearest(rows[by_neighbours], first_owner=history.size - anchors.size)
                nearest = np.where(at >= 0, history[np.maximum(at, 0)], -1)
            else:
                nearest = model.catalogue.neighbours.nearest(anchors[::-1], rows[by_neighbours])
            for i, a in zip(by_neighbours, nearest.tolist(), strict=True):
                if a >= 0:
                    out[i] = f"because you watched {model.video_ids[a]}"
    personal = [
        i for i, s in enumerate(sources) if s in ("two_tower", "item_item", "recent") and out[i] is None
    ]
    if personal and anchors.size:  # the watched video whose embedding is closest, when one is close
        sims = model.video_embeddings[rows[personal]] @ model.video_embeddings[anchors].T
        best = sims.argmax(axis=1)
        close = sims[np.arange(len(personal)), best] > 0
        for i, b, ok in zip(personal, best.tolist(), close.tolist(), strict=True):
            if ok:
                out[i] = f"because you watched {model.video_ids[anchors[b]]}"
    for i in personal:
        if out[i] is None:
            cat = str(model.category[rows[i]])
            out[i] = (
                f"matches your interest{_in(cat)}" if cat in preferred and _in(cat) else "recommended for you"
            )
    return [
        popular_reason(model, int(r), now_ts) if o is None else o
        for r, o in zip(rows.tolist(), out, strict=True)
    ]
