"""`recsys validate`: is an environment whole? One check per fact a working deployment relies on.

- outputs (AWS): every stack output the CLI reads resolves (Redis only where the environment has one);
- buckets: each catalogue bucket exists;
- tables: each catalogue table exists, is ACTIVE, and has the catalogue's hash/range keys;
- model: a version is in production, the vector store holds its embeddings (the object's `model-version`
  and its video ids match the registry's version), and its serving bundle exists;
- pipeline: the last pipeline run succeeded;
- api: `GET /health` answers 200 and serves the production version (waiting, with `--wait`, for an API that
  has not loaded a new deployment yet).
"""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from recsys import artifacts
from recsys.aws import client
from recsys.catalog import load_catalog
from recsys.registry import ModelRegistry
from recsys.serving.bundle import bundle_key
from recsys.serving.model_store import DEFAULT_POLL_INTERVAL_S

if TYPE_CHECKING:
    from recsys.config import Settings


@dataclass(frozen=True)
class Check:
    """One validated fact."""

    group: str
    name: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".strip(": ")
    return f"{type(exc).__name__}: {exc}"


def check_outputs(values: dict[str, Any], has_redis: bool) -> list[Check]:
    """Every stack output resolves to a value (RedisEndpoint only where Redis is deployed)."""
    from recsys.infra.outputs import NAMES_OUTPUT, STACK_OUTPUTS

    checks = []
    for name in (*STACK_OUTPUTS, NAMES_OUTPUT):
        value = values.get(name)
        optional = name == "RedisEndpoint" and not has_redis
        ok = optional or value not in (None, "", {})
        checks.append(Check("outputs", name, ok, "not deployed here (no Redis)" if optional else
                            ("resolves" if ok else "missing or empty")))  # fmt: skip
    return checks


def check_buckets(settings: Settings) -> list[Check]:
    """Each catalogue bucket exists."""
    s3 = client("s3", settings)
    checks = []
    for key, name in sorted(settings.names.buckets.items()):
        try:
            s3.head_bucket(Bucket=name)
            checks.append(Check("buckets", key, True, name))
        except (ClientError, BotoCoreError) as exc:
            checks.append(Check("buckets", key, False, f"{name}: {_error(exc)}"))
    return checks


def _expected_keys(spec: dict[str, Any]) -> list[tuple[str, str]]:
    keys = [(spec["hash_key"]["name"], "HASH")]
    if spec.get("range_key"):
        keys.append((spec["range_key"]["name"], "RANGE"))
    return keys


def check_tables(settings: Settings) -> list[Check]:
    """Each catalogue table exists, is ACTIVE and has the catalogue's keys."""
    ddb = client("dynamodb", settings)
    specs = load_catalog()["tables"]
    checks = []
    for key, name in sorted(settings.names.tables.items()):
        try:
            table = ddb.describe_table(TableName=name)["Table"]
        except (ClientError, BotoCoreError) as exc:
            checks.append(Check("tables", key, False, f"{name}: {_error(exc)}"))
            continue
        found = [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]]
        expected = _expected_keys(specs[key]) if key in specs else found
        status = table.get("TableStatus", "ACTIVE")
        if found != expected:
            checks.append(Check("tables", key, False, f"{name}: keys {found}, expected {expected}"))
        elif status != "ACTIVE":
            checks.append(Check("tables", key, False, f"{name}: status {status}"))
        else:
            checks.append(Check("tables", key, True, f"{name} ({', '.join(k for k, _ in found)})"))
    return checks


def check_model(settings: Settings) -> tuple[list[Check], str | None]:
    """The production version, its vector store and serving bundle; returns the checks and the version."""
    try:
        production = ModelRegistry(settings).production()
    except (ClientError, BotoCoreError) as exc:
        return [Check("model", "production version", False, _error(exc))], None
    if production is None:
        hint = "no version in production: run `recsys pipeline run`"
        return [Check("model", "production version", False, hint)], None
    version = production.version
    checks = [Check("model", "production version", True, version)]
    s3 = client("s3", settings)
    bucket = settings.names.bucket("models")
    try:
        head = s3.head_object(Bucket=bucket, Key=artifacts.VECTOR_STORE_KEY)
        stored = head.get("Metadata", {}).get("model-version")
        ok = stored == version
        checks.append(Check("model", "vector store version", ok,
                            f"model-version {stored}" + ("" if ok else f", registry says {version}")))  # fmt: skip
        store = np.load(
            io.BytesIO(s3.get_object(Bucket=bucket, Key=artifacts.VECTOR_STORE_KEY)["Body"].read())
        )
        trained = np.load(io.BytesIO(s3.get_object(
            Bucket=bucket, Key=artifacts.two_tower_key(version, "video_embeddings.npz"))["Body"].read()))  # fmt: skip
        same = np.array_equal(
            store[artifacts.NPZ_IDS_VIDEO], trained[artifacts.NPZ_IDS_VIDEO]
        ) and np.array_equal(store[artifacts.NPZ_EMBEDDINGS], trained[artifacts.NPZ_EMBEDDINGS])
        n = len(store[artifacts.NPZ_IDS_VIDEO])
        checks.append(Check("model", "vector store embeddings", bool(same),
                            f"{n} videos, identical to {version}'s" if same else f"differ from {version}'s"))  # fmt: skip
    except (ClientError, BotoCoreError, KeyError, ValueError) as exc:
        checks.append(Check("model", "vector store", False, _error(exc)))
    try:
        s3.head_object(Bucket=bucket, Key=bundle_key(version))
        checks.append(Check("model", "serving bundle", True, bundle_key(version)))
    except (ClientError, BotoCoreError) as exc:
        checks.append(Check("model", "serving bundle", False, _error(exc)))
    return checks, version


