"""Batch recommendations: many users at once (`recsys recommend`), and the job that fills the
recommendations cache table behind `GET /cached/{user_id}` (`recsys cache fill`).

Both go through `RecommendationService.recommend` (no Redis, no inference tracking), so batch results
follow exactly the API's rules: watched items excluded by default, category filter, diversity, fill-up.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys.aws import client
from recsys.errors import ValidationError
from recsys.feature_store.online import BATCH_WRITE_SIZE, serialize_item

if TYPE_CHECKING:
    from recsys.serving.service import RecommendationService

ROW_COLUMNS = ("user_id", "rank", "video_id", "score", "category", "reason", "source", "model_version")


def all_users(service: RecommendationService) -> list[str]:
    """Every user the production model knows (its training users)."""
    return service.models.current().user_ids.tolist()


def read_user_file(path: Path) -> list[str]:
    """User ids from a text file, one per line (blank lines and `#` comments skipped)."""
    if not path.is_file():
        raise ValidationError(f"user file {str(path)!r} does not exist", hint="one user id per line")
    users = [line.strip() for line in path.read_text().splitlines()]
    users = [u for u in users if u and not u.startswith("#")]
    if not users:
        raise ValidationError(f"user file {str(path)!r} lists no users", hint="one user id per line")
    return list(dict.fromkeys(users))


def recommend_many(
    service: RecommendationService,
    users: Iterable[str],
    k: int,
    category: str | None = None,
    exclude_watched: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (user, item): user_id, rank, video_id, score, category, reason, source, model_version."""
    rows: list[dict[str, Any]] = []
    for n, user in enumerate(users, start=1):
        resp = service.recommend(user, k=k, category=category, exclude_watched=exclude_watched,
                                 use_cache=False, track=False)  # fmt: skip
        for item in resp["items"]:
            rows.append({"user_id": resp["user_id"], "rank": item["rank"], "video_id": item["video_id"],
                         "score": item["score"], "category": item["category"], "reason": item["reason"],
                         "source": resp["source"], "model_version": resp["model_version"]})  # fmt: skip
        if on_progress is not None:
            on_progress(n)
    return rows


def write_rows(rows: list[dict[str, Any]], output: Path) -> None:
    """Write batch rows to .parquet or .csv (chosen by the suffix)."""
    suffix = output.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ValidationError(f"unsupported output {output.name!r}", hint="use a .parquet or .csv file name")
    import polars as pl  # batch runs on a workstation or the training image, not in the serving Lambda

    schema = {"user_id": pl.Utf8, "rank": pl.Int64, "video_id": pl.Utf8, "score": pl.Float64,
              "category": pl.Utf8, "reason": pl.Utf8, "source": pl.Utf8, "model_version": pl.Utf8}  # fmt: skip
    df = pl.DataFrame(rows, schema=schema)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    if suffix == ".parquet":
        df.write_parquet(tmp)
    else:
        df.write_csv(tmp)
    tmp.replace(output)  # nothing half-written under the final name


def fill_cache(
    service: RecommendationService,
    users: Iterable[str],
    k: int = 20,
    ttl_s: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Compute and store precomputed recommendations for `users` in the recommendations cache table."""
    ttl_s = service.config.precomputed_ttl_s if ttl_s is None else ttl_s
    table = service.precomputed_table
    ddb = client("dynamodb", service.settings)
    batch: list[dict[str, Any]] = []
    written = 0
    for n, user in enumerate(users, start=1):
        resp = service.recommend(user, k=k, use_cache=False, track=False)
        now = time.time()
        batch.append({"user_id": resp["user_id"], "recommendation_id": uuid.uuid4().hex,
                      "model_version": resp["model_version"], "items": resp["items"], "k": k,
                      "generated_at": now, "expires_at": int(now) + ttl_s})  # fmt: skip
        if len(batch) == BATCH_WRITE_SIZE:
            written += _write(ddb, table, batch)
            batch = []
        if on_progress is not None:
            on_progress(n)
    if batch:
        written += _write(ddb, table, batch)
    return written


def _write(ddb: Any, table: str, items: list[dict[str, Any]]) -> int:
    request: dict[str, Any] = {table: [{"PutRequest": {"Item": serialize_item(i)}} for i in items]}
    for attempt in range(8):
        request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        if not request:
            return len(items)
        time.sleep(min(0.05 * 2**attempt, 1.0))
    from recsys.errors import UnavailableError

    raise UnavailableError("DynamoDB left precomputed items unwritten", hint="run the job again")
