"""A deterministic synthetic interaction generator with the structure of real video data.

- Videos: a category, a log-normal duration, an upload time, and a Zipf-like latent popularity
  (a few videos get most views: the long tail real data has).
- Users: a log-normal activity level (skewed: many users with 1-3 interactions, a few heavy users),
  a sparse preference over categories (Dirichlet) and a latent taste vector.
- Interactions: a user picks a video with probability proportional to popularity x category preference
  x exp(taste . video factors); the event type and the watch time depend on how well the video fits.
Same seed, same data (numpy's PCG64).

Ids are integers written as strings, shaped like the reference system's examples: users are numbered from
12000 and videos from 1, so `GET /recommendations/12345` and an interaction with video 101 name a user and
a video of every data set with at least 346 users and 101 videos (the demo has 1000 and 500).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from recsys.data import schema as s
from recsys.errors import ValidationError

CATEGORIES = (
    "gaming",
    "music",
    "sports",
    "news",
    "comedy",
    "education",
    "cooking",
    "travel",
    "tech",
    "fitness",
    "fashion",
    "science",
)
SECONDS_PER_DAY = 86_400
# 2026-11-01T00:00:00Z: the synthetic clock ends here, so generated data does not depend on today's date.
END_TS = 1_793_491_200
HISTORY_DAYS = 180
LATENT_DIM = 8
MAX_INTERACTIONS = 50_000_000
FIRST_USER_ID = 12_000
FIRST_VIDEO_ID = 1


@dataclass(frozen=True)
class SyntheticSpec:
    """Sizes and shape knobs of a synthetic data set (defaults: the demo sizes)."""

    n_users: int = 1000
    n_videos: int = 500
    n_interactions: int = 10_000
    seed: int = 42
    zipf_exponent: float = 0.8  # video popularity ~ rank^-exponent
    category_concentration: float = 0.05  # Dirichlet alpha: lower = users stick to fewer categories
    taste_strength: float = 1.0  # weight of the latent taste match
    exploration: float = 0.02  # share of each user's category preference spread uniformly

    def validate(self) -> None:
        for name in ("n_users", "n_videos", "n_interactions"):
            if getattr(self, name) < 1:
                raise ValidationError(f"synthetic {name} must be >= 1, got {getattr(self, name)}")
        if self.n_interactions > MAX_INTERACTIONS:
            raise ValidationError(f"synthetic n_interactions must be <= {MAX_INTERACTIONS:,}")


@dataclass(frozen=True)
class Dataset:
    """Interactions plus optional video and user tables, in the documented schema."""

    interactions: pl.DataFrame
    videos: pl.DataFrame | None = None
    users: pl.DataFrame | None = None


def user_ids(index: np.ndarray) -> np.ndarray:
    """The id of each user index: integers from FIRST_USER_ID, as strings."""
    return (index.astype(np.int64) + FIRST_USER_ID).astype(str)


def video_ids(index: np.ndarray) -> np.ndarray:
    """The id of each video index: integers from FIRST_VIDEO_ID, as strings."""
    return (index.astype(np.int64) + FIRST_VIDEO_ID).astype(str)


def generate(spec: SyntheticSpec | None = None) -> Dataset:
    """Generate a data set; deterministic under `spec.seed`."""
    spec = spec or SyntheticSpec()
    spec.validate()
    rng = np.random.default_rng(spec.seed)
    n_cat = len(CATEGORIES)

    # Videos.
    v_cat = rng.integers(0, n_cat, spec.n_videos)
    v_duration = np.clip(rng.lognormal(np.log(240.0), 0.9, spec.n_videos), 10.0, 4 * 3600.0).round(1)
    start_ts = END_TS - HISTORY_DAYS * SECONDS_PER_DAY
    # Uploads: some before the history window, more in it.
    v_upload = (
        start_ts - 60 * SECONDS_PER_DAY + rng.random(spec.n_videos) * (HISTORY_DAYS + 55) * SECONDS_PER_DAY
    )
    v_upload = v_upload.astype(np.int64)
    ranks = rng.permutation(spec.n_videos) + 1
    v_pop = ranks.astype(np.float64) ** -spec.zipf_exponent
    v_factors = rng.normal(size=(spec.n_videos, LATENT_DIM)) / np.sqrt(LATENT_DIM)

    # Users.
    activity = rng.lognormal(0.0, 1.2, spec.n_users)
    u_pref = (
        rng.dirichlet(np.full(n_cat, spec.category_concentration), spec.n_users) * (1 - spec.exploration)
        + spec.exploration / n_cat
    )
    u_taste = rng.normal(size=(spec.n_users, LATENT_DIM)) / np.sqrt(LATENT_DIM)

    # How many interactions each user has: every user at least one, the rest by activity.
    counts = np.ones(spec.n_users, dtype=np.int64)
    extra = spec.n_interactions - spec.n_users
    if extra > 0:
        counts += rng.multinomial(extra, activity / activity.sum())
    elif extra < 0:
        counts = np.zeros(spec.n_users, dtype=np.int64)
        counts[rng.choice(spec.n_users, spec.n_interactions, replace=False, p=activity / activity.sum())] = 1

    users_out, videos_out, fits = [], [], []
    log_pop = np.log(v_pop)
    chunk = max(1, 2_000_000 // spec.n_videos)
    for lo in range(0, spec.n_users, chunk):
        hi = min(spec.n_users, lo + chunk)
        match = u_taste[lo:hi] @ v_factors.T  # [chunk, n_videos]
        logits = log_pop[None, :] + np.log(u_pref[lo:hi][:, v_cat]) + spec.taste_strength * match * 3.0
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        cdf = np.cumsum(probs, axis=1)
        for j, u in enumerate(range(lo, hi)):
            k = counts[u]
            if k == 0:
                continue
            picks = np.minimum(np.searchsorted(cdf[j], rng.random(k) * cdf[j, -1]), spec.n_videos - 1)
            users_out.append(np.full(k, u))
            videos_out.append(picks)
            fits.append(np.log(u_pref[u, v_cat[picks]] * n_cat) + spec.taste_strength * match[j, picks] * 3.0)
    uid = np.concatenate(users_out)
    vid = np.concatenate(videos_out)
    fit = np.concatenate(fits)
    n = uid.shape[0]

    # Event type and watch ratio from the fit (a sigmoid of how well the video matches).
    p_good = 1.0 / (1.0 + np.exp(-(fit - 0.5)))
    r = rng.random(n)
    skip = r > 0.35 + 0.6 * p_good
    ratio = np.where(skip, rng.uniform(0.0, 0.15, n), np.clip(rng.beta(2 + 4 * p_good, 2.5, n), 0.05, 1.0))
    complete = ~skip & (ratio > 0.9)
    r2 = rng.random(n)
    share = ~skip & ~complete & (r2 < 0.04 + 0.08 * p_good)
    like = ~skip & ~complete & ~share & (r2 < 0.15 + 0.3 * p_good)
    event = np.full(n, "view", dtype=object)
    event[like] = "like"
    event[share] = "share"
    event[complete] = "complete"
    event[skip] = "skip"
    watch = np.round(ratio * v_duration[vid], 1)

    # Timestamps: after the upload, inside the history window; a mild bias towards recent activity.
    lo_ts = np.maximum(v_upload[vid], start_ts)
    span = np.maximum(END_TS - lo_ts, 60)
    ts = (lo_ts + span * rng.random(n) ** 0.8).astype(np.int64)

    order = np.argsort(ts, kind="stable")
    interactions = pl.DataFrame(
        {
            s.USER_ID: user_ids(uid[order]),
            s.VIDEO_ID: video_ids(vid[order]),
            s.TIMESTAMP: ts[order],
            s.EVENT_TYPE: event[order].astype(str),
            s.WATCH_TIME: watch[order],
        }
    )
    videos = pl.DataFrame(
        {
            s.VIDEO_ID: video_ids(np.arange(spec.n_videos)),
            s.CATEGORY: np.asarray(CATEGORIES)[v_cat],
            s.DURATION: v_duration,
            s.UPLOAD_TS: v_upload,
        }
    )
    users = pl.DataFrame({s.USER_ID: user_ids(np.arange(spec.n_users))})
    return Dataset(interactions=interactions, videos=videos, users=users)
