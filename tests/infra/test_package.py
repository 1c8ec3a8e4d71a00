"""`recsys package`: the serving zip (limit, contents, reproducibility, clean import) and the image context."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsys.cli.main import app
from recsys.errors import ErrorCode, RecsysError
from recsys.infra.package import (
    IMAGE_CONTEXT,
    RUNTIME_PROVIDED,
    SERVING_TARGET_BYTES,
    UNZIPPED_LIMIT_BYTES,
    build_training_context,
    build_zip,
    lambda_requirements,
    zip_functions,
)
from recsys.infra.terraform import repo_root

runner = CliRunner()
FORBIDDEN = (
    "tensorflow",
    "catboost",
    "polars",
    "pyarrow",
    "typer",
    "rich",
    "python_terraform",
    "localstack_client",
)


def test_lambda_requirements_leave_out_heavy_and_cli_libraries() -> None:
    names = " ".join(lambda_requirements())
    for heavy in ("tensorflow", "catboost", "polars", "pyarrow", "typer", "python-terraform"):
        assert heavy not in names
    assert "numpy" in names and "aws-lambda-powertools" in names


@pytest.fixture(scope="module")
def api_zip() -> dict:
    """`recsys package --function api --json` (pip cache under build/ makes later runs fast)."""
    result = runner.invoke(app, ["package", "--function", "api", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["data"]
    assert [z["function"] for z in data["zips"]] == ["api"]
    return data["zips"][0]


def test_serving_zip_is_under_the_limit_and_the_target(api_zip: dict) -> None:
    path = Path(api_zip["path"])
    assert path.is_file()
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    unzipped = sum(i.file_size for i in infos)
    assert unzipped == api_zip["unzipped_bytes"]
    assert unzipped <= UNZIPPED_LIMIT_BYTES
    assert unzipped <= SERVING_TARGET_BYTES, (
        f"serving zip is {unzipped / 1e6:.1f} MB unzipped (target 100 MB)"
    )


def test_serving_zip_contents(api_zip: dict) -> None:
    with zipfile.ZipFile(api_zip["path"]) as zf:
        names = zf.namelist()
        infos = zf.infolist()
    assert "handler.py" in names
    assert "recsys/serving/api.py" in names and "recsys/resources/catalog.json" in names
    tops = {n.split("/", 1)[0] for n in names}
    for forbidden in (*FORBIDDEN, *RUNTIME_PROVIDED):
        assert forbidden not in tops, f"{forbidden} must not be in the zip"
    assert not any(n.startswith(("recsys/cli/", "recsys/training/", "recsys/local/")) for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_two_builds_give_the_same_sha256(api_zip: dict) -> None:
    handler = repo_root() / "lambdas" / "api" / "handler.py"
    before = handler.stat()
    later = time.time() + 3600
    os.utime(handler, (later, later))  # a newer mtime must not change the zip
    try:
        again = build_zip("api")
    finally:
        os.utime(handler, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert again.sha256 == api_zip["sha256"]
    assert again.unzipped_bytes == api_zip["unzipped_bytes"]


@pytest.mark.slow
def test_fresh_dependency_install_gives_the_same_zip(tmp_path: Path) -> None:
    """A second build folder (dependencies installed again from the pip cache) yields a byte-identical zip."""
    fresh = build_zip("api", build_dir=tmp_path / "build", out_dir=tmp_path / "out")
    cached = build_zip("api", out_dir=tmp_path / "cached")  # now, so both see the same sources
    assert fresh.sha256 == cached.sha256


def _runtime_dir(tmp_path: Path) -> Path:
    """What the Lambda Python runtime provides besides the stdlib: boto3 and its own dependencies."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in RUNTIME_PROVIDED:
        spec = importlib.util.find_spec(name)
        assert spec and spec.submodule_search_locations, name
        (runtime / name).symlink_to(Path(next(iter(spec.submodule_search_locations))))
    return runtime


def clean_import(zip_path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    pkg = tmp_path / "package"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(pkg)
    runtime = _runtime_dir(tmp_path)
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import handler\n"
        "assert callable(handler.handler)\n"
        f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}))\n"
        "assert not bad, bad\n"
        "outside = [m.__file__ for m in list(sys.modules.values()) if getattr(m, '__file__', None) and "
        "'site-packages' in m.__file__]\n"
        "assert not outside, outside[:3]\n"
        "print('imported', handler.__file__)\n"
        "try:\n"
        "    import hnswlib, numpy as np\n"
        "except ImportError:\n"
        "    hnswlib = None\n"
        "if hnswlib is not None:\n"
        "    index = hnswlib.Index(space='ip', dim=4)\n"
        "    index.init_index(max_elements=4, ef_construction=10, M=4)\n"
        "    index.add_items(np.eye(4, dtype=np.float32), np.arange(4))\n"
        "    labels, _ = index.knn_query(np.eye(4, dtype=np.float32)[2:3], k=1)\n"
        "    assert int(labels[0][0]) == 2\n"
        "    print('hnswlib ok')\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_DEFAULT_REGION": "us-east-1",
        "RECSYS_ENV": "dev",
        "RECSYS_BUCKET_SUFFIX": "-123456789012",  # Terraform sets it on every function
        "HOME": str(tmp_path),
    }
    # -I: no user site, no PYTHON* variables; -S: no site-packages: only the stdlib, the package and the runtime.
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(pkg), str(runtime)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )


