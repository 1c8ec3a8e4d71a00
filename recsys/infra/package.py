"""Lambda packages: reproducible zips for the `zip` functions and the training image's build context.

A zip holds the function's folder (`lambdas/<key>/`, so the handler is `handler.handler`), the `recsys`
package without its CLI/local/infra/training parts, and the base dependencies installed for
manylinux2014 x86_64 / CPython 3.11 (the Lambda runtime). Left out, by measurement:
- boto3, botocore, s3transfer, jmespath (~35 MB): the Lambda Python runtime provides them;
- polars and pyarrow (~310 MB together): over the 250 MB limit; the serving path reads numpy bundles, and the
  functions that need Parquet are container images (catalogue `package: image`);
- typer, rich, python-terraform, localstack-client: CLI and local-mode only (recsys.cli, recsys.local and
  recsys.training are left out too);
- `tests/` folders, `__pycache__`, `bin/` scripts.
Files are written in sorted order with a fixed timestamp and mode, so two builds give the same sha256.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from recsys.catalog import load_catalog
from recsys.errors import ErrorCode, NotFoundError, RecsysError, ValidationError
from recsys.infra.terraform import repo_root

LAMBDA_PYTHON = "3.11"
LAMBDA_PLATFORM = "manylinux2014_x86_64"
UNZIPPED_LIMIT_BYTES = 262_144_000  # Lambda: 250 MB unzipped, code and layers together
SERVING_TARGET_BYTES = 100 * 1024 * 1024
FIXED_DATE = (1980, 1, 1, 0, 0, 0)

# Distributions never installed into a zip (see the module docstring for why).
EXCLUDED_DISTRIBUTIONS = frozenset(
    {"polars", "pyarrow", "typer", "rich", "python-terraform", "localstack-client", "tensorflow", "catboost"}
)
# Base dependencies with no manylinux wheel on PyPI, replaced for the Lambda platform by a wheel that
# provides the same module (none today: the base set uses chroma-hnswlib, the wheel-publishing fork of
# hnswlib, everywhere, so every process reads the same index format).
WHEEL_SUBSTITUTES: dict[str, str] = {}
# Provided by the Lambda runtime: installed with the rest (for resolution) and then left out of the zip.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath")
# Parts of `recsys` no Lambda zip needs (and that import CLI or training libraries). recsys.infra stays:
# its name resolver (outputs.deployed_names) runs in Lambdas; terraform.py is only imported by the CLI.
EXCLUDED_RECSYS_PARTS = ("cli", "local", "training")
_SKIP_DIRS = frozenset({"__pycache__", "tests", "bin"})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".js.map", ".css.map")  # source maps: only for debugging a browser bundle


@dataclass(frozen=True)
class PackageResult:
    """One built zip."""

    function: str
    path: str
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int
    files: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _distribution_name(requirement: str) -> str:
    name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
    return name.strip().lower().replace("_", "-")


def lambda_requirements(root: Path | None = None) -> list[str]:
    """The base dependencies of pyproject.toml that a zip Lambda needs (sorted)."""
    root = root or repo_root()
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [r for r in project["dependencies"] if _distribution_name(r) not in EXCLUDED_DISTRIBUTIONS]
    return sorted(WHEEL_SUBSTITUTES.get(_distribution_name(r), r) for r in wanted)


def zip_functions() -> dict[str, dict]:
    """The catalogue's functions packaged as zips."""
    return {k: f for k, f in load_catalog()["functions"].items() if f["package"] == "zip"}


def image_functions() -> dict[str, dict]:
    """The catalogue's functions packaged as the training container image."""
    return {k: f for k, f in load_catalog()["functions"].items() if f["package"] == "image"}


def package_dir(override: Path | None = None) -> Path:
    """Where the zips are (`override`: the settings' `package_dir`, else build/lambda); Terraform reads them."""
    return override or repo_root() / "build" / "lambda"


def missing_zips(out_dir: Path | None = None) -> list[str]:
    """Zip functions of the catalogue without a built package in `package_dir(out_dir)`."""
    return [name for name in sorted(zip_functions()) if not (package_dir(out_dir) / f"{name}.zip").is_file()]


