"""Business rules on arrays: watched items out, category filter, diversity cap, fill-up, in O(k) per request.

`select` gives the same picks as the reference walk `recsys.serving.filters.apply_rules` (tests compare
them on random inputs) without a Python loop over rows and without walking the catalogue:

- the ranked candidates (a short list) and any short explicit fill list are walked in one vectorised
  pass (a running count per category, the k-th accepted row ends the walk);
- a long fill list (popular, trending) is a `FillOrder` precomputed once per model version: its head is
  walked in a few bounded vectorised chunks; when that does not give k items (one category dominates the
  head and is full), the rest comes from the per-category sub-lists, at most `room + need` rows each,
  merged back into the list's order;
- a catalogue with one category (e.g. every video "unknown") or a request for one category has no cap:
  the cap could only be relaxed again at the end, so the result is the same and nothing is walked twice.

Rows are catalogue rows (ints); categories are integer codes (`ServingModel.category_codes`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from recsys.ranking.row_sets import member_of, run_starts, sorted_unique

# How many rows of a FillOrder's head the chunked walk may look at, beyond `need` and the blocked rows.
HEAD_WALK_EXTRA = 256
# The first rows of a ranked list walked at once (`select(ranked_free=True)`); the rest only when needed.
RANKED_CHUNK = 64
ORIGINS = ("model", "popular", "trending")


@dataclass(frozen=True)
class FillOrder:
    """A fill-up list precomputed per model version: rows in order, each row's position, per-category lists."""

    rows: np.ndarray
    position: np.ndarray  # [n_videos]: index of the row in `rows` (n_videos when absent)
    by_category: list[np.ndarray]  # rows of category code c, in this order
    positions_by_category: list[np.ndarray]  # their positions (ascending)

    @classmethod
    def build(cls, rows: np.ndarray, codes: np.ndarray, n_categories: int) -> FillOrder:
        """The order of `rows` (catalogue rows, no duplicates) over a catalogue with category `codes`."""
        rows = np.asarray(rows, dtype=np.int64)
        n = int(codes.shape[0])
        position = np.full(n, n, dtype=np.int64)
        position[rows] = np.arange(rows.shape[0])
        row_codes = codes[rows]
        order = np.argsort(row_codes, kind="stable")
        bounds = np.searchsorted(row_codes[order], np.arange(n_categories + 1))
        by_cat = [rows[order[bounds[c] : bounds[c + 1]]] for c in range(n_categories)]
        pos_by_cat = [order[bounds[c] : bounds[c + 1]].astype(np.int64) for c in range(n_categories)]
        return cls(rows, position, by_cat, pos_by_cat)

    def __len__(self) -> int:
        return int(self.rows.shape[0])


@dataclass(frozen=True)
class Fill:
    """One fill-up source: a FillOrder (long) or an explicit row array (short), the catalogue-wide
    scores shown for its items (`scores[row]`) and their origin (`popular`, `trending`)."""

    rows: FillOrder | np.ndarray
    scores: np.ndarray
    origin: str


@dataclass
class Selection:
    """The chosen items in order: rows, shown scores and origins (`model`, `popular`, `trending`)."""

    rows: np.ndarray
    scores: np.ndarray
    origins: list[str]

    def __len__(self) -> int:
        return int(self.rows.shape[0])


@dataclass
class _State:
    codes: np.ndarray
    k: int
    cap: int
    allowed: int | None
    excluded_given: np.ndarray  # as the caller gave it: sorted and made unique only when first needed
    counts: np.ndarray
    taken: list[np.ndarray] = field(default_factory=list)
    picks: list[tuple[np.ndarray, np.ndarray, str]] = field(default_factory=list)
    overflow: list[tuple[np.ndarray, np.ndarray, str]] = field(default_factory=list)
    n_picks: int = 0

    @functools.cached_property
    def excluded(self) -> np.ndarray:
        return sorted_unique(self.excluded_given)

    @property
    def need(self) -> int:
        return self.k - self.n_picks

    def blocked(self, rows: np.ndarray) -> np.ndarray:
        out = member_of(rows, self.excluded)
        if self.taken:
            out |= member_of(rows, np.concatenate(self.taken))
        if self.allowed is not None:
            out |= self.codes[rows] != self.allowed
        return out

    def n_blocked_upper(self) -> int:
        return len(self.excluded_given) + sum(len(t) for t in self.taken)


