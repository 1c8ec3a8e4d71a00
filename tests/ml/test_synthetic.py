"""The synthetic generator: deterministic, long-tailed, with learnable structure."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recsys.data.synthetic import SyntheticSpec, generate
from recsys.errors import ValidationError


def test_deterministic_under_a_seed():
    a, b = generate(SyntheticSpec(seed=3)), generate(SyntheticSpec(seed=3))
    assert a.interactions.equals(b.interactions) and a.videos.equals(b.videos)
    assert not a.interactions.equals(generate(SyntheticSpec(seed=4)).interactions)


def test_demo_sizes_and_schema():
    d = generate()
    assert d.interactions.height == 10_000 and d.videos.height == 500 and d.users.height == 1000
    assert d.interactions.columns == ["user_id", "video_id", "timestamp", "event_type", "watch_time"]
    assert set(d.interactions["event_type"].unique()) == {"view", "like", "share", "skip", "complete"}
    assert d.interactions["timestamp"].is_sorted()
    joined = d.interactions.join(d.videos, on="video_id")
    assert (joined["watch_time"] <= joined["duration"] + 0.1).all()
    assert (joined["timestamp"] >= joined["upload_ts"]).all()


def test_long_tail_popularity_and_skewed_activity():
    inter = generate().interactions
    per_video = np.sort(inter["video_id"].value_counts()["count"].to_numpy())[::-1]
    top_share = per_video[: len(per_video) // 10].sum() / per_video.sum()
    assert top_share > 0.4  # the top 10% of videos get a large share of the views
    per_user = inter["user_id"].value_counts()["count"].to_numpy()
    assert (per_user <= 2).mean() > 0.15  # many users with one or two interactions
    assert per_user.max() > 10 * np.median(per_user)  # a few heavy users


def test_users_prefer_categories():
    d = generate()
    joined = d.interactions.join(d.videos, on="video_id")
    top_share = (
        joined.group_by("user_id", "category")
        .len()
        .with_columns((pl.col("len") / pl.col("len").sum().over("user_id")).alias("share"))
        .group_by("user_id")
        .agg(pl.col("share").max(), pl.col("len").sum().alias("n"))
        .filter(pl.col("n") >= 10)
    )
    assert top_share["share"].mean() > 0.5  # vs 1/12 for a user without preferences


def test_invalid_sizes():
    with pytest.raises(ValidationError, match="n_users"):
        generate(SyntheticSpec(n_users=0))


def test_ids_are_shaped_like_the_reference_examples():
    """`GET /recommendations/12345` and an interaction with video 101 name a user and a video of the demo data."""
    d = generate()
    assert d.users["user_id"].to_list()[:2] == ["12000", "12001"]
    assert d.videos["video_id"].to_list()[:2] == ["1", "2"]
    assert all(i.isdigit() for i in d.interactions["user_id"].unique().to_list())
    assert "12345" in set(d.interactions["user_id"]) and "101" in set(d.interactions["video_id"])
