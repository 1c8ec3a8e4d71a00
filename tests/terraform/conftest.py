"""Fixtures of the Terraform checks: paths, parsed HCL, the terraform binary, offline evaluation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
MODULES = TERRAFORM / "modules"
# The one root of every environment; environments/<env>/ holds only terraform.tfvars and backend.hcl.
STACK = TERRAFORM / "stack"
ENVIRONMENTS = ("dev", "staging", "prod")
CATALOG = REPO / "recsys" / "resources" / "catalog.json"


def load_hcl(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return hcl2.load(fh)


def blocks(parsed: dict[str, Any], kind: str) -> dict[str, Any]:
    """`{name: body}` for every `kind` block (variable, output, module) of a parsed file."""
    found: dict[str, Any] = {}
    for entry in parsed.get(kind, []):
        found.update(entry)
    return found


def extract_attribute(text: str, block_header: str, attribute: str) -> str:
    """Raw source of `attribute = <expression>` inside the block starting with `block_header`.

    python-hcl2 re-serialises expressions lossily, so expressions that tests evaluate are cut out of the
    source text (balanced brackets) and handed to the real terraform binary.
    """
    start = text.index(block_header)
    marker = f"\n  {attribute} "
    pos = text.index(marker, start)
    pos = text.index("=", pos) + 1
    depth, i = 0, pos
    while True:
        ch = text[i]
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        elif ch == "\n" and depth == 0 and text[pos:i].strip():
            return text[pos:i].strip()
        elif ch == '"':
            i = text.index('"', i + 1)
        i += 1


def terraform_env() -> dict[str, str]:
    """Environment for the terraform binary: no CLI-config warnings, no checkpoint calls."""
    env = dict(os.environ)
    env["CHECKPOINT_DISABLE"] = "1"
    config = env.get("TF_CLI_CONFIG_FILE")
    if config and not Path(config).is_file():
        env.pop("TF_CLI_CONFIG_FILE")
    return env


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    found = shutil.which("terraform")
    if not found:
        pytest.skip("terraform is not installed on this machine")
    return found


def evaluate(terraform_bin: str, workdir: Path, main_tf: str) -> dict[str, Any]:
    """Apply a provider-less configuration (only local modules and outputs) and return its outputs."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "main.tf").write_text(main_tf, encoding="utf-8")
    env = terraform_env()
    for args in (
        ["init", "-input=false", "-no-color"],
        ["apply", "-auto-approve", "-input=false", "-no-color"],
    ):
        proc = subprocess.run([terraform_bin, *args], cwd=workdir, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [terraform_bin, "output", "-json"], cwd=workdir, env=env, capture_output=True, text=True, check=True
    )
    return {k: v["value"] for k, v in json.loads(proc.stdout).items()}
