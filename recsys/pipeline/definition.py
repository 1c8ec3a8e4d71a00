"""The one state machine definition and its placeholders.

`state_machine.asl.json` names each Lambda as `${<catalogue function key>_function_arn}`; Terraform renders it
with `templatefile` (function ARNs) and the local runner with the local function names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

from recsys.catalog import load_catalog
from recsys.errors import ValidationError

DEFINITION_FILE = "state_machine.asl.json"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
SUFFIX = "_function_arn"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"


def definition_text() -> str:
    """The raw ASL document, placeholders included."""
    return resources.files("recsys.pipeline").joinpath(DEFINITION_FILE).read_text(encoding="utf-8")


def placeholder_functions(text: str | None = None) -> list[str]:
    """The catalogue function keys the definition refers to, in order of first use."""
    keys: list[str] = []
    for name in PLACEHOLDER.findall(text if text is not None else definition_text()):
        if not name.endswith(SUFFIX):
            raise ValidationError(f"placeholder ${{{name}}} does not end in {SUFFIX}")
        key = name[: -len(SUFFIX)]
        if key not in keys:
            keys.append(key)
    return keys


def render(function_names: Mapping[str, str], text: str | None = None) -> dict[str, Any]:
    """The definition with every `${<key>_function_arn}` replaced by `function_names[key]`."""
    text = text if text is not None else definition_text()
    functions = load_catalog()["functions"]

    def replace(match: re.Match[str]) -> str:
        key = match.group(1).removesuffix(SUFFIX)
        if key not in functions:
            raise ValidationError(f"the state machine refers to {key!r}, which is not a catalogue function")
        if key not in function_names:
            raise ValidationError(f"no function name given for placeholder {match.group(0)}")
        return function_names[key]

    return json.loads(PLACEHOLDER.sub(replace, text))
