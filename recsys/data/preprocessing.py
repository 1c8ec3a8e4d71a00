"""Preprocessing with polars: interactions in, training tables out (pure functions, no I/O).

Steps: dedupe exact duplicate rows -> weight each event (event type x watch ratio, or the explicit
`weight` column) -> aggregate per (user, video) -> positives are pairs with weight > min_weight ->
temporal split -> user and video features from train only -> video catalogue (every known video,
also those without interactions) -> vocabularies -> ranker training and evaluation candidate lists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from recsys.data import schema as s
from recsys.data.negatives import EVENT_TS, sample_negatives
from recsys.data.split import ORDER, split_pairs
from recsys.data.windows import label_window
from recsys.errors import ValidationError
from recsys.pipeline_config import PipelineConfig

TRENDING_DAYS = 14
MAX_AFFINITY_CATEGORIES = 10
MIN_USERS = 2
MIN_VIDEOS = 2


@dataclass
class Preprocessed:
    """Every table preprocessing produces (see docs/ml.md for the columns)."""

    train: pl.DataFrame  # positive train pairs: user_id, video_id, weight, first_ts, last_ts, _order
    test: pl.DataFrame  # held-out positive pairs: user_id, video_id, weight, first_ts, last_ts, _order
    seen: pl.DataFrame  # every train-period pair incl. non-positive ones (skips): user_id, video_id
    catalog: pl.DataFrame  # video_catalog: video_id, category, duration, upload_ts, popularity, trending, ...
    user_features: pl.DataFrame  # online user items (category_affinity as a JSON string)
    video_features: pl.DataFrame  # online video items without the embedding
    ranker_train: pl.DataFrame  # user_id, video_id, label
    ranker_test: pl.DataFrame  # user_id, video_id, label (held-out positives + sampled negatives)
    window_fit: pl.DataFrame  # train pairs the sources fit on for the ranker (train minus window_label)
    window_label: pl.DataFrame  # train pairs the ranker learns to find
    window_user_features: pl.DataFrame  # user features of window_fit (the two-tower trains on that window)
    vocabularies: dict[str, list[str]]
    reference_ts: int  # "now" of the training data: the last train timestamp
    stats: dict[str, Any] = field(default_factory=dict)


def preprocess(
    interactions: pl.DataFrame,
    videos: pl.DataFrame | None,
    config: PipelineConfig,
) -> Preprocessed:
    """Run every preprocessing step on validated interactions (and optional video metadata)."""
    if interactions.is_empty():
        raise ValidationError("no interactions to preprocess", hint="import a file with at least one row")
    raw_rows = interactions.height
    n_users = interactions[s.USER_ID].n_unique()
    if n_users < MIN_USERS or interactions[s.VIDEO_ID].n_unique() < MIN_VIDEOS:
        raise ValidationError(
            f"too little data to train a recommender: {n_users} user(s), "
            f"{interactions[s.VIDEO_ID].n_unique()} video(s)",
            hint=f"import interactions of at least {MIN_USERS} users and {MIN_VIDEOS} videos",
        )
    has_ts = s.TIMESTAMP in interactions.columns and interactions[s.TIMESTAMP].null_count() < raw_rows
    events = interactions.unique(maintain_order=True)  # exact duplicate rows (double-logged events)
    duplicates = raw_rows - events.height
    events = events.with_row_index(s.ROW)
    catalog_meta = _video_metadata(events, videos)
    events = _weigh(events, catalog_meta, config)

    pairs = events.group_by(s.USER_ID, s.VIDEO_ID).agg(
        pl.col(s.WEIGHT).sum(),
        pl.len().alias("n_events"),
        pl.col(s.TIMESTAMP).min().alias("first_ts"),
        pl.col(s.TIMESTAMP).max().alias("last_ts"),
        pl.col(s.ROW).min().alias("first_row"),
        pl.col(s.WATCH_RATIO).mean().alias(s.WATCH_RATIO),
    )
    # Order within the data: the first interaction time, file order for ties and missing timestamps
    # (rows without a timestamp count as older than every timestamped row of the same user).
    pairs = pairs.with_columns(
        pl.struct(pl.col("first_ts").fill_null(-(2**62)), "first_row").rank("ordinal").alias(ORDER)
    )
    # group_by order is arbitrary: sort so that splits and sampled negatives are the same on every run.
    pairs = pairs.sort(s.USER_ID, ORDER)
    positive = pairs.filter(pl.col(s.WEIGHT) > config.weights.min_weight)
    if positive.is_empty():
        raise ValidationError(
            "no positive interactions: every (user, video) pair has weight <= weights.min_weight",
            hint="check the event_type values and config.weights.event_weights",
        )
    train, test = split_pairs(positive, config.split)
    train_users = train.select(s.USER_ID).unique()
    test = test.join(train_users, on=s.USER_ID, how="semi")
    # Seen = every train-period pair (also skips), so recommendations and negatives exclude them.
    test_keys = test.select(s.USER_ID, s.VIDEO_ID)
    seen = pairs.select(s.USER_ID, s.VIDEO_ID).join(test_keys, on=[s.USER_ID, s.VIDEO_ID], how="anti")
    train_events = events.join(test_keys, on=[s.USER_ID, s.VIDEO_ID], how="anti")

    reference_ts = _reference_ts(train_events, catalog_meta, has_ts)
    catalog = _catalog(catalog_meta, train, train_events, reference_ts, has_ts)
    user_features = _user_features(train, catalog, has_ts)
    window_fit, window_label, window_how, window_cutoff = label_window(train, config, has_ts)
    video_features = catalog.select(
        s.VIDEO_ID, s.CATEGORY, s.DURATION, s.UPLOAD_TS, s.INTERACTION_COUNT, s.POPULARITY, s.AVG_WATCH_RATIO
    )
    vocabularies = {
        "user_ids": sorted(train_users[s.USER_ID].to_list()),
        "video_ids": sorted(train[s.VIDEO_ID].unique().to_list()),
        "categories": sorted(catalog[s.CATEGORY].unique().to_list()),
    }
    ranker_train, ranker_test = _ranker_sets(train, test, pairs, catalog, config)
    n_users = pairs[s.USER_ID].n_unique()
    stats = {
        "raw_rows": raw_rows,
        "duplicate_rows_removed": duplicates,
        "pairs": pairs.height,
        "positive_pairs": positive.height,
        "train_pairs": train.height,
        "test_pairs": test.height,
        "users": n_users,
        "train_users": train_users.height,
        "test_users": test[s.USER_ID].n_unique(),
        "train_only_users": train_users.height - test[s.USER_ID].n_unique(),
        "videos": catalog.height,
        "videos_without_interactions": int((catalog[s.INTERACTION_COUNT] == 0).sum()),
        "categories": len(vocabularies["categories"]),
        "time_source": "timestamp" if has_ts else "file_order",
        "split": config.split.strategy,
        "ranker_train_rows": ranker_train.height,
        "ranker_test_rows": ranker_test.height,
        "reference_ts": reference_ts,
        "window": {
            "how": window_how,
            "cutoff_ts": window_cutoff,
            "fit_pairs": window_fit.height,
            "label_pairs": window_label.height,
        },
    }
    if test.is_empty():
        raise ValidationError(
            f"nothing to evaluate: no user has more than {config.split.min_train_items} positive items "
            f"({n_users} users, {positive.height} positive pairs)",
            hint="import more interactions per user, or lower config.split.min_train_items",
        )
    return Preprocessed(
        train=train.select(s.USER_ID, s.VIDEO_ID, s.WEIGHT, "first_ts", "last_ts", ORDER),
        test=test.select(s.USER_ID, s.VIDEO_ID, s.WEIGHT, "first_ts", "last_ts", ORDER),
        seen=seen,
        catalog=catalog,
        user_features=user_features,
        video_features=video_features,
        ranker_train=ranker_train,
        ranker_test=ranker_test,
        window_fit=window_fit.select(s.USER_ID, s.VIDEO_ID, s.WEIGHT, "first_ts", "last_ts", ORDER),
        window_label=window_label.select(s.USER_ID, s.VIDEO_ID, s.WEIGHT, "first_ts", "last_ts", ORDER),
        window_user_features=_user_features(window_fit, catalog, has_ts),
        vocabularies=vocabularies,
        reference_ts=reference_ts,
        stats=stats,
    )


def _video_metadata(events: pl.DataFrame, videos: pl.DataFrame | None) -> pl.DataFrame:
    """One row per known video: the metadata file's rows plus any video that only appears in events."""
    seen_ids = events.select(s.VIDEO_ID).unique()
    observed = events.group_by(s.VIDEO_ID).agg(
        (pl.col(s.WATCH_TIME).max() if s.WATCH_TIME in events.columns else pl.lit(None, pl.Float64)).alias(
            "_w"
        ),
    )
    if videos is None or videos.is_empty():
        meta = seen_ids.with_columns(
            pl.lit(None, pl.String).alias(s.CATEGORY),
            pl.lit(None, pl.Float64).alias(s.DURATION),
            pl.lit(None, pl.Int64).alias(s.UPLOAD_TS),
        )
    else:
        cols = [c for c in s.VIDEO_COLUMNS if c in videos.columns]
        meta = videos.select(cols).unique(subset=s.VIDEO_ID, keep="first", maintain_order=True)
        for col, dtype in ((s.CATEGORY, pl.String), (s.DURATION, pl.Float64), (s.UPLOAD_TS, pl.Int64)):
            if col not in meta.columns:
                meta = meta.with_columns(pl.lit(None, dtype).alias(col))
        extra = seen_ids.join(meta.select(s.VIDEO_ID), on=s.VIDEO_ID, how="anti")
        meta = pl.concat([meta, extra], how="diagonal")
    meta = meta.join(observed, on=s.VIDEO_ID, how="left")
    # Missing metadata: the category "unknown", the longest watch time as duration, the first view as upload.
    return meta.select(
        s.VIDEO_ID,
        pl.col(s.CATEGORY).cast(pl.String).fill_null(s.UNKNOWN_CATEGORY),
        pl.col(s.DURATION).cast(pl.Float64).fill_null(pl.col("_w").cast(pl.Float64)).fill_null(0.0),
        pl.col(s.UPLOAD_TS).cast(pl.Int64),
    )


