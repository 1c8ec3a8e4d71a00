"""Import real interaction data (CSV or Parquet) as a pipeline input dataset, validated first.

Files are read and validated completely before anything is written; then the tables go to
s3://{data}/datasets/{name}/ and manifest.json is written LAST (an existing dataset's manifest is removed
first when overwriting), so a reader sees either no dataset or a complete one. Columns: see docs/ml.md.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from recsys.config import Settings
from recsys.data import schema as s
from recsys.errors import ConflictError, NotFoundError, ValidationError

MAX_LISTED = 5
PARQUET_MAGIC = b"PAR1"
ALLOWED = {
    "interactions": (s.INTERACTION_REQUIRED, s.INTERACTION_OPTIONAL),
    "videos": ((s.VIDEO_ID,), (s.CATEGORY, s.DURATION, s.UPLOAD_TS)),
    "users": ((s.USER_ID,), ()),
}
_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class ImportResult:
    """What an import wrote (or, with dry_run, would write)."""

    name: str
    manifest: dict[str, Any]
    tables: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False)


def dataset_name_from(path: Path) -> str:
    """A dataset name from a file name: `ratings.csv` -> `ratings`."""
    name = _NAME.sub("-", path.name.split(".")[0]).strip("-._") or "dataset"
    return name[:128]


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    """`["user_id=userId", ...]` -> {"user_id": "userId"}; targets must be documented columns."""
    known = set(s.INTERACTION_COLUMNS) | set(s.VIDEO_COLUMNS) | set(s.USER_COLUMNS)
    out: dict[str, str] = {}
    for pair in pairs or []:
        target, sep, source = pair.partition("=")
        target, source = target.strip(), source.strip()
        if not sep or not target or not source:
            raise ValidationError(
                f"invalid column mapping {pair!r}", hint="use TARGET=SOURCE, e.g. user_id=userId"
            )
        if target not in known:
            raise ValidationError(
                f"unknown target column {target!r} in mapping {pair!r}",
                hint=f"targets: {', '.join(sorted(known))}",
            )
        out[target] = source
    return out


def read_table(path: Path) -> pl.DataFrame:
    """Read a CSV (every column as text, validated later) or Parquet file; clear errors for bad files."""
    if not path.exists():
        raise NotFoundError(f"file {str(path)!r} does not exist")
    if path.is_dir():
        raise ValidationError(f"{str(path)!r} is a directory, not a file")
    head = path.open("rb").read(4)
    if path.stat().st_size == 0:
        raise ValidationError(f"file {path.name!r} is empty")
    is_parquet = head == PARQUET_MAGIC or path.suffix.lower() in (".parquet", ".pq")
    try:
        if is_parquet:
            df = pl.read_parquet(path)
        else:
            separator = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
            df = pl.read_csv(path, infer_schema=False, separator=separator, truncate_ragged_lines=False)
    except Exception as exc:  # polars raises several types for unreadable files
        kind = "Parquet" if is_parquet else "CSV"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValidationError(
            f"file {path.name!r} is not a readable {kind} file: {first}",
            hint="check the file; nothing was imported",
        ) from None
    if df.height == 0:
        raise ValidationError(f"file {path.name!r} has no rows", hint="nothing was imported")
    return df


def _rows(mask: pl.Series) -> str:
    idx = mask.arg_true().head(MAX_LISTED).to_list()
    more = int(mask.sum()) - len(idx)
    text = ", ".join(str(i + 1) for i in idx)  # 1-based data rows (the header is not counted)
    return text + (f" and {more} more" if more > 0 else "")


def _rename(
    df: pl.DataFrame, table: str, mapping: dict[str, str], ignore_unknown: bool, file: str
) -> pl.DataFrame:
    required, optional = ALLOWED[table]
    allowed = set(required) | set(optional)
    renames = {src: dst for dst, src in mapping.items() if dst in allowed and src in df.columns}
    missing_sources = [
        src
        for dst, src in mapping.items()
        if dst in allowed and src not in df.columns and dst not in df.columns
    ]
    df = df.rename(renames)
    missing = [c for c in required if c not in df.columns]
    if missing:
        hint = f"the file has columns: {', '.join(df.columns)}; map yours with --map {missing[0]}=YOUR_COLUMN"
        if missing_sources:
            hint = f"mapped source column(s) {', '.join(missing_sources)} are not in the file; " + hint
        raise ValidationError(f"{file}: missing required column(s) {', '.join(missing)}", hint=hint)
    unknown = [c for c in df.columns if c not in allowed]
    if unknown and not ignore_unknown:
        raise ValidationError(
            f"{file}: unknown column(s) {', '.join(unknown)}",
            hint=f"map them (--map {sorted(allowed)[0]}=COLUMN), or drop them with --ignore-unknown; "
            f"documented columns: {', '.join(sorted(allowed))}",
        )
    return df.drop(unknown)


def _ids(df: pl.DataFrame, column: str, file: str) -> pl.Series:
    col = df[column]
    nulls = col.is_null() | (col.cast(pl.String).str.strip_chars() == "")
    if nulls.any():
        raise ValidationError(
            f"{file}: empty {column} in row(s) {_rows(nulls)}", hint="every row needs an id"
        )
    dtype = col.dtype
    if dtype.is_integer():
        return col.cast(pl.String)
    if dtype.is_float():
        frac = (col != col.floor()) | col.is_nan()
        if frac.any():
            raise ValidationError(
                f"{file}: {column} has non-integer numbers in row(s) {_rows(frac)}",
                hint="ids must be strings or whole numbers",
            )
        return col.cast(pl.Int64).cast(pl.String)
    if dtype != pl.String:
        raise ValidationError(
            f"{file}: {column} has type {dtype}", hint="ids must be strings or whole numbers"
        )
    text = col.str.strip_chars()
    numeric = text.str.contains(r"^[+-]?\d+(\.0+)?$")
    if numeric.any() and not numeric.all():
        raise ValidationError(
            f"{file}: {column} mixes numeric and non-numeric ids ({int(numeric.sum())} numeric, "
            f"{int((~numeric).sum())} not; non-numeric in row(s) {_rows(~numeric)})",
            hint="use one id scheme per column, e.g. prefix numbers consistently",
        )
    if numeric.all():  # "7", "007" and "7.0" are one id
        return text.str.replace(r"\.0+$", "").cast(pl.Int64).cast(pl.String)
    return text


def _numbers(df: pl.DataFrame, column: str, file: str, non_negative: bool) -> pl.Series:
    col = df[column]
    if col.dtype == pl.String:
        text = col.str.strip_chars()
        empty = col.is_null() | (text == "")
        out = text.cast(pl.Float64, strict=False)
        bad = out.is_null() & ~empty
        if bad.any():
            raise ValidationError(f"{file}: {column} is not a number in row(s) {_rows(bad)}")
    elif col.dtype.is_numeric():
        out = col.cast(pl.Float64)
    else:
        raise ValidationError(f"{file}: {column} has type {col.dtype}, expected numbers")
    if non_negative:
        neg = out.fill_null(0) < 0
        if neg.any():
            raise ValidationError(f"{file}: negative {column} in row(s) {_rows(neg)}")
    return out


def _timestamps(df: pl.DataFrame, column: str, file: str) -> pl.Series:
    """Epoch seconds (Int64). Numbers: seconds, or ms / us when larger; text: ISO-8601 date-times."""
    col = df[column]
    if col.dtype == pl.Datetime or isinstance(col.dtype, pl.Datetime):
        return col.dt.epoch("s")
    if col.dtype == pl.Date:
        return col.cast(pl.Datetime("ms")).dt.epoch("s")
    if col.dtype == pl.String:
        text = col.str.strip_chars()
        empty = col.is_null() | (text == "")
        as_num = _scale_epoch(text.cast(pl.Float64, strict=False))
        parsed = text.str.to_datetime(strict=False, time_zone="UTC", time_unit="ms").dt.epoch("s")
        out = as_num.fill_null(parsed)
        bad = out.is_null() & ~empty
        if bad.any():
            raise ValidationError(
                f"{file}: {column} is not a time in row(s) {_rows(bad)}",
                hint="use epoch seconds (or ms) or ISO-8601 (2024-05-01T12:00:00Z)",
            )
        return out
    if col.dtype.is_numeric():
        return _scale_epoch(col.cast(pl.Float64))
    raise ValidationError(f"{file}: {column} has type {col.dtype}, expected a time")


def _scale_epoch(values: pl.Series) -> pl.Series:
    """Per value: seconds, or milliseconds (> 1e11) / microseconds (> 1e14), as epoch seconds."""
    v = pl.col("v")
    scaled = pl.when(v.abs() > 1e14).then(v / 1e6).when(v.abs() > 1e11).then(v / 1e3).otherwise(v)
    return pl.DataFrame({"v": values}).select(scaled.floor().cast(pl.Int64)).to_series()


def validate_interactions(df: pl.DataFrame, file: str) -> pl.DataFrame:
    """Interactions in the documented schema (ids as strings, times as epoch seconds)."""
    cols: dict[str, pl.Series] = {
        s.USER_ID: _ids(df, s.USER_ID, file),
        s.VIDEO_ID: _ids(df, s.VIDEO_ID, file),
    }
    if s.TIMESTAMP in df.columns:
        cols[s.TIMESTAMP] = _timestamps(df, s.TIMESTAMP, file)
    if s.EVENT_TYPE in df.columns:
        cols[s.EVENT_TYPE] = df[s.EVENT_TYPE].cast(pl.String).str.strip_chars().str.to_lowercase()
    if s.WATCH_TIME in df.columns:
        cols[s.WATCH_TIME] = _numbers(df, s.WATCH_TIME, file, non_negative=True)
    if s.WEIGHT in df.columns:
        cols[s.WEIGHT] = _numbers(df, s.WEIGHT, file, non_negative=False)
    return pl.DataFrame([v.alias(k) for k, v in cols.items()])


def validate_videos(df: pl.DataFrame, file: str) -> pl.DataFrame:
    """Video metadata: unique video_id, optional category, duration (s), upload_ts."""
    cols: dict[str, pl.Series] = {s.VIDEO_ID: _ids(df, s.VIDEO_ID, file)}
    if s.CATEGORY in df.columns:
        cols[s.CATEGORY] = df[s.CATEGORY].cast(pl.String).str.strip_chars()
    if s.DURATION in df.columns:
        cols[s.DURATION] = _numbers(df, s.DURATION, file, non_negative=True)
    if s.UPLOAD_TS in df.columns:
        cols[s.UPLOAD_TS] = _timestamps(df, s.UPLOAD_TS, file)
    out = pl.DataFrame([v.alias(k) for k, v in cols.items()])
    _unique(out, s.VIDEO_ID, file)
    return out


def validate_users(df: pl.DataFrame, file: str) -> pl.DataFrame:
    """User list: unique user_id."""
    out = pl.DataFrame([_ids(df, s.USER_ID, file).alias(s.USER_ID)])
    _unique(out, s.USER_ID, file)
    return out


def _unique(df: pl.DataFrame, column: str, file: str) -> None:
    dup = df[column].is_duplicated()
    if dup.any():
        values = df.filter(dup)[column].unique().head(MAX_LISTED).to_list()
        raise ValidationError(
            f"{file}: duplicate {column} {', '.join(values)} (row(s) {_rows(dup)})",
            hint=f"each {column} may appear once in this file",
        )


def prepare(
    interactions: Path,
    videos: Path | None = None,
    users: Path | None = None,
    mapping: dict[str, str] | None = None,
    ignore_unknown: bool = False,
) -> dict[str, pl.DataFrame]:
    """Read and validate every file; returns the tables to write (nothing is written here)."""
    mapping = mapping or {}
    tables: dict[str, pl.DataFrame] = {}
    validators = {"interactions": validate_interactions, "videos": validate_videos, "users": validate_users}
    for table, path in (("interactions", interactions), ("videos", videos), ("users", users)):
        if path is None:
            continue
        df = _rename(read_table(path), table, mapping, ignore_unknown, path.name)
        tables[table] = validators[table](df, path.name)
    return tables


def summarize(tables: dict[str, pl.DataFrame]) -> dict[str, Any]:
    """Facts for the manifest and the CLI (row counts, users, videos, time coverage, event types)."""
    inter = tables["interactions"]
    stats: dict[str, Any] = {
        "interactions": inter.height,
        "users": inter[s.USER_ID].n_unique(),
        "videos": inter[s.VIDEO_ID].n_unique(),
        "has_timestamps": s.TIMESTAMP in inter.columns and inter[s.TIMESTAMP].null_count() < inter.height,
        "missing_timestamps": int(inter[s.TIMESTAMP].null_count())
        if s.TIMESTAMP in inter.columns
        else inter.height,
    }
    if s.EVENT_TYPE in inter.columns:
        counts = inter[s.EVENT_TYPE].value_counts().sort("count", descending=True)
        stats["event_types"] = {str(k): int(v) for k, v in counts.iter_rows()}
        unknown = [k for k in stats["event_types"] if k not in s.EVENT_TYPES]
        if unknown:
            stats["warnings"] = [
                f"event types {', '.join(map(str, unknown))} are not in {', '.join(s.EVENT_TYPES)}: "
                "they get config.weights.default_event_weight"
            ]
    if "videos" in tables:
        known = set(tables["videos"][s.VIDEO_ID].to_list())
        stats["videos_in_metadata"] = len(known)
        stats["interaction_videos_without_metadata"] = int(
            (~inter[s.VIDEO_ID].unique().is_in(list(known))).sum()
        )
    if stats["users"] < 2:
        stats.setdefault("warnings", []).append(
            "only one user: preprocessing needs at least 2 users to train"
        )
    return stats


def import_dataset(
    settings: Settings,
    name: str,
    interactions: Path,
    videos: Path | None = None,
    users: Path | None = None,
    mapping: dict[str, str] | None = None,
    ignore_unknown: bool = False,
    overwrite: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Validate the files, then write the dataset (manifest last). `dry_run` validates only."""
    from recsys.aws import client
    from recsys.data.datasets import MANIFEST, dataset_prefix
    from recsys.storage import put_bytes, put_json

    prefix = dataset_prefix(name)
    tables = prepare(interactions, videos, users, mapping, ignore_unknown)
    stats = summarize(tables)
    bucket = settings.names.bucket("data")
    manifest: dict[str, Any] = {
        "name": name,
        "format_version": 1,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sources": {
            t: p.name for t, p in (("interactions", interactions), ("videos", videos), ("users", users)) if p
        },
        "mapping": mapping or {},
        "files": {
            t: {"key": f"{prefix}{t}.parquet", "rows": df.height, "columns": df.columns}
            for t, df in tables.items()
        },
        "stats": stats,
    }
    if dry_run:
        return ImportResult(name, manifest, tables)
    s3 = client("s3", settings)
    manifest_key = prefix + MANIFEST
    exists = "Contents" in s3.list_objects_v2(Bucket=bucket, Prefix=manifest_key, MaxKeys=1)
    if exists and not overwrite:
        raise ConflictError(
            f"dataset {name!r} already exists", hint="pass --overwrite to replace it, or --name NEW"
        )
    bodies = {}
    for table, df in tables.items():  # serialise everything before the first write
        buf = io.BytesIO()
        df.write_parquet(buf, compression="zstd")
        bodies[table] = buf.getvalue()
    if exists:
        s3.delete_object(Bucket=bucket, Key=manifest_key)
        stale = [f"{prefix}{t}.parquet" for t in ALLOWED if t not in tables]
        for key in stale:
            s3.delete_object(Bucket=bucket, Key=key)
    for table, body in bodies.items():
        put_bytes(settings, bucket, manifest["files"][table]["key"], body, "application/vnd.apache.parquet")
    put_json(settings, bucket, manifest_key, manifest)
    return ImportResult(name, manifest, tables)
