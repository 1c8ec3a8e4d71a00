"""Quality and drift over time, from tracking items and user activity on the local stack, into CloudWatch."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import numpy as np
import pytest
from typer.testing import CliRunner

from recsys.feature_store.online import OnlineFeatureStore
from recsys.quality_monitor import METRICS, compute, gini, history, js_distance, publish
from recsys.quality_report import render
from recsys.serving.tracking import InferenceTracker, tracking_item

# A window of its own, long ago, so that other tests' tracking items and events are not in it.
WINDOW_END = 1_000_000_000.0
DAY = 86_400


def _serve(settings, at: float, user: str, source: str, ids: list[str], engaged: list[str] = ()) -> None:
    items = [{"video_id": v, "rank": i + 1, "score": 1.0 / (i + 1), "source": "popular" if v == "fill" else "model"}
             for i, v in enumerate(ids)]  # fmt: skip
    item = tracking_item(uuid.uuid4().hex, user, "v-quality", source, items, {"k": len(ids)}, at)
    if engaged:
        item["engaged_video_ids"] = list(engaged)
    tracker = InferenceTracker(settings, background=False)
    tracker.record(item)
    tracker.flush()


def _events(settings, at: float, user: str, types: list[str]) -> None:
    store = OnlineFeatureStore(settings)
    for i, kind in enumerate(types):
        store.record_activity(
            {
                "user_id": user,
                "video_id": f"qv{i}",
                "event_id": uuid.uuid4().hex,
                "timestamp": at + i,
                "event_type": kind,
            }
        )


@pytest.fixture(scope="module")
def own_tables(local_stack):
    """The session's stack with tables of this module's own: the monitor scans whole tables, and the session's
    grow large with the other tests' events."""
    from dataclasses import replace

    from recsys.local.provision import ProvisionReport, ensure_tables

    suffix = f"-qm-{uuid.uuid4().hex[:6]}"
    names = local_stack.names
    settings = local_stack.with_names(replace(names, tables={k: v + suffix for k, v in names.tables.items()}))
    ensure_tables(settings, ProvisionReport())
    return settings


@pytest.fixture(scope="module")
def window(own_tables):
    local_stack = own_tables
    at = WINDOW_END - 3600
    _serve(local_stack, at, "q-u1", "model", ["a", "b", "c", "fill"], engaged=["a"])
    _serve(local_stack, at, "q-u2", "model", ["a", "b", "d", "e"])
    _serve(local_stack, at, "q-new", "popular", ["a", "b", "c", "d"])
    _serve(local_stack, at, "q-new2", "trending", ["a", "f", "g", "h"], engaged=["f", "g"])
    _events(local_stack, at, "q-u1", ["view", "view", "like"])
    _events(local_stack, at, "q-u2", ["view"])
    _events(local_stack, at - DAY, "q-u1", ["view", "view", "view", "view"])
    return local_stack


def test_a_window_measures_coverage_concentration_cold_start_and_drift(window):
    point = compute(window, catalog_size=20, now_s=WINDOW_END, window_s=DAY)
    assert point.responses == 4
    assert point.catalog_coverage == pytest.approx(9 / 20)  # a b c d e f g h fill
    assert point.cold_start_share == pytest.approx(2 / 4)
    assert point.fallback_share == pytest.approx(1 / 16)
    assert point.ctr == pytest.approx(3 / 16)
    assert 0 < point.gini_served < 1
    assert point.event_mix_drift is not None and point.event_mix_drift > 0  # likes appeared
    assert point.activity_drift == pytest.approx((4 / 2) / (4 / 1))  # events per active user, now vs before


def test_an_empty_window_has_no_values_rather_than_zeros(own_tables):
    point = compute(own_tables, catalog_size=20, now_s=WINDOW_END - 30 * DAY, window_s=3600)
    assert point.responses == 0
    assert all(getattr(point, m) is None for m in METRICS)


def test_gini_and_js_distance():
    assert gini(np.array([5, 5, 5, 5])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 10])) == pytest.approx(0.75)
    assert js_distance(Counter(view=10), Counter(view=3)) == pytest.approx(0.0)
    assert js_distance(Counter(view=1), Counter(like=1)) == pytest.approx(1.0)
    assert js_distance(Counter(), Counter(view=1)) is None


def test_points_go_to_cloudwatch_and_the_report_charts_them(window, tmp_path):
    now = time.time()
    point = compute(window, catalog_size=20, now_s=WINDOW_END, window_s=DAY)
    moved = type(point)(**{**point.to_dict(), "at": now - 120})
    assert publish(window, moved) == len(METRICS)
    series = history(window, now_s=now, days=1)
    assert series["catalog_coverage"] and series["catalog_coverage"][-1][1] == pytest.approx(9 / 20)
    page = render("local", series, now)
    assert "Catalogue coverage" in page and "<svg" in page and "latest 0.4500" in page


def test_run_publishes_a_point_and_the_cli_reports_it(own_tables, tmp_path):
    from recsys.cli.main import app
    from recsys.quality_monitor import run

    point = run(own_tables, now_s=time.time(), window_s=3600)  # what `recsys monitor run` calls
    assert point.responses == 0 and set(METRICS) <= set(point.to_dict())
    runner = CliRunner()
    out = tmp_path / "q.html"
    result = runner.invoke(app, ["monitor", "report", "--output", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!doctype html>")


def test_the_report_asks_cloudwatch_for_a_few_hundred_points_at_a_period_it_keeps():
    from recsys.quality_monitor import chart_period_s

    for days in (1, 7, 30, 90, 300):
        period = chart_period_s(days * 86400)
        assert period % 60 == 0 and days * 86400 / period <= 360
        if days > 15:  # 1-minute points are kept for 15 days only
            assert period >= 300
