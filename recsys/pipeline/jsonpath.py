"""The JSONPath subset and intrinsic functions of Amazon States Language.

Paths: `$`, `$.a.b`, `$.a[0]`, `$['a b']`, and the context object `$$.Execution.Id`.
Intrinsics: States.Format, States.JsonToString, States.StringToJson, States.Array, States.JsonMerge,
States.ArrayLength, States.MathAdd, States.UUID (nesting allowed).
A path that does not resolve raises `PathError`, which the interpreter reports as `States.Runtime`.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from typing import Any

_TOKEN = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\[\"((?:[^\"\\]|\\.)*)\"\]")


class PathError(Exception):
    """A reference path or intrinsic function that cannot be evaluated against its data."""


def parse_path(path: str) -> list[str | int]:
    """`$.a[0]['b c']` -> `["a", 0, "b c"]` (without the leading `$`)."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise PathError(f"invalid path {path!r}: a path starts with '$'")
    rest, pos, parts = path[1:], 0, []
    while pos < len(rest):
        match = _TOKEN.match(rest, pos)
        if not match:
            raise PathError(f"invalid path {path!r} at {rest[pos:]!r}")
        name, index, quoted, dquoted = match.groups()
        if index is not None:
            parts.append(int(index))
        else:
            parts.append(name if name is not None else (quoted if quoted is not None else dquoted))
        pos = match.end()
    return parts


def get_path(data: Any, path: str, context: Any = None) -> Any:
    """The value at `path` in `data` (or in `context` for `$$...`)."""
    if path.startswith("$$"):
        return get_path(context, path[1:])
    current = data
    for part in parse_path(path):
        if isinstance(part, int):
            if not isinstance(current, list) or part >= len(current):
                raise PathError(f"path {path!r}: no index {part}")
            current = current[part]
        else:
            if not isinstance(current, dict) or part not in current:
                raise PathError(f"path {path!r}: no field {part!r}")
            current = current[part]
    return current


def has_path(data: Any, path: str) -> bool:
    """True when `path` resolves in `data`."""
    try:
        get_path(data, path)
    except PathError:
        return False
    return True


def set_path(data: Any, path: str, value: Any) -> Any:
    """A copy of `data` with `value` at `path` (the ResultPath rule: missing objects are created)."""
    parts = parse_path(path)
    if not parts:
        return copy.deepcopy(value)
    if not isinstance(data, dict):
        raise PathError(f"result path {path!r}: the state's input is not an object")
    root = copy.deepcopy(data)
    current: Any = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(current, list) or part >= len(current):
                raise PathError(f"result path {path!r}: no index {part}")
            if last:
                current[part] = copy.deepcopy(value)
            else:
                current = current[part]
            continue
        if not isinstance(current, dict):
            raise PathError(f"result path {path!r}: {part!r} is not inside an object")
        if last:
            current[part] = copy.deepcopy(value)
        else:
            nxt = current.get(part)
            if not isinstance(nxt, dict | list):
                nxt = {}
                current[part] = nxt
            current = nxt
    return root


def apply_template(template: Any, data: Any, context: Any = None) -> Any:
    """Evaluate a Parameters / ResultSelector template: keys ending in `.$` take a path or an intrinsic."""
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str):
                    raise PathError(f"field {key!r} must be a path or an intrinsic function")
                out[key[:-2]] = evaluate_expression(value, data, context)
            else:
                out[key] = apply_template(value, data, context)
        return out
    if isinstance(template, list):
        return [apply_template(v, data, context) for v in template]
    return copy.deepcopy(template)


def evaluate_expression(expr: str, data: Any, context: Any = None) -> Any:
    """A reference path (`$...`, `$$...`) or an intrinsic function call (`States.X(...)`)."""
    expr = expr.strip()
    if expr.startswith("$"):
        return copy.deepcopy(get_path(data, expr, context))
    if expr.startswith("States."):
        parser = _IntrinsicParser(expr, data, context)
        value = parser.call()
        parser.expect_end()
        return value
    raise PathError(f"{expr!r} is neither a path nor an intrinsic function")


# ----- intrinsic functions


