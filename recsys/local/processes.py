"""Background processes the local stack starts, tracked by pid files under the stack's home directory.

Only processes recorded here are ever stopped, and only after checking that the pid still runs the
program we started (a pid can be reused by the system).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# Popen objects of processes started by this interpreter: reaped by a thread so a dead child never lingers
# as a zombie that still answers `kill(pid, 0)`.
_children: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class ManagedProcess:
    """A daemon of the local stack: `name` (moto, redis), its pid and log files under `home`."""

    name: str
    home: Path
    marker: str  # a substring of the command line that identifies our program

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / f"{self.name}.log"

    def recorded_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def is_running(self) -> bool:
        """True when the recorded pid is alive and still runs our program."""
        pid = self.recorded_pid()
        return pid is not None and pid_runs(pid, self.marker)

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> int:
        """Start `argv` in its own session, logging to the log file; record and return its pid."""
        self.home.mkdir(parents=True, exist_ok=True)
        log = self.log_file.open("ab")
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                cwd=self.home,
            )
        finally:
            log.close()
        _children[proc.pid] = proc
        threading.Thread(target=proc.wait, name=f"reap-{self.name}", daemon=True).start()
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop our process (SIGTERM, then SIGKILL); True if one was running. Removes the pid file."""
        pid = self.recorded_pid()
        stopped = False
        if pid is not None and pid_runs(pid, self.marker):
            stopped = True
            _signal(pid, signal.SIGTERM)
            # Wait until the process is gone, not merely a zombie leader: a multi-threaded process's
            # main thread shows as a zombie while its other threads (and its sockets) still live.
            if not wait_until(lambda: _gone(pid), timeout_s, interval_s=0.05):
                _signal(pid, signal.SIGKILL)
                wait_until(lambda: _gone(pid), timeout_s, interval_s=0.05)
            proc = _children.pop(pid, None)
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=timeout_s)
        self.pid_file.unlink(missing_ok=True)
        return stopped


def _gone(pid: int) -> bool:
    """True once `pid` no longer exists at all (exited and reaped)."""
    proc = _children.get(pid)
    if proc is not None:
        return proc.poll() is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def pid_runs(pid: int, marker: str) -> bool:
    """True when `pid` is a live (non-zombie) process whose command line contains `marker`."""
    proc = _children.get(pid)
    if proc is not None and proc.poll() is not None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    proc_dir = Path("/proc") / str(pid)
    if sys.platform.startswith("linux") and proc_dir.exists():
        try:
            stat = (proc_dir / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False
            cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        return marker in cmdline
    return True


def port_open(host: str, port: int, timeout_s: float = 0.3) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(check, timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll `check()` until it returns True or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval_s)
    return bool(check())
