"""`recsys events worker | tail | replay`: the events stream, its local worker, and replays from S3."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from recsys.cli.common import OUTPUT, EnvOption, JsonOption, emit, group, info, out_console, settings_for
from recsys.errors import ErrorCode, RecsysError, ValidationError
from recsys.timestamps import epoch_of

events_app = group(
    "Interaction events: the local stream worker, the stream's latest events, replays from S3."
)

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds from ISO-8601 (`2026-11-24T10:00:00Z`, `2026-11-24`), epoch seconds, or an age (`2h`)."""
    now = time.time() if now is None else now
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return epoch_of(value)
    except ValueError:
        raise ValidationError(
            f"cannot read the time {text!r}",
            hint="use ISO-8601 (2026-11-24T10:00:00Z), epoch seconds, or an age (30m, 2h, 7d)",
        ) from None


@events_app.command("worker")
def worker(
    env: EnvOption = "local",
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Records per batch and shard.")] = 1000,
    once: Annotated[
        bool, typer.Option("--once", help="Handle what is on the stream now, then exit.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Read every shard of the local events stream: apply each batch with the event processor Lambda's code and
    deliver the raw events to S3 in Firehose's layout (moto runs neither consumer).

    `recsys local up` starts it in the background and `recsys local down` stops it; run it yourself with
    `--once` to drain the stream. Checkpoints survive a restart; nothing is lost or applied twice.

    **Examples**

        recsys events worker --env local

        recsys events worker --once --json
    """
    settings = settings_for(env)
    if not settings.is_local:
        raise RecsysError(
            "the events worker runs only locally; on AWS the event source mapping and Firehose read the stream",
            hint="use --env local",
            code=ErrorCode.USAGE,
        )
    from recsys.local.stream_worker import StreamWorker

    stream_worker = StreamWorker(settings, batch_size=batch_size)
    if once:
        stream_worker.drain()
        emit(
            stream_worker.stats.to_dict(),
            lambda: info(f"Handled the stream: {stream_worker.stats.to_dict()}"),
        )
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    info(f"Reading {stream_worker.stream} ({len(stream_worker.shards())} shard(s)); Ctrl-C stops.")
    stats = stream_worker.run(stop)
    emit(stats.to_dict(), lambda: info(f"Stopped: {stats.to_dict()}"))


def _stream_events(
    settings: Any, since_ts: float, limit: int | None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    from recsys.aws import client

    kinesis = client("kinesis", settings)
    stream = settings.names.streams["events"]
    events: list[dict[str, Any]] = []
    positions: dict[str, str] = {}
    for shard in kinesis.list_shards(StreamName=stream).get("Shards", []):
        sid = shard["ShardId"]
        it = kinesis.get_shard_iterator(
            StreamName=stream,
            ShardId=sid,
            ShardIteratorType="AT_TIMESTAMP",
            Timestamp=datetime.fromtimestamp(since_ts, UTC),
        )["ShardIterator"]
        for _ in range(1000):
            page = kinesis.get_records(ShardIterator=it, Limit=1000)
            for r in page.get("Records", []):
                positions[sid] = r["SequenceNumber"]
                try:
                    events.append(json.loads(r["Data"]))
                except ValueError:
                    events.append({"malformed": r["Data"][:200].decode(errors="replace")})
            it = page.get("NextShardIterator")
            if not page.get("Records") or not it or page.get("MillisBehindLatest", 0) == 0:
                break
    events.sort(key=lambda e: e.get("received_at") or e.get("timestamp") or 0)
    return (events[-limit:] if limit else events), positions


@events_app.command("tail")
def tail(
    env: EnvOption = "local",
    since: Annotated[
        str, typer.Option("--since", help="How far back to start: an age (10m) or a time.")
    ] = "10m",
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many of the latest events.")] = 20,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", "-f", help="Keep printing new events.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Show the latest events on the stream (one JSON object per line), and with `--follow` the new ones.

    **Examples**

        recsys events tail --env local

        recsys events tail --since 1h --limit 100 --json

        recsys events tail -f
    """
    settings = settings_for(env)
    events, _ = _stream_events(settings, parse_time(since), limit)
    if OUTPUT.json and not follow:
        emit(events)
        return
    for event in events:
        out_console.print_json(json.dumps(event)) if not OUTPUT.json else print(json.dumps(event), flush=True)
    seen = {e.get("event_id") for e in events}
    start = time.time()
    while follow:
        time.sleep(1.0)
        new, _ = _stream_events(settings, start - 5, None)
        for event in new:
            if event.get("event_id") not in seen:
                seen.add(event.get("event_id"))
                print(json.dumps(event), flush=True)


@events_app.command("replay")
def replay(
    env: EnvOption = "local",
    from_: Annotated[
        str, typer.Option("--from", help="Events from this time (event time): ISO-8601, epoch s, or an age.")
    ] = ...,
    to: Annotated[str | None, typer.Option("--to", help="Events before this time.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Apply the raw events collected in S3 again, through the stream processor's code.

    Each event is applied at most once (by event id), so a replay only applies what is missing: events a
    failed processor dropped, or the features after the online store was restored. Dead letters are not replayed.

    **Examples**

        recsys events replay --from 2026-11-24T00:00:00Z --env local

        recsys events replay --from 2h --json
    """
    settings = settings_for(env)
    from recsys import raw_events
    from recsys.event_processing import EventApplier, validate
    from recsys.feature_store.online import ACTIVITY_TTL_S
    from recsys.serving.cache import RecommendationCache

    since_ts = parse_time(from_)
    until_ts = parse_time(to) if to else None
    if since_ts < time.time() - ACTIVITY_TTL_S + 3600:
        raise ValidationError(
            f"events older than {ACTIVITY_TTL_S // 86400} days cannot be replayed exactly once "
            "(their markers, the activity items, have expired)",
            hint="replay from a more recent time, e.g. --from 7d",
        )
    collected = raw_events.read_events(settings, since_ts=since_ts, until_ts=until_ts)
    applier = EventApplier(settings, cache=RecommendationCache(settings))
    totals = {"read": len(collected), "applied": 0, "already_applied": 0, "invalid": 0, "failed": 0}
    valid = []
    for event in collected:
        clean, _ = validate(json.dumps(event).encode())
        if clean is None:
            totals["invalid"] += 1
        else:
            valid.append(clean)
    for start in range(0, len(valid), 1000):
        result = applier.apply_events(valid[start : start + 1000])
        totals["applied"] += len(result.applied)
        totals["already_applied"] += result.duplicates
        totals["failed"] += len(result.failed)
    info(
        f"Replayed {totals['read']} events: {totals['applied']} applied now, {totals['already_applied']} were already applied."
    )
    emit(totals, lambda: None)