def _cumcount(codes: np.ndarray) -> np.ndarray:
    """For each position, how many earlier positions have the same code."""
    if codes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    order = codes.argsort(kind="stable")
    sorted_codes = codes[order]
    idx = np.arange(codes.shape[0])
    first = np.maximum.accumulate(np.where(run_starts(sorted_codes), idx, 0))
    out = np.empty_like(idx)
    out[order] = idx - first
    return out


def _first_occurrences(rows: np.ndarray) -> np.ndarray:
    keep = np.zeros(rows.shape[0], dtype=bool)
    keep[np.unique(rows, return_index=True)[1]] = True
    return keep


def _walk(
    state: _State, rows: np.ndarray, scores: np.ndarray, origin: str, unique: bool = False, free: bool = False
) -> None:
    """Consider `rows` in order (as the reference walk does) until k items are picked. `free`: no row is
    blocked (unique, never excluded, taken or outside the allowed category), so nothing is checked."""
    if state.need <= 0 or rows.shape[0] == 0:
        return
    if not free:
        ok = ~state.blocked(rows)
        if not unique:
            ok &= _first_occurrences(rows)
        rows, scores = rows[ok], scores[ok]
        if rows.shape[0] == 0:
            return
    cats = state.codes[rows]
    accept = state.counts[cats] + _cumcount(cats) < state.cap
    accepted = accept.cumsum()
    if accepted[-1] >= state.need:  # the need-th accepted row ends the walk
        end = int(accepted.searchsorted(state.need)) + 1
        rows, scores, accept, cats = rows[:end], scores[:end], accept[:end], cats[:end]
    state.taken.append(rows)
    state.picks.append((rows[accept], scores[accept], origin))
    state.overflow.append((rows[~accept], scores[~accept], origin))
    state.counts += np.bincount(cats[accept], minlength=state.counts.shape[0])
    state.n_picks += int(np.count_nonzero(accept))


def _category_head(state: _State, order: FillOrder, c: int, start_pos: int, want: int) -> np.ndarray:
    """The first `want` unblocked rows of category `c` at positions >= start_pos (in order)."""
    rows, pos = order.by_category[c], order.positions_by_category[c]
    begin = int(np.searchsorted(pos, start_pos))
    size = want + 8
    while True:
        head = rows[begin : begin + size]
        free = head[~state.blocked(head)]
        if free.shape[0] >= want or begin + size >= rows.shape[0]:
            return free[:want]
        size *= 4


