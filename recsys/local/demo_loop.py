"""The loop part of `make demo`: post events to the served API, watch the worker apply them, add a video.

    python -m recsys.local.demo_loop --url http://127.0.0.1:8080 [--user u1]

1. asks for a user's recommendations and clicks one of them (with its recommendation id);
2. likes videos of a category the user rarely gets, and shows the recommendations move toward it at once;
3. adds a video in that category (POST /videos);
4. waits until the events worker has applied the events (the user's online features show them) and
   delivered them to S3, and prints the features (`recsys features get` shows the same).
The next step of `make demo` retrains on them: `recsys pipeline run --source events`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

from recsys.errors import UnavailableError
from recsys.smoke import ApiClient


def _ok(client: ApiClient, method: str, path: str, body: Any = None) -> Any:
    status, parsed, _ = client.call(method, path, body)
    if status is None or status >= 400:
        raise UnavailableError(f"{method} {path} answered {status}: {parsed}", hint="see .recsys/api.log")
    return parsed


def run(settings: Any, url: str, user: str, likes: int = 8, timeout_s: float = 60.0) -> dict[str, Any]:
    """Post the demo's events and wait for the worker; returns what changed."""
    from recsys import raw_events
    from recsys.feature_store.online import OnlineFeatureStore
    from recsys.serving.model_store import ModelStore

    client = ApiClient(url)
    before = _ok(client, "GET", f"/recommendations/{user}?k=10")
    first = before["items"][0]
    _ok(client, "POST", "/interactions", {
        "user_id": user, "video_id": first["video_id"], "event_type": "click", "category": first["category"],
        "recommendation_id": before["recommendation_id"],
    })  # fmt: skip
    model = ModelStore(settings).current()
    shown = Counter(i["category"] for i in before["items"])
    by_size = Counter(model.category.tolist()).most_common()
    target = next(c for c, _ in by_size if shown[c] == 0)
    videos = [
        v for v, c in zip(model.video_ids.tolist(), model.category.tolist(), strict=True) if c == target
    ]
    posted = []
    for video in videos[:likes]:
        posted.append(_ok(client, "POST", "/interactions", {
            "user_id": user, "video_id": video, "event_type": "like", "category": target, "watch_time": 120,
        })["event_id"])  # fmt: skip
    after = _ok(client, "GET", f"/recommendations/{user}?k=10")
    new_video = f"demo-{int(time.time())}"
    added = _ok(client, "POST", "/videos", {"video_id": new_video, "category": target, "duration": 300})

    store = OnlineFeatureStore(settings)
    deadline = time.monotonic() + timeout_s
    features = None
    while time.monotonic() < deadline:
        _, engaged = store.activity_and_engaged(user, 1)
        delivered = {
            e["event_id"] for e in raw_events.read_events(settings, arrived_after_ts=time.time() - 3600)
        }
        if set(posted) <= delivered and {v for v in videos[:likes]} <= set(engaged):
            features = store.get_users([user])[0]
            break
        time.sleep(0.5)
    if features is None:
        raise UnavailableError(
            "the events worker did not apply the demo's events in time",
            hint="recsys local status; see .recsys/events-worker.log",
        )
    return {
        "user": user,
        "liked_category": target,
        "events_posted": len(posted) + 1,
        "share_before": sum(i["category"] == target for i in before["items"]) / len(before["items"]),
        "share_after": sum(i["category"] == target for i in after["items"]) / len(after["items"]),
        "video_added": added,
        "features": features,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the demo's loop step against the served API of the local stack."""
    from recsys.config import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--user", default="u1")
    args = parser.parse_args(argv)
    result = run(load_settings("local"), args.url, args.user)
    print(
        f"User {result['user']} liked {result['events_posted'] - 1} '{result['liked_category']}' videos: "
        f"that category's share of their top 10 went from {result['share_before']:.0%} to "
        f"{result['share_after']:.0%} at once. Added video {result['video_added']['video_id']}.",
        file=sys.stderr,
    )
    print(json.dumps({"data": result}, default=str, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
