"""The two-tower model's video tower in numpy: embeds a video that was added after training.

Training exports the tower's weights for an out-of-vocabulary video (`recsys.training.two_tower.
export_video_tower`) to `models/two_tower/{version}/video_tower.npz`; this module evaluates them the way
the Keras tower does: [OOV id embedding] + category, duration, age and popularity-bucket embeddings,
concatenated, one dense layer, L2-normalised. Training checks that both agree on its own catalogue.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys import artifacts
from recsys.errors import NotFoundError
from recsys.storage import get_bytes_if_exists

if TYPE_CHECKING:
    from recsys.config import Settings

VIDEO_TOWER_NAME = "video_tower.npz"
SECONDS_PER_DAY = 86_400.0


class VideoTower:
    """The exported arrays of one version's video tower."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.collaborative = bool(arrays["collaborative"])
        self.use_features = bool(arrays["use_features"])
        self.reference_ts = int(arrays["reference_ts"])
        self.categories = [str(c) for c in arrays.get("categories", np.asarray([], dtype=str)).tolist()]
        self._category_index = {c: i + 1 for i, c in enumerate(self.categories)}

    @classmethod
    def from_bytes(cls, data: bytes) -> VideoTower:
        """A tower from its .npz bytes."""
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return cls({k: npz[k] for k in npz.files})

    @classmethod
    def load(cls, settings: Settings, version: str) -> VideoTower:
        """The tower of a model version (NotFoundError for a version trained before towers were saved)."""
        raw = get_bytes_if_exists(
            settings, settings.names.bucket("models"), artifacts.two_tower_key(version, VIDEO_TOWER_NAME)
        )
        if raw is None:
            raise NotFoundError(
                f"model version {version!r} has no saved video tower, so it cannot embed a new video",
                hint="retrain (recsys pipeline run): versions trained now save their video tower",
            )
        return cls.from_bytes(raw)

    def buckets(
        self, duration: Any, upload_ts: Any, interaction_count: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Duration, age and popularity buckets, as training computes them (age from the training time)."""
        a = self.arrays
        duration = np.asarray(duration, dtype=np.float64)
        age_days = np.clip(
            (self.reference_ts - np.asarray(upload_ts, dtype=np.float64)) / SECONDS_PER_DAY, 0, None
        )
        return (
            np.digitize(duration, a["duration_edges"]).astype(np.int64),
            np.digitize(age_days, a["age_edges_days"]).astype(np.int64),
            np.digitize(np.asarray(interaction_count, dtype=np.float64), a["pop_edges"]).astype(np.int64),
        )

    def embed_buckets(
        self, category: Any, duration_bucket: Any, age_bucket: Any, pop_bucket: Any
    ) -> np.ndarray:
        """[n, 64] float32 embeddings of new videos from their category and buckets."""
        a = self.arrays
        cats = np.asarray(category, dtype=str).reshape(-1)
        n = cats.shape[0]
        parts = []
        if self.collaborative:
            parts.append(np.repeat(a["oov_id_embedding"][None, :], n, axis=0))
        if self.use_features:
            idx = np.fromiter(
                (self._category_index.get(c, 0) for c in cats.tolist()), dtype=np.int64, count=n
            )
            parts += [
                a["category_table"][idx],
                a["duration_table"][np.asarray(duration_bucket, dtype=np.int64).reshape(-1)],
                a["age_table"][np.asarray(age_bucket, dtype=np.int64).reshape(-1)],
                a["pop_table"][np.asarray(pop_bucket, dtype=np.int64).reshape(-1)],
            ]
        x = np.concatenate(parts, axis=1).astype(np.float32) @ a["dense_kernel"] + a["dense_bias"]
        norm = np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return (x / norm).astype(np.float32)

    def embed(self, category: str, duration: float, upload_ts: int, interaction_count: int = 0) -> np.ndarray:
        """The 64-d embedding of one new video."""
        dur, age, pop = self.buckets([duration], [upload_ts], [interaction_count])
        return self.embed_buckets([category], dur, age, pop)[0]
