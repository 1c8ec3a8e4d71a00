"""Secrets from the local Secrets Manager (with TTL caching) and the AWS client factory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from recsys.aws import client, parse_response_timestamp
from recsys.config import load_settings
from recsys.errors import MissingSecretError
from recsys.secrets import SecretStore, api_key, feature_flags, redis_settings


class CountingClient:
    """Wraps a real client and counts get_secret_value calls (the call still reaches the local stack)."""

    def __init__(self, real) -> None:
        self.real = real
        self.calls = 0

    def get_secret_value(self, **kwargs):
        self.calls += 1
        return self.real.get_secret_value(**kwargs)


def test_get_secret_reads_api_keys(local_stack) -> None:
    key = api_key(local_stack, "external_api_key")
    assert isinstance(key, str) and len(key) >= 16


def test_missing_key_names_key_and_secret(local_stack) -> None:
    with pytest.raises(MissingSecretError) as exc:
        api_key(local_stack, "no_such_key")
    assert "no_such_key" in exc.value.message and "VideoRecSystem-local/api-keys" in exc.value.message


def test_missing_secret_is_named(local_stack) -> None:
    store = SecretStore(client("secretsmanager", local_stack))
    with pytest.raises(MissingSecretError) as exc:
        store.get_json("VideoRecSystem-local/does-not-exist")
    assert "VideoRecSystem-local/does-not-exist" in exc.value.message


def test_secrets_are_cached_for_the_ttl(local_stack) -> None:
    now = [0.0]
    counting = CountingClient(client("secretsmanager", local_stack))
    store = SecretStore(counting, ttl_s=60, clock=lambda: now[0])
    name = local_stack.names.secret("config")
    first = store.get_json(name)
    store.get_json(name)
    assert counting.calls == 1
    now[0] = 61.0
    assert store.get_json(name) == first
    assert counting.calls == 2


def test_updated_secret_is_seen_after_ttl(local_stack) -> None:
    sm = client("secretsmanager", local_stack)
    name = "VideoRecSystem-local/ttl-probe"
    sm.create_secret(Name=name, SecretString=json.dumps({"v": 1}))
    now = [0.0]
    store = SecretStore(sm, ttl_s=10, clock=lambda: now[0])
    assert store.get_json(name) == {"v": 1}
    sm.put_secret_value(SecretId=name, SecretString=json.dumps({"v": 2}))
    assert store.get_json(name) == {"v": 1}
    now[0] = 11
    assert store.get_json(name) == {"v": 2}


def test_an_unreachable_secrets_manager_is_not_asked_again_on_every_read(local_stack) -> None:
    from recsys.errors import UnavailableError

    class Down:
        calls = 0

        def get_secret_value(self, **kwargs):
            self.calls += 1
            raise ConnectionError("endpoint unreachable")

    now = [0.0]
    down = Down()
    store = SecretStore(down, ttl_s=60, clock=lambda: now[0], retry_s=5)
    for _ in range(3):  # one attempt answers the reads of the next 5 s
        with pytest.raises(UnavailableError):
            store.get_json("VideoRecSystem-local/config")
    assert down.calls == 1
    now[0] = 6.0
    with pytest.raises(UnavailableError):
        store.get_json("VideoRecSystem-local/config")
    assert down.calls == 2
    # a value read before the outage keeps answering, past its TTL too, and is re-read only once per interval
    working = CountingClient(client("secretsmanager", local_stack))
    store = SecretStore(working, ttl_s=10, clock=lambda: now[0], retry_s=5)
    name = local_stack.names.secret("config")
    value = store.get_json(name)
    store._client, now[0] = down, 30.0
    assert [store.get_json(name) for _ in range(3)] == [value] * 3
    assert down.calls == 3


def test_redis_settings_come_from_the_secret(local_stack) -> None:
    settings = local_stack.model_copy(update={"redis_url_override": None})
    redis = redis_settings(settings)
    assert redis is not None and redis.host == "127.0.0.1"
    assert f":{redis.port}/" in local_stack.redis_url_override


def test_feature_flags_from_config_secret(local_stack) -> None:
    assert "feature_flags" in feature_flags(local_stack)


def test_client_factory_caches_and_points_at_local_endpoint(local_stack) -> None:
    s3 = client("s3", local_stack)
    assert client("s3", local_stack) is s3
    assert s3.meta.endpoint_url == local_stack.aws_endpoint_url.replace("127.0.0.1", "127.0.0.1")
    assert local_stack.names.bucket("models") in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_aws_environments_use_plain_boto3_in_their_region(monkeypatch) -> None:
    monkeypatch.setenv("RECSYS_REGION", "eu-west-1")
    s = load_settings("prod")
    ddb = client("dynamodb", s)
    assert ddb.meta.region_name == "eu-west-1"
    assert "amazonaws.com" in ddb.meta.endpoint_url


def test_answer_timestamps_are_the_instants_aws_sent(local_stack) -> None:
    # epoch seconds (the JSON protocols) straight to UTC; text forms as botocore reads them
    assert parse_response_timestamp(1_700_000_000.25) == datetime(
        2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC
    )
    assert parse_response_timestamp(0).tzinfo is not None
    assert parse_response_timestamp("2024-02-29T12:00:00+02:00") == datetime(
        2024, 2, 29, 12, tzinfo=timezone(timedelta(hours=2))
    )
    assert parse_response_timestamp("1700000000") == datetime.fromtimestamp(1_700_000_000, UTC)
    with pytest.raises(ValueError):
        parse_response_timestamp("not a time")
    # through a client: a stream record's arrival time is aware and within the put's time
    kinesis = client("kinesis", local_stack)
    stream = "recsys-timestamp-test"  # its own stream: the events stream's consumers never see this record
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    before = datetime.now(UTC).replace(microsecond=0)
    put = kinesis.put_record(StreamName=stream, Data=b"{}", PartitionKey="timestamp-test")
    iterator = kinesis.get_shard_iterator(
        StreamName=stream,
        ShardId=put["ShardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=put["SequenceNumber"],
    )["ShardIterator"]
    record = kinesis.get_records(ShardIterator=iterator, Limit=1)["Records"][0]
    kinesis.delete_stream(StreamName=stream)
    arrived = record["ApproximateArrivalTimestamp"]
    assert arrived.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= arrived <= datetime.now(UTC) + timedelta(seconds=1)
