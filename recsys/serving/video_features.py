"""The ranker's video features in process: one array per column, aligned with the catalogue rows.

Video features change at deployment, not per request, so each model version keeps them as arrays
(popularity, interaction count, watch ratio, duration, upload time, category code). A row is read from the
online store the first time a request needs it (or all rows at once when the catalogue is small) and
again after `ttl_s`; a request then gathers its candidates' features with one fancy index, without a
dict per candidate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from recsys.features import _num

NUMERIC = ("popularity", "interaction_count", "avg_watch_ratio", "duration", "upload_ts")
# What a video item must hold for the ranker (not the embedding: serving has it from the bundle).
RANKER_VIDEO_ATTRIBUTES = ("category", *NUMERIC)
WARM_CHUNK = 2_000


class VideoFeatureTable:
    """Ranker video columns of one model version, filled from `fetch(video_ids) -> items` on demand."""

    def __init__(
        self,
        version: str,
        video_ids: np.ndarray,
        categories: Sequence[str],
        fetch: Callable[[list[str]], list[dict[str, Any] | None]],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.version = version
        self.video_ids = video_ids
        self.fetch = fetch
        self.on_error = on_error  # None: a failed read raises
        self.ttl_s = ttl_s
        self._clock = clock
        n = int(video_ids.shape[0])
        self.columns: dict[str, np.ndarray] = {c: np.zeros(n) for c in NUMERIC}
        self.columns["upload_ts"][:] = np.nan
        self.category_code = np.full(n, -1, dtype=np.int64)
        self.category_names: list[str] = list(categories)
        self.category_index: dict[str, int] = {c: i for i, c in enumerate(self.category_names)}
        self.fresh_until = np.full(n, -np.inf)
        self._lock = threading.Lock()

    def _code(self, category: Any) -> int:
        if category is None:
            return -1
        name = str(category)
        code = self.category_index.get(name)
        if code is None:  # a category the bundle did not know: extend the index
            with self._lock:
                code = self.category_index.setdefault(name, len(self.category_names))
                if code == len(self.category_names):
                    self.category_names.append(name)
        return code

    def _load(self, rows: np.ndarray) -> None:
        try:
            items = self.fetch(self.video_ids[rows].tolist())
        except Exception as exc:
            if self.on_error is None:
                raise
            self.on_error(exc)  # the rows keep what they held and are read again next time
            return
        now = self._clock()
        for row, item in zip(rows.tolist(), items, strict=True):  # only rows read from the store
            item = item or {}
            self.columns["popularity"][row] = _num(item.get("popularity"), 0.0)
            self.columns["interaction_count"][row] = _num(item.get("interaction_count"), 0.0)
            self.columns["avg_watch_ratio"][row] = _num(item.get("avg_watch_ratio"), 0.0)
            self.columns["duration"][row] = _num(item.get("duration"), 0.0)
            self.columns["upload_ts"][row] = _num(item.get("upload_ts"), np.nan)
            self.category_code[row] = self._code(item.get("category")) if item else -1
        self.fresh_until[rows] = now + self.ttl_s

    def ensure(self, rows: np.ndarray) -> None:
        """Read the rows that are missing or older than `ttl_s` (one batched read for all of them)."""
        rows = np.asarray(rows, dtype=np.int64)
        stale = rows[self.fresh_until[rows] <= self._clock()]
        if stale.shape[0]:
            self._load(np.unique(stale))

    def warm(self) -> None:
        """Read every row (small catalogues, once per version)."""
        for start in range(0, self.video_ids.shape[0], WARM_CHUNK):
            self.ensure(np.arange(start, min(start + WARM_CHUNK, self.video_ids.shape[0])))

    def gather(self, rows: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The numeric columns and category codes of `rows` (call `ensure` first)."""
        return {c: v[rows] for c, v in self.columns.items()}, self.category_code[rows]
