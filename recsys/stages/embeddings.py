"""Read a two-tower version's embeddings back (ranker training, evaluation)."""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys import artifacts as paths
from recsys.config import Settings
from recsys.storage import get_npz


def load_embeddings(two_tower: dict[str, Any], settings: Settings) -> dict[str, np.ndarray]:
    """user_ids, user_vectors, video_ids, video_vectors of the two-tower stage output."""
    bucket = two_tower.get("models_bucket") or settings.names.bucket("models")
    users = get_npz(settings, bucket, two_tower["artifacts"]["user_embeddings"])
    videos = get_npz(settings, bucket, two_tower["artifacts"]["video_embeddings"])
    return {
        "user_ids": users[paths.NPZ_IDS_USER],
        "user_vectors": users[paths.NPZ_EMBEDDINGS],
        "video_ids": videos[paths.NPZ_IDS_VIDEO],
        "video_vectors": videos[paths.NPZ_EMBEDDINGS],
    }