def check_last_run(settings: Settings) -> list[Check]:
    """The last pipeline execution succeeded."""
    try:
        if settings.is_local:
            from recsys.pipeline.history import ExecutionStore

            record = ExecutionStore(settings).load(None)
        else:
            from recsys.pipeline import remote

            record = remote.describe(settings, remote.latest_execution_id(settings))
    except Exception as exc:  # no run yet, or the history is unreadable: both fail the check
        return [Check("pipeline", "last run", False, getattr(exc, "message", None) or _error(exc))]
    status = record.get("status")
    detail = f"{record.get('execution_id')} {status}"
    return [Check("pipeline", "last run", status == "SUCCEEDED", detail)]


API_SETTLE_S = 2 * DEFAULT_POLL_INTERVAL_S  # the API loads a new version on its next registry poll
API_RECHECK_S = 2.0


def _health(url: str, api_key: str | None, timeout_s: float) -> tuple[Check, str | None]:
    """One `GET /health`: its check and the version it serves (None without an answer)."""
    req = urllib.request.Request(url.rstrip("/") + "/health", headers={"Accept": "application/json"})
    if api_key:
        req.add_header("x-api-key", api_key)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            status, body = resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return Check("api", "health", False, f"{url}: HTTP {exc.code}"), None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Check("api", "health", False, f"{url}: no answer ({getattr(exc, 'reason', exc)})"), None
    served = body.get("model_version") if isinstance(body, dict) else None
    status_text = body.get("status") if isinstance(body, dict) else None
    return Check("api", "health", status == 200, f"{url}: {status_text}"), served


def check_api(
    url: str,
    version: str | None,
    api_key: str | None = None,
    timeout_s: float = 10.0,
    wait_s: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[Check]:
    """`GET /health` answers 200 and serves the production version.

    An API that answers with another version (a deployment it has not loaded yet: it checks the registry
    every `DEFAULT_POLL_INTERVAL_S`) is asked again every API_RECHECK_S for up to `wait_s` seconds; `on_wait`
    hears once why.
    """

    def behind(served: str | None) -> bool:  # answers, with another version than production
        return version is not None and served is not None and served != version

    start = clock()
    health, served = _health(url, api_key, timeout_s)
    if on_wait is not None and wait_s > 0 and behind(served):
        on_wait(
            f"The API serves {served}, production is {version}: waiting up to {wait_s:.0f} s for it to load"
        )
    while behind(served) and clock() - start < wait_s:
        sleep(API_RECHECK_S)
        health, served = _health(url, api_key, timeout_s)
    checks = [health]
    if version is not None:
        waited = clock() - start
        if served == version:
            detail = f"serves {served}" + (f" (after {waited:.0f} s)" if waited >= 1 else "")
        else:
            detail = f"serves {served}, production is {version}" + (
                f" (still after {waited:.0f} s)" if waited >= 1 else ""
            )
        checks.append(Check("api", "served version", served == version, detail))
    return checks


def validate(
    settings: Settings,
    api_url: str | None,
    outputs: dict[str, Any] | None = None,
    api_key: str | None = None,
    api_wait_s: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
) -> list[Check]:
    """Every check of an environment (`outputs`: the stack outputs, for AWS environments); `api_wait_s` and
    `on_wait` as in `check_api`."""
    checks: list[Check] = []
    if outputs is not None:
        checks += check_outputs(outputs, has_redis=settings.profile.redis_enabled)
    checks += check_buckets(settings)
    checks += check_tables(settings)
    model_checks, version = check_model(settings)
    checks += model_checks
    checks += check_last_run(settings)
    if api_url:
        checks += check_api(api_url, version, api_key, wait_s=api_wait_s, on_wait=on_wait)
    return checks
