"""One cached factory for AWS clients.

For `local` the clients point at the local endpoint through localstack-client (a moto server that
`recsys local up` starts, or a user's LocalStack); otherwise plain boto3 in the settings' region.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.parsers import ResponseParserFactory
from botocore.utils import parse_timestamp

from recsys.config import Settings
from recsys.dynamodb_wire import WireFormSerializer, table_names_resolver

_LOCAL_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
_BOTO_CONFIG = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=60)
# The request path (an API call waits on it): short timeouts, one retry, so a dead dependency costs ~2 s at most
# on AWS. The local emulator is one Python process sharing the machine's cores: it gets 5 s to answer.
_REQUEST_CONFIG = Config(
    retries={"max_attempts": 2, "mode": "standard"},
    connect_timeout=0.5,
    read_timeout=1.5,
    max_pool_connections=32,
)
_LOCAL_REQUEST_CONFIG = _REQUEST_CONFIG.merge(Config(connect_timeout=1.0, read_timeout=5.0))
# Bulk writers that build every request themselves (the stream processor): botocore's client-side parameter
# validation walks each attribute value of each item, a sixth of the processor's time; the service validates
# every request again.
_BULK_CONFIG = _BOTO_CONFIG.merge(Config(parameter_validation=False))
_clients: dict[tuple[str, str, str | None, str, str], Any] = {}
_lock = threading.Lock()


def parse_response_timestamp(value: Any) -> datetime:
    """A timestamp of an AWS answer as an aware datetime: epoch seconds (every JSON protocol: Kinesis, DynamoDB)
    in UTC directly, anything else as botocore parses it.

    botocore gives epoch seconds the machine's local zone through dateutil's `tzlocal`, whose conversion runs in
    Python: each record that GetRecords returns carries one (`ApproximateArrivalTimestamp`), about a twentieth
    of the events worker's CPU. The instant is the same either way."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass  # out of the platform's range: botocore has a fallback for that
    return parse_timestamp(value)


def _parsers() -> ResponseParserFactory:
    """A response parser factory of the client's own (the session's is shared by every client of boto3's
    default session), reading timestamps with `parse_response_timestamp`."""
    factory = ResponseParserFactory()
    factory.set_parser_defaults(timestamp_parser=parse_response_timestamp)
    return factory


def localstack_host(endpoint_url: str) -> str:
    """`http://127.0.0.1:4566` -> `127.0.0.1:4566`, the form localstack-client takes."""
    parsed = urlparse(endpoint_url)
    return f"{parsed.hostname}:{parsed.port or 4566}"


def _build(service: str, settings: Settings, config: Config = _BOTO_CONFIG) -> Any:
    if settings.is_local:
        from localstack_client.session import Session

        session = Session(
            region_name=settings.region,
            localstack_host=localstack_host(settings.aws_endpoint_url or ""),
            **_LOCAL_CREDENTIALS,
        )
        built = session.client(service, config=config)
    else:
        built = boto3.session.Session(region_name=settings.region).client(service, config=config)
    built._endpoint._response_parser_factory = _parsers()
    return built


def client(service: str, settings: Settings) -> Any:
    """A boto3 client for `service`, built once per (service, env, endpoint, region)."""
    return _cached(service, settings, "default")


def bulk_client(service: str, settings: Settings) -> Any:
    """A client for code that builds its own requests (the stream processor, inference tracking): no
    client-side validation; for DynamoDB, item requests written as JSON directly (`recsys.dynamodb_wire`)."""
    return _cached(service, settings, "bulk")


def request_client(service: str, settings: Settings) -> Any:
    """A client for the API's request path: 0.5 s to connect, 1.5 s to read, one retry (1 s / 5 s locally)."""
    return _cached(service, settings, "request")


def _cached(service: str, settings: Settings, kind: str) -> Any:
    key = (service, settings.env, settings.aws_endpoint_url, settings.region, kind)
    with _lock:
        found = _clients.get(key)
        if found is None:
            config = _BOTO_CONFIG
            if kind == "request":
                config = _LOCAL_REQUEST_CONFIG if settings.is_local else _REQUEST_CONFIG
            elif kind == "bulk":
                config = _BULK_CONFIG
            found = _build(service, settings, config)
            if kind == "bulk" and service == "dynamodb":  # its callers send items in DynamoDB's wire form
                found._serializer = WireFormSerializer(found._serializer)
                table_names_resolver(found._ruleset_resolver)
            _clients[key] = found
        return found


def reset_clients() -> None:
    """Drop every cached client (tests, or after the local endpoint moved)."""
    with _lock:
        _clients.clear()
