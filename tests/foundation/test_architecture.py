"""The import graph of `recsys/`: layers that only import downwards, and no import circles.

Layers, lowest first (docs/architecture.md draws them):
  0 foundation   names, settings, errors, ids, schemas that everything shares
  1 data access  AWS clients, secrets, S3, DynamoDB stores, the model registry
  2 logic        data preparation, training, ranking, evaluation, serving, events, feedback, releases
  3 pipeline     the stages, their table, and the ways to run them (local runner, Step Functions, SageMaker)
  4 tools        entry points and operator tooling: the CLI, the local stack, Terraform and packaging
Every import statement counts, also one inside a function; only `if TYPE_CHECKING:` blocks are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "recsys"

LAYERS: dict[str, int] = {
    "recsys": 0,
    "recsys.errors": 0,
    "recsys.catalog": 0,
    "recsys.resources": 0,
    "recsys.config": 0,
    "recsys.ids": 0,
    "recsys.artifacts": 0,
    "recsys.pipeline_config": 0,
    "recsys.progress": 0,
    "recsys.click_through": 0,
    "recsys.heap": 0,
    "recsys.timestamps": 0,
    "recsys.huge_pages": 0,
    "recsys.aws": 1,
    "recsys.secrets": 1,
    "recsys.storage": 1,
    "recsys.feature_store": 1,
    "recsys.registry": 1,
    "recsys.raw_events": 1,
    "recsys.dynamodb_wire": 1,
    "recsys.data": 2,
    "recsys.ranking": 2,
    "recsys.evaluation": 2,
    "recsys.training": 2,
    "recsys.sources": 2,
    "recsys.serving": 2,
    "recsys.events": 2,
    "recsys.feedback": 2,
    "recsys.release": 2,
    "recsys.release_guard": 2,
    "recsys.quality_monitor": 2,
    "recsys.quality_report": 2,
    "recsys.redis_rotation": 2,
    "recsys.event_processing": 2,
    "recsys.catalogue_live": 2,
    "recsys.smoke": 2,
    "recsys.bootstrap": 2,
    "recsys.stages": 3,
    "recsys.pipeline": 3,
    "recsys.local": 4,
    "recsys.infra": 4,
    "recsys.cli": 4,
}
LAYER_NAMES = ("foundation", "data access", "logic", "pipeline", "tools")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The recsys modules `path` imports (a `from pkg import name` of a submodule counts as that submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(sub) for sub in ast.walk(node))
    this = module_name(path)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = this.split(".") if path.name == "__init__.py" else this.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{name}.{alias.name}"
                found.add(sub if sub in modules else name)
    return {m for m in found if m in modules and m != this}


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in (ROOT / PACKAGE).rglob("*.py")}
    return {m: imported_modules(p, set(paths)) for m, p in paths.items()}


def layer(module: str) -> int:
    """The layer of the longest prefix of `module` in LAYERS."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise KeyError(module)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    return graph()


def test_every_module_has_a_layer(edges) -> None:
    unplaced = []
    for module in edges:
        try:
            layer(module)
        except KeyError:
            unplaced.append(module)
    assert not unplaced, f"add these modules to LAYERS (and docs/architecture.md): {unplaced}"


def test_no_module_imports_a_higher_layer(edges) -> None:
    upward = [
        f"{m} ({LAYER_NAMES[layer(m)]}) imports {t} ({LAYER_NAMES[layer(t)]})"
        for m, targets in sorted(edges.items())
        for t in sorted(targets)
        if layer(t) > layer(m)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_circles(edges) -> None:
    assert cycles(edges) == []


def test_the_checks_can_fail() -> None:
    """The cycle finder and the layer table see what they must (guards against a check that passes on anything)."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert (
        layer("recsys.cli.main")
        > layer("recsys.serving.api")
        > layer("recsys.storage")
        > layer("recsys.config")
    )
    probe = ROOT / PACKAGE / "serving" / "api.py"
    assert "recsys.serving.service" in imported_modules(probe, set(graph()))


def test_nothing_in_recsys_reaches_into_the_lambda_handlers() -> None:
    """Handlers import recsys, never the other way: no import of `lambdas` and no loading of files by path."""
    offenders = []
    for path in (ROOT / PACKAGE).rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        if any(name.split(".")[0] == "lambdas" for name in names) or "spec_from_file_location" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"run stages through recsys.stages.table instead: {offenders}"
