"""Run the API as a separate process (`recsys serve`, or any command line that serves it) for a test."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recsys.local.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serve_api(argv: list[str] | None = None, timeout_s: float = 120) -> Iterator[str]:
    """Serve over the current environment's local stack on a free port; yields the base URL (no slash).

    `argv` is a `recsys` command line whose `--port` value is replaced by the free port (default:
    `serve --env local --port PORT`).
    """
    port = free_port()
    args = list(argv or ["serve", "--env", "local", "--port", "0"])
    args[args.index("--port") + 1] = str(port)
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "recsys.cli.main", *args], cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    with urllib.request.urlopen(url + "/health", timeout=2):
                        break
                except urllib.error.HTTPError:
                    break  # it answers (503 before a model is in production)
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(f"the API did not start: {log.read()[-2000:]}") from None
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
