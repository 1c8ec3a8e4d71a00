"""Reference paths and the few intrinsic functions of Amazon States Language that the interpreter runs.

Paths: `$`, `$.a.b`, `$.a[0]`, `$['a b']`, and the context object `$$.Execution.Id`.
Intrinsics: States.JsonMerge (shallow) and States.JsonToString, which the pipeline uses, plus States.Format
and States.StringToJson; calls nest. `parse_expression` checks an expression without data (the interpreter
does so for every expression when it loads a definition); a path that does not resolve at run time raises
`PathError`, which the interpreter reports as `States.Runtime`.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any

_TOKEN = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]")
_ARGUMENT = re.compile(
    r"\s*(?:(?P<call>States\.[A-Za-z]+)\s*\("
    r"|(?P<path>\$\$?(?:\.[A-Za-z_][\w-]*|\[\d+\]|\['(?:[^'\\]|\\.)*'\])*)"
    r"|'(?P<string>(?:[^'\\]|\\.)*)'"
    r"|(?P<literal>-?\d+(?:\.\d+)?|true|false|null))"
)
_SEPARATOR = re.compile(r"\s*([,)])")


class PathError(Exception):
    """A reference path or intrinsic function that cannot be parsed, or evaluated against its data."""


def parse_path(path: str) -> list[str | int]:
    """`$.a[0]['b c']` -> `["a", 0, "b c"]` (without the leading `$`)."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise PathError(f"invalid path {path!r}: a path starts with '$'")
    rest, pos, parts = path[2:] if path.startswith("$$") else path[1:], 0, []
    while pos < len(rest):
        match = _TOKEN.match(rest, pos)
        if not match:
            raise PathError(f"invalid path {path!r} at {rest[pos:]!r}")
        name, index, quoted = match.groups()
        parts.append(int(index) if index is not None else (name if name is not None else quoted))
        pos = match.end()
    return parts


def get_path(data: Any, path: str, context: Any = None) -> Any:
    """The value at `path` in `data` (or in `context` for `$$...`)."""
    current = context if path.startswith("$$") else data
    for part in parse_path(path):
        if isinstance(part, int):
            if not isinstance(current, list) or part >= len(current):
                raise PathError(f"path {path!r}: no index {part}")
        elif not isinstance(current, dict) or part not in current:
            raise PathError(f"path {path!r}: no field {part!r}")
        current = current[part]
    return current


def has_path(data: Any, path: str, context: Any = None) -> bool:
    """True when `path` resolves in `data`."""
    try:
        get_path(data, path, context)
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
        if isinstance(part, int):
            if not isinstance(current, list) or part >= len(current):
                raise PathError(f"result path {path!r}: no index {part}")
        elif not isinstance(current, dict):
            raise PathError(f"result path {path!r}: {part!r} is not inside an object")
        if i == len(parts) - 1:
            current[part] = copy.deepcopy(value)
        else:
            if isinstance(part, str) and not isinstance(current.get(part), dict | list):
                current[part] = {}
            current = current[part]
    return root


def template_expressions(template: Any) -> list[tuple[str, Any]]:
    """Every `(key, expression)` of a Parameters / ResultSelector template (keys ending in `.$`), nested ones too."""
    if isinstance(template, list):
        return [found for item in template for found in template_expressions(item)]
    if not isinstance(template, dict):
        return []
    found: list[tuple[str, Any]] = []
    for key, value in template.items():
        found.extend([(key, value)] if key.endswith(".$") else template_expressions(value))
    return found


def apply_template(template: Any, data: Any, context: Any = None) -> Any:
    """Evaluate a Parameters / ResultSelector template: keys ending in `.$` take a path or an intrinsic."""
    if isinstance(template, dict):
        return {
            key[:-2] if key.endswith(".$") else key: (
                evaluate_expression(value, data, context)
                if key.endswith(".$")
                else apply_template(value, data, context)
            )
            for key, value in template.items()
        }
    if isinstance(template, list):
        return [apply_template(v, data, context) for v in template]
    return copy.deepcopy(template)


def evaluate_expression(expr: str, data: Any, context: Any = None) -> Any:
    """A reference path (`$...`, `$$...`) or an intrinsic function call (`States.X(...)`)."""
    return _evaluate(parse_expression(expr), data, context)


# ----- intrinsic functions


def _format(template: Any, *args: Any) -> str:
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
    if deep is not False:
        raise PathError("States.JsonMerge: only shallow merges (false) are supported, as in Step Functions")
    return {**a, **b}


def _string_to_json(s: Any) -> Any:
    if not isinstance(s, str):
        raise PathError("States.StringToJson: the argument must be a string")
    try:
        return json.loads(s)
    except json.JSONDecodeError as exc:
        raise PathError(f"States.StringToJson: {exc}") from None


# name -> (function, fewest arguments, most arguments or None)
INTRINSICS: dict[str, tuple[Any, int, int | None]] = {
    "States.Format": (_format, 1, None),
    "States.JsonToString": (lambda v: json.dumps(v, separators=(",", ":")), 1, 1),
    "States.StringToJson": (_string_to_json, 1, 1),
    "States.JsonMerge": (_json_merge, 3, 3),
}


@functools.lru_cache(maxsize=512)
def parse_expression(expr: str) -> tuple[Any, ...]:
    """The syntax tree of a path or an intrinsic call; `PathError` names what is wrong or unsupported."""
    if not isinstance(expr, str):
        raise PathError(f"{expr!r} is not a path or an intrinsic function")
    text = expr.strip()
    if text.startswith("$"):
        parse_path(text)
        return ("path", text)
    if not text.startswith("States."):
        raise PathError(f"{expr!r} is neither a path nor an intrinsic function")
    node, pos = _parse_argument(text, 0)
    if node[0] != "call" or text[pos:].strip():
        raise PathError(f"cannot parse {expr!r} (one intrinsic function call expected)")
    return node


def _parse_argument(text: str, pos: int) -> tuple[tuple[Any, ...], int]:
    match = _ARGUMENT.match(text, pos)
    if not match:
        raise PathError(f"cannot parse an argument at {text[pos:]!r} in {text!r}")
    pos = match.end()
    if match["path"] is not None:
        return ("path", match["path"]), pos
    if match["string"] is not None:
        return ("value", re.sub(r"\\(.)", r"\1", match["string"])), pos
    if match["literal"] is not None:
        return ("value", json.loads(match["literal"])), pos
    name = match["call"]
    if name not in INTRINSICS:
        raise PathError(f"unsupported intrinsic function {name} (supported: {', '.join(INTRINSICS)})")
    args: list[tuple[Any, ...]] = []
    closing = _SEPARATOR.match(text, pos)
    if closing and closing[1] == ")":
        pos = closing.end()
    else:
        while True:
            arg, pos = _parse_argument(text, pos)
            args.append(arg)
            separator = _SEPARATOR.match(text, pos)
            if not separator:
                raise PathError(f"{name}: expected ',' or ')' in {text!r}")
            pos = separator.end()
            if separator[1] == ")":
                break
    _, fewest, most = INTRINSICS[name]
    if len(args) < fewest or (most is not None and len(args) > most):
        raise PathError(f"{name}: wrong number of arguments ({len(args)})")
    return ("call", name, tuple(args)), pos


def _evaluate(node: tuple[Any, ...], data: Any, context: Any) -> Any:
    if node[0] == "path":
        return copy.deepcopy(get_path(data, node[1], context))
    if node[0] == "value":
        return node[1]
    return INTRINSICS[node[1]][0](*(_evaluate(arg, data, context) for arg in node[2]))
