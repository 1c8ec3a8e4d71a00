"""Small S3 helpers shared by the pipeline, deployment, serving and the feedback merge."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from recsys.aws import client
from recsys.errors import NotFoundError

if TYPE_CHECKING:
    import polars as pl

    from recsys.config import Settings


def put_bytes(
    settings: Settings, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream"
) -> None:
    """Write one object (server-side encrypted)."""
    client("s3", settings).put_object(
        Bucket=bucket, Key=key, Body=body, ContentType=content_type, ServerSideEncryption="AES256"
    )


def get_bytes(settings: Settings, bucket: str, key: str) -> bytes:
    """Read one object; a missing object is a NotFoundError naming it."""
    try:
        return client("s3", settings).get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
            raise NotFoundError(
                f"s3://{bucket}/{key} does not exist", hint="run the pipeline first"
            ) from None
        raise


def exists(settings: Settings, bucket: str, key: str) -> bool:
    try:
        client("s3", settings).head_object(Bucket=bucket, Key=key)
        return True
    except ClientError:
        return False


def put_json(settings: Settings, bucket: str, key: str, data: Any) -> None:
    put_bytes(settings, bucket, key, json.dumps(data, indent=2, default=str).encode(), "application/json")


def get_json(settings: Settings, bucket: str, key: str) -> Any:
    return json.loads(get_bytes(settings, bucket, key))


def put_parquet(settings: Settings, bucket: str, key: str, frame: pl.DataFrame) -> None:
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd")
    put_bytes(settings, bucket, key, buf.getvalue())


def get_parquet(settings: Settings, bucket: str, key: str) -> pl.DataFrame:
    import polars as pl

    return pl.read_parquet(io.BytesIO(get_bytes(settings, bucket, key)))


def list_keys(settings: Settings, bucket: str, prefix: str) -> Iterator[str]:
    """Every key under `prefix`, in S3's (lexicographic) order."""
    paginator = client("s3", settings).get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield obj["Key"]
