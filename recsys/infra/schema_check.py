"""Offline check of every `aws_*` resource, data source and `provider "aws"` block against the provider schema.

Flags unknown resource and data source types, unknown arguments and nested blocks (recursively, `dynamic`
blocks included), computed-only attributes that are set, and required arguments or blocks left out.
Meta-arguments (`count`, `for_each`, `depends_on`, `lifecycle`, `provider`, ...) are Terraform's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

from recsys.infra.provider_schema import Schema

_META = {"__start_line__", "__end_line__"}
_RESOURCE_META = {"count", "for_each", "depends_on", "lifecycle", "provider", "provisioner", "connection"}
_DATA_META = {"count", "for_each", "depends_on", "lifecycle", "provider"}


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    address: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.address}: {self.message}"


def check_tree(directory: Path, schema: Schema, relative_to: Path | None = None) -> tuple[list[Problem], int]:
    """Problems of every `.tf` file under `directory` (not `.terraform/`), and how many blocks were checked."""
    problems: list[Problem] = []
    checked = 0
    for path in sorted(directory.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        shown = path.relative_to(relative_to) if relative_to else path
        found, count = check_file(path, schema, str(shown))
        problems += found
        checked += count
    return problems, checked


def check_file(path: Path, schema: Schema, shown: str | None = None) -> tuple[list[Problem], int]:
    """Problems of one `.tf` file, and how many AWS blocks it holds."""
    text = path.read_text(encoding="utf-8")
    parsed = hcl2.loads(text, with_meta=True)
    file = _File(shown or str(path), text.splitlines(), schema)
    for kind, types, meta, prefix in (
        ("resource", schema["resources"], _RESOURCE_META, ""),
        ("data", schema["data"], _DATA_META, "data."),
    ):
        for entry in parsed.get(kind, []):
            for rtype, named in entry.items():
                rtype = _unquote(rtype)
                if not rtype.startswith("aws_"):
                    continue
                for name, body in named.items():
                    address = f"{prefix}{rtype}.{_unquote(name)}"
                    file.checked += 1
                    if rtype not in types:
                        what = "resource type" if kind == "resource" else "data source"
                        file.add(body["__start_line__"], address, f'unknown {what} "{rtype}"')
                        continue
                    file.block(body, types[rtype], address, "", meta)
    for entry in parsed.get("provider", []):
        for name, body in entry.items():
            if _unquote(name) == "aws":
                file.checked += 1
                file.block(body, schema["provider"], 'provider "aws"', "", set())
    return file.problems, file.checked


def _unquote(label: str) -> str:
    return label.strip('"')


def _is_block(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and "__start_line__" in v for v in value)
    )


class _File:
    def __init__(self, shown: str, lines: list[str], schema: Schema) -> None:
        self.shown, self.lines, self.schema = shown, lines, schema
        self.problems: list[Problem] = []
        self.checked = 0

    def add(self, line: int, address: str, message: str) -> None:
        self.problems.append(Problem(self.shown, line, address, message))

    def block(self, body: dict[str, Any], block_id: str, address: str, where: str, meta: set[str]) -> None:
        """Check one block body against its schema block; `where` names the nested block path."""
        spec = self.schema["blocks"][block_id]
        args, computed = spec["args"], set(spec["computed"])
        start = body.get("__start_line__", 0)
        suffix = f" in {where}" if where else ""
        dynamic = [(_unquote(n), d) for entry in body.get("dynamic", []) for n, d in entry.items()]
        for name, value in body.items():
            if name in _META or name in meta or name == "dynamic":
                continue
            line = self.line_of(body, name)
            if name not in args:
                kind = "block" if _is_block(value) else "argument"
                message = (
                    f'"{name}" is computed-only and cannot be set'
                    if name in computed
                    else f'unknown {kind} "{name}"'
                )
                self.add(line, address, message + suffix)
            elif args[name][1]:
                self.nested(value, args[name][1], address, _join(where, name), line)
        for name, spec_dynamic in dynamic:
            line = spec_dynamic.get("__start_line__", start)
            if name not in args or not args[name][1]:
                self.add(line, address, f'unknown block "{name}"{suffix}')
                continue
            self.nested(spec_dynamic.get("content", []), args[name][1], address, _join(where, name), line)
        for name, (required, child) in args.items():
            if required and name not in body and all(name != n for n, _ in dynamic):
                self.add(
                    start, address, f'missing required {"block" if child else "argument"} "{name}"{suffix}'
                )

    def nested(self, value: Any, block_id: str, address: str, where: str, line: int) -> None:
        """Blocks (one body per occurrence), or an object attribute's literal `{...}` value(s)."""
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                body = item if "__start_line__" in item else {**item, "__start_line__": line}
                self.block(body, block_id, address, where, set())

    def line_of(self, body: dict[str, Any], name: str) -> int:
        """The line of `name` directly in `body` (python-hcl2 gives lines of blocks, not of attributes)."""
        start, end = body.get("__start_line__", 0), body.get("__end_line__", 0)
        if not start or start > len(self.lines):
            return start
        header = self.lines[start - 1]
        indent = " " * (len(header) - len(header.lstrip()) + 2)
        pattern = re.compile(rf"^{indent}{re.escape(name)}\s*[={{]")
        for number in range(start + 1, min(end, len(self.lines)) + 1):
            if pattern.match(self.lines[number - 1]):
                return number
        return start


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
