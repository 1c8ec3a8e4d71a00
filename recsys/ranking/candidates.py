"""Candidate sources at scoring time and the ranker's per-source features (numpy only: training and serving).

Four sources score a user against the whole catalogue:

- `two_tower`: dot product of the user's vector with each video's embedding (TFRS two-tower);
- `item_item`: the sum of the item-item neighbour weights from every video in the user's history (EASE or
  item-kNN, fitted in `recsys.sources`, served as a sparse top-N neighbour table);
- `recent`: the same neighbour table from the user's last `recent_events` videos only, newest weighted most
  (`recent_decay` ** position);
- `popularity`: the video's popularity in the fit window.

Each source's top `per_source` unseen videos form the candidate set (their union). Every candidate gets every
source's score (not just the sources that retrieved it) and its rank in each source (`per_source` when that
source did not retrieve it), plus popularity, trending, age, the user's affinity for its category and the
user's activity: `CANDIDATE_FEATURES`, in model order. Training (`recsys.stages.ranker`), evaluation and
serving all call `user_candidates`, so the features cannot skew between them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsys.ranking.row_sets import expand_ranges, member_of, run_starts, sorted_unique

SECONDS_PER_DAY = 86_400.0
MISSING_DAYS = 3650.0
SOURCES: tuple[str, ...] = ("two_tower", "item_item", "recent", "popularity")
# Model order. Never reorder without retraining: the ranker's artifacts record this list.
CANDIDATE_FEATURES: list[str] = [
    *(f"{src}_{what}" for src in SOURCES for what in ("score", "rank")),
    "n_sources",
    "trending",
    "video_age_days",
    "category_affinity",
    "user_log_items",
    "user_days_since_last",
]
RANKED = "ranker"  # the served choice when the ranked list beats every single source
_COLUMN = {name: i for i, name in enumerate(CANDIDATE_FEATURES)}
_SCORE_COLUMNS = [_COLUMN[f"{src}_score"] for src in SOURCES]
_RANK_COLUMNS = [_COLUMN[f"{src}_rank"] for src in SOURCES]
_SOURCE_CODES = np.arange(len(SOURCES))


@dataclass(frozen=True)
class SparseScores:
    """A source's scores on the rows it reaches (sorted unique rows); every other row scores 0."""

    rows: np.ndarray  # int64, ascending
    values: np.ndarray  # float64

    @classmethod
    def empty(cls) -> SparseScores:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float64))


def scores_at(sets: list[SparseScores], rows: np.ndarray) -> list[np.ndarray]:
    """Each of `sets`' scores of `rows` (0 where a set does not reach a row); sets on the same rows array
    (`sparse_score_sets`) share one search."""
    out: list[np.ndarray] = []
    found: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (reached rows, positions, hit mask)
    for s in sets:
        scores = np.zeros(rows.shape[0], dtype=np.float64)
        if s.rows.size and rows.size:
            if found is None or found[0] is not s.rows:
                pos = np.minimum(s.rows.searchsorted(rows), s.rows.size - 1)
                hit = s.rows[pos] == rows
                found = (s.rows, pos[hit], hit)
            scores[found[2]] = s.values[found[1]]
        out.append(scores)
    return out


@dataclass(frozen=True)
class NeighbourHits:
    """A user's history rows' neighbour entries grouped by the row they reach: which history row (`owner`,
    an index into the history) gives each reached row what weight. Kept from the candidate step so that a
    reason ("because you watched ...") needs no second read of the neighbour lists."""

    rows: np.ndarray  # the reached rows, ascending (SparseScores.rows)
    group_start: np.ndarray  # bool per entry: the first entry of its reached row
    owner: np.ndarray  # per entry: its history row's index in the history
    weight: np.ndarray  # per entry: the neighbour weight

    def nearest(self, rows: np.ndarray, first_owner: int = 0) -> np.ndarray:
        """Per row of `rows`: the history index (at least `first_owner`) whose neighbour list gives it the
        largest positive weight, the latest on ties, or -1 where none does. The same anchor as
        `NeighbourTable.nearest(history[first_owner:][::-1], rows)`, as an index into the history."""
        rows = np.asarray(rows, dtype=np.int64)
        best = np.full(rows.size, -1, dtype=np.int64)
        if not rows.size or not self.rows.size:
            return best
        slot = np.minimum(self.rows.searchsorted(rows), self.rows.size - 1)
        starts = np.append(self.group_start.nonzero()[0], self.owner.size)
        lengths = np.where(self.rows[slot] == rows, starts[slot + 1] - starts[slot], 0)
        which, entry = expand_ranges(starts[slot], lengths)
        if not entry.size:
            return best
        owner, weight = self.owner[entry], self.weight[entry]
        ok = (weight > 0) & (owner >= first_owner)
        which, owner, weight = which[ok], owner[ok], weight[ok]
        if not which.size:
            return best
        order = np.lexsort((-owner, -weight, which))  # per row: the largest weight, then the latest owner
        which, owner = which[order], owner[order]
        first = run_starts(which)
        best[which[first]] = owner[first]
        return best