def _pip_install(requirements: list[str], target: Path, cache_dir: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--platform",
        LAMBDA_PLATFORM,
        "--only-binary=:all:",
        "--python-version",
        LAMBDA_PYTHON,
        "--implementation",
        "cp",
        "--target",
        str(target),
        "--cache-dir",
        str(cache_dir),
        *requirements,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-4:])
        raise RecsysError(
            f"pip could not install the Lambda dependencies: {tail}",
            hint="check network access to PyPI (or a pip index configured in pip.conf)",
            code=ErrorCode.UNAVAILABLE,
        )


def dependencies_dir(build_dir: Path, requirements: list[str]) -> Path:
    """Install `requirements` for the Lambda platform once; reused while the requirement list is unchanged."""
    key = hashlib.sha256("\n".join([LAMBDA_PLATFORM, LAMBDA_PYTHON, *requirements]).encode()).hexdigest()[:16]
    target = build_dir / "lambda-deps" / key
    marker = target / ".complete"
    if marker.is_file():
        return target
    # Install into a private folder and rename it into place, so concurrent builds never see half an install.
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    # One pip cache for every build folder (the repository's build/pip-cache): wheels download once.
    try:
        _pip_install(requirements, staging, repo_root() / "build" / "pip-cache")
    except RecsysError:
        shutil.rmtree(staging, ignore_errors=True)  # nothing half-written stays behind
        raise
    (staging / ".complete").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    if marker.is_file():  # another build finished first
        shutil.rmtree(staging)
        return target
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def _walk(base: Path, skip_top: tuple[str, ...] = ()) -> Iterator[tuple[Path, str]]:
    """(file, path relative to base) for every file to package, skipping caches, tests and scripts."""
    for dirpath, dirnames, filenames in os.walk(base):
        rel_dir = Path(dirpath).relative_to(base)
        dirnames[:] = [
            d for d in dirnames if d not in _SKIP_DIRS and not (rel_dir == Path(".") and d in skip_top)
        ]
        for name in filenames:
            if name.endswith(_SKIP_SUFFIXES) or name == ".complete":
                continue
            path = Path(dirpath) / name
            yield path, (rel_dir / name).as_posix()


def _runtime_provided(arcname: str) -> bool:
    top = arcname.split("/", 1)[0].lower()
    return any(top == p or (top.startswith(p + "-") and top.endswith(".dist-info")) for p in RUNTIME_PROVIDED)


def _is_record(arcname: str) -> bool:
    parts = arcname.split("/")
    return len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "RECORD"


