"""`recsys model list | promote VERSION | rollback`: the model registry."""

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
    """Put VERSION in production: publish its embeddings and features, then flip the registry.

    The previous production version becomes archived. Serving picks the new version up within its
    registry poll interval.

    **Examples**

        recsys model promote v20261124-193000-ab12cd

        recsys model promote v20261124-193000-ab12cd --env dev --json
    """
    registry = _registry(env)
    before = registry.production(consistent=True)
    with progress(f"Promoting {version}…"):
        promoted = registry.promote(version)
    info(f"{promoted.version} is in production (previous: {before.version if before else 'none'}).")
    emit({**promoted.to_dict(), "previous_version": before.version if before else None}, lambda: None)


@model_app.command("rollback")
def rollback(env: EnvOption = "local", json_output: JsonOption = False) -> None:
    """Put the most recently archived version back in production (rolling back twice returns to where you were).

    **Examples**

        recsys model rollback

        recsys model rollback --env prod --json
    """
    registry = _registry(env)
    before = registry.production(consistent=True)
    with progress("Rolling back…"):
        restored = registry.rollback()
    info(f"Rolled back: {restored.version} is in production (was {before.version if before else 'none'}).")
    emit({**restored.to_dict(), "previous_version": before.version if before else None}, lambda: None)
