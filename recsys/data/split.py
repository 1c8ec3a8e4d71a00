"""Train/test split of (user, video) pairs: per-user last-N, a global time cutoff, or per-user random.

Ordering uses the pair's first interaction time; without timestamps it uses file order (the `_row`
column), which is the documented fallback. A user keeps at least `min_train_items` items in train;
users with too few items are train-only (they still shape the model, they are not evaluated).
"""

from __future__ import annotations

import polars as pl

from recsys.data import schema as s
from recsys.pipeline_config import SplitConfig

ORDER = "_order"


def split_pairs(pairs: pl.DataFrame, config: SplitConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split positive pairs (needs user_id, video_id, `_order`) into (train, test)."""
    if config.strategy == "global_cutoff":
        cutoff = pairs[ORDER].quantile(config.cutoff_quantile, interpolation="nearest")
        before = pl.col(ORDER) <= cutoff
        n_before = before.cast(pl.Int64).sum().over(s.USER_ID)
        # Users with no history before the cutoff cannot be evaluated: all their items train.
        is_test = ~before & (n_before >= config.min_train_items)
    else:  # random: n_test items per user, or a share of them (test_share)
        if config.strategy == "random":
            key = pl.int_range(pl.len()).shuffle(seed=config.seed).over(s.USER_ID)
        else:
            key = pl.col(ORDER).rank("ordinal").over(s.USER_ID)
        n = pl.len().over(s.USER_ID)
        wanted = (
            (n.cast(pl.Float64) * config.test_share).round().cast(pl.Int64)
            if config.strategy == "random" and config.test_share is not None
            else pl.lit(config.n_test)
        )
        n_test = pl.min_horizontal(wanted, n - config.min_train_items).clip(lower_bound=0)
        rank_from_end = n - pl.col("_k") + 1  # 1 = newest
        pairs = pairs.with_columns(
            _k=key.rank("ordinal").over(s.USER_ID) if config.strategy == "random" else key
        )
        is_test = rank_from_end <= n_test
    marked = pairs.with_columns(_test=is_test)
    train = marked.filter(~pl.col("_test")).drop("_test", "_k", strict=False)
    test = marked.filter(pl.col("_test")).drop("_test", "_k", strict=False)
    return train, test
