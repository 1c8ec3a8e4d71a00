"""Candidate retrieval over the deployed video embeddings: exact numpy top-K or an HNSW index.

Scores are inner products (the two-tower score). Below `ann_threshold` videos the exact search is both
exact and fast enough; above it an hnswlib index answers (chosen over usearch: same recall at this
size, 8 MB installed against 57 MB with its numkong dependency; see bench/results/serving.md).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recsys.huge_pages import huge_pages_for_new_memory
from recsys.ranking.row_sets import member_of

log = logging.getLogger(__name__)

DEFAULT_ANN_THRESHOLD = 50_000
DEFAULT_HNSW_M = 32
DEFAULT_HNSW_EF_CONSTRUCTION = 200
# recall@100 0.98 at 100k videos in 60 % of the time that ef 200 takes (0.99): bench/results/serving.md
DEFAULT_HNSW_EF_SEARCH = 128
# A search within a subset of the catalogue (one category): hnswlib's filtered walk visits about k / share
# nodes (share = subset / catalogue), an exact search reads each of the subset's rows. The exact search is
# the cheaper when rows * share < this, i.e. rows < sqrt(EXACT_SUBSET_FACTOR * catalogue): 16k rows of 100k,
# 50k of 1M (measured at 100k: bench/results/serving.md).
EXACT_SUBSET_FACTOR = 2_500
SUBSETS_KEPT = 256  # the rows of this many read-only masks (a version's categories) kept per index


@dataclass(frozen=True)
class Candidates:
    """Retrieved rows (indices into the catalogue) and their scores, best first."""

    rows: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.rows.shape[0])


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the `n` largest finite scores, best first (ties: lower row first)."""
    return _top_block(scores[None, :], n)[0]


def _top_block(scores: np.ndarray, n: int) -> list[np.ndarray]:
    """`_top` of each row of a [users, videos] score block.

    One value partition finds each row's n-th largest score; the rows at or above it (n, or a few more on
    ties) are sorted by score, then row, and cut to n. Cheaper than an argpartition (no index array), and
    the same answer for one request and a block.
    """
    b, m = scores.shape
    n = min(n, m)
    if n <= 0 or b == 0:
        return [np.zeros(0, dtype=np.int64) for _ in range(b)]
    threshold = np.partition(scores, m - n, axis=1)[:, m - n] if n < m else scores.min(axis=1)
    users, rows = np.nonzero(scores >= threshold[:, None])
    vals = scores[users, rows]
    order = np.lexsort((rows, -vals, users))
    users, rows, vals = users[order], rows[order], vals[order]
    bounds = np.searchsorted(users, np.arange(b + 1))
    out = []
    for i in range(b):
        r, v = rows[bounds[i] : bounds[i + 1]][:n], vals[bounds[i] : bounds[i + 1]][:n]
        out.append(r[np.isfinite(v)].astype(np.int64))
    return out


def _exclude_block(scores: np.ndarray, excludes: list[np.ndarray]) -> None:
    """Set each user's excluded rows to -inf in a [users, videos] score block (one scatter)."""
    lens = [len(e) for e in excludes]
    if sum(lens):
        users = np.repeat(np.arange(len(excludes)), lens)
        scores[users, np.concatenate([np.asarray(e, dtype=np.int64) for e in excludes])] = -np.inf


class ExactIndex:
    """Brute-force inner-product search (numpy matmul + argpartition)."""

    kind = "exact"

    def __init__(self, embeddings: np.ndarray) -> None:
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def search(
        self, query: np.ndarray, n: int, allowed: np.ndarray | None = None, exclude: np.ndarray | None = None
    ) -> Candidates:
        """Top `n` rows by score; `allowed` is a bool mask over rows, `exclude` row indices to skip."""
        scores = self.embeddings @ np.asarray(query, dtype=np.float32)
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        if exclude is not None and len(exclude):
            scores[exclude] = -np.inf
        rows = _top(scores, n)
        return Candidates(rows, scores[rows].astype(np.float64))

    def search_many(
        self, queries: np.ndarray, n: int, excludes: list[np.ndarray], allowed: np.ndarray | None = None
    ) -> list[Candidates]:
        """`search` for a block of queries [users, dim]: one matmul, one argpartition, one scatter."""
        queries = np.asarray(queries, dtype=np.float32).reshape(len(excludes), -1)
        if queries.shape[0] == 1:  # one request: a matrix-vector product (no BLAS threads to wake)
            scores = (self.embeddings @ queries[0])[None, :]
        else:
            scores = queries @ self.embeddings.T
        if allowed is not None:
            scores[:, ~allowed] = -np.inf
        _exclude_block(scores, excludes)
        return [Candidates(r, scores[i, r].astype(np.float64)) for i, r in enumerate(_top_block(scores, n))]