@dataclass(frozen=True)
class NeighbourTable:
    """Item-item weights as CSR over catalogue rows: the top-N neighbours of row i and their weights."""

    offsets: np.ndarray  # int64 [n + 1]
    neighbours: np.ndarray  # int32 [nnz]
    weights: np.ndarray  # float32 [nnz]

    @classmethod
    def empty(cls, n: int) -> NeighbourTable:
        """A table without neighbours (a version trained before item-item sources existed)."""
        return cls(np.zeros(n + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))

    @property
    def n(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def _entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index into `rows` of the owner, position in the table) of every neighbour entry of `rows`,
        without a Python loop."""
        rows = np.asarray(rows, dtype=np.int64)
        empty = np.zeros(0, dtype=np.int64)
        if rows.size == 0 or self.neighbours.size == 0:
            return empty, empty
        starts = self.offsets[rows]
        return expand_ranges(starts, self.offsets[rows + 1] - starts)

    def sparse_scores(self, rows: np.ndarray, row_weights: np.ndarray | None = None) -> SparseScores:
        """The sum over `rows` of their neighbour weights (times `row_weights`), on the rows it reaches only:
        the cost follows the neighbours read, not the catalogue."""
        return self.sparse_score_sets(rows, [row_weights])[0]

    def sparse_score_sets(self, rows: np.ndarray, weight_sets: list[np.ndarray | None]) -> list[SparseScores]:
        """`sparse_scores(rows, w)` for each `w` of `weight_sets` (None: every row weighs 1), from one read of
        the neighbour lists: every set is on the rows that any of `rows` reaches, and scores 0 where its
        weights give nothing (e.g. the recent-activity weights, 0 beyond the last events)."""
        return self.score_sets_and_hits(rows, weight_sets)[0]

    def score_sets_and_hits(
        self, rows: np.ndarray, weight_sets: list[np.ndarray | None]
    ) -> tuple[list[SparseScores], NeighbourHits]:
        """`sparse_score_sets`, and the entries it read grouped by reached row (`NeighbourHits`)."""
        owner, pos = self._entries(rows)
        if not pos.size:
            empty = np.zeros(0, np.int64)
            hits = NeighbourHits(empty, np.zeros(0, bool), empty, np.zeros(0))
            return [SparseScores.empty() for _ in weight_sets], hits
        # The entries sorted by (neighbour, position): one sort of packed int64 keys is several times faster
        # than an argsort, and each neighbour's weights are summed in their original order (as bincount).
        keys = (self.neighbours[pos].astype(np.int64) << 32) | np.arange(pos.size, dtype=np.int64)
        keys.sort()
        reached = keys >> 32
        first = run_starts(reached)
        slot = first.cumsum() - 1
        entry = keys & 0xFFFFFFFF
        w = self.weights[pos[entry]].astype(np.float64)
        owner = owner[entry]
        out = []
        reached_rows = reached[first]  # one array for every set: `scores_at` searches it once for all
        for row_weights in weight_sets:
            weighted = w if row_weights is None else w * np.asarray(row_weights, np.float64)[owner]
            out.append(SparseScores(reached_rows, np.bincount(slot, weights=weighted)))
        return out, NeighbourHits(reached_rows, first, owner, w)

    def scores(self, rows: np.ndarray, row_weights: np.ndarray | None = None) -> np.ndarray:
        """Dense [n] sum over `rows` of their neighbour weights (times `row_weights`)."""
        sparse = self.sparse_scores(rows, row_weights)
        out = np.zeros(self.n, dtype=np.float64)
        out[sparse.rows] = sparse.values
        return out

    def nearest(self, anchors: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Per row of `rows`: the anchor whose neighbour list gives it the largest positive weight (the first
        such anchor on ties), or -1 where none does. One pass over the anchors' lists for all rows."""
        anchors, rows = np.asarray(anchors, dtype=np.int64), np.asarray(rows, dtype=np.int64)
        best = np.full(rows.size, -1, dtype=np.int64)
        owner, pos = self._entries(anchors)
        if rows.size == 0 or not pos.size:
            return best
        # The few entries that reach `rows` first, then their weights (not every entry's).
        keep = np.flatnonzero(member_of(self.neighbours[pos], rows, self.n))
        owner, pos = owner[keep], pos[keep]
        weight = self.weights[pos]
        positive = weight > 0
        owner, target, weight = (
            owner[positive],
            self.neighbours[pos[positive]].astype(np.int64),
            weight[positive],
        )
        if not target.size:
            return best
        order = np.lexsort((owner, -weight, target))  # per target: largest weight, then the earliest anchor
        target, owner = target[order], owner[order]
        first = run_starts(target)
        winners = dict(zip(target[first].tolist(), anchors[owner[first]].tolist(), strict=True))
        return np.fromiter((winners.get(r, -1) for r in rows.tolist()), np.int64, rows.size)