def _fill_from_order(state: _State, fill: Fill) -> None:
    """Walk a precomputed FillOrder: a bounded head in chunks, then per category from where it stopped."""
    order = fill.rows
    assert isinstance(order, FillOrder)
    pos = 0
    limit = min(len(order), 4 * (state.k + state.n_blocked_upper()) + HEAD_WALK_EXTRA)
    while state.need > 0 and pos < limit:
        chunk = max(2 * state.need + 16, 64)
        end = min(limit, pos + chunk)
        rows = order.rows[pos:end]
        _walk(state, rows, fill.scores[rows], fill.origin, unique=True)
        pos = end
    if state.need <= 0 or pos >= len(order):
        return
    # The head did not give k items: take each category's next rows (room + need at most), in list order.
    need = state.need
    categories = range(len(order.by_category)) if state.allowed is None else [state.allowed]
    heads = []
    for c in categories:
        room = max(0, state.cap - int(state.counts[c]))
        head = _category_head(state, order, c, pos, room + need)
        heads.append((head, np.arange(head.shape[0]) < room))
    if not heads:
        return
    rows = np.concatenate([h for h, _ in heads])
    within_room = np.concatenate([w for _, w in heads])
    by_pos = np.argsort(order.position[rows], kind="stable")
    rows, within_room = rows[by_pos], within_room[by_pos]
    accepted = np.cumsum(within_room)
    if accepted.shape[0] and accepted[-1] >= need:
        end = int(np.searchsorted(accepted, need)) + 1
        rows, within_room = rows[:end], within_room[:end]
    scores = fill.scores[rows]
    state.taken.append(rows)
    state.picks.append((rows[within_room], scores[within_room], fill.origin))
    state.overflow.append((rows[~within_room], scores[~within_room], fill.origin))
    state.counts += np.bincount(state.codes[rows[within_room]], minlength=state.counts.shape[0])
    state.n_picks += int(within_room.sum())


def _concat(parts: list[tuple[np.ndarray, np.ndarray, str]]) -> Selection:
    if not parts:
        return Selection(np.zeros(0, dtype=np.int64), np.zeros(0), [])
    rows = np.concatenate([p[0] for p in parts]).astype(np.int64)
    scores = np.concatenate([np.asarray(p[1], dtype=np.float64) for p in parts])
    origins = [o for r, _, o in parts for _ in range(r.shape[0])]
    return Selection(rows, scores, origins)


def select(
    ranked_rows: np.ndarray,
    ranked_scores: np.ndarray,
    codes: np.ndarray,
    n_categories: int,
    k: int,
    excluded: np.ndarray,
    fills: list[Fill],
    cap: int | None,
    allowed: int | None = None,
    ranked_free: bool = False,
) -> Selection:
    """Pick k items: ranked candidates under the cap, then each fill source in order, then the cap relaxed.

    A FillOrder may only be the last fill source (the walk over it stops early).

    `excluded`: rows that never appear (sorted or not); `allowed`: the only category code allowed (a
    request for one category); `cap`: items per category, None for no cap; `ranked_free`: the ranked rows
    hold no row twice, none excluded or outside `allowed` (the candidate step's output), so they are walked
    unchecked, a short head first (k items usually come from the first few rows).
    """
    state = _State(
        codes=codes,
        k=k,
        cap=k if cap is None else cap,
        allowed=allowed,
        excluded_given=excluded,
        counts=np.zeros(max(n_categories, 1), dtype=np.int64),
    )
    ranked_rows = np.asarray(ranked_rows, dtype=np.int64)
    ranked_scores = np.asarray(ranked_scores, np.float64)
    if ranked_free:
        start = 0
        while state.need > 0 and start < ranked_rows.shape[0]:
            end = start + max(2 * state.need + 16, RANKED_CHUNK)
            _walk(state, ranked_rows[start:end], ranked_scores[start:end], "model", free=True)
            start = end
    else:
        _walk(state, ranked_rows, ranked_scores, "model")
    for i, fill in enumerate(fills):
        if state.need <= 0:
            break
        if isinstance(fill.rows, FillOrder):
            if i != len(fills) - 1:
                raise ValueError("a FillOrder must be the last fill source")
            _fill_from_order(state, fill)
        else:
            rows = np.asarray(fill.rows, dtype=np.int64)
            _walk(state, rows, fill.scores[rows], fill.origin)
    picks = _concat(state.picks)
    if len(picks) < k:  # the catalogue cannot satisfy the cap: relax it rather than return fewer
        extra = _concat(state.overflow)
        take = k - len(picks)
        picks = Selection(
            np.concatenate([picks.rows, extra.rows[:take]]),
            np.concatenate([picks.scores, extra.scores[:take]]),
            picks.origins + extra.origins[:take],
        )
    return picks
