"""`recsys videos add | remove | list`: the live catalogue, without waiting for the next training."""

from __future__ import annotations

from typing import Annotated

import typer

from recsys.cli.common import EnvOption, JsonOption, emit, group, info, settings_for, table
from recsys.errors import UnavailableError

videos_app = group("The live catalogue: add a video (servable at once) or take one out of every answer.")


@videos_app.command("add")
def add(
    video_id: Annotated[str, typer.Option("--id", help="The video's id.")],
    category: Annotated[str, typer.Option("--category", help="Its category.")],
    duration: Annotated[float, typer.Option("--duration", min=0, help="Length in seconds.")] = 0.0,
    upload_ts: Annotated[
        float | None, typer.Option("--upload-ts", help="Epoch seconds (default: now).")
    ] = None,
    title: Annotated[str | None, typer.Option("--title")] = None,
    env: EnvOption = "local",
    json_output: JsonOption = False,
) -> None:
    """Add a video: the production version's saved video tower embeds it from its features; serving picks it up
    within a second (`POST /videos` does the same).

    **Examples**

        recsys videos add --id v9001 --category cooking --duration 420

        recsys videos add --id v9002 --category music --json
    """
    settings = settings_for(env)
    from recsys.catalogue_live import VideoIn, add_video
    from recsys.serving.model_store import production_version
    from recsys.serving.video_tower import VideoTower

    version = production_version(settings)
    if version is None:
        raise UnavailableError(
            "no model is in production, so nothing can embed the video", hint="recsys pipeline run"
        )
    video = VideoIn(video_id=video_id, category=category, duration=duration, upload_ts=upload_ts, title=title)
    item = add_video(settings, video, version, VideoTower.load(settings, version))
    info(f"Added {video_id} ({category}), embedded by version {version}.")
    emit(item, lambda: None)


@videos_app.command("remove")
def remove(
    video_id: Annotated[str, typer.Argument(help="The video's id.")],
    env: EnvOption = "local",
    json_output: JsonOption = False,
) -> None:
    """Take a video out of every answer (cached answers included) from the next request on.

    **Examples**

        recsys videos remove v101

        recsys videos remove v101 --env dev --json
    """
    settings = settings_for(env)
    from recsys.catalogue_live import remove_video
    from recsys.feature_store.online import OnlineFeatureStore

    known = OnlineFeatureStore(settings).get_videos([video_id], ["video_id"])[0] is not None
    item = remove_video(settings, video_id, known=known)
    info(f"Removed {video_id}: no answer contains it any more.")
    emit(item, lambda: None)


@videos_app.command("list")
def list_changes(env: EnvOption = "local", json_output: JsonOption = False) -> None:
    """The videos added or removed since training (the live catalogue table).

    **Examples**

        recsys videos list --json
    """
    settings = settings_for(env)
    from recsys.catalogue_live import LiveCatalogue

    items = sorted(LiveCatalogue(settings).changes(), key=lambda c: c.get("updated_at") or 0)
    rows = [(c["video_id"], c.get("status"), c.get("category"), c.get("model_version")) for c in items]
    emit(items, lambda: table("Live catalogue", ["video", "status", "category", "embedded by"], rows))
