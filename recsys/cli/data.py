"""`recsys data import | generate | list`: pipeline input data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from recsys.cli.common import EnvOption, JsonOption, emit, group, info, progress, settings_for, table

data_app = group("Pipeline input data: import real interactions (CSV/Parquet), generate synthetic data.")

FileArg = Annotated[Path | None, typer.Option(dir_okay=False, help="CSV or Parquet file.")]


@data_app.command("import")
def import_cmd(
    interactions: Annotated[
        Path,
        typer.Option(
            "--interactions",
            "-i",
            dir_okay=False,
            help="Interactions CSV/Parquet: user_id, video_id required; timestamp, event_type, "
            "watch_time, weight optional.",
        ),
    ],
    videos: Annotated[
        Path | None,
        typer.Option(
            "--videos",
            dir_okay=False,
            help="Optional video metadata: video_id, category, duration, upload_ts.",
        ),
    ] = None,
    users: Annotated[
        Path | None, typer.Option("--users", dir_okay=False, help="Optional user list: user_id.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Dataset name (default: the interactions file's name).")
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            "-m",
            help="Use another column name: TARGET=SOURCE, e.g. --map user_id=userId (repeatable).",
        ),
    ] = None,
    ignore_unknown: Annotated[
        bool,
        typer.Option("--ignore-unknown", help="Drop columns that are not documented instead of failing."),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing dataset of that name.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only; write nothing.")] = False,
    env: EnvOption = "local",
    json_output: JsonOption = False,
) -> None:
    """Validate interaction data and store it in the data bucket as a pipeline input.

    Everything is validated before the first write; a bad file (missing or unknown columns, empty, corrupt,
    ids of mixed types, bad numbers or times) fails with the column and rows named and nothing written.
    Train on it with `recsys pipeline run --dataset NAME`.

    **Examples**

        recsys data import --interactions ratings.csv --map user_id=userId --map video_id=movieId --map weight=rating

        recsys data import -i events.parquet --videos videos.csv --name events-2024 --env dev --overwrite

        recsys data import -i views.csv --ignore-unknown --dry-run --json
    """
    from recsys.data.importer import dataset_name_from, import_dataset, parse_mapping
    from recsys.ids import check_id

    dataset = check_id(name or dataset_name_from(interactions), "dataset name")
    settings = settings_for(env)
    with progress(f"Validating and importing {interactions.name}"):
        result = import_dataset(
            settings,
            dataset,
            interactions,
            videos,
            users,
            parse_mapping(mapping),
            ignore_unknown,
            overwrite,
            dry_run,
        )
    manifest = result.manifest
    stats = manifest["stats"]
    for warning in stats.get("warnings", []):
        info(f"[yellow]Warning:[/] {warning}")
    verb = "Validated (dry run, nothing written)" if dry_run else "Imported"
    info(
        f"{verb} dataset {dataset!r}: {stats['interactions']:,} interactions, {stats['users']:,} users, "
        f"{stats['videos']:,} videos"
        + ("" if dry_run else f"; train on it: recsys pipeline run --dataset {dataset}")
    )
    data = {"name": dataset, "dry_run": dry_run, "bucket": settings.names.bucket("data"), **manifest}
    emit(data, lambda: _render_manifest(data))


def _render_manifest(data: dict[str, Any]) -> None:
    rows = [(t, f["key"], f["rows"], ", ".join(f["columns"])) for t, f in data["files"].items()]
    table(f"Dataset {data['name']} (s3://{data['bucket']}/)", ["table", "key", "rows", "columns"], rows)


@data_app.command("generate")
def generate_cmd(
    out: Annotated[
        Path, typer.Option("--out", "-o", file_okay=False, help="Directory to write the files to.")
    ],
    users: Annotated[int, typer.Option("--users", min=1, help="Number of users.")] = 1000,
    videos: Annotated[int, typer.Option("--videos", min=1, help="Number of videos.")] = 500,
    interactions: Annotated[
        int, typer.Option("--interactions", min=1, help="Number of interactions.")
    ] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 42,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    no_timestamps: Annotated[
        bool, typer.Option("--no-timestamps", help="Leave out the timestamp column (tests the fallback).")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Write a synthetic, long-tailed data set (interactions, videos, users) to files in the import format.

    **Examples**

        recsys data generate --out data/synthetic

        recsys data generate --out /tmp/big --users 10000 --videos 50000 --interactions 1000000 --format parquet

        recsys data generate --out /tmp/nots --no-timestamps && recsys data import -i /tmp/nots/interactions.csv --videos /tmp/nots/videos.csv
    """
    from recsys.data.synthetic import SyntheticSpec, generate
    from recsys.errors import ValidationError

    if fmt not in ("csv", "parquet"):
        raise ValidationError(f"unknown format {fmt!r}", hint="use csv or parquet")
    with progress("Generating"):
        dataset = generate(
            SyntheticSpec(n_users=users, n_videos=videos, n_interactions=interactions, seed=seed)
        )
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, df in (
        ("interactions", dataset.interactions),
        ("videos", dataset.videos),
        ("users", dataset.users),
    ):
        if name == "interactions" and no_timestamps:
            df = df.drop("timestamp")
        path = out / f"{name}.{fmt}"
        df.write_csv(path) if fmt == "csv" else df.write_parquet(path)
        files[name] = {"path": str(path), "rows": df.height}
    info(f"Wrote {', '.join(files)} to {out}")
    emit(
        files,
        lambda: table(
            "Generated files",
            ["table", "path", "rows"],
            [(k, v["path"], v["rows"]) for k, v in files.items()],
        ),
    )


@data_app.command("list")
def list_cmd(env: EnvOption = "local", json_output: JsonOption = False) -> None:
    """List the imported datasets of an environment.

    **Examples**

        recsys data list

        recsys data list --env dev --json
    """
    from recsys.aws import client
    from recsys.data.datasets import MANIFEST
    from recsys.storage import get_json

    settings = settings_for(env)
    bucket = settings.names.bucket("data")
    pages = (
        client("s3", settings).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="datasets/")
    )
    found = []
    for page in pages:
        for obj in page.get("Contents", []):
            if obj["Key"].endswith("/" + MANIFEST):
                m = get_json(settings, bucket, obj["Key"])
                found.append(
                    {
                        "name": m["name"],
                        "created_at": m["created_at"],
                        **{
                            k: m["stats"].get(k)
                            for k in ("interactions", "users", "videos", "has_timestamps")
                        },
                    }
                )
    emit(
        found,
        lambda: table(
            "Datasets",
            ["name", "created", "interactions", "users", "videos", "timestamps"],
            [tuple(d.values()) for d in found],
        ),
    )
