"""The ML Lambda handlers are thin and importing them loads neither TensorFlow nor catboost."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = (
    "preprocessing",
    "train_two_tower",
    "train_ranker",
    "evaluation",
    "feature_ingestion",
    "refit_models",
)


def test_handler_bodies_are_one_line():
    for name in HANDLERS:
        tree = ast.parse((ROOT / "lambdas" / name / "handler.py").read_text())
        fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "handler")
        assert len(fn.body) == 1 and isinstance(fn.body[0], ast.Return), name


def test_importing_handlers_loads_no_training_library():
    code = (
        "import importlib.util, sys\n"
        f"for name in {HANDLERS!r}:\n"
        f"    spec = importlib.util.spec_from_file_location(name, {str(ROOT)!r} + f'/lambdas/{{name}}/handler.py')\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(m for m in ('tensorflow', 'catboost', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
