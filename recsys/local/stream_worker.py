"""`recsys events worker`: the local stand-in for the stream's two AWS consumers.

On AWS the events stream has two readers: the event source mapping, which hands the event processor Lambda
batches of records, and Firehose, which writes the raw events to S3. moto runs neither, so locally one
process does both, for every shard, each consumer with its own checkpoint:

- `processor`: the records as the event source mapping delivers them (a Kinesis event with base64 data,
  sequence numbers and `eventID = shardId:sequence`) to `recsys.event_processing.handle_kinesis_event`, the
  Lambda's own code; after a partial batch failure the next batch starts at the first failed record.
- `firehose`: one gzip object per batch in Firehose's layout (`recsys.raw_events`: arrival date and hour
  partitions, one JSON event per line), named after the shard and the batch's first sequence number.

A checkpoint moves only after its batch is fully handled, and both consumers are idempotent (the processor
by event id, the delivery by object key), so a worker killed at any point and started again loses nothing
and applies nothing twice. Checkpoints live in `<home>/stream-worker/checkpoints.json`, keyed by the
stream's ARN and creation time, so a new local stack starts from the beginning of its new stream.

`run` keeps what the worker holds for good (its clients' service descriptions, the processor's users'
items) out of Python's cyclic collector (`recsys.heap`): once at the start, then after each pass that
handled records (`drain`, which `--once` and the benchmarks use: after each batch). Without it a full
collection walked ~160,000 objects once per few thousand events.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys import raw_events
from recsys.aws import client
from recsys.event_processing import EventApplier, UserItemCache, handle_kinesis_event
from recsys.heap import freeze_long_lived

if TYPE_CHECKING:
    from recsys.config import Settings

log = logging.getLogger(__name__)

CONSUMERS = ("firehose", "processor")
DEFAULT_BATCH_SIZE = 1000
CHECKPOINT_FILE = "checkpoints.json"


class Checkpoints:
    """The last handled sequence number of each (consumer, shard), in a JSON file replaced atomically."""

    def __init__(self, directory: Path, scope: str) -> None:
        self.path = directory / CHECKPOINT_FILE
        self.scope = scope
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def get(self, consumer: str, shard: str) -> str | None:
        """The checkpoint, or None when the consumer never handled a record of the shard."""
        return self._read().get(self.scope, {}).get(consumer, {}).get(shard)

    def set(self, consumer: str, shard: str, sequence: str) -> None:
        """Record that every record up to `sequence` is handled (written to disk before it returns)."""
        with self._lock:
            data = self._read()
            data = {self.scope: data.get(self.scope, {})}  # forget the checkpoints of older streams
            data[self.scope].setdefault(consumer, {})[shard] = sequence
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("w") as fh:
                fh.write(json.dumps(data))
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(self.path)

    def all(self) -> dict[str, dict[str, str]]:
        """Every checkpoint of the current stream."""
        return self._read().get(self.scope, {})


@dataclass
class WorkerStats:
    """What a worker did so far."""

    delivered: int = 0  # records written to S3
    objects: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    failed_batches: int = 0
    batches: int = 0
    fetch_s: float = 0.0  # seconds spent reading the stream
    handle_s: float = 0.0  # seconds spent handling what was read (both consumers)
    started: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        counts = {k: v for k, v in self.__dict__.items() if k not in ("started", "fetch_s", "handle_s")}
        return counts | {
            "fetch_s": round(self.fetch_s, 3),
            "handle_s": round(self.handle_s, 3),
            "seconds": round(time.time() - self.started, 3),
        }


def _arrival(record: dict[str, Any]) -> float:
    value = record.get("ApproximateArrivalTimestamp")
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value) if value is not None else time.time()


def kinesis_event(stream_arn: str, shard: str, records: list[dict[str, Any]], region: str) -> dict[str, Any]:
    """The event the event source mapping would hand the Lambda for these GetRecords records."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(r["Data"]).decode(),
                    "approximateArrivalTimestamp": _arrival(r),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard}:{r['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/local-event-processor",
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            }
            for r in records
        ]
    }


