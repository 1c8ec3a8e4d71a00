"""S3 reads and writes of the stages' artifacts (Parquet, JSON, .npz) through the shared client factory."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import polars as pl

from recsys.aws import client
from recsys.config import Settings
from recsys.errors import NotFoundError, ValidationError


def put_bytes(settings: Settings, bucket: str, key: str, body: bytes, content_type: str) -> str:
    """Write one object; returns its key."""
    client("s3", settings).put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    return key


def get_bytes(settings: Settings, bucket: str, key: str) -> bytes:
    """Read one object; a missing key is a NotFoundError naming it."""
    s3 = client("s3", settings)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise NotFoundError(
            f"s3://{bucket}/{key} does not exist", hint="run the stage that writes it first"
        ) from None


def put_json(settings: Settings, bucket: str, key: str, data: Any) -> str:
    """Write `data` as indented JSON."""
    body = json.dumps(data, indent=2, sort_keys=True, default=_default).encode()
    return put_bytes(settings, bucket, key, body, "application/json")


def get_json(settings: Settings, bucket: str, key: str) -> Any:
    """Read a JSON object."""
    return json.loads(get_bytes(settings, bucket, key))


def put_parquet(settings: Settings, bucket: str, key: str, df: pl.DataFrame) -> str:
    """Write a DataFrame as Parquet (zstd)."""
    buf = io.BytesIO()
    df.write_parquet(buf, compression="zstd")
    return put_bytes(settings, bucket, key, buf.getvalue(), "application/vnd.apache.parquet")


def get_parquet(settings: Settings, bucket: str, key: str) -> pl.DataFrame:
    """Read a Parquet object; a corrupt file is a ValidationError naming it."""
    body = get_bytes(settings, bucket, key)
    try:
        return pl.read_parquet(io.BytesIO(body))
    except Exception as exc:  # polars raises several error types for corrupt files
        raise ValidationError(f"s3://{bucket}/{key} is not a readable Parquet file: {exc}") from None


def put_npz(settings: Settings, bucket: str, key: str, **arrays: np.ndarray) -> str:
    """Write arrays as a compressed .npz (no pickled objects: strings are stored as unicode arrays)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return put_bytes(settings, bucket, key, buf.getvalue(), "application/octet-stream")


def get_npz(settings: Settings, bucket: str, key: str) -> dict[str, np.ndarray]:
    """Read every array of an .npz object."""
    with np.load(io.BytesIO(get_bytes(settings, bucket, key)), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
