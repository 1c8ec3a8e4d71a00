"""What one event changes, as pure functions: no stack needed."""

from __future__ import annotations

import json

import pytest

from recsys.event_processing import (
    event_weight,
    trending_after,
    user_after,
    validate,
    video_after,
)
from recsys.feature_store.online import ENGAGED_BOUND, engaged_after
from recsys.pipeline_config import WeightsConfig


def _event(**kw) -> dict:
    return {"event_id": "e1", "user_id": "u", "video_id": "v", "event_type": "view", "timestamp": 100.0, **kw}


def test_validate_names_what_is_wrong() -> None:
    assert validate(json.dumps(_event()).encode())[1] is None
    assert validate(b"[1, 2]")[1].startswith("not a JSON object")
    assert "user_id" in validate(json.dumps(_event(user_id="")).encode())[1]
    assert "user_id" in validate(json.dumps(_event(user_id=True)).encode())[1]
    assert "unknown event type" in validate(json.dumps(_event(event_type="x")).encode())[1]
    assert "timestamp" in validate(json.dumps(_event(timestamp="soon")).encode())[1]
    assert "watch_time" in validate(json.dumps(_event(watch_time=-1)).encode())[1]
    assert validate(json.dumps(_event(user_id=12345)).encode())[0]["user_id"] == "12345"


def test_the_engaged_set_keeps_the_newest_without_repeats_up_to_its_bound() -> None:
    assert engaged_after(["a", "b"], [{"video_id": "a"}, {"video_id": "c"}]) == ["b", "a", "c"]
    full = engaged_after([str(i) for i in range(ENGAGED_BOUND)], [{"video_id": "new"}])
    assert len(full) == ENGAGED_BOUND and full[0] == "1" and full[-1] == "new"


def test_trending_does_not_depend_on_the_order_of_events() -> None:
    week = 7 * 86_400
    assert trending_after(*trending_after(0.0, None, 0.0), week) == pytest.approx((1.5, week))
    assert trending_after(*trending_after(0.0, None, week), 0.0) == pytest.approx((1.5, week))


def test_user_features_move_the_way_training_computes_them() -> None:
    weights = WeightsConfig()
    like = event_weight(_event(event_type="like", watch_time=50), 100.0, weights)
    assert like == pytest.approx(2.0 * 1.5)  # like weight x (1 + watch ratio 0.5)
    before = {"interaction_count": 2, "total_weight": 4.0, "last_interaction_ts": 200,
              "category_affinity": {"news": 1.0}}  # fmt: skip
    after = user_after(
        before, [(_event(timestamp=150.0), 4.0, "music"), (_event(event_type="skip"), 0.0, "music")]
    )
    assert after["interaction_count"] == 3 and after["total_weight"] == pytest.approx(8.0)
    assert after["category_affinity"] == {"music": 0.5, "news": 0.5}
    assert after["last_interaction_ts"] == 200  # the newest time, not the last event's


def test_video_counts_only_engagements_and_keeps_its_category() -> None:
    item = video_after({"category": "news", "interaction_count": 3}, [_event(), _event(event_type="skip")])
    assert item["interaction_count"] == 4 and "category" not in item
    assert video_after(None, [_event(category="cooking")])["category"] == "cooking"
