"""`recsys users forget ID` on the session stack: the user's online data is gone, other users' stays."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from recsys.events import InteractionEvent


def test_users_forget_erases_activity_and_precomputed_items(service, tiny_world):
    from recsys.cli.main import app

    for user in ("forget-me", "keep-me"):
        service.record_interaction(InteractionEvent(user_id=user, video_id=tiny_world.video_ids[0]))
        service.recommend(user, k=3)
    service.tracker.flush()
    result = CliRunner().invoke(app, ["users", "forget", "forget-me", "--env", "local", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["data"]
    assert report["activity"] == 1 and report["tracking"] >= 1 and report["cached"] == "deleted"
    assert service.store.recent_activity("forget-me", 10) == []
    assert len(service.store.recent_activity("keep-me", 10)) == 1
    again = CliRunner().invoke(app, ["users", "forget", "forget-me", "--env", "local", "--json"])
    assert json.loads(again.stdout)["data"]["activity"] == 0  # idempotent


def test_users_forget_refuses_an_empty_id():
    from recsys.cli.main import app

    result = CliRunner().invoke(app, ["users", "forget", "", "--env", "local"])
    assert result.exit_code == 3 and "Traceback" not in result.output
