"""Serving through dependency failures: what failed during a request, one log line per interval, safe texts.

A request runs inside `degradation()`; a call to a dependency that fails goes through `DependencyMonitor.
guard`, which returns a fallback, notes the dependency as missing from this request's answer (the response
then says `degraded: true`) and remembers the failure for `/health`. A failing dependency is logged once per
`log_interval_s` (with how many failures were not logged), not once per request, and never with a
traceback. `redact` takes endpoints and credentials out of any text a client or a log may see.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_LOG_INTERVAL_S = 30.0
DEFAULT_RECENT_S = 30.0
RETRY_AFTER_S = 5

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE)
_CREDENTIAL = re.compile(
    r"(?i)\b(auth_token|token|password|passwd|secret|api[_-]?key|x-api-key|signature|credential)"
    r"(\s*[=:]\s*)[^\s,;&\"']+"
)
_HOST_PORT = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b|\blocalhost(?::\d+)?\b", re.IGNORECASE)
_notes: ContextVar[set[str] | None] = ContextVar("recsys_degraded", default=None)


def redact(text: str) -> str:
    """`text` without URLs, host:port pairs or credential values (for error bodies and logs)."""
    text = _URL.sub("<endpoint>", text)
    text = _CREDENTIAL.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    return _HOST_PORT.sub("<host>", text)


def describe(exc: BaseException) -> str:
    """One redacted line for an exception: its type and the first line of its message."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {redact(first)[:200]}" if first else type(exc).__name__


@contextmanager
def degradation() -> Iterator[set[str]]:
    """Collect the dependencies that one request had to do without (per thread and task)."""
    token = _notes.set(set())
    try:
        yield _notes.get()  # type: ignore[misc]
    finally:
        _notes.reset(token)


def note(dependency: str) -> None:
    """Record that the current request is answered without `dependency` (no-op outside `degradation`)."""
    notes = _notes.get()
    if notes is not None:
        notes.add(dependency)


class ThrottledLog:
    """Logs a warning per key at most once per interval, saying how many were held back in between."""

    def __init__(
        self, logger: logging.Logger, interval_s: float = DEFAULT_LOG_INTERVAL_S, clock=time.monotonic
    ):
        self.logger = logger
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(
        self, key: str, message: str, *args: Any, level: int = logging.WARNING, exc_info: Any = None
    ) -> bool:
        """Log `message % args` unless `key` was logged within the interval; True when it was logged."""
        now = self._clock()
        with self._lock:
            if now - self._last.get(key, -float("inf")) < self.interval_s:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        suffix = f" ({held} more since the last report)" if held else ""
        self.logger.log(level, message + suffix, *args, exc_info=exc_info)
        return True


class DependencyMonitor:
    """The last failure of each dependency, and the one guard every request-path call goes through."""

    def __init__(
        self,
        recent_s: float = DEFAULT_RECENT_S,
        log_interval_s: float = DEFAULT_LOG_INTERVAL_S,
        clock=time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self.recent_s = recent_s
        self._clock = clock
        self._failures: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self.log = ThrottledLog(logger, log_interval_s, clock)

    def failed(self, dependency: str, exc: BaseException, action: str = "serving without it") -> None:
        """Remember a failure of `dependency`, note it on the current request, log it (throttled)."""
        detail = describe(exc)
        with self._lock:
            self._failures[dependency] = (self._clock(), detail)
        note(dependency)
        self.log.warning(dependency, "%s unavailable, %s: %s", dependency, action, detail)

    def guard(self, dependency: str, call: Callable[[], T], fallback: T) -> T:
        """`call()`, or `fallback` when it raises (the failure recorded as by `failed`)."""
        try:
            return call()
        except Exception as exc:
            self.failed(dependency, exc)
            return fallback

    def recent(self) -> dict[str, str]:
        """Dependencies that failed within `recent_s`, each with its last failure (redacted)."""
        horizon = self._clock() - self.recent_s
        with self._lock:
            return {name: detail for name, (at, detail) in self._failures.items() if at >= horizon}
