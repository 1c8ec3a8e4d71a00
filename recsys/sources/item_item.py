"""Item-item models, fitted on a binary user x video matrix and kept as a sparse top-N neighbour table.

- EASE (Steck 2019): B = I - P diag(1/diag(P)), P = (X'X + lambda I)^-1, diagonal zeroed. Closed form, one
  dense inverse over the items with at least `min_item_count` interactions: used while they number at most
  `ease_max_items` (the inverse is O(n^3): see bench/results/quality.md for the times measured).
- item-kNN above that: cosine similarity of the item columns with a shrink term, from a sparse co-occurrence
  product (each user's latest `knn_max_history` items only, so heavy users cannot blow it up).

Serving reads a CSR table, never a dense matrix. Item-kNN keeps each video's `neighbours` largest
similarities. EASE keeps its largest weights by absolute value (negative weights matter) over the whole
matrix, `neighbours` per video on average: a video with many strong weights keeps more than one with few
(at most 3x `neighbours`, at least a quarter of it). On ml-latest-small this budget scores nDCG@10 0.398
against 0.401 dense and 0.382 for a plain top-200 per row (bench/results/quality.md).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recsys.pipeline_config import SourcesConfig
from recsys.ranking.candidates import NeighbourTable


def _matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int):
    import scipy.sparse as sp

    data = np.ones(users.size, dtype=np.float64)
    x = sp.csr_matrix((data, (users, items)), shape=(n_users, n_items))
    x.data[:] = 1.0  # duplicates collapse to one binary entry
    return x


# EASE's table: the global budget's bounds per row, as multiples of `neighbours`
_ROW_CAP, _ROW_FLOOR = 3.0, 0.25


def _table_by_global_budget(block: np.ndarray, ids: np.ndarray, per_row: int):
    """The entries of a square dense block with the largest absolute values, `per_row` per row on average,
    each row keeping between `_ROW_FLOOR` and `_ROW_CAP` times `per_row` of its nonzero entries."""
    n = block.shape[1]
    key = np.abs(block)
    if per_row >= n:
        keep = key > 0
    else:
        cap, floor = min(n, int(per_row * _ROW_CAP)), max(1, int(per_row * _ROW_FLOOR))
        budget = per_row * block.shape[0]
        overall = np.partition(key.ravel(), key.size - budget)[key.size - budget]
        parted = np.partition(key, sorted({n - cap, n - floor}), axis=1)  # one pass for both ranks per row
        row_cap = parted[:, n - cap][:, None]  # each row's cap-th largest
        row_floor = parted[:, n - floor][:, None]
        del parted
        keep = (key > 0) & (((key >= overall) & (key >= row_cap)) | (key >= row_floor))
    r, c = np.nonzero(keep)
    return ids[r], ids[c], block[r, c]


def _csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int) -> NeighbourTable:
    order = np.lexsort((-np.abs(vals), rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.add.at(offsets, rows + 1, 1)
    return NeighbourTable(np.cumsum(offsets), cols.astype(np.int32), vals.astype(np.float32))


def fit_ease(x, eligible: np.ndarray, n_items: int, cfg: SourcesConfig) -> NeighbourTable:
    """EASE over the `eligible` item columns of `x`, as a top-N neighbour table over all `n_items` rows."""
    import scipy.linalg as sl

    xk = x[:, eligible]
    gram = (xk.T @ xk).toarray().astype(np.float32)  # float32: half the memory and time, enough with lambda
    gram[np.diag_indices_from(gram)] += cfg.ease_lambda
    factor, lower = sl.cho_factor(gram, overwrite_a=True, check_finite=False)
    # The inverse straight from the Cholesky factor (LAPACK potri: about a third of the time of solving
    # against the identity), which fills one triangle; the other is mirrored from it.
    (potri,) = sl.lapack.get_lapack_funcs(("potri",), (factor,))
    p, info = potri(factor, lower=lower, overwrite_c=True)
    if info != 0:
        raise ValueError(f"EASE: the regularised Gram matrix is not positive definite (potri info {info})")
    other = np.tri(p.shape[0], k=-1, dtype=bool)  # strictly below the diagonal
    np.copyto(p, p.T, where=other if not lower else other.T)
    b = p / (-np.diag(p))
    np.fill_diagonal(b, 0.0)
    del p
    rows, cols, vals = _table_by_global_budget(b, eligible, cfg.neighbours)
    return _csr(rows, cols, vals, n_items)


def fit_item_knn(x, n_items: int, cfg: SourcesConfig) -> NeighbourTable:
    """Shrunk cosine item-kNN from the sparse co-occurrence matrix, top-N neighbours per item."""
    import scipy.sparse as sp

    counts = np.asarray(x.sum(axis=0)).ravel()
    co = (x.T @ x).tocsr()
    co.setdiag(0.0)
    co.eliminate_zeros()
    coo = co.tocoo()
    norm = np.sqrt(counts[coo.row] * counts[coo.col]) + cfg.knn_shrink
    sim = sp.csr_matrix((coo.data / norm, (coo.row, coo.col)), shape=co.shape)
    rows_out, cols_out, vals_out = [], [], []
    for i in range(n_items):
        lo, hi = sim.indptr[i], sim.indptr[i + 1]
        if hi == lo:
            continue
        idx, val = sim.indices[lo:hi], sim.data[lo:hi]
        if val.size > cfg.neighbours:
            keep = np.argpartition(-val, cfg.neighbours - 1)[: cfg.neighbours]
            idx, val = idx[keep], val[keep]
        rows_out.append(np.full(idx.size, i))
        cols_out.append(idx)
        vals_out.append(val)
    if not rows_out:
        return NeighbourTable.empty(n_items)
    return _csr(np.concatenate(rows_out), np.concatenate(cols_out), np.concatenate(vals_out), n_items)


def fit_neighbours(
    user_idx: np.ndarray, item_idx: np.ndarray, n_users: int, n_items: int, cfg: SourcesConfig
) -> tuple[NeighbourTable, dict[str, Any]]:
    """The neighbour table of one window's (user, item) pairs (item_idx = catalogue rows), and facts about it.

    Pairs must come in each user's time order (oldest first): item-kNN keeps each user's latest items.
    """
    started = time.perf_counter()
    x = _matrix(user_idx, item_idx, n_users, n_items)
    counts = np.asarray(x.sum(axis=0)).ravel()
    eligible = np.nonzero(counts >= cfg.min_item_count)[0]
    method = cfg.item_item
    if method == "auto":
        method = "ease" if 0 < eligible.size <= cfg.ease_max_items else "knn"
    if eligible.size == 0:
        table, method = NeighbourTable.empty(n_items), "none"
    elif method == "ease":
        if eligible.size > cfg.ease_max_items:  # forced EASE on a big catalogue: the most popular items
            eligible = np.sort(np.argsort(-counts, kind="stable")[: cfg.ease_max_items])
        table = fit_ease(x, eligible, n_items, cfg)
    else:
        # the latest knn_max_history items of each user (pairs are in time order)
        from_end = _rank_from_end(user_idx)
        keep = from_end < cfg.knn_max_history
        table = fit_item_knn(_matrix(user_idx[keep], item_idx[keep], n_users, n_items), n_items, cfg)
    return table, {
        "method": method,
        "items_modelled": int(eligible.size),
        "neighbour_entries": int(table.neighbours.size),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _rank_from_end(user_idx: np.ndarray) -> np.ndarray:
    """0 for each user's last pair, 1 for the one before, ... (pairs grouped by user, in order)."""
    n = user_idx.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    is_end = np.r_[user_idx[1:] != user_idx[:-1], True]
    group_end = np.minimum.accumulate(np.where(is_end, np.arange(n), n)[::-1])[::-1]
    return group_end - np.arange(n)
