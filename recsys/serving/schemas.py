"""Request and response models of the recommendation API (they also make its OpenAPI description)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

MAX_K = 100
DEFAULT_K = 20
Source = Literal["model", "cache", "popular"]
Variant = Literal["production", "canary"]
VARIANT_DOC = (
    "Which variant answered: production, or the canary that serves a sticky share of users "
    "(`recsys model canary`)"
)


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
    variant: Variant = Field("production", description=VARIANT_DOC)
    model_version: str | None = Field(description="The model version that answered")
    recommendation_id: str
    source: Source = Field(description="model (computed now), cache (Redis) or popular (cold start)")
    items: list[RecommendationItem]
    generated_at: float = Field(description="Epoch seconds when the items were computed")
    degraded: bool = Field(
        False, description="True when a dependency was down and the answer lacks some input (recent activity)"
    )


class DependencyStatus(BaseModel):
    status: Literal["ok", "down", "disabled"]
    detail: str | None = None


class CanaryStatus(BaseModel):
    version: str = Field(description="The registry's canary version")
    share: int = Field(ge=1, le=50, description="Percent of users it serves (sticky by user id)")
    served: bool = Field(description="False when it could not be loaded: its users get production")
    error: str | None = Field(None, description="Why it is not served")


class HealthResponse(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    model_version: str | None
    registry_version: str | None = Field(None, description="The registry's production version")
    canary: CanaryStatus | None = Field(None, description="The canary beside production, when one is set")
    degraded: list[str] = Field(
        default_factory=list,
        description="Dependencies that are down, `registry` when it disagrees, `canary` when it is not served",
    )
    detail: str | None = Field(
        None, description="Why the model served differs from the registry's, or why the canary is not served"
    )
    model: dict | None = None
    dependencies: dict[str, DependencyStatus] | None = Field(
        None, description="Each dependency (only for callers with an API key on AWS)"
    )


class InteractionAccepted(BaseModel):
    event_id: str
    status: Literal["accepted"] = "accepted"


class CachedRecommendations(BaseModel):
    user_id: str
    variant: Variant = Field("production", description=VARIANT_DOC)
    model_version: str | None = Field(description="The model version whose answer this is")
    recommendation_id: str
    source: Literal["precomputed", "model", "cache", "popular"] = Field(
        "precomputed", description="precomputed; computed now (degraded) when the table is unreachable"
    )
    items: list[RecommendationItem]
    generated_at: float
    degraded: bool = False


class UserForgotten(BaseModel):
    user_id: str
    activity: int = Field(description="Recent-activity items deleted")
    tracking: int = Field(description="Inference-tracking items deleted")
    features: int = Field(description="1 when an online user-feature item was deleted")
    precomputed: int = Field(description="1 when precomputed recommendations were deleted")
    cached: Literal["deleted", "none", "unavailable"] = Field(description="Computed recommendations in Redis")
    raw_events: str = Field(description="What happens to the raw events (they age out)")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