def _weigh(events: pl.DataFrame, meta: pl.DataFrame, config: PipelineConfig) -> pl.DataFrame:
    w = config.weights
    for col, dtype in (
        (s.TIMESTAMP, pl.Int64),
        (s.EVENT_TYPE, pl.String),
        (s.WATCH_TIME, pl.Float64),
        (s.WEIGHT, pl.Float64),
    ):
        if col not in events.columns:
            events = events.with_columns(pl.lit(None, dtype).alias(col))
    events = events.join(meta.select(s.VIDEO_ID, s.DURATION), on=s.VIDEO_ID, how="left")
    ratio = (
        pl.when(pl.col(s.DURATION) > 0)
        .then((pl.col(s.WATCH_TIME) / pl.col(s.DURATION)).clip(0.0, 1.0))
        .otherwise(None)
    )
    event_w = (
        pl.col(s.EVENT_TYPE)
        .str.to_lowercase()
        .replace_strict(w.event_weights, default=w.default_event_weight, return_dtype=pl.Float64)
        .fill_null(w.default_event_weight)
    )
    derived = event_w * (1.0 + w.watch_ratio_factor * pl.col(s.WATCH_RATIO).fill_null(0.0))
    return (
        events.with_columns(ratio.alias(s.WATCH_RATIO))
        .with_columns(pl.coalesce(pl.col(s.WEIGHT).cast(pl.Float64), derived).alias(s.WEIGHT))
        .drop(s.DURATION)
    )


