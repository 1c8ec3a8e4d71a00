"""The ranker's windows inside the training split: the sources fit on one part, the ranker learns from the rest."""

from __future__ import annotations

import polars as pl

from recsys.data import schema as s
from recsys.pipeline_config import PipelineConfig

FIRST_TS = "first_ts"


def label_window(
    train: pl.DataFrame, config: PipelineConfig, has_ts: bool
) -> tuple[pl.DataFrame, pl.DataFrame, str, int | None]:
    """(fit pairs, label pairs, how, cutoff time) of the ranker's windows inside the training split.

    `time`: pairs first seen after the (1 - label_share) quantile of the train times are labels (a global
    cutoff, so every feature is computed before it). `random`: a seeded random `label_share` of each user's
    pairs (at least one pair per user stays in fit). `auto` follows the evaluation split: random when the
    split is random or there are no timestamps, else time.
    """
    cfg = config.sources
    how = cfg.label_window
    if how == "auto":
        how = "random" if (config.split.strategy == "random" or not has_ts) else "time"
    if how == "time" and has_ts and train[FIRST_TS].null_count() < train.height:
        ts = train[FIRST_TS].fill_null(train[FIRST_TS].min())
        cutoff = int(ts.quantile(1.0 - cfg.label_share, interpolation="nearest"))
        is_label = ts > cutoff
        return train.filter(~is_label), train.filter(is_label), "time", cutoff
    key = pl.int_range(pl.len()).shuffle(seed=cfg.seed).over(s.USER_ID).rank("ordinal").over(s.USER_ID)
    n = pl.len().over(s.USER_ID)
    n_label = (n.cast(pl.Float64) * cfg.label_share).round().cast(pl.Int64).clip(0, None)
    n_label = pl.min_horizontal(n_label, n - 1)
    marked = train.with_columns(_lab=key > (n - n_label))
    return (
        marked.filter(~pl.col("_lab")).drop("_lab"),
        marked.filter(pl.col("_lab")).drop("_lab"),
        "random",
        None,
    )