class StreamWorker:
    """Reads every shard of the events stream and runs both consumers (see the module docstring)."""

    def __init__(
        self, settings: Settings, batch_size: int = DEFAULT_BATCH_SIZE, applier: EventApplier | None = None
    ):
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

        self.settings = settings
        self.batch_size = int(batch_size)
        self.kinesis = client("kinesis", settings)
        self.stream = settings.names.streams["events"]
        summary = self.kinesis.describe_stream_summary(StreamName=self.stream)["StreamDescriptionSummary"]
        self.stream_arn = summary["StreamARN"]
        created = summary.get("StreamCreationTimestamp")
        created_s = created.timestamp() if isinstance(created, datetime) else created
        self.checkpoints = Checkpoints(settings.home / "stream-worker", f"{self.stream_arn}@{created_s}")
        if applier is None:
            from recsys.serving.cache import RecommendationCache

            # The one processor of every shard: it keeps its users' items between batches.
            applier = EventApplier(settings, cache=RecommendationCache(settings), user_items=UserItemCache())
        self.applier = applier
        self.processor = BatchProcessor(event_type=EventType.KinesisDataStreams)
        self.stats = WorkerStats()

    def shards(self) -> list[str]:
        """Every shard of the stream."""
        shards: list[str] = []
        kwargs: dict[str, Any] = {"StreamName": self.stream}
        while True:
            page = self.kinesis.list_shards(**kwargs)
            shards += [s["ShardId"] for s in page.get("Shards", [])]
            if not page.get("NextToken"):
                return shards
            kwargs = {"NextToken": page["NextToken"]}

    def _fetch(self, shard: str, after: str | None) -> list[dict[str, Any]]:
        if after is None:
            it = self.kinesis.get_shard_iterator(
                StreamName=self.stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
            )
        else:
            it = self.kinesis.get_shard_iterator(
                StreamName=self.stream,
                ShardId=shard,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                StartingSequenceNumber=after,
            )
        return self.kinesis.get_records(ShardIterator=it["ShardIterator"], Limit=self.batch_size).get(
            "Records", []
        )

    def consume(self, consumer: str, shard: str) -> int:
        """One batch of `shard` for `consumer` ("processor" or "firehose"), from its checkpoint: handled, then
        checkpointed. The records handled: up to the first that failed (read again next time), 0 when none
        are new."""
        if consumer not in CONSUMERS:
            raise ValueError(f"unknown consumer {consumer!r}: one of {', '.join(CONSUMERS)}")
        asked = time.perf_counter()
        records = self._fetch(shard, self.checkpoints.get(consumer, shard))
        fetched = time.perf_counter()
        self.stats.fetch_s += fetched - asked
        if not records:
            return 0
        done = self._deliver(shard, records) if consumer == "firehose" else self._process(shard, records)
        self.stats.handle_s += time.perf_counter() - fetched
        if done is None:
            return 0
        self.checkpoints.set(consumer, shard, done)
        return next(i for i, r in enumerate(records, start=1) if r["SequenceNumber"] == done)

    def poll_once(self) -> int:
        """One pass over every shard and consumer (a batch each); returns how many records were handled."""
        return sum(self.consume(consumer, shard) for shard in self.shards() for consumer in CONSUMERS)

    def drain(self, consumers: tuple[str, ...] = CONSUMERS) -> int:
        """Handle, batch by batch, every record that `consumers` have not handled yet, keeping what the
        batches leave for good out of the collector as `run` does; how many records were handled. A batch
        that fails as a whole stays for the next call."""
        handled = 0
        for shard in self.shards():
            for consumer in consumers:
                while done := self.consume(consumer, shard):
                    handled += done
                    freeze_long_lived()
        return handled

    def _deliver(self, shard: str, records: list[dict[str, Any]]) -> str:
        first = records[0]
        key = raw_events.object_key(self.settings, _arrival(first), f"{shard}-{first['SequenceNumber']}")
        raw_events.put_object(self.settings, key, [r["Data"] for r in records])
        self.stats.delivered += len(records)
        self.stats.objects += 1
        return records[-1]["SequenceNumber"]

    def _process(self, shard: str, records: list[dict[str, Any]]) -> str | None:
        """Hand the batch to the Lambda's code; the sequence number to checkpoint (None: nothing done)."""
        from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

        event = kinesis_event(self.stream_arn, shard, records, self.settings.region)
        self.stats.batches += 1
        try:
            response = handle_kinesis_event(event, self.applier, self.processor)
        except BatchProcessingError as exc:
            self.stats.failed_batches += 1
            log.warning("no record of a batch of %d could be applied: %s", len(records), exc)
            return None
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        last_done = None
        for r in records:
            if r["SequenceNumber"] in failed:
                self.stats.failed_batches += 1
                break
            last_done = r["SequenceNumber"]
        result = self.applier.last_result
        if result is not None:
            self.stats.applied += len(result.applied)
            self.stats.duplicates += result.duplicates
            self.stats.dead_letters += result.dead_letters
        return last_done

    def run(
        self, stop: threading.Event | None = None, idle_s: float = 0.2, max_idle_s: float = 1.0
    ) -> WorkerStats:
        """Poll until `stop` is set (SIGTERM in `recsys events worker`); waits longer while the stream is idle."""
        stop = stop or threading.Event()
        wait = idle_s
        freeze_long_lived(full=True)
        while not stop.is_set():
            try:
                busy = self.poll_once() > 0
            except Exception as exc:  # the endpoint restarts, a table is being created: keep going
                log.warning("stream worker pass failed: %s", exc)
                busy = False
            if busy:
                freeze_long_lived()  # the users' items the pass kept (see the module docstring)
            wait = idle_s if busy else min(wait * 2, max_idle_s)
            if not busy:
                stop.wait(wait)
        return self.stats

    def lag(self) -> dict[str, dict[str, int]]:
        """Records not yet handled, per consumer and shard."""
        out: dict[str, dict[str, int]] = {c: {} for c in CONSUMERS}
        for shard in self.shards():
            for consumer in CONSUMERS:
                out[consumer][shard] = len(self._fetch_all(shard, self.checkpoints.get(consumer, shard)))
        return out

    def _fetch_all(self, shard: str, after: str | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            batch = self._fetch(shard, after)
            if not batch:
                return out
            out += batch
            after = batch[-1]["SequenceNumber"]
