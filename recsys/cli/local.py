"""`recsys local up | down | status`."""

from __future__ import annotations

from typing import Annotated

import typer

from recsys.cli.common import (
    OUTPUT,
    EnvOption,
    JsonOption,
    emit,
    fail,
    group,
    info,
    progress,
    settings_for,
    table,
)
from recsys.errors import ErrorCode

local_app = group("The embedded local stack: a moto server (AWS APIs) and Redis on loopback.")


def _stack(env: str):
    from recsys.local.stack import LocalStack

    return LocalStack(settings_for(env, resolve_names=False))  # LocalStack refuses any env but local


@local_app.command("up")
def up(env: EnvOption = "local", json_output: JsonOption = False) -> None:
    """Start the local stack (if not running) and provision every catalogue resource, idempotently.

    **Examples**

        recsys local up

        RECSYS_AWS_ENDPOINT=http://127.0.0.1:4600 RECSYS_REDIS_PORT=6390 recsys local up --json
    """
    stack = _stack(env)
    with progress("Starting the local stack…"):
        result = stack.up()
    created = result["provisioned"]["created"]
    info(
        f"Provisioned {len(created)} new resources ({len(result['provisioned']['existing'])} already there)."
    )
    emit(result, lambda: _render_status(result["status"]))


@local_app.command("serve")
def serve_background(
    env: EnvOption = "local",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port on 127.0.0.1.")] = 8080,
    json_output: JsonOption = False,
) -> None:
    """Run the API (`recsys serve`) in the background as part of the local stack; `down` stops it.

    A server this command started before is replaced, so it can run again after each pipeline run.

    **Examples**

        recsys local serve

        recsys local serve --port 9000 --json
    """
    stack = _stack(env)
    with progress("Starting the API…"):
        result = stack.start_api(port)
    info(f"API on {result['url']} (pid {result['pid']}, log {result['log']}); `recsys local down` stops it.")
    emit(result, lambda: None)


@local_app.command("down")
def down(env: EnvOption = "local", json_output: JsonOption = False) -> None:
    """Stop the processes `recsys local up` started (by pid). Local AWS data is in memory and goes with them.

    **Examples**

        recsys local down
    """
    result = _stack(env).down()
    stopped = [name for name, was in result["stopped"].items() if was]
    info("Stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    emit(result, lambda: None)


@local_app.command("status")
def status(env: EnvOption = "local", json_output: JsonOption = False) -> None:
    """Show each component, its endpoint and health. Exits non-zero when a component is down.

    **Examples**

        recsys local status

        recsys local status --json | jq .data.components.aws.healthy
    """
    st = _stack(env).status()
    data = st.to_dict()
    emit(data, lambda: _render_status(data))
    if not st.healthy:
        if OUTPUT.json:  # the status above already says what is down; one JSON document on stdout
            raise typer.Exit(ErrorCode.UNAVAILABLE.exit_code)
        down_parts = [c for c in st.components if not c.healthy]
        if down_parts:
            c = down_parts[0]
            fail(ErrorCode.UNAVAILABLE, f"{c.name} is down: {c.detail}", c.hint)
        fail(
            ErrorCode.UNAVAILABLE,
            f"{len(st.missing_resources)} catalogue resources are missing",
            "run `recsys local up` to provision them",
        )
    raise typer.Exit(0)


def _render_status(data: dict) -> None:
    rows = [
        (name, "up" if c["healthy"] else "DOWN", c["endpoint"], c["pid"] or "-", c["detail"])
        for name, c in data["components"].items()
    ]
    table(f"Local stack ({data['env']})", ["component", "health", "endpoint", "pid", "detail"], rows)
    if data["missing_resources"]:
        info(f"Missing resources: {', '.join(data['missing_resources'])}")
