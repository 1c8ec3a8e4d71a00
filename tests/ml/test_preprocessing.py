"""Preprocessing: weights, dedupe, splits (with and without timestamps), catalogue, features, bad data."""

from __future__ import annotations

import json

import polars as pl
import pytest

from recsys.data.preprocessing import preprocess
from recsys.data.split import split_pairs
from recsys.data.synthetic import SyntheticSpec, generate
from recsys.errors import ValidationError
from recsys.pipeline_config import SplitConfig, resolve_config


def _small():
    return generate(SyntheticSpec(n_users=200, n_videos=120, n_interactions=3000, seed=9))


def test_last_n_split_holds_out_each_users_newest_items():
    d = _small()
    pre = preprocess(d.interactions, d.videos, resolve_config(None))
    train_last = pre.train.group_by("user_id").agg(pl.col("first_ts").max().alias("train_max"))
    test_first = (
        pre.test.join(pre.train.select("user_id").unique(), on="user_id")
        .join(
            d.interactions.group_by("user_id", "video_id").agg(pl.col("timestamp").min().alias("ts")),
            on=["user_id", "video_id"],
        )
        .group_by("user_id")
        .agg(pl.col("ts").min().alias("test_min"))
    )
    both = train_last.join(test_first, on="user_id")
    assert both.height > 0 and (both["test_min"] >= both["train_max"]).all()
    assert pre.test.group_by("user_id").len()["len"].max() <= 2
    assert pre.stats["time_source"] == "timestamp"
    # No test pair is also a train pair, and every test user is a train user.
    assert pre.test.join(pre.train, on=["user_id", "video_id"]).height == 0
    assert set(pre.test["user_id"]) <= set(pre.train["user_id"])


def test_without_timestamps_file_order_is_the_time():
    d = _small()
    no_ts = d.interactions.drop("timestamp")
    pre = preprocess(no_ts, d.videos, resolve_config(None))
    assert pre.stats["time_source"] == "file_order"
    assert pre.test.height > 0 and pre.train.height > 0
    # The same split as with timestamps, because the file is in time order.
    with_ts = preprocess(d.interactions, d.videos, resolve_config(None))
    key = ["user_id", "video_id"]
    assert set(pre.test.select(key).iter_rows()) == set(with_ts.test.select(key).iter_rows())
    assert pre.user_features["last_interaction_ts"].null_count() == pre.user_features.height


def test_global_cutoff_and_random_split():
    pairs = pl.DataFrame(
        {
            "user_id": ["a"] * 4 + ["b"] * 4,
            "video_id": list("wxyz") * 2,
            "_order": [1, 2, 3, 8, 4, 5, 6, 7],
        }
    )
    train, test = split_pairs(pairs, SplitConfig(strategy="global_cutoff", cutoff_quantile=0.75))
    assert sorted(test.select("user_id", "video_id").rows()) == [("a", "z"), ("b", "z")]
    train, test = split_pairs(pairs, SplitConfig(strategy="random", n_test=1, seed=1))
    assert test.group_by("user_id").len()["len"].to_list() == [1, 1] and train.height == 6


def test_weights_dedupe_and_skips():
    inter = pl.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u1", "u2", "u2", "u2", "u2"],
            "video_id": ["a", "a", "b", "c", "a", "b", "c", "d"],
            "timestamp": [1, 1, 2, 3, 4, 5, 6, 7],
            "event_type": ["like", "like", "skip", "view", "view", "share", "complete", "view"],
        }
    )
    pre = preprocess(inter, None, resolve_config({"split": {"n_test": 1, "min_train_items": 1}}))
    assert pre.stats["duplicate_rows_removed"] == 1
    # u1's skip of b is not a positive, but it counts as seen.
    assert ("u1", "b") not in set(pre.train.select("user_id", "video_id").rows())
    assert ("u1", "b") in set(pre.seen.rows())
    weights = dict(
        zip(zip(pre.train["user_id"], pre.train["video_id"], strict=True), pre.train["weight"], strict=True)
    )
    assert weights[("u1", "a")] == pytest.approx(2.0)  # one like (the duplicate row is dropped)
    # Videos without metadata get the documented defaults.
    assert set(pre.catalog["category"]) == {"unknown"}


