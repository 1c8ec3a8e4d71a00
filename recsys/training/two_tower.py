"""Two-tower retrieval model (TensorFlow Recommenders) and its export to plain numpy embeddings.

User tower: id embedding + the user's category-affinity vector. Video tower: id embedding + category,
duration, age and popularity buckets, so a video without interactions (an out-of-vocabulary id) still
gets a meaningful embedding from its features. Both towers end in a 64-d L2-normalised vector; the
retrieval task uses in-batch softmax with the logQ sampling-bias correction (log of each candidate's
in-batch sampling probability is subtracted), without which popular videos are under-ranked.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

import recsys.training  # sets TF_USE_LEGACY_KERAS before tensorflow loads
from recsys.data import schema as s
from recsys.pipeline_config import TwoTowerConfig
from recsys.progress import report

OOV_TOKEN = "__oov__"
MAX_AFFINITY_DIM = 64
DURATION_EDGES = [30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 2400.0]
AGE_EDGES_DAYS = [1.0, 3.0, 7.0, 14.0, 30.0, 60.0, 120.0, 240.0, 365.0]
POP_EDGES = [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0]


@dataclass
class TwoTowerResult:
    """Embeddings and the facts needed to reproduce them."""

    user_ids: np.ndarray
    user_embeddings: np.ndarray  # float32 [n_users, 64]
    video_ids: np.ndarray
    video_embeddings: np.ndarray  # float32 [n_videos, 64]
    model_config: dict[str, Any]
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    video_tower: dict[str, np.ndarray] = field(default_factory=dict)  # `export_video_tower`'s arrays


def video_feature_frame(catalog: pl.DataFrame, reference_ts: int) -> dict[str, np.ndarray]:
    """Per-video model inputs (bucketed features), aligned with the catalogue's rows."""
    age_days = np.clip(
        (reference_ts - catalog[s.UPLOAD_TS].to_numpy().astype(np.float64)) / 86_400.0, 0, None
    )
    return {
        "video_id": catalog[s.VIDEO_ID].to_numpy().astype(str),
        "category": catalog[s.CATEGORY].to_numpy().astype(str),
        "duration_bucket": np.digitize(catalog[s.DURATION].to_numpy(), DURATION_EDGES).astype(np.int64),
        "age_bucket": np.digitize(age_days, AGE_EDGES_DAYS).astype(np.int64),
        "pop_bucket": np.digitize(catalog[s.INTERACTION_COUNT].to_numpy(), POP_EDGES).astype(np.int64),
    }


def affinity_matrix(user_features: pl.DataFrame, categories: list[str]) -> np.ndarray:
    """[n_users, len(categories)] category-affinity shares, aligned with user_features' rows."""
    index = {c: i for i, c in enumerate(categories)}
    out = np.zeros((user_features.height, len(categories)), dtype=np.float32)
    for row, text in enumerate(user_features["category_affinity"].to_list()):
        for cat, share in json.loads(text or "{}").items():
            col = index.get(cat)
            if col is not None:
                out[row, col] = share
    return out


def history_matrix(
    train: pl.DataFrame, user_ids: list[str], vocab_videos: list[str], length: int
) -> np.ndarray:
    """[n_users, length] int32: the user's most recent train videos as vocabulary index + 1 (0 = padding)."""
    v_index = {v: i + 1 for i, v in enumerate(vocab_videos)}
    u_index = {u: i for i, u in enumerate(user_ids)}
    recent = (
        train.sort("_order", descending=True)
        .group_by(s.USER_ID, maintain_order=True)
        .agg(pl.col(s.VIDEO_ID).head(length))
    )
    out = np.zeros((len(user_ids), length), dtype=np.int32)
    for user, videos in recent.iter_rows():
        row = u_index.get(user)
        if row is not None:
            idx = [v_index.get(v, 0) for v in videos]
            out[row, : len(idx)] = idx
    return out