def _reference_ts(train_events: pl.DataFrame, meta: pl.DataFrame, has_ts: bool) -> int:
    if has_ts and train_events[s.TIMESTAMP].null_count() < train_events.height:
        return int(train_events[s.TIMESTAMP].max())
    upload = meta[s.UPLOAD_TS].drop_nulls()
    return int(upload.max()) if upload.len() else 0


def _catalog(
    meta: pl.DataFrame, train: pl.DataFrame, train_events: pl.DataFrame, reference_ts: int, has_ts: bool
) -> pl.DataFrame:
    counts = train.group_by(s.VIDEO_ID).agg(pl.len().alias(s.INTERACTION_COUNT))
    if has_ts:
        recent_from = reference_ts - TRENDING_DAYS * 86_400
        recent = train.filter(pl.col("first_ts") >= recent_from)
    else:  # file-order fallback: the last 10% of train pairs are "recent"
        recent = train.filter(pl.col(ORDER) >= pl.col(ORDER).quantile(0.9))
    recent = recent.group_by(s.VIDEO_ID).agg(pl.len().alias("_recent"))
    # Without upload metadata a video counts as uploaded at its first TRAIN interaction (never a test one:
    # that would leak the held-out period), else at the reference time (unseen videos are new).
    watch = train_events.group_by(s.VIDEO_ID).agg(
        pl.col(s.WATCH_RATIO).mean().alias(s.AVG_WATCH_RATIO), pl.col(s.TIMESTAMP).min().alias("_first")
    )
    cat = (
        meta.join(counts, on=s.VIDEO_ID, how="left")
        .join(recent, on=s.VIDEO_ID, how="left")
        .join(watch, on=s.VIDEO_ID, how="left")
        .with_columns(
            pl.col(s.INTERACTION_COUNT).fill_null(0).cast(pl.Int64),
            pl.col("_recent").fill_null(0),
            pl.col(s.AVG_WATCH_RATIO).fill_null(0.0),
            pl.col(s.UPLOAD_TS).fill_null(pl.col("_first")).fill_null(reference_ts),
        )
    )
    max_count = max(int(cat[s.INTERACTION_COUNT].max() or 0), 1)
    max_recent = max(int(cat["_recent"].max() or 0), 1)
    return (
        cat.with_columns(
            (pl.col(s.INTERACTION_COUNT) / max_count).alias(s.POPULARITY),
            (pl.col("_recent") / max_recent).cast(pl.Float64).alias(s.TRENDING),
        )
        .drop("_recent")
        .sort(s.VIDEO_ID)
    )


