"""Every evaluated user's candidates and the lists each source, the ranker and popularity make from them.

The ranker stage uses it to build training rows (candidates of the fit window, labelled by the label window),
the evaluation stage to rank the held-out split: the same code as serving's candidate step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recsys.ranking.candidates import (
    RANKED,
    SOURCES,
    CandidateSet,
    Catalogue,
    SourceSettings,
    UserState,
    order,
    user_candidates,
)


@dataclass
class UserLists:
    """Per user: the candidate set, the relevant rows, and the top `depth` rows of every list."""

    users: list[str]
    candidates: list[CandidateSet]
    relevant: list[np.ndarray]
    lists: dict[str, np.ndarray] = field(default_factory=dict)  # list name -> [n_users, depth], -1 padded


def gather(
    cat: Catalogue,
    states: dict[str, UserState],
    relevant: dict[str, np.ndarray],
    cfg: SourceSettings,
    now_ts: float,
) -> UserLists:
    """Candidates of every user in `relevant` (in its order) that has a state; unknown users get cold ones."""
    users = list(relevant)
    cands = [
        user_candidates(cat, states.get(u) or UserState(np.zeros(0, np.int64)), cfg, now_ts) for u in users
    ]
    return UserLists(users, cands, [relevant[u] for u in users])


def labels_of(lists: UserLists) -> list[np.ndarray]:
    """Per user: 1 for each candidate among the relevant rows."""
    return [np.isin(c.rows, r).astype(np.int8) for c, r in zip(lists.candidates, lists.relevant, strict=True)]


def make_lists(lists: UserLists, ranker_scores: list[np.ndarray] | None, depth: int) -> None:
    """Fill `lists.lists` with the top `depth` rows ranked by the ranker (RANKED) and by each source."""
    names = ([RANKED] if ranker_scores is not None else []) + list(SOURCES)
    for name in names:
        out = np.full((len(lists.users), depth), -1, dtype=np.int64)
        for i, c in enumerate(lists.candidates):
            idx, _ = order(c, name, ranker_scores[i] if name == RANKED and ranker_scores else None)
            if name != RANKED:  # a source alone lists only what it retrieved (or scores above zero)
                idx = idx[c.scores[name][idx] > (0 if name in ("item_item", "recent") else -np.inf)]
            top = c.rows[idx[:depth]]
            out[i, : top.size] = top
        lists.lists[name] = out
