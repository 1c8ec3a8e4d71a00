"""Which variant serves a user: production, or the canary for a sticky share of users.

A user's bucket (0..99) comes from a BLAKE2b hash of their id, so it is the same in every process, instance
and restart (Python's `hash` of a string changes per process). With a canary at `share` percent, users with
`bucket < share` get the canary: raising the share keeps every canary user in it, and stopping the canary
returns them all to production.
"""

from __future__ import annotations

import hashlib
from typing import Literal

PRODUCTION = "production"
CANARY = "canary"
BUCKETS = 100

Variant = Literal["production", "canary"]


def bucket(user_id: str) -> int:
    """The user's bucket, 0..99, from a stable hash of the id."""
    digest = hashlib.blake2b(str(user_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def variant_of(user_id: str, canary_share: int) -> Variant:
    """`canary` when the user's bucket is below `canary_share` (percent), else `production`."""
    return CANARY if canary_share > 0 and bucket(user_id) < canary_share else PRODUCTION