@dataclass(frozen=True)
class SourceSettings:
    """How candidates are gathered (recorded with the ranker; serving uses the same values)."""

    per_source: int = 100
    recent_events: int = 10
    recent_decay: float = 0.7

    def to_dict(self) -> dict[str, float]:
        return {
            "per_source": self.per_source,
            "recent_events": self.recent_events,
            "recent_decay": self.recent_decay,
        }


@dataclass(frozen=True)
class Catalogue:
    """The catalogue arrays the sources score (row i = one video)."""

    video_embeddings: np.ndarray  # float32 [n, d]
    popularity: np.ndarray  # [n], 0..1 in the fit window
    trending: np.ndarray  # [n], 0..1 over the fit window's last days
    category: np.ndarray  # str [n]
    upload_ts: np.ndarray  # int [n]
    neighbours: NeighbourTable
    # An approximate index over video_embeddings (serving's HNSW graph for large catalogues): the two-tower
    # top list comes from it instead of scoring every row. None: exact.
    ann_index: Any = None

    @property
    def n(self) -> int:
        return int(self.popularity.shape[0])

    @functools.cached_property
    def category_codes(self) -> np.ndarray:
        """Each row's category as an integer code (0..number of categories - 1), once per catalogue."""
        return np.unique(np.asarray(self.category), return_inverse=True)[1].reshape(-1).astype(np.int64)

    @functools.cached_property
    def n_categories(self) -> int:
        """How many category codes there are (once per catalogue)."""
        return int(self.category_codes.max()) + 1 if self.category_codes.size else 0

    @functools.cached_property
    def popularity_order(self) -> np.ndarray:
        """Every row by descending popularity, then row (the popularity source's top list, once)."""
        pop = np.asarray(self.popularity, dtype=np.float64)
        return np.lexsort((np.arange(pop.shape[0]), -pop))


@dataclass
class UserState:
    """What the sources know about one user: history rows oldest first, vector, exclusions, last time."""

    history: np.ndarray
    user_vector: np.ndarray | None = None
    exclude: np.ndarray | None = None  # rows never recommended (defaults to the history)
    last_ts: float | None = None


@dataclass
class CandidateSet:
    """A user's candidates: catalogue rows, their feature matrix and each row's best-ranked source."""

    rows: np.ndarray
    features: np.ndarray  # [len(rows), len(CANDIDATE_FEATURES)]
    best_source: np.ndarray  # per row, the index in SOURCES of the source that ranks it best
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # per source, aligned with rows
    hits: NeighbourHits | None = None  # the history's neighbour entries by reached row (for reasons)

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    @property
    def source(self) -> list[str]:
        """Each row's best-ranked source by name."""
        return [SOURCES[i] for i in self.best_source.tolist()]


