"""The ML pipeline's configuration: one strict model, defaults tuned on long-tailed data.

A pipeline run's `config` (event["config"]) is merged over these defaults; an unknown key is an error that
names it. The resolved config travels in every stage's output, so later stages use the same values.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from recsys.artifacts import EMBEDDING_DIM
from recsys.errors import ValidationError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WeightsConfig(_Strict):
    """Implicit-feedback weight of one event: event weight x (1 + watch_ratio_factor x watch ratio)."""

    event_weights: dict[str, float] = Field(
        default_factory=lambda: {"view": 1.0, "like": 2.0, "share": 3.0, "complete": 2.0, "skip": 0.0}
    )
    default_event_weight: float = Field(1.0, description="Weight of a missing or unknown event type")
    watch_ratio_factor: float = Field(1.0, ge=0.0)
    min_weight: float = Field(
        0.0, description="(user, video) pairs with total weight <= this are not positives"
    )


class SplitConfig(_Strict):
    """Temporal train/test split of each user's positive items."""

    strategy: Literal["last_n", "global_cutoff", "random"] = "last_n"
    n_test: int = Field(2, ge=1, description="last_n/random: held-out items per user")
    test_share: float | None = Field(
        None, gt=0.0, lt=1.0, description="random: hold out this share of each user's items instead of n_test"
    )
    cutoff_quantile: float = Field(
        0.8, gt=0.0, lt=1.0, description="global_cutoff: time quantile of the cutoff"
    )
    min_train_items: int = Field(2, ge=1, description="a user keeps at least this many items in train")
    seed: int = 7


class NegativesConfig(_Strict):
    """Sampled negatives for the ranker's training and evaluation candidate lists."""

    per_positive: int = Field(4, ge=1)
    popularity_share: float = Field(
        0.5, ge=0.0, le=1.0, description="share drawn by popularity, rest uniform"
    )
    max_positives_per_user: int = Field(50, ge=1)
    seed: int = 11


class TwoTowerConfig(_Strict):
    """The TFRS two-tower retrieval model."""

    embedding_dim: int = EMBEDDING_DIM
    epochs: int = Field(20, ge=1, description="upper bound; see max_steps")
    # 150 (was 1000, then 300): the two-tower is one source among four now. ml-latest-small, two-tower alone
    # nDCG@10: 0.278 at 1000 steps (with temperature selection), 0.297 at 300, 0.305 at 200, 0.301 at 150;
    # ranked list 0.382 / 0.378 / 0.382 at 300 / 200 / 150; synthetic 100k ranked list 0.152 / 0.154 / 0.154.
    # Each 50 steps is ~2 s of each of the two TensorFlow fits (fit window, refit) on 2 cores.
    max_steps: int = Field(150, ge=1, description="epochs are cut so that epochs x steps/epoch <= this")
    batch_size: int = Field(1024, ge=16, description="upper bound; small data uses >= 16 steps per epoch")
    learning_rate: float = Field(0.01, gt=0.0)
    # 0.1 measured >= 0.05 on the demo data and at 1M, and far better on popularity-heavy data (bench/results/pipeline.md)
    temperature: float = Field(0.1, gt=0.0, description="logits = cosine / temperature")
    # Off by default: selection trained three extra models (most of the training time) and the ranker now
    # weighs the two-tower against the other sources; [0.05, 0.1, 0.3] turns it back on.
    temperature_candidates: list[float] = Field(
        default_factory=list,
        description="temperatures tried on a validation split (each user's latest train item) before the "
        "final training; the best Recall@100 wins. One value or an empty list trains with `temperature`",
    )
    selection_steps_share: float = Field(
        0.5, gt=0.0, le=1.0, description="share of max_steps each candidate trains for during selection"
    )
    logq_correction: bool = Field(
        True, description="subtract log sampling probability (in-batch popularity bias)"
    )
    use_video_features: bool = True
    use_user_features: bool = True
    collaborative: Literal["auto", "on", "off"] = Field(
        "auto",
        description="video-id embeddings and the user's watch history in the user tower; "
        "auto = on when train users have >= collaborative_min_items positives on average",
    )
    collaborative_min_items: float = Field(20.0, ge=0.0)
    use_user_id: bool = Field(False, description="a per-user id embedding (overfits users with few items)")
    history_length: int = Field(50, ge=1, description="most recent train videos in the user's history")
    id_l2: float = Field(0.0, ge=0.0, description="L2 penalty on the id embeddings")
    id_dropout: float = Field(
        0.1, ge=0.0, lt=1.0, description="share of rows whose video id is hidden (cold start)"
    )
    seed: int = 42

    @field_validator("embedding_dim")
    @classmethod
    def _dim(cls, value: int) -> int:
        if value != EMBEDDING_DIM:
            raise ValueError(f"serving reads {EMBEDDING_DIM}-dimensional embeddings")
        return value


