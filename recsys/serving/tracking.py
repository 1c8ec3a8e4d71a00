"""Inference tracking: every served recommendation and its items, written in batches off the hot path.

`record()` only appends to an in-memory queue; a daemon thread writes the queue to the inference
tracking table with BatchWriteItem. While items keep coming it writes full batches only (25 items, the most
one call takes); what is left is written when no batch has filled for `flush_interval_s`, so an item waits
at most that long. (Draining the whole queue at every wake-up wrote batches of 6.6 items on average under
load: items queued while the previous write was in flight went out in a call of their own, and each call
costs the API and the store a fixed amount, whatever it carries.) In a Lambda the thread runs while the
instance is thawed; `flush()` drains the queue synchronously (batch jobs, shutdown, tests). A failed write
is logged and dropped after retries: tracking never fails a request.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from recsys.aws import bulk_client
from recsys.feature_store.online import BATCH_WRITE_SIZE, serialize_item
from recsys.serving.item_lists import ITEMS_JSON, items_text, stored_items
from recsys.serving.resilience import ThrottledLog, describe

if TYPE_CHECKING:
    from recsys.config import Settings

log = logging.getLogger(__name__)
_throttled = ThrottledLog(log)

TRACKING_TTL_S = 90 * 24 * 3600
DEFAULT_FLUSH_INTERVAL_S = 1.0
MAX_QUEUE = 10_000


def tracking_item(
    recommendation_id: str,
    user_id: str,
    model_version: str | None,
    source: str,
    items: list[dict[str, Any]],
    request: dict[str, Any],
    timestamp: float,
    variant: str = "production",
) -> dict[str, Any]:
    """The inference tracking table item of one response (`variant`: production or canary).

    What was shown is one compact JSON attribute (`recsys.serving.item_lists`); `video_ids` holds the same
    videos as a string set, which the stream processor and the quality monitor read."""
    return {
        "recommendation_id": recommendation_id,
        "user_id": user_id,
        "timestamp": int(timestamp * 1000),  # epoch ms: the user-index range key
        "variant": variant,
        "model_version": model_version or "none",
        "source": source,
        ITEMS_JSON: items_text([_shown(i) for i in items]),
        # A string set (a list before): one stored value for the emulator to hold, not one per video.
        "video_ids": {i["video_id"] for i in items},
        "request": request,
        "expires_at": int(timestamp) + TRACKING_TTL_S,
    }


def _shown(item: dict[str, Any]) -> dict[str, Any]:
    """What the tracking item keeps of one answered item: video, rank, score, and its source when it has one."""
    shown = {"video_id": item["video_id"], "rank": item["rank"], "score": item["score"]}
    if item.get("source"):
        shown["source"] = item["source"]
    return shown


def shown_items(item: dict[str, Any]) -> list[dict[str, Any]]:
    """What a tracked response showed (the JSON attribute, or the list of maps that older versions wrote);
    an unreadable value reads as nothing shown."""
    try:
        shown = stored_items(item)
    except ValueError:
        return []
    return [i for i in shown if isinstance(i, dict)]


class InferenceTracker:
    """Queues tracking items and writes them in batches from a background thread."""

    def __init__(
        self, settings: Settings, flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S, background: bool = True
    ) -> None:
        self.settings = settings
        self.table = settings.names.table("inference_tracking")
        self.flush_interval_s = flush_interval_s
        self._queue: deque[dict[str, Any]] = deque(maxlen=MAX_QUEUE)
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._background = background
        self.written = 0
        self.dropped = 0

    def record(self, item: dict[str, Any]) -> None:
        """Queue one tracking item (O(1), no I/O)."""
        self._queue.append(item)
        if self._background and self._thread is None:
            self._start()
        if len(self._queue) >= BATCH_WRITE_SIZE:
            self._wake.set()

    def _start(self) -> None:
        with self._flush_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="inference-tracker", daemon=True)
                self._thread.start()
                atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            filled = self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                # a batch filled: write the full ones and let the rest wait for more; else write what is queued
                self.flush(full_batches_only=filled)
            except Exception as exc:  # never let the thread die
                _throttled.warning("flush", "inference tracking flush failed: %s", describe(exc))

    def pending(self) -> int:
        """Items queued and not yet written."""
        return len(self._queue)

    def flush(self, full_batches_only: bool = False) -> int:
        """Write everything queued now (`full_batches_only`: only while a full batch is queued, leaving the
        rest queued); returns how many items were written."""
        written = 0
        least = BATCH_WRITE_SIZE if full_batches_only else 1
        with self._flush_lock:
            ddb = bulk_client("dynamodb", self.settings)  # builds every request itself
            while len(self._queue) >= least:
                batch = []
                while self._queue and len(batch) < BATCH_WRITE_SIZE:
                    batch.append(self._queue.popleft())
                request = {self.table: [{"PutRequest": {"Item": serialize_item(i)}} for i in batch]}
                for attempt in range(5):
                    try:
                        response = ddb.batch_write_item(RequestItems=request)
                    except Exception as exc:
                        _throttled.warning("write", "inference tracking write failed: %s", describe(exc))
                        time.sleep(0.1 * 2**attempt)
                        continue
                    request = response.get("UnprocessedItems") or {}
                    if not request:
                        break
                    time.sleep(0.05 * 2**attempt)
                left = len(request.get(self.table, [])) if request else 0
                self.dropped += left
                written += len(batch) - left
        self.written += written
        return written