def test_serving_handler_imports_in_a_clean_interpreter(api_zip: dict, tmp_path: Path) -> None:
    proc = clean_import(Path(api_zip["path"]), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "imported" in proc.stdout
    if any("hnswlib" in r for r in lambda_requirements()):
        assert "hnswlib ok" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("function", sorted(set(zip_functions()) - {"api"}))
def test_other_zip_handlers_import_cleanly(function: str, tmp_path: Path) -> None:
    if not (repo_root() / "lambdas" / function / "handler.py").is_file():
        pytest.skip(f"lambdas/{function}/handler.py is not written yet")
    result = build_zip(function)
    assert result.unzipped_bytes <= UNZIPPED_LIMIT_BYTES
    proc = clean_import(Path(result.path), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_image_function_gets_the_training_context() -> None:
    result = runner.invoke(app, ["package", "--function", "preprocessing", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["data"]
    assert data["zips"] == []
    assert Path(data["training_context"], "Dockerfile").is_file()


def test_unknown_function_is_a_clear_error() -> None:
    result = runner.invoke(app, ["package", "--function", "nope"])
    assert result.exit_code == ErrorCode.NOT_FOUND.exit_code
    assert "unknown function 'nope'" in result.stderr


INSTRUCTIONS = {
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
}


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(instruction, arguments) per logical line: comments dropped, backslash continuations joined."""
    logical, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        instruction, _, args = current.partition(" ")
        logical.append((instruction.upper(), args.strip()))
        current = ""
    assert not current, "dangling line continuation"
    return logical


def test_training_context_has_everything_the_dockerfile_copies(tmp_path: Path) -> None:
    context = build_training_context(build_dir=tmp_path)
    steps = parse_dockerfile((context / "Dockerfile").read_text())
    assert all(instruction in INSTRUCTIONS for instruction, _ in steps), steps
    assert steps[0] == ("FROM", "public.ecr.aws/lambda/python:3.11")
    copies = [args.split() for instruction, args in steps if instruction == "COPY"]
    assert copies
    for parts in copies:
        for source in parts[:-1]:
            assert (context / source).exists(), f"COPY {source}: missing from the build context"
    runs = " ".join(args for instruction, args in steps if instruction == "RUN")
    assert re.search(r'pip install "?\.\[train\]"?', runs)
    cmd = [args for instruction, args in steps if instruction == "CMD"]
    handler = json.loads(cmd[-1])[0]
    module = handler.rsplit(".", 1)[0].replace(".", "/") + ".py"
    assert (context / module).is_file() or not (repo_root() / module).is_file()
    for name in IMAGE_CONTEXT:
        assert (context / name).exists()
    assert not list(context.rglob("__pycache__"))


def test_name_resolver_runs_inside_the_package(api_zip: dict, tmp_path: Path) -> None:
    """A Lambda resolves real names from RECSYS_BUCKET_SUFFIX without terraform or the CLI libraries."""
    pkg = tmp_path / "package"
    with zipfile.ZipFile(api_zip["path"]) as zf:
        zf.extractall(pkg)
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "from recsys.config import load_settings\n"
        "names = load_settings().names\n"
        "assert names.bucket('models') == 'videorecsystem-dev-models-123456789012', names.buckets\n"
        "assert 'python_terraform' not in sys.modules\n"
        "print('resolved')\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "RECSYS_ENV": "dev",
        "RECSYS_BUCKET_SUFFIX": "-123456789012",
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(pkg), str(_runtime_dir(tmp_path))],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_every_catalogue_function_has_its_handler() -> None:
    """Terraform creates every catalogue function: zip ones run `handler.handler`, images the dotted path."""
    from recsys.catalog import load_catalog

    missing = [
        f"{key}: {spec['handler']}"
        for key, spec in load_catalog()["functions"].items()
        if not (repo_root() / (spec["handler"].rsplit(".", 1)[0] + ".py")).is_file()
    ]
    assert not missing, f"handlers missing: {missing}"


def test_failed_dependency_install_leaves_nothing_behind(tmp_path: Path) -> None:
    from recsys.infra.package import dependencies_dir

    with pytest.raises(RecsysError) as info:
        dependencies_dir(tmp_path, ["numpy==0.0.1"])  # a version that does not exist
    assert info.value.code is ErrorCode.UNAVAILABLE
    assert "numpy" in info.value.message
    assert list((tmp_path / "lambda-deps").iterdir()) == []