class SourcesConfig(_Strict):
    """The candidate sources beside the two-tower, and the windows the ranker learns from (docs/ml.md)."""

    item_item: Literal["auto", "ease", "knn"] = Field(
        "auto", description="auto = EASE up to ease_max_items modelled items, item-kNN above"
    )
    ease_max_items: int = Field(8000, ge=1, description="EASE's dense inverse is O(n^3) in these items")
    ease_lambda: float = Field(200.0, gt=0.0)
    min_item_count: int = Field(3, ge=1, description="items with fewer window interactions get no neighbours")
    neighbours: int = Field(200, ge=1, description="neighbours kept per item in the served table")
    knn_shrink: float = Field(10.0, ge=0.0)
    knn_max_history: int = Field(200, ge=1, description="item-kNN: each user's latest items only")
    # 50: the ranked list's nDCG@10 is 2-3 % above 100's on MovieLens and the synthetic data, its Recall@100
    # 6-12 % below; a request costs 12-14 % less (bench/results/quality.md, serving.md)
    per_source: int = Field(50, ge=1, description="candidates each source contributes")
    recent_events: int = Field(10, ge=1, description="recent-activity source: the user's last N items")
    recent_decay: float = Field(0.7, gt=0.0, le=1.0, description="weight of the j-th newest item: decay**j")
    label_window: Literal["auto", "time", "random"] = Field(
        "auto", description="how the ranker's label window is cut from train (auto follows the split)"
    )
    label_share: float = Field(0.2, gt=0.0, lt=1.0, description="share of train pairs in the label window")
    max_ranker_users: int = Field(5000, ge=1, description="users whose candidates train the ranker (sampled)")
    refit: bool = Field(True, description="refit every source on all data before deploying")
    seed: int = 5


class RankerConfig(_Strict):
    """The CatBoost ranker."""

    # Logloss measured as good as YetiRank on the candidate features (ml-latest-small nDCG@10 0.348 vs 0.346)
    # at a ninth of the time (39 s vs 369 s); see bench/results/quality.md.
    loss: Literal["Logloss", "YetiRank", "QueryRMSE", "PairLogit"] = "Logloss"
    # A small model generalises from the label window to the held-out split: 100 x depth 4 measured nDCG@10
    # 0.386 against 0.348 for 200 x depth 6, which fits the label window better and the test worse.
    iterations: int = Field(100, ge=1)
    depth: int = Field(4, ge=1, le=10)
    learning_rate: float = Field(0.1, gt=0.0)
    max_train_rows: int = Field(200_000, ge=100)
    seed: int = 42


class EvaluationConfig(_Strict):
    """What evaluation computes."""

    ks: list[int] = Field(default_factory=lambda: [10, 100])
    curve_max_k: int = Field(100, ge=1)
    max_users: int = Field(20_000, ge=1, description="evaluate at most this many test users (sampled)")
    seed: int = 3


class GatesConfig(_Strict):
    """Deployment gates: the served list must beat popularity on the same split.

    The reference system's absolute thresholds stay available (null = not checked): set e.g.
    `{"two_tower_ndcg_at_100": 0.3, "two_tower_recall_at_100": 0.1, "ranker_auc": 0.6, "ranker_ndcg": 0.3}`.
    """

    min_ndcg_lift_over_popularity: float | None = Field(
        0.05, description="served nDCG@10 must be >= popularity nDCG@10 x (1 + this); null disables"
    )
    two_tower_recall_at_100: float | None = None
    two_tower_ndcg_at_100: float | None = None
    ranker_auc: float | None = None
    ranker_ndcg: float | None = None
    min_recall_lift_over_popularity: float | None = Field(
        None, description="two-tower Recall@100 / popularity Recall@100 must be >= this; null disables"
    )


class PipelineConfig(_Strict):
    """Everything the ML stages read."""

    weights: WeightsConfig = Field(default_factory=WeightsConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    negatives: NegativesConfig = Field(default_factory=NegativesConfig)
    two_tower: TwoTowerConfig = Field(default_factory=TwoTowerConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    ranker: RankerConfig = Field(default_factory=RankerConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    gates: GatesConfig = Field(default_factory=GatesConfig)


def resolve_config(overrides: dict[str, Any] | None) -> PipelineConfig:
    """Defaults merged with `overrides` (nested dicts); a bad key or value raises ValidationError naming it."""
    base = PipelineConfig().model_dump()
    merged = _deep_merge(base, overrides or {})
    try:
        return PipelineConfig.model_validate(merged)
    except PydanticValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValidationError(
            f"invalid pipeline config: {problems}", hint="see docs/ml.md, Configuration"
        ) from None


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(over, dict):
        raise ValidationError(f"pipeline config must be an object, got {type(over).__name__}")
    out = dict(base)
    for key, value in over.items():
        if key in out and isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