def _record_without_scripts(path: Path) -> bytes:
    """A RECORD without the console scripts (left out of the zip; their shebang names the build machine)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("../")).encode("utf-8")


def collect_files(function: str, root: Path, deps: Path) -> dict[str, Path | bytes]:
    """Map of zip path -> source file for one function (handler folder, recsys, dependencies)."""
    handler_dir = root / "lambdas" / function
    if not (handler_dir / "handler.py").is_file():
        raise NotFoundError(
            f"function {function!r} has no handler at lambdas/{function}/handler.py",
            hint="write the handler first, or package another function with --function",
        )
    files: dict[str, Path | bytes] = {}
    for path, rel in _walk(deps):
        if _runtime_provided(rel):
            continue
        files[rel] = _record_without_scripts(path) if _is_record(rel) else path
    recsys_root = root / "recsys"
    for path, rel in _walk(recsys_root, skip_top=EXCLUDED_RECSYS_PARTS):
        files[f"recsys/{rel}"] = path
    for path, rel in _walk(handler_dir):
        files[rel] = path
    return files


def write_zip(files: dict[str, Path | bytes], target: Path) -> tuple[int, int]:
    """Write a deterministic zip (sorted entries, fixed time and modes); returns (zipped, unzipped) bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # concurrent builds never share a temp file
    unzipped = 0
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for arcname in sorted(files):
            source = files[arcname]
            info = zipfile.ZipInfo(arcname, date_time=FIXED_DATE)
            executable = isinstance(source, Path) and os.access(source, os.X_OK) and source.suffix != ".py"
            info.external_attr = (0o100000 | (0o755 if executable else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = source if isinstance(source, bytes) else source.read_bytes()
            unzipped += len(data)
            zf.writestr(info, data, compresslevel=6)
    tmp.replace(target)
    return target.stat().st_size, unzipped


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_zip(
    function: str, build_dir: Path | None = None, root: Path | None = None, out_dir: Path | None = None
) -> PackageResult:
    """Build `<package_dir>/<function>.zip` (default build/lambda/); fails when over the 250 MB unzipped limit.

    `build_dir` holds the pip cache and the installed dependencies (default build/).
    """
    root = root or repo_root()
    build_dir = build_dir or root / "build"
    functions = zip_functions()
    if function not in functions:
        kinds = load_catalog()["functions"]
        if function in kinds:
            raise ValidationError(
                f"function {function!r} is a container image, not a zip",
                hint="`recsys package` writes its image context to build/training/",
            )
        raise NotFoundError(
            f"unknown function {function!r}", hint=f"zip functions: {', '.join(sorted(functions))}"
        )
    deps = dependencies_dir(build_dir, lambda_requirements(root))
    files = collect_files(function, root, deps)
    unzipped_estimate = sum(len(p) if isinstance(p, bytes) else p.stat().st_size for p in files.values())
    if unzipped_estimate > UNZIPPED_LIMIT_BYTES:
        raise ValidationError(
            f"{function} would be {unzipped_estimate / 1e6:.0f} MB unzipped, over Lambda's 250 MB limit",
            hint="drop dependencies from the zip or make the function a container image in the catalogue",
        )
    target = (out_dir or package_dir()) / f"{function}.zip"
    zipped, unzipped = write_zip(files, target)
    return PackageResult(function, str(target), sha256_file(target), zipped, unzipped, len(files))


# --- training image -------------------------------------------------------------------------------------

DOCKERFILE = Path("docker") / "training" / "Dockerfile"
# What the Dockerfile COPYs, relative to the repository root.
IMAGE_CONTEXT = ("pyproject.toml", "README.md", "cli.py", "recsys", "lambdas")


def build_training_context(build_dir: Path | None = None, root: Path | None = None) -> Path:
    """Write `build/training/` (Dockerfile plus everything it COPYs); returns the folder."""
    root = root or repo_root()
    build_dir = build_dir or root / "build"
    context = build_dir / "training"
    if context.exists():
        shutil.rmtree(context)
    context.mkdir(parents=True)
    shutil.copy2(root / DOCKERFILE, context / "Dockerfile")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in IMAGE_CONTEXT:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=ignore)
        elif source.is_file():
            shutil.copy2(source, context / name)
        else:
            raise NotFoundError(
                f"the training image needs {name}, which is missing", hint="run from a full checkout"
            )
    (context / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n", encoding="utf-8")
    return context


def package_steps(function: str | None = None) -> int:
    """How many packages `package(function)` builds (zips and the training context), for a progress bar."""
    if function is None:
        return len(zip_functions()) + 1
    return 1


def package(
    function: str | None = None,
    build_dir: Path | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, object]:
    """Build every zip (or one function's) and the training image context; a JSON-ready summary.

    Without `function`, zip functions whose handler is not written yet are listed under `skipped`.
    `on_progress(done)` is called after each package.
    """
    done = [0]

    def step() -> None:
        done[0] += 1
        if on_progress is not None:
            on_progress(done[0])

    root = repo_root()
    build_dir = build_dir or root / "build"
    results: list[PackageResult] = []
    skipped: list[dict[str, str]] = []
    context: Path | None = None
    if function is None:
        for name in sorted(zip_functions()):
            if not (root / "lambdas" / name / "handler.py").is_file():
                skipped.append({"function": name, "reason": f"lambdas/{name}/handler.py does not exist"})
                step()
                continue
            results.append(build_zip(name, build_dir, root))
            step()
        context = build_training_context(build_dir, root)
        step()
    elif function in image_functions():
        context = build_training_context(build_dir, root)
        step()
    else:
        results = [build_zip(function, build_dir, root)]
        step()
    return {
        "zips": [r.to_dict() for r in results],
        "skipped": skipped,
        "training_context": str(context) if context else None,
        "limit_bytes": UNZIPPED_LIMIT_BYTES,
    }
