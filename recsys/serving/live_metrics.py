"""Live serving counters per model version and minute, shared by every server worker and instance.

Each response adds to in-process counters (no I/O on the request path); a background thread adds them to the
`serving_metrics` table every `flush_interval_s` with DynamoDB's atomic ADD, so any number of workers, local
server processes or Lambda instances sum into the same items. The release guard reads them back
(`read_signals`): requests, 5xx answers, empty lists, latency as a histogram from which p99 is taken, and
click-through: the items shown (`impressions`, counted by serving) and the items engaged with through a
recommendation (`engaged`, counted by the stream processor when it applies the event, `count_engaged`).
"""

from __future__ import annotations

import atexit
import bisect
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from recsys.aws import client

if TYPE_CHECKING:
    from recsys.config import Settings

log = logging.getLogger(__name__)

LATENCY_BOUNDS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)  # then one open bucket
COUNTERS = ("requests", "errors_5xx", "empty", "impressions", "engaged")
TTL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class LiveSignals:
    """What users got from one model version over a time window."""

    version: str
    requests: int
    errors_5xx: int
    empty: int
    p99_ms: float | None
    impressions: int = 0
    engaged: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors_5xx / self.requests if self.requests else 0.0

    @property
    def empty_share(self) -> float:
        return self.empty / self.requests if self.requests else 0.0


def latency_bucket(latency_ms: float) -> int:
    """Index of the histogram bucket of one latency."""
    return bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)


def p99_from_histogram(counts: list[int]) -> float | None:
    """The 99th percentile as the upper bound of its bucket (None without requests; inf past the last bound)."""
    total = sum(counts)
    if not total:
        return None
    seen = 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= 0.99 * total:
            return float(LATENCY_BOUNDS_MS[i]) if i < len(LATENCY_BOUNDS_MS) else float("inf")
    return float("inf")


class LiveMetrics:
    """Counts responses in memory and adds them to the serving-metrics table in the background."""

    def __init__(self, settings: Settings, flush_interval_s: float = 5.0, background: bool = True) -> None:
        self.settings = settings
        self.table = settings.names.table("serving_metrics")
        self.flush_interval_s = flush_interval_s
        self._background = background
        self._counts: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._failing_since: float | None = None

    def record(
        self, version: str | None, status: int, latency_ms: float, empty: bool, impressions: int = 0
    ) -> None:
        """Count one response and the items it showed (O(1), no I/O)."""
        key = (version or "none", int(time.time() // 60))
        with self._lock:
            bucket = self._counts[key]
            bucket["requests"] += 1
            bucket["errors_5xx"] += int(status >= 500)
            bucket["empty"] += int(empty)
            bucket[f"lat_{latency_bucket(latency_ms)}"] += 1
            if impressions:
                bucket["impressions"] += int(impressions)
        if self._background and self._thread is None:
            self._start()

    def count_engaged(self, version: str, items: int, at_s: float | None = None) -> None:
        """Count `items` shown by `version` that a user engaged with (the stream processor calls it)."""
        if items <= 0:
            return
        key = (version or "none", int((time.time() if at_s is None else at_s) // 60))
        with self._lock:
            self._counts[key]["engaged"] += int(items)
        if self._background and self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="live-metrics", daemon=True)
            self._thread.start()
        atexit.register(self.flush)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()

    def flush(self) -> int:
        """Add the counted responses to the table; returns how many items were written."""
        with self._lock:
            pending, self._counts = self._counts, defaultdict(lambda: defaultdict(int))
        written = 0
        ddb = client("dynamodb", self.settings)
        for (version, minute), counts in pending.items():
            names = {f"#{k}": k for k in counts}
            values = {f":{k}": {"N": str(v)} for k, v in counts.items()}
            values[":ttl"] = {"N": str(minute * 60 + TTL_S)}
            try:
                ddb.update_item(
                    TableName=self.table,
                    Key={"model_version": {"S": version}, "minute": {"N": str(minute)}},
                    UpdateExpression="ADD "
                    + ", ".join(f"#{k} :{k}" for k in counts)
                    + " SET expires_at = :ttl",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
                written += 1
            except Exception as exc:  # live metrics never fail serving; say so once per interval
                now = time.monotonic()
                if self._failing_since is None or now - self._failing_since > 60:
                    self._failing_since = now
                    log.warning("serving metrics not written (%s); counts of this interval are dropped", exc)
        return written

    def close(self) -> None:
        self._stop.set()
        self.flush()


def read_signals(
    settings: Settings, version: str, since_epoch_s: float, until_epoch_s: float | None = None
) -> LiveSignals:
    """The counters of `version` summed from the minute of `since_epoch_s` on (before the minute of
    `until_epoch_s` when given)."""
    ddb = client("dynamodb", settings)
    values = {":v": {"S": version}, ":m": {"N": str(int(since_epoch_s // 60))}}
    condition = "model_version = :v AND #m >= :m"
    if until_epoch_s is not None:
        last = int(until_epoch_s // 60) - 1
        if last < int(since_epoch_s // 60):
            return LiveSignals(version, 0, 0, 0, None)
        condition = "model_version = :v AND #m BETWEEN :m AND :u"
        values[":u"] = {"N": str(last)}
    kwargs: dict[str, Any] = {
        "TableName": settings.names.table("serving_metrics"),
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": {"#m": "minute"},
        "ExpressionAttributeValues": values,
        "ConsistentRead": True,
    }
    totals: dict[str, int] = defaultdict(int)
    while True:
        response = ddb.query(**kwargs)
        for item in response.get("Items", []):
            for name, value in item.items():
                if name in COUNTERS or name.startswith("lat_"):
                    totals[name] += int(value["N"])
        if not response.get("LastEvaluatedKey"):
            break
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    histogram = [totals.get(f"lat_{i}", 0) for i in range(len(LATENCY_BOUNDS_MS) + 1)]
    return LiveSignals(
        version=version,
        requests=totals.get("requests", 0),
        errors_5xx=totals.get("errors_5xx", 0),
        empty=totals.get("empty", 0),
        p99_ms=p99_from_histogram(histogram),
        impressions=totals.get("impressions", 0),
        engaged=totals.get("engaged", 0),
    )