def eligible_rows(n_rows: int, excluded: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """A bool per row: True unless the row is `excluded` or outside the `allowed` mask."""
    eligible = np.ones(n_rows, dtype=bool) if allowed is None else np.array(allowed, dtype=bool)
    eligible[np.asarray(excluded, dtype=np.int64)] = False
    return eligible


def top_rows(
    scores: np.ndarray,
    n: int,
    eligible: np.ndarray,
    positive_only: bool = False,
    order: np.ndarray | None = None,
    ineligible: int | None = None,
) -> np.ndarray:
    """The `n` best rows of a dense score vector, best first, only `eligible` rows (a bool per row, see
    `eligible_rows`); ties go to the lower row.

    `positive_only` leaves out rows scored 0 or less (a neighbour source that does not reach them), so only
    the rows the source reaches are ranked. `order` (every row by descending score, then row, e.g. the
    popularity order precomputed per catalogue) answers by walking its head instead of partitioning; the head
    is `n` plus the rows not eligible, counted unless `ineligible` (an upper bound of them) is given (a count
    over a catalogue of 1M rows costs about 40 us).
    """
    size = scores.shape[0]
    if n <= 0 or size == 0:
        return np.zeros(0, dtype=np.int64)
    if order is not None:
        if ineligible is None:
            ineligible = size - int(np.count_nonzero(eligible))
        head = order[: n + ineligible]
        keep = head[eligible[head]]
        if positive_only:
            keep = keep[scores[keep] > 0]
        return keep[:n].astype(np.int64)
    rows = np.flatnonzero(eligible & (scores > 0 if positive_only else np.isfinite(scores)))
    return _best(rows, scores[rows], n)


def top_reached(scores: SparseScores, n: int, reached_ok: np.ndarray) -> np.ndarray:
    """`top_rows(dense, n, eligible, positive_only=True)` of sparse scores: the same rows, same order.
    `reached_ok`: a bool per row of `scores.rows`, whether it may be a candidate (`eligible[scores.rows]`)."""
    if n <= 0 or not scores.rows.size:
        return np.zeros(0, dtype=np.int64)
    keep = reached_ok & (scores.values > 0)
    return _best(scores.rows[keep], scores.values[keep], n)


def _best(rows: np.ndarray, vals: np.ndarray, n: int) -> np.ndarray:
    """The `n` best of ascending `rows` by `vals`, best first, ties to the lower row."""
    if rows.size > n:
        part = vals.copy()
        part.partition(rows.size - n)
        pick = (vals >= part[rows.size - n]).nonzero()[0]  # at or above the n-th largest: n, more on ties
        rows, vals = rows[pick], vals[pick]
    return rows[np.lexsort((rows, -vals))[:n]].astype(np.int64, copy=False)


def user_candidates(
    cat: Catalogue,
    user: UserState,
    cfg: SourceSettings,
    now_ts: float,
    allowed: np.ndarray | None = None,
    keep_hits: bool = False,
) -> CandidateSet:
    """The union of the sources' top-N for one user, with the ranker's features (CANDIDATE_FEATURES order).

    `allowed` (a bool mask over rows) restricts candidates, e.g. to one category. `keep_hits`: the set keeps
    the neighbour entries it read (`NeighbourHits`, for serving's reasons); training and evaluation, which
    hold thousands of candidate sets, do not.
    """
    excluded = np.asarray(user.history if user.exclude is None else user.exclude, dtype=np.int64)
    # A category asked for: a mask over the catalogue, once for every source. Otherwise each source's rows
    # are checked against the few excluded rows.
    eligible = eligible_rows(cat.n, excluded, allowed) if allowed is not None else None
    hist = np.asarray(user.history, dtype=np.int64)
    n_recent = min(cfg.recent_events, hist.size)  # the last events, newest weighted most
    recent_weights = np.zeros(hist.size)
    recent_weights[hist.size - n_recent :] = cfg.recent_decay ** np.arange(
        n_recent - 1, -1, -1, dtype=np.float64
    )
    (item_item, recent_scores), hits = cat.neighbours.score_sets_and_hits(hist, [None, recent_weights])
    reached = item_item.rows  # the rows both neighbour sources reach (one array)
    reached_ok = ~member_of(reached, excluded) if eligible is None else eligible[reached]
    if eligible is None:  # the head of the popularity order, less the excluded rows in it
        head = cat.popularity_order[: cfg.per_source + excluded.size]
        popular = head[~member_of(head, excluded)][: cfg.per_source].astype(np.int64)
    else:
        popular = top_rows(cat.popularity, cfg.per_source, eligible, order=cat.popularity_order)
    tops = {
        "two_tower": np.zeros(0, np.int64),
        "item_item": top_reached(item_item, cfg.per_source, reached_ok),
        "recent": top_reached(recent_scores, cfg.per_source, reached_ok),
        "popularity": popular,
    }
    vector = None if user.user_vector is None else np.asarray(user.user_vector, dtype=np.float32)
    has_vector = vector is not None and bool(vector.any())
    dense_tt: np.ndarray | None = None
    if has_vector:
        if cat.ann_index is not None:  # approximate top list, exact scores for every candidate below
            tops["two_tower"] = cat.ann_index.search(vector, cfg.per_source, allowed, excluded).rows
        else:
            dense_tt = cat.video_embeddings @ vector
            mask = eligible if eligible is not None else eligible_rows(cat.n, excluded, allowed)
            tops["two_tower"] = top_rows(dense_tt, cfg.per_source, mask)
    listed = [tops[src] for src in SOURCES]
    sizes = [t.size for t in listed]
    every = np.concatenate(listed)
    rows = sorted_unique(every)
    # Each listed row's rank in its source, in one scatter; `per_source` where a source did not list it.
    ranks = np.full((len(SOURCES), rows.size), float(cfg.per_source))
    ranks[_SOURCE_CODES.repeat(sizes), rows.searchsorted(every)] = np.concatenate(
        [np.arange(n) for n in sizes]
    )
    if hist.size:  # the share of the user's history in each candidate's category
        codes = cat.category_codes
        affinity = (np.bincount(codes[hist], minlength=cat.n_categories) / hist.size)[codes[rows]]
    else:
        affinity = np.zeros(rows.size)
    since = (
        MISSING_DAYS if user.last_ts is None else max(0.0, (now_ts - float(user.last_ts)) / SECONDS_PER_DAY)
    )
    features = np.empty((rows.size, len(CANDIDATE_FEATURES)))  # columns in model order (_COLUMN)
    two_tower, item_item_col, recent_col, popularity_col = _SCORE_COLUMNS
    if dense_tt is not None:
        features[:, two_tower] = dense_tt[rows]
    elif has_vector:
        features[:, two_tower] = cat.video_embeddings[rows] @ vector  # float32, exact in float64
    else:
        features[:, two_tower] = 0.0
    features[:, item_item_col], features[:, recent_col] = scores_at([item_item, recent_scores], rows)
    features[:, popularity_col] = cat.popularity[rows]
    features[:, _RANK_COLUMNS] = ranks.T
    features[:, _COLUMN["n_sources"]] = np.add.reduce(ranks < cfg.per_source, axis=0)
    features[:, _COLUMN["trending"]] = cat.trending[rows]
    features[:, _COLUMN["video_age_days"]] = np.maximum((now_ts - cat.upload_ts[rows]) / SECONDS_PER_DAY, 0.0)
    features[:, _COLUMN["category_affinity"]] = affinity
    features[:, _COLUMN["user_log_items"]] = np.log1p(hist.size)  # the same for every candidate
    features[:, _COLUMN["user_days_since_last"]] = since
    scores = {src: features[:, j] for src, j in zip(SOURCES, _SCORE_COLUMNS, strict=True)}  # every row's
    if not np.isfinite(features).all():
        np.nan_to_num(features, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    best = ranks.argmin(axis=0) if rows.size else np.zeros(0, np.int64)
    return CandidateSet(
        rows=rows,
        features=features,
        best_source=best,
        scores=scores,
        hits=hits if keep_hits else None,
    )


def order(
    cands: CandidateSet, choice: str, ranker_scores: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(positions into the candidate set, best first; their scores) under the served `choice`.

    `choice` is RANKED (the ranker's scores) or one source's name (that source's score alone).
    """
    if choice == RANKED:
        if ranker_scores is None:
            raise ValueError("the ranked list needs ranker scores")
        s = np.asarray(ranker_scores, dtype=np.float64)
    else:
        s = np.asarray(cands.scores[choice], dtype=np.float64)
    idx = np.lexsort((cands.rows, -s))
    return idx, s[idx]
