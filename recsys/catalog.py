"""The resource catalogue: every bucket, table, stream, secret and function name in one place.

`recsys/resources/catalog.json` is read by Terraform (`jsondecode(file(...))`) and by the local
provisioner, so both create the same data plane. Names are derived from the stack name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

CATALOG_FILE = "catalog.json"
LOCAL_ACCOUNT_ID = "123456789012"  # the account id of the local stack (moto's default)


@cache
def load_catalog() -> dict[str, Any]:
    """The raw catalogue as parsed JSON (cached; treat it as read-only)."""
    text = resources.files("recsys.resources").joinpath(CATALOG_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def stack_name(env: str) -> str:
    """`VideoRecSystem-<env>`, the prefix of every resource name."""
    return f"{load_catalog()['stack_prefix']}-{env}"


def _format(kind: str, env: str, suffix: str) -> str:
    stack = stack_name(env)
    pattern = load_catalog()["naming"][kind]
    return pattern.format(
        stack=stack,
        stack_lower=stack.lower(),
        stack_snake=stack.lower().replace("-", "_"),
        suffix=suffix if kind != "glue_database" else suffix.replace("-", "_"),
    )


@dataclass(frozen=True)
class ResourceNames:
    """Every resource name of one environment, derived from the catalogue."""

    env: str
    stack: str
    buckets: dict[str, str]
    tables: dict[str, str]
    streams: dict[str, str]
    firehose: dict[str, str]
    secrets: dict[str, str]
    glue_database: str
    glue_tables: dict[str, str]
    functions: dict[str, str]
    state_machines: dict[str, str]

    def bucket(self, key: str) -> str:
        return _lookup(self.buckets, key, "bucket")

    def table(self, key: str) -> str:
        return _lookup(self.tables, key, "table")

    def secret(self, key: str) -> str:
        return _lookup(self.secrets, key, "secret")

    def function(self, key: str) -> str:
        return _lookup(self.functions, key, "function")


def _lookup(names: dict[str, str], key: str, kind: str) -> str:
    try:
        return names[key]
    except KeyError:
        raise KeyError(f"unknown {kind} {key!r}; the catalogue has {sorted(names)}") from None


@cache
def resource_names(env: str) -> ResourceNames:
    """All resource names for `env` (local, dev, staging, prod)."""
    cat = load_catalog()
    return ResourceNames(
        env=env,
        stack=stack_name(env),
        buckets={k: _format("bucket", env, v["suffix"]) for k, v in cat["buckets"].items()},
        tables={k: _format("table", env, v["suffix"]) for k, v in cat["tables"].items()},
        streams={k: _format("stream", env, v["suffix"]) for k, v in cat["streams"].items()},
        firehose={k: _format("firehose", env, v["suffix"]) for k, v in cat["firehose"].items()},
        secrets={
            k: _format("secret", env, v["suffix"])
            for k, v in cat["secrets"].items()
            if env in v["environments"]
        },
        glue_database=_format("glue_database", env, cat["glue"]["database"]["suffix"]),
        glue_tables={k: k for k in cat["glue"]["tables"]},
        functions={k: _format("function", env, v["suffix"]) for k, v in cat["functions"].items()},
        state_machines={
            k: _format("state_machine", env, v["suffix"]) for k, v in cat["state_machines"].items()
        },
    )


@cache
def names_with_bucket_suffix(env: str, suffix: str) -> ResourceNames:
    """Catalogue names with `suffix` appended to every bucket (what Terraform does with the account id)."""
    base = resource_names(env)
    return replace(base, buckets={k: v + suffix for k, v in base.buckets.items()})