def user_features(pairs: pl.DataFrame, catalog: pl.DataFrame, has_ts: bool) -> pl.DataFrame:
    """Per-user features of positive pairs (needs user_id, video_id, weight, last_ts): the online user items."""
    return _user_features(pairs, catalog, has_ts)


def _user_features(train: pl.DataFrame, catalog: pl.DataFrame, has_ts: bool) -> pl.DataFrame:
    with_cat = train.join(catalog.select(s.VIDEO_ID, s.CATEGORY), on=s.VIDEO_ID, how="left")
    per_cat = (
        with_cat.group_by(s.USER_ID, s.CATEGORY)
        .agg(pl.col(s.WEIGHT).sum().alias("_w"))
        .with_columns((pl.col("_w") / pl.col("_w").sum().over(s.USER_ID)).alias("_share"))
        .sort([s.USER_ID, "_share", s.CATEGORY], descending=[False, True, False])
    )
    top = per_cat.group_by(s.USER_ID, maintain_order=True).agg(
        pl.col(s.CATEGORY).head(MAX_AFFINITY_CATEGORIES).alias("_cats"),
        pl.col("_share").head(MAX_AFFINITY_CATEGORIES).alias("_shares"),
    )
    base = train.group_by(s.USER_ID).agg(
        pl.len().alias(s.INTERACTION_COUNT),
        pl.col(s.WEIGHT).sum().alias("total_weight"),
        pl.col("last_ts").max().alias("last_interaction_ts"),
    )
    out = base.join(top, on=s.USER_ID, how="left").sort(s.USER_ID)
    affinity = [
        json.dumps({c: round(float(v), 4) for c, v in zip(cats, shares, strict=True)})
        for cats, shares in zip(out["_cats"].to_list(), out["_shares"].to_list(), strict=True)
    ]
    top_category = [cats[0] if cats else None for cats in out["_cats"].to_list()]
    last_ts = pl.col("last_interaction_ts") if has_ts else pl.lit(None, pl.Int64)
    return out.select(
        s.USER_ID,
        pl.col(s.INTERACTION_COUNT).cast(pl.Int64),
        pl.col("total_weight").cast(pl.Float64),
        last_ts.cast(pl.Int64).alias("last_interaction_ts"),
    ).with_columns(
        pl.Series("top_category", top_category, dtype=pl.String),
        pl.Series("category_affinity", affinity, dtype=pl.String),
        pl.Series("top_categories", [c or [] for c in out["_cats"].to_list()], dtype=pl.List(pl.String)),
    )


