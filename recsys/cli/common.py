"""Conventions every command follows: shared options, output, errors.

- `--json` prints `{"data": ...}` on stdout; without it results are Rich tables on stdout.
- Messages and progress go to stderr.
- Expected failures (`RecsysError`) become one line with a hint and a non-zero exit code
  (`{"error": {...}}` on stdout under `--json`), never a traceback. `RecsysGroup` does this for every command.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text
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


class RateColumn(ProgressColumn):
    """Units per second of a task ("12.5 users/s")."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "items")
        return Text(f"{speed:,.1f} {unit}/s" if speed else f"– {unit}/s", style="progress.data.speed")


def make_progress(console: Console | None = None, auto_refresh: bool = True) -> Progress:
    """Rich progress bars with counts, rate, elapsed time and ETA, on stderr."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console or err_console,
        auto_refresh=auto_refresh,
    )


def _summary_line(description: str, done: int, total: int | None, unit: str, seconds: float) -> str:
    rate = f", {done / seconds:,.1f} {unit}/s" if seconds > 0 and done else ""
    of = f"/{total:,}" if total is not None else ""
    return f"{description}: {done:,}{of} {unit} in {seconds:.1f}s{rate}"


@contextmanager
def progress_bar(description: str, total: int, unit: str = "items") -> Iterator[Callable[[int], None]]:
    """A progress bar of one long job; yields `update(completed)` (the count so far, not an increment).

    On a terminal: a live bar with counts, rate and ETA. Elsewhere (CI logs): one summary line at the end.
    Silent under --json.
    """
    import time

    started = time.monotonic()
    done = [0]
    if OUTPUT.json:
        yield lambda n: None
        return
    if not err_console.is_terminal:
        yield lambda n: done.__setitem__(0, n)
        err_console.print(_summary_line(description, done[0], total, unit, time.monotonic() - started))
        return
    with make_progress() as bars:
        task = bars.add_task(description, total=total, unit=unit)
        yield lambda n: bars.update(task, completed=n)


class JobBars:
    """Progress bars of the jobs that report through `recsys.progress` (e.g. training epochs).

    A renderable to put inside another live display; off a terminal, one line per finished job.
    """

    def __init__(self, live: bool) -> None:
        import time

        self._clock = time.monotonic
        self.live = live
        self.progress = make_progress(auto_refresh=False)
        self._tasks: dict[str, Any] = {}
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, update: Any) -> None:
        """Listener for `recsys.progress.report`."""
        if OUTPUT.json:
            return
        with self._lock:
            task = self._tasks.get(update.task)
            if task is None or update.completed == 0:
                if task is not None:  # the same job again (e.g. another training run): a fresh bar
                    self.progress.remove_task(task)
                task = self.progress.add_task(update.task, total=update.total, unit=update.unit)
                self._tasks[update.task] = task
                self._started[update.task] = self._clock()
            self.progress.update(task, completed=update.completed, total=update.total)
        if not self.live and update.total is not None and update.completed >= update.total:
            seconds = self._clock() - self._started.get(update.task, self._clock())
            err_console.print(
                _summary_line(update.task, update.completed, update.total, update.unit, seconds)
            )

    def __rich__(self) -> Any:
        return self.progress.get_renderable()

    @property
    def active(self) -> bool:
        return bool(self._tasks)


@contextmanager
def job_progress() -> Iterator[None]:
    """Progress bars of whatever reports through `recsys.progress` while the block runs (on stderr)."""
    from recsys.progress import listening

    live = err_console.is_terminal and not OUTPUT.json
    bars = JobBars(live=live)
    with listening(bars):
        if not live:
            yield
            return
        from rich.live import Live

        with Live(bars, console=err_console, refresh_per_second=8, transient=False):
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


def version_callback(value: bool) -> None:
    """`recsys --version`: print the installed version and exit."""
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = version("recsys")
        except PackageNotFoundError:  # run from a checkout without installing (cli.py)
            installed = "0+checkout"
        out_console.print(f"recsys {installed}")
        raise typer.Exit(0)


def group(help_text: str) -> typer.Typer:
    """A command group with the project's conventions."""
    return typer.Typer(
        no_args_is_help=True, help=help_text, rich_markup_mode="markdown", add_completion=False
    )
