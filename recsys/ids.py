"""Identifiers of pipeline runs: model versions, preprocessing job ids, dataset names (safe in S3 keys)."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from recsys.errors import ValidationError

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_ID = re.compile(ID_PATTERN)


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
