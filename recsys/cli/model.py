"""`recsys model list | promote VERSION | rollback`: the model registry and releases (`recsys.release`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from recsys.cli.common import EnvOption, JsonOption, emit, group, info, progress, settings_for, table

model_app = group("The model registry: versions with metrics and status (candidate, production, archived).")

_HEADLINE = (("two_tower", "recall@100"), ("two_tower", "ndcg@100"), ("ranker", "auc"))


def _registry(env: str):
    from recsys.registry import ModelRegistry

    return ModelRegistry(settings_for(env))


def _metrics_line(metrics: dict[str, Any]) -> str:
    """The headline metrics of a version (retrieval recall/nDCG@100, ranker AUC), when present."""
    shown = []
    for model, name in _HEADLINE:
        value = (metrics.get(model) or {}).get(name) if isinstance(metrics.get(model), dict) else None
        if isinstance(value, int | float):
            shown.append(f"{model}.{name}={value:.3f}")
    return ", ".join(shown)


def _report(promotion: Any, headline: str) -> None:
    """The outcome of a promotion: one line for people, the version and its predecessor for --json."""
    previous = promotion.previous_version
    if promotion.changed:
        info(f"{headline} (previous: {previous or 'none'}).")
    else:
        info(f"{promotion.version.version} already is in production; nothing changed.")
    emit({**promotion.version.to_dict(), "previous_version": previous}, lambda: None)


def _short(stamp: str | None) -> str:
    return (stamp or "")[:16].replace("T", " ")


@model_app.command("list")
def list_versions(env: EnvOption = "local", json_output: JsonOption = False) -> None:
    """List every registered version, newest first, with its status and main metrics.

    **Examples**

        recsys model list

        recsys model list --env dev --json | jq '.data[] | select(.status == "production")'
    """
    versions = [v.to_dict() for v in _registry(env).list()]
    emit(
        versions,
        lambda: table(
            "Model versions",
            ["version", "status", "created (UTC)", "promoted (UTC)", "metrics"],
            [
                (
                    v["version"],
                    v["status"],
                    _short(v["created_at"]),
                    _short(v["promoted_at"]),
                    _metrics_line(v["metrics"]),
                )
                for v in versions
            ],
        ),
    )


@model_app.command("promote")
def promote(
    version: Annotated[str, typer.Argument(help="The version to put in production.")],
    env: EnvOption = "local",
    json_output: JsonOption = False,
) -> None:
    """Put VERSION in production: check its serving bundle, publish its embeddings and features, then flip the registry.

    A serving bundle of a format this code cannot load is refused before anything changes. The previous
    production version becomes archived. Serving picks the new version up within its
    registry poll interval.

    **Examples**

        recsys model promote v20261124-193000-ab12cd

        recsys model promote v20261124-193000-ab12cd --env dev --json
    """
    from recsys import release

    with progress(f"Promoting {version}…"):
        promotion = release.promote(settings_for(env), version)
    _report(promotion, f"{promotion.version.version} is in production")


@model_app.command("rollback")
def rollback(env: EnvOption = "local", json_output: JsonOption = False) -> None:
    """Put the most recently archived version back in production (rolling back twice returns to where you were).

    **Examples**

        recsys model rollback

        recsys model rollback --env prod --json
    """
    from recsys import release

    with progress("Rolling back…"):
        promotion = release.rollback(settings_for(env))
    _report(promotion, f"Rolled back: {promotion.version.version} is in production")
