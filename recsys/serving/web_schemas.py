"""Response models of the routes the web page reads: the production model and the catalogue."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

MAX_CATALOG_PAGE = 100
DEFAULT_CATALOG_PAGE = 24


class GateCheck(BaseModel):
    name: str
    value: float | None
    threshold: float | None
    passed: bool


class Gates(BaseModel):
    passed: bool
    checks: list[GateCheck]


class ServingState(BaseModel):
    videos: int = Field(description="Videos in the served catalogue")
    users: int = Field(description="Users with a trained embedding")
    retrieval: str = Field(description="exact (numpy) or hnsw")
    ranker: bool
    categories: list[str]


class ModelInfo(BaseModel):
    version: str
    status: str
    job_id: str
    created_at: str
    promoted_at: str | None
    gates: Gates | None = Field(description="The evaluation gates this version passed")
    metrics: dict[str, Any] = Field(
        description="Evaluation summary: two_tower and popularity (recall@k, ndcg@k), ranker, catalogue size"
    )
    report_available: bool = Field(description="GET /model/report returns the evaluation report (HTML)")
    serving: ServingState | None = Field(description="What this API instance has loaded (null: not yet)")
    example_users: list[str] = Field(description="Users the model knows, most history first")


class CatalogVideo(BaseModel):
    video_id: str
    category: str
    popularity: float
    trending: float
    popularity_rank: int = Field(ge=1, description="1 = the most popular video")
    duration: float = Field(description="Seconds")
    upload_ts: int = Field(description="Epoch seconds")


class CatalogPage(BaseModel):
    model_version: str
    total: int = Field(description="Videos that match")
    offset: int
    limit: int
    categories: list[str]
    items: list[CatalogVideo]
