"""`recsys model list | promote | rollback | canary | watch`: the model registry and releases (`recsys.release`)."""

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


def _report(promotion: Any, headline: str, canary_check: dict[str, Any] | None = None) -> None:
    """The outcome of a promotion: one line for people, the version and its predecessor for --json."""
    previous = promotion.previous_version
    if promotion.changed:
        info(f"{headline} (previous: {previous or 'none'}).")
    else:
        info(f"{promotion.version.version} already is in production; nothing changed.")
    extra = {"canary_check": canary_check} if canary_check is not None else {}
    emit({**promotion.version.to_dict(), "previous_version": previous, **extra}, lambda: None)


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
                    v["status"] + (f" (canary {v['canary_share']}%)" if v["canary_share"] else ""),
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
    require_canary_no_worse: Annotated[
        bool,
        typer.Option(
            "--require-canary-no-worse",
            help="Refuse unless VERSION is the running canary and its click-through is no worse than production's.",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Put VERSION in production: check its serving bundle, publish its embeddings and features, then flip the registry.

    A serving bundle of a format this code cannot load is refused before anything changes. The previous
    production version becomes archived; a running canary of VERSION stops. Serving picks the new version
    up within its registry poll interval.

    With `--require-canary-no-worse`, the canary's click-through since it started (merged feedback) is
    compared with production's first: a canary worse with 95% confidence, or too little traffic on either
    side (`RECSYS_GUARD_MIN_IMPRESSIONS`), is refused (exit code 7) and production stays as it is.

    **Examples**

        recsys model promote v20261124-193000-ab12cd

        recsys model promote v20261124-193000-ab12cd --require-canary-no-worse --env dev --json
    """
    from recsys import release

    with progress(f"Promoting {version}…"):
        promotion = release.promote(
            settings_for(env), version, require_canary_no_worse=require_canary_no_worse
        )
    if promotion.canary_check is not None:
        info(promotion.canary_check.describe())
    _report(
        promotion,
        f"{promotion.version.version} is in production",
        promotion.canary_check.to_dict() if promotion.canary_check else None,
    )


@model_app.command("rollback")
def rollback(
    env: EnvOption = "local",
    reason: Annotated[str, typer.Option(help="Why; recorded on the version rolled back from.")] = (
        "rolled back by an operator"
    ),
    json_output: JsonOption = False,
) -> None:
    """Put the most recently archived version back in production (rolling back twice returns to where you were).

    **Examples**

        recsys model rollback

        recsys model rollback --env prod --reason "p99 doubled after v20261124" --json
    """
    from recsys import release

    with progress("Rolling back…"):
        promotion = release.rollback(settings_for(env), reason=reason)
    _report(promotion, f"Rolled back: {promotion.version.version} is in production")


@model_app.command("canary")
def canary(
    version: Annotated[str | None, typer.Argument(help="The version to serve beside production.")] = None,
    share: Annotated[int, typer.Option(min=1, max=50, help="Percent of users (sticky by user id).")] = 10,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the running canary.")] = False,
    env: EnvOption = "local",
    json_output: JsonOption = False,
) -> None:
    """Serve VERSION to a share of users beside production, or stop the canary (`--stop`).

    Users are bucketed by a hash of their id, so each keeps the same variant on every call. The variant is on
    every response and tracking item; `recsys feedback report` compares the variants.

    **Examples**

        recsys model canary v20261124-193000-ab12cd --share 10

        recsys model canary --stop --json
    """
    from recsys.errors import ValidationError

    registry = _registry(env)
    if stop:
        running = registry.canary()
        if running is not None:
            registry.clear_canary(running.version)
        info(f"Canary {running.version} stopped." if running else "No canary was running.")
        emit({"stopped": running.version if running else None}, lambda: None)
        return
    if version is None:
        raise ValidationError(
            "name the version to serve as a canary", hint="recsys model canary VERSION --share 10"
        )
    found = registry.set_canary(version, share)
    info(f"{found.version} serves {found.canary_share}% of users beside production.")
    emit(found.to_dict(), lambda: None)


@model_app.command("watch")
def watch(
    env: EnvOption = "local",
    interval: Annotated[float, typer.Option(min=1, max=3600, help="Seconds between checks.")] = 30.0,
    once: Annotated[bool, typer.Option("--once", help="Check once and exit.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Watch the production version's live signals and roll it back if they breach during the guard period.

    Reads the counters every server worker adds to (requests, 5xx answers, empty lists, latency) since the
    promotion; limits and the guard period are settings (`RECSYS_GUARD_*`, `[guard]` in recsys.toml). On AWS
    the same decision runs from CloudWatch alarms (the release_guard function). Exits when the guard period
    of the production version is over, or after one check with `--once`.

    **Examples**

        recsys model watch --once --json

        RECSYS_GUARD_PERIOD_S=900 recsys model watch --interval 10
    """
    import time

    from recsys.release_guard import check

    settings = settings_for(env)
    while True:
        decision = check(settings, now_s=time.time())
        if decision.action == "rolled_back":
            info(
                f"[red]Rolled back {decision.version} -> {decision.restored}:[/] {'; '.join(decision.reasons)}"
            )
        else:
            info(f"{decision.version or 'nothing'}: {decision.action.replace('_', ' ')}")
        if once or decision.action in ("rolled_back", "outside_guard_period", "nothing_in_production"):
            emit(decision.to_dict(), lambda: None)
            return
        time.sleep(interval)
