"""Conventions every command follows: shared options, output, errors.

- `--json` prints `{"data": ...}` on stdout; without it results are Rich tables on stdout.
- Messages and progress go to stderr.
- Expected failures (`RecsysError`) become one line with a hint and a non-zero exit code
  (`{"error": {...}}` on stdout under `--json`), never a traceback. `RecsysGroup` does this for every command.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from recsys.errors import ErrorCode, RecsysError

if TYPE_CHECKING:
    from recsys.config import Settings

# Human output (messages, progress) -> stderr; results -> stdout.
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


class _OutputState:
    json: bool = False


OUTPUT = _OutputState()


def _set_json(value: bool) -> bool:
    OUTPUT.json = bool(value)
    return value


def _env_completion() -> list[str]:
    from recsys.config import ENVIRONMENTS

    return list(ENVIRONMENTS)


JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print machine-readable JSON on stdout.", callback=_set_json, is_eager=True),
]
EnvOption = Annotated[
    str,
    typer.Option(
        "--env",
        "-e",
        envvar="RECSYS_ENV",
        help="Environment: local, dev, staging or prod.",
        autocompletion=_env_completion,
    ),
]


def settings_for(env: str, resolve_names: bool = True) -> Settings:
    """The command's settings for `env`, built once here and passed on (an unknown env is a clear error).

    On AWS the deployed resource names are resolved from the stack outputs, except for the commands that
    create the stack (`resolve_names=False`).
    """
    from recsys.config import load_settings

    settings = load_settings(env)
    if resolve_names and not settings.is_local:
        from recsys.infra.outputs import with_deployed_names

        settings = with_deployed_names(settings)
    return settings


def fail(code: ErrorCode, message: str, hint: str = "") -> NoReturn:
    """Report an expected failure and exit with the code's exit status."""
    if OUTPUT.json:
        sys.stdout.write(json.dumps({"error": {"code": code.value, "message": message, "hint": hint}}) + "\n")
        sys.stdout.flush()
    else:
        err_console.print(f"[bold red]Error:[/] {message}", markup=True, highlight=False)
        if hint:
            err_console.print(f"[dim]Hint:[/] {hint}")
    raise typer.Exit(code.exit_code)


def emit(data: Any, human: Callable[[], None] | None = None) -> None:
    """Print a result: `{"data": data}` under --json, else the human rendering (or pretty JSON)."""
    if OUTPUT.json:
        sys.stdout.write(json.dumps({"data": data}, default=str) + "\n")
        sys.stdout.flush()
    elif human is not None:
        human()
    else:
        out_console.print_json(json.dumps(data, default=str))


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a Rich table of results on stdout."""
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    out_console.print(t)


def info(message: str) -> None:
    """A human message on stderr (silent under --json)."""
    if not OUTPUT.json:
        err_console.print(message)


@contextmanager
def progress(message: str) -> Iterator[None]:
    """A transient spinner on stderr while a slow step runs."""
    if OUTPUT.json or not err_console.is_terminal:
        yield
        return
    with err_console.status(message):
        yield


class RecsysGroup(TyperGroup):
    """Root command group: turns expected failures into `fail()` for every sub-command."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except RecsysError as exc:
            fail(exc.code, exc.message, exc.hint)
        except KeyboardInterrupt:
            fail(ErrorCode.FAILED, "interrupted", "run the command again")


def group(help_text: str) -> typer.Typer:
    """A command group with the project's conventions."""
    return typer.Typer(
        no_args_is_help=True, help=help_text, rich_markup_mode="markdown", add_completion=False
    )
