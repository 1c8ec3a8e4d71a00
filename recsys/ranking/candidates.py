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

import numpy as np

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

    def scores(self, rows: np.ndarray, row_weights: np.ndarray | None = None) -> np.ndarray:
        """Dense [n] sum over `rows` of their neighbour weights (times `row_weights`)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(self.n, dtype=np.float64)
        if rows.size == 0 or self.neighbours.size == 0:
            return out
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        if total == 0:
            return out
        # Positions of every neighbour of every row, without a Python loop.
        owner = np.repeat(np.arange(rows.size), lengths)
        pos = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths) + np.repeat(starts, lengths)
        w = self.weights[pos].astype(np.float64)
        if row_weights is not None:
            w = w * np.asarray(row_weights, dtype=np.float64)[owner]
        return np.bincount(self.neighbours[pos], weights=w, minlength=self.n)

    def nearest(self, anchors: np.ndarray, row: int) -> int | None:
        """The anchor row whose neighbour list gives `row` the largest positive weight (None: none does)."""
        best, best_w = None, 0.0
        for a in np.asarray(anchors, dtype=np.int64).tolist():
            lo, hi = int(self.offsets[a]), int(self.offsets[a + 1])
            hit = np.nonzero(self.neighbours[lo:hi] == row)[0]
            if hit.size and float(self.weights[lo + hit[0]]) > best_w:
                best, best_w = a, float(self.weights[lo + hit[0]])
        return best


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

    @property
    def n(self) -> int:
        return int(self.popularity.shape[0])

    @functools.cached_property
    def category_codes(self) -> np.ndarray:
        """Each row's category as an integer code (0..number of categories - 1), once per catalogue."""
        return np.unique(np.asarray(self.category), return_inverse=True)[1].reshape(-1).astype(np.int64)

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
    source: list[str]
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # per source, aligned with rows

    def __len__(self) -> int:
        return int(self.rows.shape[0])


def source_scores(cat: Catalogue, user: UserState, cfg: SourceSettings) -> dict[str, np.ndarray]:
    """Every source's dense score over the catalogue for one user."""
    hist = np.asarray(user.history, dtype=np.int64)
    if user.user_vector is not None and np.any(user.user_vector):
        tt = cat.video_embeddings @ np.asarray(user.user_vector, dtype=np.float32)
    else:
        tt = np.zeros(cat.n, dtype=np.float32)
    recent = hist[::-1][: cfg.recent_events]
    decay = cfg.recent_decay ** np.arange(recent.size, dtype=np.float64)
    return {
        "two_tower": tt,  # float32: exact in float64 wherever it is compared with or stacked beside the others
        "item_item": cat.neighbours.scores(hist),
        "recent": cat.neighbours.scores(recent, decay),
        "popularity": np.asarray(cat.popularity, dtype=np.float64),
    }


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
) -> np.ndarray:
    """The `n` best rows of a dense score vector, best first, only `eligible` rows (a bool per row, see
    `eligible_rows`); ties go to the lower row.

    `positive_only` leaves out rows scored 0 or less (a neighbour source that does not reach them), so only
    the rows the source reaches are ranked. `order` (every row by descending score, then row, e.g. the
    popularity order precomputed per catalogue) answers by walking its head instead of partitioning.
    """
    size = scores.shape[0]
    if n <= 0 or size == 0:
        return np.zeros(0, dtype=np.int64)
    if order is not None:
        head = order[: n + size - int(np.count_nonzero(eligible))]
        keep = head[eligible[head]]
        if positive_only:
            keep = keep[scores[keep] > 0]
        return keep[:n].astype(np.int64)
    rows = np.flatnonzero(eligible & (scores > 0 if positive_only else np.isfinite(scores)))
    vals = scores[rows]
    if rows.size > n:
        nth = np.partition(vals, rows.size - n)[rows.size - n]  # the n-th largest score
        above = vals > nth
        tied = np.flatnonzero(vals == nth)[: n - int(np.count_nonzero(above))]  # lowest rows first
        pick = np.concatenate([np.flatnonzero(above), tied])
        rows, vals = rows[pick], vals[pick]
    return rows[np.lexsort((rows, -vals))].astype(np.int64)


def user_candidates(
    cat: Catalogue, user: UserState, cfg: SourceSettings, now_ts: float, allowed: np.ndarray | None = None
) -> CandidateSet:
    """The union of the sources' top-N for one user, with the ranker's features (CANDIDATE_FEATURES order).

    `allowed` (a bool mask over rows) restricts candidates, e.g. to one category.
    """
    excluded = np.asarray(user.history if user.exclude is None else user.exclude, dtype=np.int64)
    eligible = eligible_rows(cat.n, excluded, allowed)  # once for the four sources
    scores = source_scores(cat, user, cfg)
    has_vector = user.user_vector is not None and bool(np.any(user.user_vector))
    tops = {
        src: top_rows(
            scores[src],
            cfg.per_source,
            eligible,
            positive_only=src in ("item_item", "recent"),
            order=cat.popularity_order if src == "popularity" else None,
        )
        if (src != "two_tower" or has_vector)
        else np.zeros(0, np.int64)
        for src in SOURCES
    }
    rows = np.unique(np.concatenate([tops[src] for src in SOURCES]))
    ranks = np.full((len(SOURCES), rows.size), float(cfg.per_source))
    for j, src in enumerate(SOURCES):
        pos = np.searchsorted(rows, tops[src])
        ranks[j, pos] = np.arange(tops[src].size)
    hist = np.asarray(user.history, dtype=np.int64)
    if hist.size:  # the share of the user's history in each candidate's category
        codes = cat.category_codes
        affinity = (np.bincount(codes[hist], minlength=int(codes.max()) + 1) / hist.size)[codes[rows]]
    else:
        affinity = np.zeros(rows.size)
    upload = np.asarray(cat.upload_ts[rows], dtype=np.float64)
    age = np.clip((now_ts - upload) / SECONDS_PER_DAY, 0.0, None)
    since = (
        MISSING_DAYS if user.last_ts is None else max(0.0, (now_ts - float(user.last_ts)) / SECONDS_PER_DAY)
    )
    cols: list[np.ndarray] = []
    for j, src in enumerate(SOURCES):
        cols += [scores[src][rows], ranks[j]]
    cols += [
        (ranks < cfg.per_source).sum(axis=0).astype(np.float64),
        np.asarray(cat.trending[rows], dtype=np.float64),
        age,
        affinity,
        np.full(rows.size, np.log1p(hist.size)),
        np.full(rows.size, since),
    ]
    features = (
        np.nan_to_num(np.column_stack(cols), nan=0.0, posinf=0.0, neginf=0.0)
        if rows.size
        else np.zeros((0, len(CANDIDATE_FEATURES)))
    )
    best = ranks.argmin(axis=0) if rows.size else np.zeros(0, np.int64)
    return CandidateSet(
        rows=rows,
        features=features,
        source=[SOURCES[i] for i in best.tolist()],
        scores={src: scores[src][rows] for src in SOURCES},
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
