"""`recsys smoke-test`: check a running API end to end."""

from __future__ import annotations

from typing import Annotated

import typer

from recsys.cli.common import EnvOption, JsonOption, emit, fail, settings_for, table
from recsys.errors import ErrorCode

DEFAULT_LOCAL_URL = "http://127.0.0.1:8080"


def smoke_test(
    env: EnvOption = "local",
    url: Annotated[
        str | None,
        typer.Option(help="API base URL (default: the local server, or ApiUrl of the env's outputs)."),
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="A user id (default: one the production model knows).")
    ] = None,
    k: Annotated[int, typer.Option(min=1, max=100, help="Items to ask for.")] = 5,
    api_key: Annotated[
        str | None, typer.Option(envvar="RECSYS_API_KEY", help="API Gateway key (x-api-key).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Call every endpoint of a running API once and check each answer against its contract.

    **Examples**

        recsys smoke-test                      # the local server of `recsys serve`

        recsys smoke-test --env dev --json     # the deployed API (URL from `recsys outputs`)

        recsys smoke-test --url http://127.0.0.1:9000 --user 42
    """
    from recsys.smoke import known_user, run_smoke_test

    settings = settings_for(env)
    if url is None:
        if settings.is_local:
            url = DEFAULT_LOCAL_URL
        else:
            from recsys.infra.outputs import outputs  # Terraform outputs of the environment

            url = outputs(env, settings).get("ApiUrl")
            if not url:
                fail(
                    ErrorCode.NOT_FOUND,
                    f"no ApiUrl in the outputs of {env}",
                    f"recsys deploy --env {env}, or pass --url",
                )
    user = user or known_user(settings) or "1"
    checks = run_smoke_test(url, user_id=user, k=k, api_key=api_key)
    if checks[0].status is None:
        fail(
            ErrorCode.UNAVAILABLE,
            f"nothing answers at {url} ({checks[0].detail})",
            "start it with `recsys serve --env local`",
        )
    data = {"url": url, "passed": all(c.ok for c in checks), "checks": [c.to_dict() for c in checks]}
    emit(
        data,
        lambda: table(
            f"Smoke test of {url}",
            ["check", "call", "status", "ok", "ms", "detail"],
            [
                (
                    c.name,
                    f"{c.method} {c.path}",
                    c.status,
                    "yes" if c.ok else "NO",
                    f"{c.latency_ms:.1f}",
                    c.detail,
                )
                for c in checks
            ],
        ),
    )
    failed = [c.name for c in checks if not c.ok]
    if failed:
        fail(ErrorCode.FAILED, f"{len(failed)} checks failed: {', '.join(failed)}", "see the table above")
