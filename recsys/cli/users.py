"""`recsys users forget ID`: erase what the online system keeps about one user (`recsys.serving.forget`)."""

from __future__ import annotations

from typing import Annotated

import typer

from recsys.cli.common import EnvOption, JsonOption, emit, group, info, progress, settings_for, table

users_app = group("Users' data in the online stores (erasure on request).")


@users_app.command("forget")
def forget(
    user_id: Annotated[str, typer.Argument(help="The user id (as the API receives it).")],
    env: EnvOption = "local",
    json_output: JsonOption = False,
) -> None:
    """Delete a user's recent activity, online features, precomputed and cached recommendations and
    inference-tracking items. Raw events in the data lake expire under its lifecycle rule.

    Operators can do the same over the API: `DELETE /users/{user_id}` with the operator key.

    **Examples**

        recsys users forget 12345 --env local

        recsys users forget u-42 --env prod --json
    """
    from recsys.errors import ValidationError
    from recsys.serving.forget import forget_user

    if not 1 <= len(user_id) <= 128:
        raise ValidationError("user_id must be 1..128 characters", hint="pass the id the API received")
    settings = settings_for(env)
    with progress(f"Erasing the data of user {user_id}…"):
        report = forget_user(settings, user_id)
    info(f"Erased user {user_id}'s online data; raw events expire under the data lake's lifecycle rule.")
    emit(
        report,
        lambda: table(
            f"User {user_id}", ["store", "deleted"], [(k, v) for k, v in report.items() if k != "user_id"]
        ),
    )