def test_videos_without_interactions_are_in_the_catalogue():
    d = _small()
    extra = pl.DataFrame(
        {
            "video_id": ["never-watched"],
            "category": ["music"],
            "duration": [100.0],
            "upload_ts": [1_790_000_000],
        }
    )
    pre = preprocess(d.interactions, pl.concat([d.videos, extra]), resolve_config(None))
    row = pre.catalog.filter(pl.col("video_id") == "never-watched")
    assert row["interaction_count"].to_list() == [0] and row["popularity"].to_list() == [0.0]
    assert "never-watched" not in pre.vocabularies["video_ids"]  # embedded from its features, not its id


def test_user_features_affinity_sums_to_one():
    d = _small()
    pre = preprocess(d.interactions, d.videos, resolve_config(None))
    for text, top in pre.user_features.select("category_affinity", "top_category").iter_rows():
        aff = json.loads(text)
        assert sum(aff.values()) == pytest.approx(1.0, abs=0.01) and max(aff, key=aff.get) == top


def test_ranker_sets_have_negatives_the_user_never_saw():
    d = _small()
    pre = preprocess(d.interactions, d.videos, resolve_config(None))
    for rows in (pre.ranker_train, pre.ranker_test):
        negatives = rows.filter(pl.col("label") == 0)
        assert negatives.height > 0
        assert negatives.join(pre.seen, on=["user_id", "video_id"]).height == 0


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            pl.DataFrame(
                {"user_id": [], "video_id": []}, schema={"user_id": pl.String, "video_id": pl.String}
            ),
            "no interactions",
        ),
        (pl.DataFrame({"user_id": ["u1"] * 5, "video_id": list("abcde")}), "1 user"),
        (
            pl.DataFrame({"user_id": ["u1", "u2"], "video_id": ["a", "b"], "event_type": ["skip", "skip"]}),
            "no positive interactions",
        ),
        (pl.DataFrame({"user_id": ["u1", "u2", "u2"], "video_id": ["a", "b", "a"]}), "nothing to evaluate"),
    ],
)
def test_bad_data_is_a_clear_error(frame, message):
    with pytest.raises(ValidationError, match=message):
        preprocess(frame, None, resolve_config(None))


def test_config_errors_name_the_key():
    with pytest.raises(ValidationError, match=r"two_tower\.epoch"):
        resolve_config({"two_tower": {"epoch": 3}})
    with pytest.raises(ValidationError, match=r"split\.strategy"):
        resolve_config({"split": {"strategy": "sideways"}})
    assert resolve_config({"weights": {"event_weights": {"skip": 0.5}}}).weights.event_weights["like"] == 2.0


def test_preprocessing_is_deterministic():
    d = _small()
    a = preprocess(d.interactions, d.videos, resolve_config(None))
    b = preprocess(d.interactions.sample(fraction=1.0, seed=1), d.videos, resolve_config(None))
    assert a.ranker_train.equals(preprocess(d.interactions, d.videos, resolve_config(None)).ranker_train)
    # Row order of the input matters only through file order; with timestamps the split is the same.
    key = ["user_id", "video_id"]
    assert set(a.test.select(key).iter_rows()) == set(b.test.select(key).iter_rows())


def test_ranker_training_rows_are_point_in_time():
    d = _small()
    pre = preprocess(d.interactions, d.videos, resolve_config(None))
    rows = pre.ranker_train
    positives = rows.filter(pl.col("label") == 1).join(pre.train, on=["user_id", "video_id"])
    assert (positives["event_ts"] == positives["first_ts"]).all()
    # Each negative is computed at the time of one of its user's positives.
    pos_times = rows.filter(pl.col("label") == 1).select("user_id", "event_ts").unique()
    negatives = rows.filter(pl.col("label") == 0)
    assert negatives.join(pos_times, on=["user_id", "event_ts"], how="anti").height == 0
    assert pre.ranker_test["event_ts"].null_count() == pre.ranker_test.height  # evaluated at reference_ts
