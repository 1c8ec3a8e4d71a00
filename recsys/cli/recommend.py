"""`recsys recommend` (batch recommendations) and `recsys cache fill | bundle` (the batch cache job)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recsys.cli.common import (
    EnvOption,
    JsonOption,
    emit,
    group,
    info,
    progress,
    progress_bar,
    settings_for,
    table,
)
from recsys.errors import ErrorCode, RecsysError

cache_app = group("Precomputed recommendations (GET /cached) and serving bundles.")

UsersFile = Annotated[Path | None, typer.Option("--users", help="File with one user id per line.")]
AllUsers = Annotated[bool, typer.Option("--all", help="Every user the production model knows.")]


def _service(env: str):
    from recsys.serving.service import RecommendationService
    from recsys.serving.tracking import InferenceTracker

    settings = settings_for(env)
    return RecommendationService(settings, tracker=InferenceTracker(settings, background=False))


def _users(service, user: str | None, users: Path | None, all_users: bool) -> list[str]:
    from recsys.serving.batch import all_users as every_user
    from recsys.serving.batch import read_user_file

    chosen = [x for x in (user is not None, users is not None, all_users) if x]
    if len(chosen) != 1:
        raise RecsysError("give exactly one of --user, --users FILE or --all", hint="see --help",
                          code=ErrorCode.USAGE)  # fmt: skip
    if user is not None:
        return [user]
    if users is not None:
        return read_user_file(users)
    return every_user(service)


def recommend(
    env: EnvOption = "local",
    user: Annotated[str | None, typer.Option("--user", help="One user id.")] = None,
    users: UsersFile = None,
    all_users: AllUsers = False,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Items per user.")] = 20,
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    include_watched: Annotated[bool, typer.Option(help="Keep items the user already watched.")] = False,
    output: Annotated[Path | None, typer.Option(help="Write rows to FILE.parquet or FILE.csv.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Batch recommendations with the API's rules (watched items excluded unless --include-watched).

    **Examples**

        recsys recommend --env local --user 12 --k 10

        recsys recommend --env local --all --k 20 --output recs.parquet

        recsys recommend --env dev --users users.txt --category gaming --output recs.csv --json
    """
    from recsys.serving.batch import recommend_many, write_recommendations

    if output is not None and output.suffix.lower() not in (".parquet", ".csv"):
        raise RecsysError(f"unsupported output {output.name!r}", hint="use .parquet or .csv",
                          code=ErrorCode.VALIDATION)  # fmt: skip
    service = _service(env)
    ids = _users(service, user, users, all_users)
    if output is not None:
        with progress_bar("Recommending", len(ids), unit="users") as advance:
            n_rows = write_recommendations(service, ids, k, output, category, not include_watched, advance)
        info(f"Wrote {n_rows} rows for {len(ids)} users to {output}")
        emit({"users": len(ids), "rows": n_rows, "output": str(output)}, lambda: None)
        return
    with progress_bar("Recommending", len(ids), unit="users") as advance:
        rows = recommend_many(service, ids, k, category, not include_watched, advance)
    emit(rows, lambda: table(
        f"Recommendations ({len(ids)} users, k={k})",
        ["user", "rank", "video", "score", "category", "reason", "source"],
        [(r["user_id"], r["rank"], r["video_id"], f"{r['score']:.4f}", r["category"], r["reason"], r["source"])
         for r in rows],
    ))  # fmt: skip


@cache_app.command("fill")
def fill(
    env: EnvOption = "local",
    users: UsersFile = None,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Items per user.")] = 20,
    ttl_hours: Annotated[
        float, typer.Option(min=0.01, max=24 * 30, help="Hours until entries expire.")
    ] = 168,
    json_output: JsonOption = False,
) -> None:
    """Precompute recommendations into the recommendations cache table (served by GET /cached/{user_id}).

    Without --users it fills every user the production model knows.

    **Examples**

        recsys cache fill --env local

        recsys cache fill --env dev --users users.txt --k 50 --ttl-hours 24 --json
    """
    from recsys.serving.batch import fill_cache

    service = _service(env)
    ids = _users(service, None, users, users is None)
    with progress_bar("Precomputing", len(ids), unit="users") as advance:
        written = fill_cache(service, ids, k=k, ttl_s=int(ttl_hours * 3600), on_progress=advance)
    info(f"Stored precomputed recommendations for {written} users.")
    emit({"users": written, "k": k, "table": service.precomputed_table,
          "model_version": service.models.current().version}, lambda: None)  # fmt: skip


@cache_app.command("bundle")
def bundle(
    env: EnvOption = "local",
    version: Annotated[str, typer.Option(help="Model version whose serving bundle to build.")] = ...,
    json_output: JsonOption = False,
) -> None:
    """Build a version's serving bundle (numpy-only .npz from its Parquet artifacts) and upload it.

    The serving Lambda cannot read Parquet (no polars/pyarrow in its package); run this after training
    if the deployment did not.

    **Examples**

        recsys cache bundle --env dev --version v20261124-193000-ab12cd
    """
    from recsys.serving.bundle import write_bundle

    settings = settings_for(env)
    with progress(f"Building the serving bundle of {version}…"):
        key = write_bundle(settings, version)
    info(f"Uploaded s3://{settings.names.bucket('models')}/{key}")
    emit({"version": version, "bucket": settings.names.bucket("models"), "key": key}, lambda: None)
