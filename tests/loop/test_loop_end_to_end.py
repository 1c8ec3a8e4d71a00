"""The whole loop on the local stack with real training: serve, collect events, retrain on them.

1. `pipeline run` (synthetic): the served "watched" set holds each user's held-out items, and the version saves
   a video tower that agrees with TensorFlow's;
2. a user's new likes in one category move their recommendations toward it at once (the real-time vector);
3. the events worker applies them and delivers them to S3; a video is added live;
4. `pipeline run --source events` trains on the events (they are in its training data, the added video is in
   its catalogue) and the user's recommendations lean to that category again; too little data fails cleanly.
"""

from __future__ import annotations

import json
import time
import uuid

import polars as pl
import pytest
from typer.testing import CliRunner

from recsys import artifacts
from recsys.cli.main import app
from recsys.registry import ModelRegistry
from recsys.storage import get_json, get_parquet
from tests.pipeline.test_end_to_end import FAST, OPEN_GATES

runner = CliRunner()
pytestmark = pytest.mark.slow


def _run(*args: str) -> tuple[object, dict]:
    result = runner.invoke(app, ["pipeline", "run", "--env", "local", *args, "--json"])
    return result, (json.loads(result.stdout) if result.stdout.strip() else {})


def _service(settings):
    from recsys.serving.service import RecommendationService, ServingConfig
    from recsys.serving.tracking import InferenceTracker

    return RecommendationService(
        settings, ServingConfig(poll_interval_s=0.0), tracker=InferenceTracker(settings, background=False)
    )


def _share(items: list[dict], category: str) -> float:
    return sum(i["category"] == category for i in items) / max(len(items), 1)


def test_events_are_served_at_once_and_trained_on(local_stack, tmp_path):
    from recsys.catalogue_live import VideoIn
    from recsys.events import InteractionEvent
    from recsys.local.stream_worker import StreamWorker

    # The stream is the session's: apply what earlier tests left on it first (the same synthetic user ids), so
    # that the worker below applies this test's events only.
    leftover = StreamWorker(local_stack)
    while leftover.poll_once():
        pass
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**FAST, "gates": OPEN_GATES}))
    first, body = _run(
        "--users", "200", "--videos", "150", "--interactions", "5000", "--seed", "5", "--config", str(config)
    )
    assert first.exit_code == 0, first.output
    v1, job1 = body["data"]["version"], body["data"]["job_id"]
    settings = local_stack
    models, arts = settings.names.bucket("models"), settings.names.bucket("artifacts")
    tt_config = get_json(settings, models, artifacts.two_tower_key(v1, "model_config.json"))
    assert tt_config["video_tower_max_abs_error"] < 1e-4

    service = _service(settings)
    model = service.models.current()
    assert model.version == v1
    # Watched means watched: held-out (most recent) items are never recommended back.
    test = get_parquet(settings, arts, artifacts.preprocessing_key(job1, "test_interactions.parquet"))
    held_out = test.group_by("user_id").agg(pl.col("video_id")).head(40)
    for user, videos in held_out.iter_rows():
        got = {i["video_id"] for i in service.recommend(user, k=20, use_cache=False, track=False)["items"]}
        assert not got & set(videos), (user, got & set(videos))

    # A user likes videos of one category they rarely watched: their recommendations move toward it now.
    user = str(model.user_ids[0])
    before = service.recommend(user, k=10, use_cache=False, track=False)["items"]
    by_size = pl.Series("category", model.category.tolist()).value_counts(sort=True)["category"].to_list()
    target = next(c for c in by_size if _share(before, c) <= 0.1)
    liked = [
        v for v, c in zip(model.video_ids.tolist(), model.category.tolist(), strict=True) if c == target
    ][:12]
    posted = [service.record_interaction(InteractionEvent(user_id=user, video_id=v, event_type="like", category=target))
              for v in liked]  # fmt: skip
    after = service.recommend(user, k=10, use_cache=False, track=False)["items"]
    assert _share(after, target) > _share(before, target) + 0.2, (before, after)
    assert not {i["video_id"] for i in after} & set(liked)

    # A video is added live; the worker applies the events and delivers them to S3.
    new_video = f"live-{uuid.uuid4().hex[:6]}"
    service.add_video(VideoIn(video_id=new_video, category=target, duration=200))
    worker = StreamWorker(settings)
    while worker.poll_once():
        pass
    features = service.store.get_users([user])[0]
    assert features["top_category"] == target or features["category_affinity"][target] > 0.3, features

    # Too little data in the window: a clear error, production unchanged.
    too_little, error = _run(
        "--source", "events", "--since", "1h", "--until", "59m", "--no-base", "--config", str(config)
    )
    assert too_little.exit_code != 0
    assert "too little data" in json.dumps(error)
    assert ModelRegistry(settings).production().version == v1

    second, body2 = _run("--source", "events", "--config", str(config))
    assert second.exit_code == 0, second.output
    v2, job2 = body2["data"]["version"], body2["data"]["job_id"]
    assert ModelRegistry(settings).production().version == v2
    source = get_json(settings, arts, artifacts.preprocessing_key(job2, "source.json"))
    assert source["kind"] == "events" and source["base"]["kind"] == "synthetic"
    assert source["events"] >= len(posted) and source["live_videos_added"] >= 1
    seen = pl.concat(
        [get_parquet(settings, arts, artifacts.preprocessing_key(job2, f"{n}.parquet")).select("user_id", "video_id")
         for n in ("seen", "test_interactions")]
    )  # fmt: skip
    trained = set(seen.filter(pl.col("user_id") == user)["video_id"].to_list())
    assert set(liked) <= trained  # the events are in the training data
    catalog = get_parquet(settings, arts, artifacts.preprocessing_key(job2, "video_catalog.parquet"))
    assert new_video in catalog["video_id"].to_list()

    time.sleep(0.1)
    retrained = _service(settings)
    assert retrained.models.current().version == v2
    again = retrained.recommend(user, k=10, use_cache=False, track=False)["items"]
    assert _share(again, target) > _share(before, target)
    assert not {i["video_id"] for i in again} & set(liked)
