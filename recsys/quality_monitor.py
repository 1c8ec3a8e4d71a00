"""Quality and drift of what is served, over time: one point a day and one after each deployment.

From the inference tracking items and the user activity of a window (default: the last 24 hours), compared
with the window before it:
- `catalog_coverage`: distinct served videos / videos in the production catalogue (0..1);
- `gini_served`: concentration of served items over the catalogue (0 = even, 1 = one item only);
- `cold_start_share`: responses for users the model does not know (source popular or trending, 0..1);
- `fallback_share`: served items that came from the popularity fill-up, not a model source (0..1);
- `ctr`: engaged impressions / impressions, where the event path marks engagement (0..1);
- `event_mix_drift`: Jensen-Shannon distance between this window's and the previous window's event types (0..1);
- `activity_drift`: events per active user now / in the previous window (1 = unchanged).

Points go to CloudWatch (namespace `RecSys/Quality`, dimension `Environment`), on AWS and on the local stack
alike (the local stack's emulator keeps them while it runs); `recsys monitor report` charts them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from boto3.dynamodb.types import TypeDeserializer

from recsys.aws import client
from recsys.serving.tracking import shown_items

if TYPE_CHECKING:
    from recsys.config import Settings

NAMESPACE = "RecSys/Quality"
METRICS = (
    "catalog_coverage",
    "gini_served",
    "cold_start_share",
    "fallback_share",
    "ctr",
    "event_mix_drift",
    "activity_drift",
)
COLD_START_SOURCES = ("popular", "trending")
MAX_SCANNED = 200_000  # items read per window and table: a bounded job (at scale, the daily feedback files)
_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class QualityPoint:
    """The quality of one window; None where the window has no data for a metric."""

    at: float
    window_s: int
    responses: int
    catalog_coverage: float | None
    gini_served: float | None
    cold_start_share: float | None
    fallback_share: float | None
    ctr: float | None
    event_mix_drift: float | None
    activity_drift: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 = even, -> 1 = concentrated on one)."""
    values = np.sort(np.asarray(counts, dtype=np.float64))
    n = values.size
    if n == 0 or values.sum() == 0:
        return 0.0
    index = np.arange(1, n + 1)
    return float((2 * (index * values).sum()) / (n * values.sum()) - (n + 1) / n)


def js_distance(p: Counter, q: Counter) -> float | None:
    """Jensen-Shannon distance (base 2, 0..1) between two count distributions; None if either is empty."""
    keys = sorted(set(p) | set(q))
    a = np.array([p.get(k, 0) for k in keys], dtype=np.float64)
    b = np.array([q.get(k, 0) for k in keys], dtype=np.float64)
    if a.sum() == 0 or b.sum() == 0:
        return None
    a, b = a / a.sum(), b / b.sum()
    m = (a + b) / 2

    def kl(x: np.ndarray, y: np.ndarray) -> float:
        mask = x > 0
        return float((x[mask] * np.log2(x[mask] / y[mask])).sum())

    return math.sqrt(max(0.0, (kl(a, m) + kl(b, m)) / 2))


def _scan(
    settings: Settings, table: str, start_ms: int, end_ms: int, attribute: str, in_seconds: bool
) -> list[dict]:
    """Items of a table whose time attribute is in [start, end) (a filtered scan, bounded)."""
    ddb = client("dynamodb", settings)
    low, high = (start_ms / 1000, end_ms / 1000) if in_seconds else (start_ms, end_ms)
    kwargs: dict[str, Any] = {
        "TableName": settings.names.table(table),
        "FilterExpression": "#t >= :lo AND #t < :hi",
        "ExpressionAttributeNames": {"#t": attribute},
        "ExpressionAttributeValues": {":lo": {"N": repr(low)}, ":hi": {"N": repr(high)}},
    }
    found: list[dict] = []
    while len(found) < MAX_SCANNED:
        response = ddb.scan(**kwargs)
        found.extend(
            {k: _deserializer.deserialize(v) for k, v in i.items()} for i in response.get("Items", [])
        )
        if not response.get("LastEvaluatedKey"):
            break
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return found[:MAX_SCANNED]


