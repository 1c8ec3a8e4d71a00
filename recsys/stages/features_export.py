"""Offline feature store export (the feature_ingestion Lambda in the pipeline's parallel branch).

Input: the preprocessing output. Writes the latest feature snapshot as Parquet under
s3://{data}/feature_store/{user_features,video_features}/ with exactly the columns of the catalogue's
Glue tables (category_affinity as a JSON string, updated_at in epoch seconds). Each run replaces the
snapshot (one object per table), so the Glue table never mixes two runs.
"""

from __future__ import annotations

import time
from typing import Any

import polars as pl

from recsys.catalog import load_catalog
from recsys.config import Settings
from recsys.ids import check_id
from recsys.stages.two_tower import load_inputs
from recsys.storage import put_parquet

GLUE_TYPES = {"string": pl.String, "bigint": pl.Int64, "double": pl.Float64}
SNAPSHOT = "part-00000.parquet"


def glue_frame(df: pl.DataFrame, table: str, updated_at: int) -> pl.DataFrame:
    """`df` cast to the Glue table's columns, in order (missing columns are null)."""
    columns = load_catalog()["glue"]["tables"][table]["columns"]
    df = df.with_columns(pl.lit(updated_at, pl.Int64).alias("updated_at"))
    return df.select(
        [
            (pl.col(c["name"]) if c["name"] in df.columns else pl.lit(None))
            .cast(GLUE_TYPES[c["type"]])
            .alias(c["name"])
            for c in columns
        ]
    )


def run(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Export the run's user and video features to the offline store."""
    job_id = check_id(event["job_id"], "job_id")
    data = load_inputs(event, settings, "user_features", "video_features")
    tables = load_catalog()["glue"]["tables"]
    updated_at = int(time.time())
    out: dict[str, Any] = {"job_id": job_id, "updated_at": updated_at, "tables": {}}
    for table in ("user_features", "video_features"):
        frame = glue_frame(data[table], table, updated_at)
        bucket = settings.names.bucket(tables[table]["bucket"])
        key = put_parquet(settings, bucket, tables[table]["prefix"] + SNAPSHOT, frame)
        out["tables"][table] = {"bucket": bucket, "key": key, "rows": frame.height}
    return out
