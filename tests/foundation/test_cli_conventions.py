"""Every command: --help with examples; expected failures are one line with a hint, never a traceback."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from recsys.cli.main import app

runner = CliRunner()


def _commands(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a sub-group (Typer vendors its own click)
            found += _commands(cmd, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


ALL_COMMANDS = _commands(typer.main.get_command(app))


def test_there_are_commands() -> None:
    assert ("local", "up") in ALL_COMMANDS and ("local", "status") in ALL_COMMANDS


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=" ".join)
def test_every_command_has_help_with_examples(command: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "Examples" in result.stdout
    assert "recsys " + " ".join(command) in result.stdout


def test_unknown_environment_is_one_line_with_hint() -> None:
    result = runner.invoke(app, ["local", "status", "--env", "qa"])
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    assert "unknown environment 'qa'" in result.stderr and "Hint" in result.stderr


def test_json_errors_go_to_stdout() -> None:
    result = runner.invoke(app, ["local", "up", "--env", "dev", "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "usage" and "--env local" in error["hint"]
