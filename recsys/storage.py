"""S3 reads and writes shared by the pipeline stages, deployment, serving and the feedback merge.

Objects are encrypted by the buckets' default encryption (KMS on AWS), so no call here names a key.
polars is imported only by the Parquet helpers: the serving Lambda imports this module without it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from botocore.exceptions import ClientError

from recsys.aws import client
from recsys.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    import polars as pl

    from recsys.config import Settings

_MISSING = ("NoSuchKey", "404", "NoSuchBucket", "NotFound")


def put_bytes(
    settings: Settings, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream"
) -> str:
    """Write one object; returns its key."""
    client("s3", settings).put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    return key


def get_bytes(settings: Settings, bucket: str, key: str) -> bytes:
    """Read one object; a missing object is a NotFoundError naming it."""
    try:
        return client("s3", settings).get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            raise NotFoundError(
                f"s3://{bucket}/{key} does not exist", hint="run the step that writes it first"
            ) from None
        raise


def get_bytes_if_exists(settings: Settings, bucket: str, key: str) -> bytes | None:
    """The bytes of s3://bucket/key, or None when the object does not exist (a missing bucket still raises)."""
    try:
        return client("s3", settings).get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise


def exists(settings: Settings, bucket: str, key: str) -> bool:
    """True when s3://bucket/key exists."""
    try:
        client("s3", settings).head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            return False
        raise


def put_json(settings: Settings, bucket: str, key: str, data: Any) -> str:
    """Write `data` as indented JSON (numpy scalars and arrays allowed)."""
    body = json.dumps(data, indent=2, sort_keys=True, default=_json_default).encode()
    return put_bytes(settings, bucket, key, body, "application/json")


def get_json(settings: Settings, bucket: str, key: str) -> Any:
    """Read a JSON document."""
    return json.loads(get_bytes(settings, bucket, key))


def put_parquet(settings: Settings, bucket: str, key: str, frame: pl.DataFrame) -> str:
    """Write a DataFrame as Parquet (zstd)."""
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd")
    return put_bytes(settings, bucket, key, buf.getvalue(), "application/vnd.apache.parquet")


def get_parquet(settings: Settings, bucket: str, key: str) -> pl.DataFrame:
    """Read a Parquet object; a corrupt file is a ValidationError naming it."""
    import polars as pl

    body = get_bytes(settings, bucket, key)
    try:
        return pl.read_parquet(io.BytesIO(body))
    except Exception as exc:  # polars raises several error types for corrupt files
        raise ValidationError(f"s3://{bucket}/{key} is not a readable Parquet file: {exc}") from None


def put_npz(settings: Settings, bucket: str, key: str, **arrays: np.ndarray) -> str:
    """Write arrays as a compressed .npz (no pickled objects: strings are stored as unicode arrays)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return put_bytes(settings, bucket, key, buf.getvalue())


def get_npz(settings: Settings, bucket: str, key: str) -> dict[str, np.ndarray]:
    """Read every array of an .npz object."""
    with np.load(io.BytesIO(get_bytes(settings, bucket, key)), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def list_keys(settings: Settings, bucket: str, prefix: str) -> Iterator[str]:
    """Every key under `prefix`, in S3's (lexicographic) order."""
    paginator = client("s3", settings).get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield obj["Key"]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
