"""A stand-in training stage for the SageMaker launcher tests (the real stages train real models)."""

from __future__ import annotations

from typing import Any


def run(event: dict[str, Any], settings: Any) -> dict[str, Any]:
    """Echo the input, or fail when asked to."""
    if event.get("fail"):
        raise ValueError(f"stand-in stage failed: {event['fail']}")
    return {"model": "stand_in", "version": event["version"], "seen": event.get("n"), "env": settings.env}
