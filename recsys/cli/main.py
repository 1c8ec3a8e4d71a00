"""The `recsys` command line: this module only wires the command groups; the logic lives in `recsys/`.

The installed `recsys` command runs `app`; `cli.py` at the project root runs it from a checkout.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from recsys.cli.common import RecsysGroup, version_callback
from recsys.cli.data import data_app
from recsys.cli.events import events_app
from recsys.cli.features import features_app
from recsys.cli.feedback import feedback_app
from recsys.cli.infra import deploy_cmd, destroy_cmd, outputs_cmd, package_cmd, plan_cmd
from recsys.cli.local import local_app
from recsys.cli.model import model_app
from recsys.cli.monitor import monitor_app
from recsys.cli.pipeline import pipeline_app
from recsys.cli.recommend import cache_app, recommend
from recsys.cli.serve import serve
from recsys.cli.smoke import smoke_test
from recsys.cli.up import bootstrap_cmd, up_cmd, validate_cmd
from recsys.cli.users import users_app
from recsys.cli.videos import videos_app

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF reports real failures as Python exceptions

app = typer.Typer(
    cls=RecsysGroup,
    name="recsys",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    rich_markup_mode="markdown",
    help="recsys: an open, AWS-native video recommender. Every command takes --help with examples.",
)


@app.callback()
def main(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", help="Print the version and exit.", callback=version_callback, is_eager=True
        ),
    ] = None,
) -> None:
    """recsys: an open, AWS-native video recommender. Every command takes --help with examples."""


app.add_typer(local_app, name="local")
app.add_typer(data_app, name="data")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(model_app, name="model")
app.add_typer(monitor_app, name="monitor")
app.add_typer(events_app, name="events")
app.add_typer(features_app, name="features")
app.add_typer(feedback_app, name="feedback")
app.add_typer(videos_app, name="videos")
app.command("smoke-test")(smoke_test)
app.command("serve")(serve)
app.command("recommend")(recommend)
app.add_typer(cache_app, name="cache")
app.add_typer(users_app, name="users")
app.command("package")(package_cmd)
app.command("plan")(plan_cmd)
app.command("deploy")(deploy_cmd)
app.command("destroy")(destroy_cmd)
app.command("outputs")(outputs_cmd)
app.command("up")(up_cmd)
app.command("bootstrap")(bootstrap_cmd)
app.command("validate")(validate_cmd)


if __name__ == "__main__":
    app()