def _format(template: str, *args: Any) -> str:
    if not isinstance(template, str):
        raise PathError("States.Format: the first argument must be a string")
    pieces = template.split("{}")
    if len(pieces) - 1 != len(args):
        raise PathError(f"States.Format: {len(pieces) - 1} placeholders but {len(args)} arguments")
    out = pieces[0]
    for arg, piece in zip(args, pieces[1:], strict=True):
        out += (arg if isinstance(arg, str) else json.dumps(arg, separators=(",", ":"))) + piece
    return out


def _json_merge(a: Any, b: Any, deep: Any) -> Any:
    if not isinstance(a, dict) or not isinstance(b, dict):
        raise PathError("States.JsonMerge: both arguments must be objects")
    if deep:
        raise PathError("States.JsonMerge: only shallow merges (false) are supported, as in Step Functions")
    return {**a, **b}


def _string_to_json(s: Any) -> Any:
    if not isinstance(s, str):
        raise PathError("States.StringToJson: the argument must be a string")
    try:
        return json.loads(s)
    except json.JSONDecodeError as exc:
        raise PathError(f"States.StringToJson: {exc}") from None


def _array_length(a: Any) -> int:
    if not isinstance(a, list):
        raise PathError("States.ArrayLength: the argument must be an array")
    return len(a)


def _math_add(a: Any, b: Any) -> int:
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (a, b)):
        raise PathError("States.MathAdd: both arguments must be integers")
    return a + b


_INTRINSICS = {
    "States.Format": _format,
    "States.JsonToString": lambda v: json.dumps(v, separators=(",", ":")),
    "States.StringToJson": _string_to_json,
    "States.Array": lambda *v: list(v),
    "States.JsonMerge": _json_merge,
    "States.ArrayLength": _array_length,
    "States.MathAdd": _math_add,
    "States.UUID": lambda: str(uuid.uuid4()),
}


class _IntrinsicParser:
    """A recursive-descent parser for `States.Name(arg, ...)` with string/number/path/call arguments."""

    _NAME = re.compile(r"States\.[A-Za-z]+")
    _NUMBER = re.compile(r"-?\d+(\.\d+)?")
    _PATH = re.compile(r"\$\$?(\.[A-Za-z_][\w-]*|\[\d+\]|\['(?:[^'\\]|\\.)*'\])*")

    def __init__(self, text: str, data: Any, context: Any) -> None:
        self.text, self.pos, self.data, self.context = text, 0, data, context

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def expect_end(self) -> None:
        self._skip()
        if self.pos != len(self.text):
            raise PathError(f"unexpected {self.text[self.pos :]!r} in {self.text!r}")

    def call(self) -> Any:
        self._skip()
        match = self._NAME.match(self.text, self.pos)
        if not match or match.group() not in _INTRINSICS:
            raise PathError(f"unknown intrinsic function in {self.text!r}")
        name = match.group()
        self.pos = match.end()
        self._skip()
        if self.text[self.pos : self.pos + 1] != "(":
            raise PathError(f"{name}: expected '('")
        self.pos += 1
        args: list[Any] = []
        self._skip()
        if self.text[self.pos : self.pos + 1] == ")":
            self.pos += 1
        else:
            while True:
                args.append(self.argument())
                self._skip()
                ch = self.text[self.pos : self.pos + 1]
                self.pos += 1
                if ch == ")":
                    break
                if ch != ",":
                    raise PathError(f"{name}: expected ',' or ')' in {self.text!r}")
        try:
            return _INTRINSICS[name](*args)
        except TypeError:
            raise PathError(f"{name}: wrong number of arguments ({len(args)})") from None

    def argument(self) -> Any:
        self._skip()
        ch = self.text[self.pos : self.pos + 1]
        if ch == "'":
            return self._string()
        if ch == "$":
            match = self._PATH.match(self.text, self.pos)
            assert match is not None
            self.pos = match.end()
            return copy.deepcopy(get_path(self.data, match.group(), self.context))
        if self.text.startswith("States.", self.pos):
            return self.call()
        for literal, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(literal, self.pos):
                self.pos += len(literal)
                return value
        match = self._NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            return float(match.group()) if match.group(1) else int(match.group())
        raise PathError(f"cannot parse an argument at {self.text[self.pos :]!r}")

    def _string(self) -> str:
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch == "'":
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        raise PathError(f"unterminated string in {self.text!r}")
