"""Batch recommendations: many users at once (`recsys recommend`), and the job that fills the
recommendations cache table behind `GET /cached/{user_id}` (`recsys cache fill`).

Users go in blocks: the block's user state is read in bulk (`recsys.feature_store.bulk`: one Scan of the
activity table for many users), then its users run the API's steps (`recsys.serving.compute`: sources,
ranker, rules, reasons) in chunks, one ranker call per chunk, spread over one forked worker process per
core (the model's arrays shared copy-on-write) while the next block is read. So batch results are the
API's results (watched items excluded by default, category filter, diversity, fill-up;
tests/serving/test_batch.py compares them), without Redis or inference tracking. Rows stream to the output
file block by block, so memory does not grow with the rows.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from recsys.aws import client
from recsys.errors import UnavailableError, ValidationError
from recsys.feature_store.bulk import activity_and_engaged_many
from recsys.feature_store.online import BATCH_WRITE_SIZE, serialize_item
from recsys.serving import compute as steps
from recsys.serving.item_lists import ITEMS_JSON, items_text
from recsys.serving.threads import limit_blas_threads

if TYPE_CHECKING:
    from recsys.config import ServingConfig
    from recsys.serving.model_store import ServingModel
    from recsys.serving.service import RecommendationService

ROW_COLUMNS = ("user_id", "rank", "video_id", "score", "category", "reason", "source", "model_version")
BLOCK_USERS = 2_048  # users per block handed back (a progress step, a round of cache writes)
READ_USERS = 20_000  # users whose state one bulk read fetches (one Scan of the activity table)
WRITE_THREADS = 4
PENDING_WRITE_BLOCKS = 2  # blocks of cache items written in the background at most (memory bound)
CHUNK_USERS = 256  # users per task of a worker process (one ranker call each)
MAX_PROCESSES = 8

log = logging.getLogger(__name__)
T = TypeVar("T")


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


def batch_processes(n_users: int, chunk: int = CHUNK_USERS) -> int:
    """Processes for a batch of `n_users`: one per usable core, never more than the chunks to share."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return int(max(1, min(cores, MAX_PROCESSES, -(-n_users // chunk))))


def answer_block(
    model: ServingModel,
    config: ServingConfig,
    users: Sequence[str],
    state: dict[str, tuple[list[dict[str, Any]], list[str]]],
    k: int,
    category: str | None,
    exclude_watched: bool,
    now_ts: int,
) -> list[UserResult]:
    """The API's answer for each of `users` from their prefetched `state` (recent activity newest first,
    videos engaged with since training): the same steps as one request, one ranker call for the block."""
    queries = []
    for u in users:
        activity, engaged = state.get(u, ([], []))
        queries.append(steps.user_query(model, config, u, activity, exclude_watched, engaged))
    answers = steps.answer_many(model, config, queries, k, category, now_ts)
    return [
        UserResult(q.user_id, source, steps.items(model, chosen, why))
        for q, (chosen, source, why) in zip(queries, answers, strict=True)
    ]


_FORKED: tuple[ServingModel, ServingConfig] | None = None  # set in a worker process by _start_worker


def _start_worker(model: ServingModel, config: ServingConfig) -> None:
    # Forked: the model arrays are the parent's pages (copy on write), not pickled. One BLAS thread each.
    global _FORKED
    _FORKED = (model, config)
    limit_blas_threads(1)


def _answer_in_worker(args: tuple[Any, ...]) -> Any:
    assert _FORKED is not None, "worker started without a model"
    *block_args, finish = args
    return finish(answer_block(*_FORKED, *block_args))


def _process_pool(model: ServingModel, config: ServingConfig, processes: int) -> ProcessPoolExecutor | None:
    """Worker processes forked from this one (None where fork or its semaphores are unavailable, e.g. AWS
    Lambda, which has no /dev/shm: the batch then runs in this process)."""
    if processes <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    try:
        return ProcessPoolExecutor(
            processes,
            multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(model, config),
        )
    except (OSError, ImportError, NotImplementedError) as exc:
        log.info("batch runs in one process: %s", exc)
        return None


def _keep(results: list[UserResult]) -> list[UserResult]:
    return results


def recommend_blocks(
    service: RecommendationService,
    users: Sequence[str],
    k: int,
    category: str | None = None,
    exclude_watched: bool = True,
    users_per_block: int | None = None,
    base: ServingModel | None = None,
    processes: int | None = None,
) -> Iterator[list[UserResult]]:
    """The recommendations of `users` by `base` (default: production), one list per block of users (in the
    order given).

    The users' state is read in bulk here (READ_USERS at a time), then each block's users are answered in
    chunks of CHUNK_USERS by `processes` worker processes (default: one per core; 1: in this process), the
    next block handed out while they compute.
    """
    for _, outputs in _chunk_outputs(service, users, k, category, exclude_watched, users_per_block, base,
                                     processes, _keep):  # fmt: skip
        yield [r for results in outputs for r in results]


