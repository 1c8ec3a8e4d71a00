"""Pipeline stages: `run(event: dict, settings: Settings) -> dict`, JSON in and out, artifacts on S3.

The Lambda handlers under lambdas/ and the local pipeline runner call these functions.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from recsys.errors import ValidationError

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def new_version(now: datetime | None = None) -> str:
    """A fresh model version, e.g. v20261124-193000-ab12cd (sorts by time)."""
    now = now or datetime.now(UTC)
    return f"v{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def new_job_id(now: datetime | None = None) -> str:
    """A fresh preprocessing job id, e.g. job-20261124-193000-ab12cd."""
    now = now or datetime.now(UTC)
    return f"job-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def check_id(value: object, field: str) -> str:
    """A job id / version / dataset name that is safe inside an S3 key, or a ValidationError naming it."""
    if not isinstance(value, str) or not _ID.match(value):
        raise ValidationError(
            f"invalid {field} {value!r}", hint="use 1-128 characters: letters, digits, '.', '_' or '-'"
        )
    return value


def require(event: dict, *keys: str) -> None:
    """Raise a ValidationError naming the keys the stage input lacks."""
    if not isinstance(event, dict):
        raise ValidationError(f"stage input must be an object, got {type(event).__name__}")
    missing = [k for k in keys if k not in event]
    if missing:
        raise ValidationError(
            f"stage input lacks {', '.join(missing)}", hint="pass the previous stage's output"
        )
