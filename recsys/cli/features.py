"""`recsys features get`: what the online feature store holds for a user or a video now."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from recsys.cli.common import EnvOption, JsonOption, emit, group, out_console, settings_for
from recsys.errors import NotFoundError, ValidationError

features_app = group("The online feature store: what serving reads for a user or a video.")


def _plain(value: Any) -> Any:
    """Whole numbers as ints (DynamoDB returns every number as a Decimal, read as float)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def user_features(settings: Any, user_id: str, activity: int = 5) -> dict[str, Any]:
    """The user's online features, engaged set size and latest events (NotFoundError when there are none)."""
    from recsys.feature_store.online import OnlineFeatureStore

    store = OnlineFeatureStore(settings)
    item = store.get_users([user_id])[0]
    recent, engaged = store.activity_and_engaged(user_id, activity)
    if item is None and not recent and not engaged:
        raise NotFoundError(
            f"no online features for user {user_id!r}", hint="check the id, or post an interaction"
        )
    return {
        "user_id": user_id,
        "features": _plain(item),
        "engaged_videos": len(engaged),
        "latest_engaged": engaged[-10:][::-1],
        "recent_activity": [
            {k: _plain(a.get(k)) for k in ("video_id", "event_type", "timestamp", "category")} for a in recent
        ],
    }


def video_features(settings: Any, video_id: str) -> dict[str, Any]:
    """The video's online features (without the embedding's numbers) and its live catalogue state."""
    from recsys.catalogue_live import LiveCatalogue
    from recsys.feature_store.online import OnlineFeatureStore, embedding_values

    item = OnlineFeatureStore(settings).get_videos([video_id])[0]
    live = LiveCatalogue(settings).get(video_id)
    if item is None and live is None:
        raise NotFoundError(f"no online features for video {video_id!r}", hint="check the id")
    if item and "embedding" in item:
        item = {**item, "embedding": f"<{embedding_values(item['embedding']).size} numbers>"}
    if live and "embedding" in live:
        live = {**live, "embedding": f"<{embedding_values(live['embedding']).size} numbers>"}
    return {"video_id": video_id, "features": _plain(item), "live_catalogue": _plain(live)}


@features_app.command("get")
def get(
    env: EnvOption = "local",
    user: Annotated[str | None, typer.Option("--user", help="A user id.")] = None,
    video: Annotated[str | None, typer.Option("--video", help="A video id.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Show the online features of a user (with their engaged set and latest events) or of a video.

    **Examples**

        recsys features get --user 42 --env local

        recsys features get --video 1001 --json
    """
    if (user is None) == (video is None):
        raise ValidationError("give exactly one of --user and --video", hint="recsys features get --user ID")
    settings = settings_for(env)
    data = user_features(settings, user) if user is not None else video_features(settings, str(video))
    emit(data, lambda: out_console.print_json(data=data, default=str))
