"""The loop's commands on the local stack: events worker/tail/replay, features get, feedback merge/report."""

from __future__ import annotations

import json
import uuid

from typer.testing import CliRunner

from recsys.cli.main import app
from recsys.events import InteractionEvent

runner = CliRunner()


def _json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--env", "local", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["data"]


def test_events_features_and_feedback_commands(local_stack, tiny_world, service):
    user = f"cli-{uuid.uuid4().hex[:8]}"
    response = service.recommend(tiny_world.user_ids[3], k=5, use_cache=False)
    service.tracker.flush()
    clicked = response["items"][0]["video_id"]
    posted = [
        service.record_interaction(
            InteractionEvent(user_id=user, video_id=tiny_world.video_ids[i], event_type="like")
        )
        for i in range(3)
    ]
    posted.append(
        service.record_interaction(
            InteractionEvent(
                user_id=tiny_world.user_ids[3], video_id=clicked, event_type="click",
                recommendation_id=response["recommendation_id"],
            )
        )
    )  # fmt: skip

    drained = _json("events", "worker", "--once")
    assert drained["delivered"] >= 4 and drained["applied"] >= 4

    features = _json("features", "get", "--user", user)
    assert features["features"]["interaction_count"] == 3
    assert features["engaged_videos"] == 3
    assert [a["video_id"] for a in features["recent_activity"]] == tiny_world.video_ids[:3][::-1]
    video = _json("features", "get", "--video", tiny_world.video_ids[0])
    assert video["features"]["embedding"].startswith("<64 numbers")

    tailed = {e.get("event_id") for e in _json("events", "tail", "--since", "10m", "--limit", "1000")}
    assert {p["event_id"] for p in posted} <= tailed

    replayed = _json("events", "replay", "--from", "10m")
    assert replayed["applied"] == 0 and replayed["already_applied"] >= 4  # exactly once: nothing new
    old = runner.invoke(app, ["events", "replay", "--from", "90d", "--env", "local"])
    assert old.exit_code == 3 and "30 days" in old.stderr

    merged = _json("feedback", "merge", "--date", "today")
    assert merged["positives"] >= 1
    report = _json("feedback", "report")
    version = next(r for r in report["by_model_version"] if r["model_version"] == tiny_world.version)
    assert version["engaged"] >= 1 and 0 < version["ctr"] <= 1
    assert {r["source"] for r in report["by_source"]} >= {"model"}

    missing = runner.invoke(
        app, ["features", "get", "--user", "nobody-" + uuid.uuid4().hex, "--env", "local"]
    )
    assert missing.exit_code == 4
    both = runner.invoke(app, ["features", "get", "--user", "a", "--video", "b", "--env", "local"])
    assert both.exit_code == 3