def compute(
    settings: Settings, catalog_size: int, *, now_s: float, window_s: int = 24 * 3600
) -> QualityPoint:
    """The quality point of the window ending at `now_s` (compared with the window before it)."""
    end_ms = int(now_s * 1000)
    start_ms = end_ms - window_s * 1000
    responses = _scan(settings, "inference_tracking", start_ms, end_ms, "timestamp", in_seconds=False)
    served: Counter = Counter()
    cold = fallback = items_total = impressions = engaged = 0
    for r in responses:
        ids = [str(v) for v in r.get("video_ids") or []]
        served.update(ids)
        cold += r.get("source") in COLD_START_SOURCES
        for item in shown_items(r):
            items_total += 1
            fallback += item.get("source") == "popular" and r.get("source") not in COLD_START_SOURCES
        impressions += len(ids)
        engaged += len(r.get("engaged_video_ids") or [])
    counts = np.zeros(max(catalog_size, len(served)), dtype=np.float64)
    counts[: len(served)] = list(served.values())
    now_events = _scan(settings, "user_activity", start_ms, end_ms, "timestamp", in_seconds=True)
    before = _scan(
        settings, "user_activity", start_ms - window_s * 1000, start_ms, "timestamp", in_seconds=True
    )

    def per_user(events: list[dict]) -> float | None:
        users = {e.get("user_id") for e in events}
        return len(events) / len(users) if users else None

    now_rate, before_rate = per_user(now_events), per_user(before)
    n = len(responses)
    return QualityPoint(
        at=now_s,
        window_s=window_s,
        responses=n,
        catalog_coverage=len(served) / catalog_size if n and catalog_size else None,
        gini_served=gini(counts) if n else None,
        cold_start_share=cold / n if n else None,
        fallback_share=fallback / items_total if items_total else None,
        ctr=engaged / impressions if impressions else None,
        event_mix_drift=js_distance(
            Counter(str(e.get("event_type")) for e in now_events),
            Counter(str(e.get("event_type")) for e in before),
        ),
        activity_drift=now_rate / before_rate if now_rate is not None and before_rate else None,
    )


def publish(settings: Settings, point: QualityPoint) -> int:
    """Put the point's metrics into CloudWatch; returns how many values were sent."""
    stamp = datetime.fromtimestamp(point.at, UTC)
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": "Environment", "Value": settings.env}],
            "Timestamp": stamp,
            "Value": float(value),
            "Unit": "None",
        }
        for name in METRICS
        if (value := getattr(point, name)) is not None
    ]
    if data:
        client("cloudwatch", settings).put_metric_data(Namespace=NAMESPACE, MetricData=data)
    return len(data)


# CloudWatch keeps 1-minute points for 15 days, 5-minute for 63 and hourly for 455; a chart needs a few hundred.
_PERIODS_S = (60, 300, 900, 3600, 6 * 3600, 86400)
_MOST_POINTS = 360


def chart_period_s(span_s: float) -> int:
    """The shortest CloudWatch period that charts `span_s` in at most a few hundred points (the monitor
    publishes a point a day and one per deployment, so nothing is lost by averaging within a period)."""
    return next((p for p in _PERIODS_S if span_s / p <= _MOST_POINTS), _PERIODS_S[-1])


def history(settings: Settings, *, now_s: float, days: int = 30) -> dict[str, list[tuple[float, float]]]:
    """Every metric's points of the last `days` days, oldest first: {metric: [(epoch_s, value), ...]}."""
    cw = client("cloudwatch", settings)
    period = chart_period_s(days * 86400)
    queries = [
        {
            "Id": f"m{i}",
            "Label": name,
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": name,
                    "Dimensions": [{"Name": "Environment", "Value": settings.env}],
                },
                "Period": period,
                "Stat": "Average",
            },
        }
        for i, name in enumerate(METRICS)
    ]
    response = cw.get_metric_data(
        MetricDataQueries=queries,
        StartTime=datetime.fromtimestamp(now_s - days * 86400, UTC),
        EndTime=datetime.fromtimestamp(now_s + 60, UTC),
    )
    series: dict[str, list[tuple[float, float]]] = {name: [] for name in METRICS}
    for result in response.get("MetricDataResults", []):
        points = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
        series[result["Label"]] = sorted((t.timestamp(), float(v)) for t, v in points)
    return series


def catalog_size(settings: Settings) -> int:
    """Videos in the online catalogue (a counting scan of the video features table)."""
    ddb = client("dynamodb", settings)
    kwargs: dict[str, Any] = {"TableName": settings.names.table("video_features"), "Select": "COUNT"}
    total = 0
    while True:
        response = ddb.scan(**kwargs)
        total += int(response.get("Count", 0))
        if not response.get("LastEvaluatedKey"):
            return total
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def run(settings: Settings, *, now_s: float, window_s: int = 24 * 3600) -> QualityPoint:
    """Compute the window's point and publish it (what the daily schedule and each deployment run)."""
    point = compute(settings, catalog_size(settings), now_s=now_s, window_s=window_s)
    publish(settings, point)
    return point
