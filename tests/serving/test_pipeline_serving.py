"""Serving what the real pipeline deploys: `recsys pipeline run --env local` on tiny data, then the API."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from recsys.cli.main import app
from recsys.events import InteractionEvent
from tests.serving.conftest import promote

runner = CliRunner()
TINY = ["--users", "200", "--videos", "200", "--interactions", "4000", "--seed", "5"]
CONFIG = {
    "two_tower": {"epochs": 3, "batch_size": 256},
    "ranker": {"iterations": 60, "depth": 4},
    "gates": {"min_ndcg_lift_over_popularity": None, "two_tower_recall_at_100": 0.0, "two_tower_ndcg_at_100": 0.0, "ranker_auc": 0.0,
              "ranker_ndcg": 0.0, "min_recall_lift_over_popularity": None},
}  # fmt: skip


@pytest.mark.slow
def test_serving_the_pipelines_version(local_stack, tiny_world, tmp_path):
    from recsys.serving.service import RecommendationService, ServingConfig
    from recsys.serving.tracking import InferenceTracker

    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    result = runner.invoke(
        app, ["pipeline", "run", "--env", "local", *TINY, "--config", str(config), "--json"]
    )
    assert result.exit_code == 0, result.output
    version = json.loads(result.stdout)["data"]["version"]
    try:
        svc = RecommendationService(local_stack, ServingConfig(poll_interval_s=0),
                                    tracker=InferenceTracker(local_stack, background=False))  # fmt: skip
        model = svc.models.current()
        assert model.version == version and model.ranker is not None
        assert model.neighbour_idx.size > 0  # the item-item table travels in the bundle
        user = next(u for u in model.user_ids.tolist() if len(model.watched_rows(u)))
        watched = set(model.video_ids[model.watched_rows(user)].tolist())
        resp = svc.recommend(user, k=10, use_cache=False)
        assert resp["source"] == "model" and len(resp["items"]) == 10
        sources = {i["source"] for i in resp["items"]}
        assert sources <= {"two_tower", "item_item", "recent", "popularity", "popular"}
        assert len({i["reason"] for i in resp["items"]}) > 1  # not one sentence for every item
        assert not watched & {i["video_id"] for i in resp["items"]}
        cold = svc.recommend("someone-brand-new", k=10, use_cache=False)
        assert cold["source"] == "popular" and len(cold["items"]) == 10
        # interactions in the user's rarest category make that category rise
        before = Counter(i["category"] for i in resp["items"])
        target = min(model.categories, key=lambda c: before[c])
        liked = [i["video_id"] for i in svc.recommend(user, k=4, category=target, use_cache=False)["items"]]
        for video in liked:
            svc.record_interaction(InteractionEvent(user_id=user, video_id=video, event_type="like"))
        after = Counter(i["category"] for i in svc.recommend(user, k=10, use_cache=False)["items"])
        assert after[target] > before[target]
    finally:
        promote(local_stack, tiny_world.version)
