"""Request and response models of the recommendation API (they also make its OpenAPI description)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

MAX_K = 100
DEFAULT_K = 20
Source = Literal["model", "cache", "popular"]


class RecommendationItem(BaseModel):
    video_id: str
    score: float
    rank: int = Field(ge=1)
    category: str
    reason: str = Field(
        description="Why it is shown, e.g. 'because you watched 101', 'popular in news this week'"
    )
    source: str | None = Field(
        None, description="What brought it: two_tower, item_item, recent, popularity, or the popular fill-up"
    )


class RecommendationResponse(BaseModel):
    user_id: str
    model_version: str | None
    recommendation_id: str
    source: Source = Field(description="model (computed now), cache (Redis) or popular (cold start)")
    items: list[RecommendationItem]
    generated_at: float = Field(description="Epoch seconds when the items were computed")


class DependencyStatus(BaseModel):
    status: Literal["ok", "down", "disabled"]
    detail: str | None = None


class HealthResponse(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    model_version: str | None
    model: dict
    dependencies: dict[str, DependencyStatus]


class InteractionAccepted(BaseModel):
    event_id: str
    status: Literal["accepted"] = "accepted"


class CachedRecommendations(BaseModel):
    user_id: str
    model_version: str | None
    recommendation_id: str
    source: Literal["precomputed"] = "precomputed"
    items: list[RecommendationItem]
    generated_at: float


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
