"""Choosing the two-tower temperature on a validation split."""

from __future__ import annotations

import polars as pl

from recsys.pipeline_config import TwoTowerConfig
from recsys.training.temperature import choose_temperature, validation_split


def _train() -> pl.DataFrame:
    rows = (
        [("a", f"v{i}", i) for i in range(4)]
        + [("b", "v1", 10), ("b", "v2", 11)]
        + [("c", "v3", 3), ("c", "v9", 1), ("c", "v5", 2)]
    )
    return pl.DataFrame(rows, schema=["user_id", "video_id", "_order"], orient="row")


def test_validation_holds_back_each_eligible_users_latest_item() -> None:
    fit, validation = validation_split(_train())
    assert sorted(validation.select("user_id", "video_id").rows()) == [("a", "v3"), ("c", "v3")]
    assert fit.height == _train().height - 2
    assert fit.filter(pl.col("user_id") == "b").height == 2  # two items: too few to give one away


def test_nothing_to_choose_trains_with_the_configured_temperature() -> None:
    one = TwoTowerConfig(temperature_candidates=[0.2])
    assert choose_temperature(_train(), pl.DataFrame(), pl.DataFrame(), {}, 0, one) is None
    few = TwoTowerConfig()  # three candidates, but only two validation users
    assert choose_temperature(_train(), pl.DataFrame(), pl.DataFrame(), {}, 0, few) is None