def _chunk_outputs(
    service: RecommendationService,
    users: Sequence[str],
    k: int,
    category: str | None,
    exclude_watched: bool,
    users_per_block: int | None,
    base: ServingModel | None,
    processes: int | None,
    finish: Callable[[list[UserResult]], T],
) -> Iterator[tuple[int, list[T]]]:
    """`recommend_blocks` with `finish` applied to each chunk's results where they are computed (in the
    worker: e.g. to return output columns, cheaper to send back than the results); per block, its number
    of users and its chunks' outputs."""
    from recsys.serving.service import validate_request

    for user in users:
        validate_request(str(user), k, category)
    # as a request sees it: the live catalogue too
    model = service.live.apply(base if base is not None else service.models.current())
    config = service.request_config()
    size = users_per_block or BLOCK_USERS
    processes = batch_processes(len(users)) if processes is None else max(1, processes)
    chunk = min(CHUNK_USERS, size)
    if category is not None and category not in model.category_index:
        for start in range(0, len(users), size):
            block = [str(u) for u in users[start : start + size]]
            yield len(block), [finish([UserResult(u, "popular", []) for u in block])]
        return
    pool = _process_pool(model, config, processes)
    pending: deque[tuple[int, list[Future[T]]]] = deque()
    read_size = max(size, READ_USERS)
    try:
        for read in range(0, len(users), read_size):
            read_users = [str(u) for u in users[read : read + read_size]]
            # The users' state as a request reads it: recent events and every video engaged with since
            # training (one Scan of the activity table for many users).
            state = activity_and_engaged_many(service.store, read_users, config.activity_limit)
            for start in range(0, len(read_users), size):
                block = read_users[start : start + size]
                now_ts = int(time.time())
                parts = [block[i : i + chunk] for i in range(0, len(block), chunk)]
                if pool is None:
                    yield len(block), [finish(answer_block(model, config, part, state, k, category,
                                                           exclude_watched, now_ts)) for part in parts]  # fmt: skip
                    continue
                pending.append((len(block), [
                    pool.submit(_answer_in_worker, (part, {u: state[u] for u in part if u in state}, k,
                                                    category, exclude_watched, now_ts, finish))
                    for part in parts
                ]))  # fmt: skip
                if len(pending) > 1:  # keep one block computing while the next is handed out
                    n, futures = pending.popleft()
                    yield n, [f.result() for f in futures]
        while pending:
            n, futures = pending.popleft()
            yield n, [f.result() for f in futures]
    finally:
        if pool is not None:
            for _, futures in pending:
                for f in futures:
                    f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


def result_rows(results: Iterable[UserResult], model_version: str) -> list[dict[str, Any]]:
    """One row per (user, item): user_id, rank, video_id, score, category, reason, source, model_version."""
    return [
        {"user_id": r.user_id, "rank": i["rank"], "video_id": i["video_id"], "score": i["score"],
         "category": i["category"], "reason": i["reason"], "source": r.source, "model_version": model_version}
        for r in results
        for i in r.items
    ]  # fmt: skip


def result_columns(results: list[UserResult]) -> dict[str, list[Any]]:
    """The rows of `results` as columns (ROW_COLUMNS but model_version), cheap to send between processes."""
    cols: dict[str, list[Any]] = {c: [] for c in ROW_COLUMNS if c != "model_version"}
    for r in results:
        n = len(r.items)
        cols["user_id"] += [r.user_id] * n
        cols["source"] += [r.source] * n
        for c in ("rank", "video_id", "score", "category", "reason"):
            cols[c] += [i[c] for i in r.items]
    return cols


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

    def write_columns(self, columns: dict[str, list[Any]]) -> None:
        """Append rows given as columns (ROW_COLUMNS, each a list of the same length)."""
        import pyarrow as pa

        n = len(columns["user_id"])
        if n:
            self._writer.write_table(pa.Table.from_pydict(columns, schema=self.schema))
            self.rows += n

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
    processes: int | None = None,
) -> int:
    """Stream the recommendations of `users` to `output` block by block; returns the number of rows.
    `processes`: worker processes (default one per core)."""
    writer = RowWriter(output)
    version = service.models.current().version
    done = 0
    try:
        for n, outputs in _chunk_outputs(service, users, k, category, exclude_watched, None, None, processes,
                                      result_columns):  # fmt: skip
            for columns in outputs:
                writer.write_columns({**columns, "model_version": [version] * len(columns["user_id"])})
            done += n
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
    writes: deque[list[Future[int]]] = deque()  # per block: its writes, made while the next block computes
    with ThreadPoolExecutor(WRITE_THREADS) as pool:
        for variant, (model, members) in groups.items():
            for n, outputs in _chunk_outputs(
                service, members, k, None, True, None, model, None, _cache_texts
            ):
                now = time.time()
                items = [{"user_id": user, "recommendation_id": uuid.uuid4().hex, "variant": variant,
                          "model_version": model.version, ITEMS_JSON: text, "k": k, "generated_at": now,
                          "expires_at": int(now) + ttl_s}
                         for texts in outputs for user, text in texts]  # fmt: skip
                chunks = [items[i : i + BATCH_WRITE_SIZE] for i in range(0, len(items), BATCH_WRITE_SIZE)]
                writes.append([pool.submit(_write, ddb, table, chunk) for chunk in chunks])
                while len(writes) > PENDING_WRITE_BLOCKS:
                    written += sum(f.result() for f in writes.popleft())
                done += n
                if on_progress is not None:
                    on_progress(done)
        while writes:
            written += sum(f.result() for f in writes.popleft())
    return written


def _cache_texts(results: list[UserResult]) -> list[tuple[str, str]]:
    """(user id, the items as stored) of each result: built where the results are computed."""
    return [(r.user_id, items_text(r.items)) for r in results]


def _write(ddb: Any, table: str, items: list[dict[str, Any]]) -> int:
    request: dict[str, Any] = {table: [{"PutRequest": {"Item": serialize_item(i)}} for i in items]}
    for attempt in range(8):
        request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        if not request:
            return len(items)
        time.sleep(min(0.05 * 2**attempt, 1.0))
    raise UnavailableError("DynamoDB left precomputed items unwritten", hint="run the job again")