class HnswIndex:
    """Approximate inner-product search with hnswlib (HNSW graph)."""

    kind = "hnsw"

    def __init__(
        self,
        embeddings: np.ndarray,
        m: int = DEFAULT_HNSW_M,
        ef_construction: int = DEFAULT_HNSW_EF_CONSTRUCTION,
        ef_search: int = DEFAULT_HNSW_EF_SEARCH,
        index_bytes: bytes | None = None,
    ) -> None:
        import hnswlib

        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        n, dim = self.embeddings.shape
        self.ef_search = ef_search
        self.index = hnswlib.Index(space="ip", dim=dim)
        with huge_pages_for_new_memory():  # the graph's random reads miss the TLB less (recsys.huge_pages)
            if index_bytes is not None:
                with tempfile.NamedTemporaryFile(suffix=".hnsw") as f:
                    f.write(index_bytes)
                    f.flush()
                    self.index.load_index(f.name, max_elements=n)
            else:
                self.index.init_index(max_elements=max(n, 1), ef_construction=ef_construction, M=m)
                self.index.add_items(self.embeddings, np.arange(n))
        self.index.set_ef(ef_search)
        self.index.set_num_threads(1)
        self._subsets: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id(mask) -> (mask, its rows)

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def to_bytes(self) -> bytes:
        """The serialised graph (to cache it next to the model version)."""
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "index.hnsw")
            self.index.save_index(path)
            with open(path, "rb") as f:
                return f.read()

    def search(
        self, query: np.ndarray, n: int, allowed: np.ndarray | None = None, exclude: np.ndarray | None = None
    ) -> Candidates:
        """Approximate top `n`. Within `allowed` rows: exact over them when they are few (see
        EXACT_SUBSET_FACTOR), else through hnswlib's filter (exact too when fewer match than asked)."""
        q = np.asarray(query, dtype=np.float32).reshape(1, -1)
        n_excl = 0 if exclude is None else len(exclude)
        if allowed is None:
            excluded = np.zeros(0, np.int64) if exclude is None else exclude
            return self._search_block(q, n, [excluded], self._fetch(n, len(excluded)))[0]
        rows = self._rows_of(allowed)
        if rows.size * rows.size < EXACT_SUBSET_FACTOR * len(self):
            return self._exact_within(rows, q[0], n, exclude)
        mask = allowed.copy()
        if n_excl:
            mask[exclude] = False
        filt: Callable[[int], bool] = mask.__getitem__
        fetch = min(n, int(np.count_nonzero(mask)))
        self.index.set_ef(max(self.ef_search, fetch))
        try:
            labels, distances = self.index.knn_query(q, k=fetch, filter=filt)
        except RuntimeError:  # fewer reachable than asked
            return self._exact_within(rows, q[0], n, exclude)
        found = labels[0].astype(np.int64)
        scores = 1.0 - distances[0].astype(np.float64)  # hnswlib's ip distance is 1 - <q, x>
        return Candidates(found[:n], scores[:n])

    def _rows_of(self, allowed: np.ndarray) -> np.ndarray:
        """The rows of a bool mask, kept for a read-only mask (a version's category: asked again and again)."""
        if allowed.flags.writeable:
            return np.flatnonzero(allowed)
        found = self._subsets.get(id(allowed))
        if found is not None and found[0] is allowed:
            return found[1]
        if len(self._subsets) >= SUBSETS_KEPT:
            self._subsets.clear()
        rows = np.flatnonzero(allowed)
        self._subsets[id(allowed)] = (allowed, rows)  # the mask is held: its id is not reused meanwhile
        return rows

    def _exact_within(
        self, rows: np.ndarray, query: np.ndarray, n: int, exclude: np.ndarray | None
    ) -> Candidates:
        """The exact top `n` of ascending catalogue `rows` but `exclude` (ties go to the lower row)."""
        scores = self.embeddings[rows] @ query
        if exclude is not None and len(exclude) and rows.size:
            exclude = np.asarray(exclude, dtype=np.int64)
            pos = np.minimum(np.searchsorted(rows, exclude), rows.size - 1)
            scores[pos[rows[pos] == exclude]] = -np.inf  # `_top` leaves out what is not finite
        top = _top(scores, n)
        return Candidates(rows[top], scores[top].astype(np.float64))

    def _fetch(self, n: int, n_excl: int) -> int:
        # Powers of two: one request and a batch block ask hnswlib the same k (and ef), so they agree.
        return min(len(self), 1 << max(0, int(n + n_excl - 1).bit_length()))

    def search_many(
        self, queries: np.ndarray, n: int, excludes: list[np.ndarray], allowed: np.ndarray | None = None
    ) -> list[Candidates]:
        """`search` for a block of queries: one hnswlib batch query per fetch size (filtered: one by one)."""
        queries = np.asarray(queries, dtype=np.float32).reshape(len(excludes), -1)
        if allowed is not None:
            return [self.search(q, n, allowed, e) for q, e in zip(queries, excludes, strict=True)]
        out: list[Candidates | None] = [None] * len(excludes)
        fetches = np.asarray([self._fetch(n, len(e)) for e in excludes], dtype=np.int64)
        for fetch in np.unique(fetches).tolist():
            users = np.flatnonzero(fetches == fetch).tolist()
            found = self._search_block(queries[users], n, [excludes[u] for u in users], fetch)
            for u, candidates in zip(users, found, strict=True):
                out[u] = candidates
        return [c for c in out if c is not None]

    def _search_block(
        self, queries: np.ndarray, n: int, excludes: list[np.ndarray], fetch: int
    ) -> list[Candidates]:
        """The top `n` of each query of a [b, d] block, asking hnswlib for `fetch` rows each and dropping the
        excluded ones."""
        if fetch <= 0:
            return [Candidates(np.zeros(0, dtype=np.int64), np.zeros(0)) for _ in excludes]
        self.index.set_ef(max(self.ef_search, fetch))
        try:
            labels, distances = self.index.knn_query(
                queries, k=fetch, num_threads=1 if len(excludes) == 1 else -1
            )
        except RuntimeError:  # fewer reachable than asked: the exact answer is cheap then
            exact = ExactIndex(self.embeddings)
            return [exact.search(q, n, None, e) for q, e in zip(queries, excludes, strict=True)]
        out = []
        for j, exclude in enumerate(excludes):
            rows = labels[j].astype(np.int64)
            scores = 1.0 - distances[j].astype(np.float64)  # hnswlib's ip distance is 1 - <q, x>
            if len(exclude):
                keep = ~member_of(rows, exclude)
                rows, scores = rows[keep], scores[keep]
            out.append(Candidates(rows[:n], scores[:n]))
        return out


def build_index(
    embeddings: np.ndarray, ann_threshold: int = DEFAULT_ANN_THRESHOLD, index_bytes: bytes | None = None
) -> ExactIndex | HnswIndex:
    """Exact search for small catalogues, an HNSW index from `ann_threshold` videos up."""
    if embeddings.shape[0] < ann_threshold:
        return ExactIndex(embeddings)
    return HnswIndex(embeddings, index_bytes=index_bytes)


def recall_at(exact: Candidates, approx: Candidates) -> float:
    """Share of the exact top rows that the approximate search returned (0..1)."""
    if len(exact) == 0:
        return 1.0
    return float(np.isin(exact.rows, approx.rows).sum() / len(exact))
