"""Sampled negatives: a mix of popularity-proportional and uniform draws, never an item the user has seen."""

from __future__ import annotations

import numpy as np
import polars as pl

from recsys.data import schema as s

EVENT_TS = "event_ts"


def sample_negatives(
    positives: pl.DataFrame,
    seen: pl.DataFrame,
    video_ids: np.ndarray,
    popularity: np.ndarray,
    per_positive: int,
    popularity_share: float,
    seed: int,
) -> pl.DataFrame:
    """`per_positive` negatives for each row of `positives` (user_id, video_id), as (user_id, video_id).

    Draws `popularity_share` of them by popularity (hard negatives: a ranker cannot just learn popularity)
    and the rest uniformly over the catalogue; draws a user has seen (`seen`: user_id, video_id) are
    rejected and redrawn (up to 3 rounds; a user who has seen nearly everything gets fewer negatives).
    """
    rng = np.random.default_rng(seed)
    n_items = len(video_ids)
    if positives.is_empty() or n_items == 0:
        return pl.DataFrame(schema={s.USER_ID: pl.String, s.VIDEO_ID: pl.String})
    p = np.asarray(popularity, dtype=np.float64) + 1e-3
    cdf = np.cumsum(p / p.sum())
    users = positives[s.USER_ID].to_numpy()
    wanted = np.repeat(users, per_positive)
    # An EVENT_TS column (the positive's time) is carried over to its negatives.
    carry = np.repeat(np.arange(positives.height), per_positive)  # each draw's positive row
    seen_keys = seen.select(s.USER_ID, s.VIDEO_ID).unique()
    out: list[pl.DataFrame] = []
    for _ in range(3):
        if wanted.size == 0:
            break
        by_pop = rng.random(wanted.size) < popularity_share
        idx = np.where(
            by_pop,
            np.minimum(np.searchsorted(cdf, rng.random(wanted.size)), n_items - 1),
            rng.integers(0, n_items, wanted.size),
        )
        draw = pl.DataFrame({s.USER_ID: wanted, s.VIDEO_ID: video_ids[idx], "_pos": carry})
        ok = draw.join(seen_keys, on=[s.USER_ID, s.VIDEO_ID], how="anti")
        out.append(ok)
        missing = draw.join(seen_keys, on=[s.USER_ID, s.VIDEO_ID], how="semi")
        wanted = missing[s.USER_ID].to_numpy()
        carry = missing["_pos"].to_numpy()
    if not out:
        return pl.DataFrame(schema={s.USER_ID: pl.String, s.VIDEO_ID: pl.String})
    negatives = pl.concat(out)
    if EVENT_TS in positives.columns:
        negatives = negatives.with_columns(positives[EVENT_TS].gather(negatives["_pos"]).alias(EVENT_TS))
    return negatives.drop("_pos")
