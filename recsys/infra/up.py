"""`recsys up`: the whole first deployment as ordered, resumable steps, and the prerequisites it checks.

The steps of an environment are fixed (`LOCAL_STEPS`, `AWS_STEPS`); `run_steps` runs them in order and
records each finished step in `<home>/up-<env>.json`. A run that fails stops at the failed step; the next
run skips what finished and starts again at that step (`restart` forgets the record). Steps marked
`always` (the prerequisites, the local stack) run every time: they are cheap and say whether what was
recorded still holds (a restarted local stack has empty memory: everything after it runs again).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys.errors import ErrorCode, RecsysError

if TYPE_CHECKING:
    from recsys.config import Settings

STATE_VERSION = 1


@dataclass(frozen=True)
class StepInfo:
    """A step of `recsys up`: its name (for --skip/--until), what it does, whether it always runs."""

    name: str
    title: str
    always: bool = False


LOCAL_STEPS: tuple[StepInfo, ...] = (
    StepInfo("stack", "start the local stack (moto + Redis) and provision every resource", always=True),
    StepInfo("bootstrap", "load the starter catalogue, users and interactions"),
    StepInfo("pipeline", "run the ML pipeline on the starter data (train, gate, deploy)"),
    StepInfo("cache", "precompute the /cached recommendations"),
    StepInfo("serve", "serve the API and the page in the background", always=True),
    StepInfo("validate", "check outputs, tables, model files, the last run and the API", always=True),
    StepInfo("smoke", "call every endpoint once", always=True),
)
AWS_STEPS: tuple[StepInfo, ...] = (
    StepInfo("prerequisites", "terraform, AWS credentials, docker", always=True),
    StepInfo("package", "build the Lambda zips and the training image context"),
    StepInfo("ecr", "create the training image's ECR repository (targeted apply)"),
    StepInfo("image", "build and push the training image"),
    StepInfo("apply", "plan and apply the whole stack"),
    StepInfo("bootstrap", "load the starter catalogue, users and interactions"),
    StepInfo("pipeline", "run the ML pipeline on Step Functions (train, gate, deploy)"),
    StepInfo("validate", "check outputs, tables, model files, the last run and the API", always=True),
    StepInfo("smoke", "call every endpoint once", always=True),
)


def steps_for(env: str) -> tuple[StepInfo, ...]:
    """The steps of `recsys up --env env`, in order."""
    return LOCAL_STEPS if env == "local" else AWS_STEPS


# ----- prerequisites


@dataclass(frozen=True)
class Prerequisite:
    """One thing `up` needs, and what to do when it is missing."""

    name: str
    ok: bool
    detail: str
    hint: str = ""
    code: ErrorCode = ErrorCode.MISSING_TOOL

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "hint": self.hint}


def _terraform() -> Prerequisite:
    found = shutil.which("terraform")
    if not found:
        return Prerequisite("terraform", False, "terraform is not installed (not on PATH)",
                            "install Terraform >= 1.10: https://developer.hashicorp.com/terraform/install")  # fmt: skip
    return Prerequisite("terraform", True, found)


def _credentials(settings: Settings) -> Prerequisite:
    import boto3

    if boto3.session.Session().get_credentials() is None:
        return Prerequisite("AWS credentials", False, "no AWS credentials found",
                            "run `aws configure`, set AWS_PROFILE, or export AWS_ACCESS_KEY_ID and "
                            "AWS_SECRET_ACCESS_KEY", ErrorCode.CREDENTIALS)  # fmt: skip
    from recsys.aws import client

    try:
        identity = client("sts", settings).get_caller_identity()
    except Exception as exc:  # expired, revoked or wrong credentials: all end here
        return Prerequisite("AWS credentials", False, f"the credentials were refused ({type(exc).__name__})",
                            "refresh them (aws sso login, or new access keys)", ErrorCode.CREDENTIALS)  # fmt: skip
    return Prerequisite("AWS credentials", True, f"account {identity.get('Account')}")


def _docker() -> Prerequisite:
    found = shutil.which("docker")
    if not found:
        return Prerequisite("docker", False, "docker is not installed (not on PATH); the training image needs it",
                            "install Docker: https://docs.docker.com/get-docker/")  # fmt: skip
    try:
        done = subprocess.run([found, "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                              text=True, timeout=30, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Prerequisite("docker", False, f"`docker info` failed: {exc}", "start the Docker daemon")
    if done.returncode != 0:
        return Prerequisite("docker", False, "docker is installed but its daemon does not answer",
                            "start Docker (Docker Desktop, or `sudo systemctl start docker`)")  # fmt: skip
    return Prerequisite("docker", True, f"server {done.stdout.strip() or 'up'}")


def check_prerequisites(settings: Settings, needs_images: bool = True) -> list[Prerequisite]:
    """Everything an AWS `up` needs, each checked (all of them, so one run lists everything missing)."""
    checks = [_terraform(), _credentials(settings)]
    if needs_images:
        checks.append(_docker())
    return checks


def require(prerequisites: Sequence[Prerequisite]) -> None:
    """Raise one error naming every missing prerequisite (exit 8 for a tool, 9 for credentials only)."""
    missing = [p for p in prerequisites if not p.ok]
    if not missing:
        return
    code = (
        ErrorCode.MISSING_TOOL
        if any(p.code is ErrorCode.MISSING_TOOL for p in missing)
        else ErrorCode.CREDENTIALS
    )
    raise RecsysError(
        f"missing: {', '.join(p.name for p in missing)}",
        hint="; ".join(f"{p.name}: {p.hint}" for p in missing),
        code=code,
    )


# ----- the record of finished steps


@dataclass
class UpState:
    """Finished steps of `recsys up` for one environment, in `<home>/up-<env>.json`."""

    path: Path
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, settings: Settings) -> UpState:
        path = settings.home / f"up-{settings.env}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        steps = data.get("steps", {}) if data.get("version") == STATE_VERSION else {}
        return cls(path, steps)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"version": STATE_VERSION, "steps": self.steps}, indent=2, default=str))
        tmp.replace(self.path)

    def done(self, name: str) -> bool:
        return self.steps.get(name, {}).get("status") == "done"

    def mark(self, name: str, status: str, result: Any = None, error: str | None = None) -> None:
        self.steps[name] = {
            "status": status,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "result": result,
            "error": error,
        }
        self.save()

    def forget_after(self, name: str, order: Sequence[StepInfo]) -> None:
        """Forget every step after `name` (what they did is gone, e.g. a restarted local stack)."""
        names = [s.name for s in order]
        for later in names[names.index(name) + 1 :]:
            self.steps.pop(later, None)
        self.save()

    def reset(self) -> None:
        self.steps = {}
        self.save()


StepFunction = Callable[[], Any]


@dataclass(frozen=True)
class StepOutcome:
    """What happened to one step in this run: ran, skipped (finished before), or left out (--skip)."""

    name: str
    status: str
    result: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "result": self.result}


def run_steps(
    order: Sequence[StepInfo],
    functions: dict[str, StepFunction],
    state: UpState,
    *,
    skip: Sequence[str] = (),
    until: str | None = None,
    on_start: Callable[[int, StepInfo], None] = lambda i, s: None,
    on_skip: Callable[[int, StepInfo, str], None] = lambda i, s, why: None,
    on_done: Callable[[int, StepInfo, Any], None] = lambda i, s, r: None,
    stale_after: Callable[[str, Any], bool] = lambda name, result: False,
) -> list[StepOutcome]:
    """Run the steps in order, skipping the finished ones; a failure is recorded and raised.

    `stale_after(name, result)` says whether a step's result makes the recorded later steps stale.
    """
    names = [s.name for s in order]
    for name in (*skip, *([until] if until else [])):
        if name not in names:
            raise RecsysError(
                f"unknown step {name!r}", hint=f"steps: {', '.join(names)}", code=ErrorCode.USAGE
            )
    outcomes: list[StepOutcome] = []
    for i, step in enumerate(order, start=1):
        if step.name in skip:
            on_skip(i, step, "left out (--skip)")
            outcomes.append(StepOutcome(step.name, "left out"))
        elif state.done(step.name) and not step.always:
            on_skip(i, step, f"done {state.steps[step.name]['at']}")
            outcomes.append(StepOutcome(step.name, "already done", state.steps[step.name].get("result")))
        else:
            on_start(i, step)
            try:
                result = functions[step.name]()
            except BaseException as exc:
                state.mark(
                    step.name, "failed", error=getattr(exc, "message", None) or str(exc) or type(exc).__name__
                )
                raise
            state.mark(step.name, "done", result)
            if stale_after(step.name, result):
                state.forget_after(step.name, order)
            on_done(i, step, result)
            outcomes.append(StepOutcome(step.name, "done", result))
        if until == step.name:
            break
    return outcomes