def _epoch_progress(tf, epochs: int, temperature: float):
    """A Keras callback that reports each finished epoch (`recsys.progress`: the CLI draws a bar)."""
    task = f"two-tower training (temperature {temperature:g})"

    class EpochProgress(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            report(task, 0, epochs, "epochs")

        def on_epoch_end(self, epoch, logs=None):
            report(task, epoch + 1, epochs, "epochs")

    return EpochProgress()


def _build_model(tf, tfrs, vocab_users, vocab_videos, categories, history, cfg, collaborative):
    keras = tf.keras
    dim = cfg.embedding_dim
    reg = keras.regularizers.l2(cfg.id_l2) if cfg.id_l2 > 0 else None

    class UserTower(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.lookup = keras.layers.StringLookup(vocabulary=vocab_users, num_oov_indices=1)
            self.embed = keras.layers.Embedding(len(vocab_users) + 1, dim, embeddings_regularizer=reg)
            self.aff = keras.layers.Dense(32, activation="relu") if cfg.use_user_features else None
            self.history = tf.constant(history)
            self.hist_embed = keras.layers.Embedding(len(vocab_videos) + 1, dim, embeddings_regularizer=reg)
            self.out = keras.layers.Dense(dim)

        def call(self, inputs):
            parts = [self.embed(self.lookup(inputs["user_id"]))] if cfg.use_user_id else []
            if self.aff is not None:
                parts.append(self.aff(inputs["affinity"]))
            if collaborative:
                hist = tf.gather(self.history, inputs["user_row"])
                # The training target is hidden from its own history (else the tower learns to copy it).
                mask = tf.cast((hist > 0) & (hist != inputs["target"][:, None]), tf.float32)
                summed = tf.reduce_sum(self.hist_embed(hist) * mask[:, :, None], axis=1)
                parts.append(summed / tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0))
            return tf.math.l2_normalize(self.out(tf.concat(parts, axis=1)), axis=1)

    class VideoTower(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.lookup = keras.layers.StringLookup(vocabulary=vocab_videos, num_oov_indices=1)
            self.embed = keras.layers.Embedding(len(vocab_videos) + 1, dim, embeddings_regularizer=reg)
            if cfg.use_video_features:
                self.cat_lookup = keras.layers.StringLookup(vocabulary=categories, num_oov_indices=1)
                self.cat = keras.layers.Embedding(len(categories) + 1, 32)
                self.dur = keras.layers.Embedding(len(DURATION_EDGES) + 1, 8)
                self.age = keras.layers.Embedding(len(AGE_EDGES_DAYS) + 1, 8)
                self.pop = keras.layers.Embedding(len(POP_EDGES) + 1, 16)
            self.out = keras.layers.Dense(dim)

        def call(self, inputs):
            parts = [self.embed(self.lookup(inputs["video_id"]))] if collaborative else []
            if cfg.use_video_features:
                parts += [
                    self.cat(self.cat_lookup(inputs["category"])),
                    self.dur(inputs["duration_bucket"]),
                    self.age(inputs["age_bucket"]),
                    self.pop(inputs["pop_bucket"]),
                ]
            return tf.math.l2_normalize(self.out(tf.concat(parts, axis=1)), axis=1)

    class TwoTower(tfrs.Model):
        def __init__(self) -> None:
            super().__init__()
            self.user_tower = UserTower()
            self.video_tower = VideoTower()
            self.task = tfrs.tasks.Retrieval(temperature=cfg.temperature, remove_accidental_hits=True)

        def compute_loss(self, features, training=False):
            users = self.user_tower(features)
            videos = self.video_tower(features)
            prob = features["sampling_prob"] if cfg.logq_correction else None
            return self.task(
                users,
                videos,
                candidate_sampling_probability=prob,
                candidate_ids=features["video_id"],
                compute_metrics=False,
            )

    return TwoTower()


def train_two_tower(
    train: pl.DataFrame,
    catalog: pl.DataFrame,
    user_features: pl.DataFrame,
    vocabularies: dict[str, list[str]],
    reference_ts: int,
    cfg: TwoTowerConfig,
) -> TwoTowerResult:
    """Train on the positive train pairs and embed every train user and every catalogue video."""
    tf = recsys.training.import_tensorflow()
    import tensorflow_recommenders as tfrs

    started = time.perf_counter()
    tf.keras.utils.set_random_seed(cfg.seed)
    vocab_users = vocabularies["user_ids"]
    vocab_videos = vocabularies["video_ids"]
    categories = _top_categories(catalog)
    video_inputs = video_feature_frame(catalog, reference_ts)
    video_row = {v: i for i, v in enumerate(video_inputs["video_id"])}
    user_rows = {u: i for i, u in enumerate(user_features[s.USER_ID].to_list())}
    affinity = affinity_matrix(user_features, categories)
    history = history_matrix(train, user_features[s.USER_ID].to_list(), vocab_videos, cfg.history_length)
    v_vocab_index = {v: i + 1 for i, v in enumerate(vocab_videos)}

    pair_users = train[s.USER_ID].to_numpy().astype(str)
    pair_videos = train[s.VIDEO_ID].to_numpy().astype(str)
    v_idx = np.fromiter((video_row[v] for v in pair_videos), dtype=np.int64, count=len(pair_videos))
    u_idx = np.fromiter((user_rows[u] for u in pair_users), dtype=np.int64, count=len(pair_users))
    counts = np.bincount(v_idx, minlength=len(video_row)).astype(np.float64)
    # In-batch candidates are drawn in proportion to their frequency in the training pairs.
    sampling_prob = (counts[v_idx] / counts.sum()).astype(np.float32)
    rng = np.random.default_rng(cfg.seed)
    train_video_ids = np.where(rng.random(len(pair_videos)) < cfg.id_dropout, OOV_TOKEN, pair_videos)
    tensors = {
        "user_id": pair_users,
        "user_row": u_idx.astype(np.int32),
        "target": np.fromiter(
            (v_vocab_index.get(v, 0) for v in pair_videos), dtype=np.int32, count=len(pair_videos)
        ),
        "affinity": affinity[u_idx],
        "video_id": train_video_ids,
        "category": video_inputs["category"][v_idx],
        "duration_bucket": video_inputs["duration_bucket"][v_idx],
        "age_bucket": video_inputs["age_bucket"][v_idx],
        "pop_bucket": video_inputs["pop_bucket"][v_idx],
        "sampling_prob": sampling_prob,
    }
    n_pairs = len(pair_users)
    batch = int(min(cfg.batch_size, max(64, n_pairs // 16)))
    steps_per_epoch = max(1, n_pairs // batch)
    # Train for min(epochs over the data, max_steps) steps; a "fit epoch" is at most one pass.
    total_steps = int(min(cfg.epochs * steps_per_epoch, cfg.max_steps))
    fit_steps = min(steps_per_epoch, total_steps)
    epochs = math.ceil(total_steps / fit_steps)
    per_user = n_pairs / max(1, len(vocab_users))
    informative_categories = len([c for c in categories if c != s.UNKNOWN_CATEGORY]) >= 2
    collaborative = cfg.collaborative == "on" or (
        cfg.collaborative == "auto"
        and (per_user >= cfg.collaborative_min_items or not informative_categories)
    )
    # A tower needs at least one input: without features, the ids carry it.
    if not (cfg.use_user_id or cfg.use_user_features or collaborative) or not (
        cfg.use_video_features or collaborative
    ):
        collaborative = True
    ds = (
        tf.data.Dataset.from_tensor_slices(tensors)
        .shuffle(min(len(pair_users), 200_000), seed=cfg.seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(batch, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    model = _build_model(tf, tfrs, vocab_users, vocab_videos, categories, history, cfg, collaborative)
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=cfg.learning_rate))
    fit = model.fit(
        ds,
        epochs=epochs,
        steps_per_epoch=fit_steps,
        verbose=0,
        callbacks=[_epoch_progress(tf, epochs, cfg.temperature)],
    )
    history = {k: [float(x) for x in v] for k, v in fit.history.items()}

    user_ids = np.asarray(vocab_users, dtype=str)
    rows = np.fromiter((user_rows[u] for u in user_ids), dtype=np.int64, count=len(user_ids))
    user_emb = _embed(
        tf,
        model.user_tower,
        {
            "user_id": user_ids,
            "affinity": affinity[rows],
            "user_row": rows.astype(np.int32),
            "target": np.zeros(len(user_ids), dtype=np.int32),
        },
    )
    video_emb = _embed(tf, model.video_tower, {k: v for k, v in video_inputs.items()})
    tower = export_video_tower(model.video_tower, categories, cfg, collaborative, reference_ts)
    tower_error = _check_video_tower(tf, model.video_tower, video_inputs, tower)
    model_config = {
        "model": "two_tower",
        "framework": f"tensorflow {tf.__version__}, tensorflow-recommenders {tfrs.__version__}",
        "embedding_dim": cfg.embedding_dim,
        "normalized": True,
        "similarity": "dot",
        "temperature": cfg.temperature,
        "logq_correction": cfg.logq_correction,
        "epochs": round(epochs * fit_steps / steps_per_epoch, 3),
        "steps": epochs * fit_steps,
        "collaborative": collaborative,
        "mean_train_items_per_user": round(per_user, 3),
        "batch_size": batch,
        "learning_rate": cfg.learning_rate,
        "seed": cfg.seed,
        "user_features": (["user_id"] if cfg.use_user_id else [])
        + (["category_affinity"] if cfg.use_user_features else [])
        + (["watch_history"] if collaborative else []),
        "video_features": (["video_id"] if collaborative else [])
        + (["category", "duration_bucket", "age_bucket", "pop_bucket"] if cfg.use_video_features else []),
        "affinity_categories": categories,
        "duration_edges": DURATION_EDGES,
        "age_edges_days": AGE_EDGES_DAYS,
        "pop_edges": POP_EDGES,
        "reference_ts": reference_ts,
        "n_users": len(user_ids),
        "n_videos": len(video_inputs["video_id"]),
        "n_train_pairs": len(pair_users),
        "final_loss": history.get("loss", [math.nan])[-1],
        "video_tower_max_abs_error": tower_error,
    }
    return TwoTowerResult(
        user_ids=user_ids,
        user_embeddings=user_emb,
        video_ids=video_inputs["video_id"],
        video_embeddings=video_emb,
        model_config=model_config,
        history=history,
        seconds=time.perf_counter() - started,
        video_tower=tower,
    )


def export_video_tower(
    tower: Any, categories: list[str], cfg: TwoTowerConfig, collaborative: bool, reference_ts: int
) -> dict[str, np.ndarray]:
    """The video tower's weights for a video it has never seen (an out-of-vocabulary id), as numpy arrays.

    `recsys.serving.video_tower.VideoTower` evaluates them without TensorFlow, so serving embeds a video
    added after training from its features (category, duration, age, popularity bucket).
    """
    out: dict[str, np.ndarray] = {
        "dense_kernel": tower.out.kernel.numpy().astype(np.float32),
        "dense_bias": tower.out.bias.numpy().astype(np.float32),
        "collaborative": np.asarray(collaborative),
        "use_features": np.asarray(cfg.use_video_features),
        "reference_ts": np.asarray(int(reference_ts), dtype=np.int64),
        "duration_edges": np.asarray(DURATION_EDGES),
        "age_edges_days": np.asarray(AGE_EDGES_DAYS),
        "pop_edges": np.asarray(POP_EDGES),
    }
    if collaborative:
        out["oov_id_embedding"] = tower.embed.embeddings.numpy()[0].astype(np.float32)  # index 0: the OOV id
    if cfg.use_video_features:
        out["categories"] = np.asarray(categories, dtype=str)  # lookup index = position + 1 (0: unknown)
        out["category_table"] = tower.cat.embeddings.numpy().astype(np.float32)
        out["duration_table"] = tower.dur.embeddings.numpy().astype(np.float32)
        out["age_table"] = tower.age.embeddings.numpy().astype(np.float32)
        out["pop_table"] = tower.pop.embeddings.numpy().astype(np.float32)
    return out


def _check_video_tower(
    tf, tower: Any, video_inputs: dict[str, np.ndarray], exported: dict[str, np.ndarray]
) -> float:
    """Largest difference between TensorFlow's and the exported tower's embedding of every catalogue video
    taken as a new video (its id unknown); a programming error when they disagree."""
    from recsys.serving.video_tower import VideoTower

    n = min(len(video_inputs["video_id"]), 2000)
    as_new = {k: v[:n] for k, v in video_inputs.items()} | {"video_id": np.full(n, OOV_TOKEN)}
    want = _embed(tf, tower, as_new)
    got = VideoTower(exported).embed_buckets(
        as_new["category"], as_new["duration_bucket"], as_new["age_bucket"], as_new["pop_bucket"]
    )
    error = float(np.max(np.abs(want - got))) if n else 0.0
    if error > 1e-3:
        raise RuntimeError(f"the exported video tower differs from TensorFlow's by {error}")
    return round(error, 8)


def _top_categories(catalog: pl.DataFrame) -> list[str]:
    counts = catalog.group_by(s.CATEGORY).agg(
        pl.col(s.INTERACTION_COUNT).sum().alias("_n"), pl.len().alias("_v")
    )
    ranked = counts.sort(["_n", "_v", s.CATEGORY], descending=[True, True, False])
    return ranked[s.CATEGORY].head(MAX_AFFINITY_DIM).to_list()


def _embed(tf, tower, inputs: dict[str, np.ndarray], batch: int = 8192) -> np.ndarray:
    n = len(next(iter(inputs.values())))
    out = []
    for lo in range(0, n, batch):
        chunk = {k: tf.constant(v[lo : lo + batch]) for k, v in inputs.items()}
        out.append(tower(chunk, training=False).numpy())
    if not out:
        return np.zeros((0, 64), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)