def _ranker_sets(
    train: pl.DataFrame,
    test: pl.DataFrame,
    pairs: pl.DataFrame,
    catalog: pl.DataFrame,
    config: PipelineConfig,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    neg = config.negatives
    ids = catalog[s.VIDEO_ID].to_numpy()
    pop = catalog[s.POPULARITY].to_numpy()
    # Heavy users would dominate: keep each user's most recent positives only.
    pos_train = (
        train.with_columns(pl.col(ORDER).rank("ordinal", descending=True).over(s.USER_ID).alias("_r"))
        .filter(pl.col("_r") <= neg.max_positives_per_user)
        .select(s.USER_ID, s.VIDEO_ID, pl.col("first_ts").cast(pl.Int64).alias(EVENT_TS))
    )
    all_seen = pairs.select(s.USER_ID, s.VIDEO_ID)
    neg_train = sample_negatives(
        pos_train, all_seen, ids, pop, neg.per_positive, neg.popularity_share, neg.seed
    )
    neg_test = sample_negatives(
        test.select(s.USER_ID, s.VIDEO_ID),
        all_seen,
        ids,
        pop,
        neg.per_positive,
        neg.popularity_share,
        neg.seed + 1,
    ).unique(maintain_order=True)

    def label(pos: pl.DataFrame, negs: pl.DataFrame) -> pl.DataFrame:
        # event_ts: the time the ranker's features are computed at (point in time: the positive's time for
        # training rows, so "age" and "recency" mean what they mean at serving; null = reference_ts).
        if EVENT_TS not in pos.columns:
            pos, negs = (df.with_columns(pl.lit(None, pl.Int64).alias(EVENT_TS)) for df in (pos, negs))
        return pl.concat(
            [
                pos.select(s.USER_ID, s.VIDEO_ID, EVENT_TS).with_columns(pl.lit(1, pl.Int8).alias(s.LABEL)),
                negs.select(s.USER_ID, s.VIDEO_ID, pl.col(EVENT_TS).cast(pl.Int64)).with_columns(
                    pl.lit(0, pl.Int8).alias(s.LABEL)
                ),
            ]
        ).sort(s.USER_ID, maintain_order=True)

    return label(pos_train, neg_train), label(test, neg_test)


def user_history(train: pl.DataFrame, seen: pl.DataFrame, user_features: pl.DataFrame) -> pl.DataFrame:
    """Serving's user_history table: user_id, watched (every train-period video, oldest first), top_categories.

    Order: non-positive pairs (skips) first, then positives by first interaction (`_order`, else `first_ts`),
    so the newest positives are last (serving's recent-activity source reads the tail).
    """
    key = ORDER if ORDER in train.columns else ("first_ts" if "first_ts" in train.columns else None)
    ordered = seen.select(s.USER_ID, s.VIDEO_ID)
    if key is not None:
        ordered = ordered.join(
            train.select(s.USER_ID, s.VIDEO_ID, pl.col(key).alias("_key")),
            on=[s.USER_ID, s.VIDEO_ID],
            how="left",
        ).sort([s.USER_ID, "_key", s.VIDEO_ID], nulls_last=False)
    else:
        ordered = ordered.sort(s.USER_ID, s.VIDEO_ID)
    watched = ordered.group_by(s.USER_ID, maintain_order=True).agg(pl.col(s.VIDEO_ID).alias("watched"))
    return (
        watched.join(user_features.select(s.USER_ID, "top_categories"), on=s.USER_ID, how="left")
        .with_columns(pl.col("top_categories").fill_null([]))
        .sort(s.USER_ID)
    )
