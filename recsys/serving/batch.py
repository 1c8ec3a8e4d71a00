"""Batch recommendations: many users at once (`recsys recommend`), and the job that fills the
recommendations cache table behind `GET /cached/{user_id}` (`recsys cache fill`).

Users go in blocks: the block's user state is read in bulk (`recsys.feature_store.bulk`: one Scan of the
activity table for many users), then each user runs the API's steps (`recsys.serving.compute`: sources,
ranker, rules, reasons), each vectorised over the user's candidates. So batch results are the API's
results (watched items excluded by default, category filter, diversity, fill-up;
tests/serving/test_batch.py compares them), without Redis or inference tracking. Rows stream to the output file block by block, so memory does not grow with users.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.aws import client
from recsys.errors import UnavailableError, ValidationError
from recsys.feature_store.bulk import activity_and_engaged_many
from recsys.feature_store.online import BATCH_WRITE_SIZE, serialize_item
from recsys.serving import compute as steps

if TYPE_CHECKING:
    from recsys.serving.model_store import ServingModel
    from recsys.serving.service import RecommendationService

ROW_COLUMNS = ("user_id", "rank", "video_id", "score", "category", "reason", "source", "model_version")
BLOCK_SCORES = 2**25  # users x videos scored at once (128 MB of float32)
MAX_BLOCK_USERS = 2_048
WRITE_THREADS = 4


@dataclass
class UserResult:
    """One user's recommendations: what the API's response holds, without ids and timestamps."""

    user_id: str
    source: str
    items: list[dict[str, Any]]


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


def block_size(model: ServingModel) -> int:
    """Users per block: as many as keep one block's score matrix near BLOCK_SCORES."""
    return int(np.clip(BLOCK_SCORES // max(model.n_videos, 1), 16, MAX_BLOCK_USERS))


def recommend_blocks(
    service: RecommendationService,
    users: Sequence[str],
    k: int,
    category: str | None = None,
    exclude_watched: bool = True,
    users_per_block: int | None = None,
    base: ServingModel | None = None,
) -> Iterator[list[UserResult]]:
    """The recommendations of `users` by `base` (default: production), one list per block of users (in the
    order given)."""
    from recsys.serving.service import validate_request

    for user in users:
        validate_request(str(user), k, category)
    # as a request sees it: the live catalogue too
    model = service.live.apply(base if base is not None else service.models.current())
    config = service.request_config()
    size = users_per_block or block_size(model)
    known_category = category is None or category in model.category_index
    for start in range(0, len(users), size):
        block = [str(u) for u in users[start : start + size]]
        if not known_category:
            yield [UserResult(u, "popular", []) for u in block]
            continue
        # The user's state as a request reads it: recent events and every video engaged with since training.
        state = activity_and_engaged_many(service.store, block, config.activity_limit)
        now_ts = int(time.time())
        queries = [
            steps.user_query(
                model, config, u, state.get(u, ([], []))[0], exclude_watched, state.get(u, ([], []))[1]
            )
            for u in block
        ]
        out = []
        for q in queries:  # the API's steps per user: the same candidates, ranker, rules and reasons
            rows, scores, sources = np.zeros(0, np.int64), np.zeros(0), []
            if q.vector is not None:
                rows, scores, sources = steps.rank_sources(model, config, q, category, now_ts)
            chosen, source = steps.choose(model, config, q, rows, scores, k, category)
            steps.label_sources(chosen, rows, sources)
            out.append(
                UserResult(
                    q.user_id, source, steps.items(model, chosen, steps.reasons(model, q, chosen, now_ts))
                )
            )
        yield out


def result_rows(results: Iterable[UserResult], model_version: str) -> list[dict[str, Any]]:
    """One row per (user, item): user_id, rank, video_id, score, category, reason, source, model_version."""
    return [
        {"user_id": r.user_id, "rank": i["rank"], "video_id": i["video_id"], "score": i["score"],
         "category": i["category"], "reason": i["reason"], "source": r.source, "model_version": model_version}
        for r in results
        for i in r.items
    ]  # fmt: skip


def recommend_many(
    service: RecommendationService,
    users: Sequence[str],
    k: int,
    category: str | None = None,
    exclude_watched: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """All rows in memory (small runs, `--json`); `write_recommendations` streams large runs to a file."""
    rows: list[dict[str, Any]] = []
    version = service.models.current().version
    done = 0
    for block in recommend_blocks(service, users, k, category, exclude_watched):
        rows.extend(result_rows(block, version))
        done += len(block)
        if on_progress is not None:
            on_progress(done)
    return rows


class RowWriter:
    """Rows appended block by block to a .parquet (one row group per block) or .csv file."""

    SCHEMA = (("user_id", "string"), ("rank", "int64"), ("video_id", "string"), ("score", "float64"),
              ("category", "string"), ("reason", "string"), ("source", "string"),
              ("model_version", "string"))  # fmt: skip

    def __init__(self, output: Path) -> None:
        suffix = output.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise ValidationError(
                f"unsupported output {output.name!r}", hint="use a .parquet or .csv file name"
            )
        import pyarrow as pa  # batch runs on a workstation or the training image, not in the serving Lambda

        self.output = output
        self.schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in self.SCHEMA])
        output.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = output.with_name(output.name + ".tmp")
        self.rows = 0
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            self._writer: Any = pq.ParquetWriter(self.tmp, self.schema)
        else:
            import pyarrow.csv as pcsv

            self._writer = pcsv.CSVWriter(self.tmp, self.schema)

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Append rows (dicts with ROW_COLUMNS)."""
        import pyarrow as pa

        if rows:
            self._writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))
            self.rows += len(rows)

    def close(self, ok: bool = True) -> None:
        """Finish the file; only a complete file gets the final name."""
        self._writer.close()
        if ok:
            self.tmp.replace(self.output)
        else:
            self.tmp.unlink(missing_ok=True)


def write_rows(rows: list[dict[str, Any]], output: Path) -> None:
    """Write batch rows to .parquet or .csv (chosen by the suffix)."""
    writer = RowWriter(output)
    try:
        writer.write(rows)
    except BaseException:
        writer.close(ok=False)
        raise
    writer.close()


def write_recommendations(
    service: RecommendationService,
    users: Sequence[str],
    k: int,
    output: Path,
    category: str | None = None,
    exclude_watched: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Stream the recommendations of `users` to `output` block by block; returns the number of rows."""
    writer = RowWriter(output)
    version = service.models.current().version
    done = 0
    try:
        for block in recommend_blocks(service, users, k, category, exclude_watched):
            writer.write(result_rows(block, version))
            done += len(block)
            if on_progress is not None:
                on_progress(done)
    except BaseException:
        writer.close(ok=False)
        raise
    writer.close()
    return writer.rows


def fill_cache(
    service: RecommendationService,
    users: Sequence[str],
    k: int = 20,
    ttl_s: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Compute and store precomputed recommendations for `users` in the recommendations cache table.

    Each user gets the answer of their variant: the canary's users (when a canary is served) the canary's,
    everyone else production's; each item records its `variant` and `model_version`.
    """
    ttl_s = service.config.precomputed_ttl_s if ttl_s is None else ttl_s
    table = service.precomputed_table
    ddb = client("dynamodb", service.settings)
    groups: dict[str, tuple[ServingModel, list[str]]] = {}  # variant -> (its model, its users)
    for user in users:
        model, variant = service.models.for_user(str(user))  # what a request of the user gets
        groups.setdefault(variant, (model, []))[1].append(user)
    written = 0
    done = 0
    with ThreadPoolExecutor(WRITE_THREADS) as pool:
        for variant, (model, members) in groups.items():
            for block in recommend_blocks(service, members, k, base=model):
                now = time.time()
                items = [{"user_id": r.user_id, "recommendation_id": uuid.uuid4().hex, "variant": variant,
                          "model_version": model.version, "items": r.items, "k": k, "generated_at": now,
                          "expires_at": int(now) + ttl_s}
                         for r in block]  # fmt: skip
                chunks = [items[i : i + BATCH_WRITE_SIZE] for i in range(0, len(items), BATCH_WRITE_SIZE)]
                written += sum(pool.map(lambda chunk: _write(ddb, table, chunk), chunks))
                done += len(block)
                if on_progress is not None:
                    on_progress(done)
    return written


def _write(ddb: Any, table: str, items: list[dict[str, Any]]) -> int:
    request: dict[str, Any] = {table: [{"PutRequest": {"Item": serialize_item(i)}} for i in items]}
    for attempt in range(8):
        request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        if not request:
            return len(items)
        time.sleep(min(0.05 * 2**attempt, 1.0))
    raise UnavailableError("DynamoDB left precomputed items unwritten", hint="run the job again")
