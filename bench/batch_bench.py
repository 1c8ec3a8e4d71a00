"""Batch recommendations on the local stack: `write_recommendations` (blocks) against the per-request path.

    .venv/bin/python bench/batch_bench.py [--users 50000] [--videos 20000] [--categories 1] [--runs 3]

Starts a local stack (moto + Redis on free ports, state in a temporary folder), publishes a synthetic
version the way the pipeline does (serving bundle, a ranker of the pipeline's default shape, 100 trees of
depth 4, or `--ranker-trees/--ranker-depth`; online video and user features), promotes it, then per run:
- batch: every user streamed to Parquet through `recsys.serving.batch.write_recommendations` (store
  reads included: one Scan of the activity and user tables);
  With `--store memory` (default) the online items are held in the process (a stand-in with the store's
  read interface, the bulk Scan included), so the figure is the computation and the reads' client side;
  `--store local` writes them to moto and reads them from there (moto's own cost included);
- per request: `RecommendationService.recommend` for the first `--per-request` users (no cache, no
  tracking), what batch jobs did before; the ratio is per user, within the same run.
`--categories 1` is the catalogue of the imported short-video data set (every video "unknown").
Prints one JSON object (medians over runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine  # noqa: E402
from bench.serving_bench import DIM, N_CLUSTERS, clustered, neighbour_sources, ranker_model  # noqa: E402
from recsys.pipeline_config import RankerConfig  # noqa: E402


def start_stack(home: Path):
    """A local stack on free ports (as the tests start one); returns (stack, settings)."""
    for name in list(os.environ):
        if name.startswith("RECSYS_"):
            del os.environ[name]
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    from recsys.config import load_settings
    from recsys.local.processes import free_port
    from recsys.local.stack import LocalStack

    os.environ.update({"RECSYS_ENV": "local", "RECSYS_AWS_ENDPOINT": f"http://127.0.0.1:{free_port()}",
                       "RECSYS_REDIS_PORT": str(free_port()), "RECSYS_HOME": str(home)})  # fmt: skip
    stack = LocalStack(load_settings("local"))
    stack.up()
    os.environ["RECSYS_REDIS_URL"] = stack.redis_url()
    return stack, load_settings("local")


def publish(
    settings,
    n_videos: int,
    n_users: int,
    n_categories: int,
    online: bool,
    seed: int = 0,
    ranker_shape: tuple[int, int] = (100, 4),
):
    """A synthetic version in S3, promoted; its online items written to the store when `online`, else
    returned as a MemoryStore."""
    from recsys import artifacts, release
    from recsys.aws import client
    from recsys.feature_store.online import OnlineFeatureStore
    from recsys.registry import ModelRegistry
    from recsys.serving.bundle import assemble_bundle, bundle_key, encode_bundle

    version = "v20260101-000000-bench0"
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(N_CLUSTERS, DIM)).astype(np.float32)
    emb = clustered(n_videos, rng, centers)
    video_ids = np.asarray([str(100_000 + i) for i in range(n_videos)])
    cats = (
        ["unknown"] * n_videos
        if n_categories <= 1
        else [f"cat{i % n_categories:02d}" for i in range(n_videos)]
    )
    popularity = rng.uniform(0, 1, n_videos)
    now = int(time.time())
    catalog = {"video_id": video_ids.tolist(), "category": cats, "popularity": popularity.tolist(),
               "trending": rng.uniform(0, 1, n_videos).tolist(), "duration": [300.0] * n_videos,
               "upload_ts": [now - 86_400] * n_videos}  # fmt: skip
    users = np.asarray([str(i + 1) for i in range(n_users)])
    uemb = clustered(n_users, rng, centers)
    history = {"user_id": users.tolist(),
               "watched": [video_ids[rng.integers(0, n_videos, 20)].tolist() for _ in range(n_users)],
               "top_categories": [[cats[i % n_videos]] for i in range(n_users)]}  # fmt: skip
    arrays = assemble_bundle(video_ids, emb, catalog, users, uemb, history, neighbour_sources(video_ids, rng))
    bucket = settings.names.bucket("models")
    s3 = client("s3", settings)
    s3.put_object(Bucket=bucket, Key=bundle_key(version), Body=encode_bundle(arrays, version))
    s3.put_object(
        Bucket=bucket,
        Key=artifacts.ranker_key(version, "ranker_model.json"),
        Body=ranker_model(rng, *ranker_shape),
    )
    videos = {v: {"video_id": v, "category": cats[i], "popularity": float(popularity[i]), "interaction_count": 10,
                  "avg_watch_ratio": 0.5, "duration": 300.0, "upload_ts": now - 86_400}
              for i, v in enumerate(video_ids.tolist())}  # fmt: skip
    user_items = {u: {"user_id": u, "interaction_count": 20, "total_weight": 25.0, "last_interaction_ts": now - 3600,
                      "top_category": cats[0], "category_affinity": {cats[0]: 1.0}} for u in users.tolist()}  # fmt: skip
    store = None
    if online:
        OnlineFeatureStore(settings).put_videos(videos.values())
        OnlineFeatureStore(settings).put_users(user_items.values())
    else:
        store = MemoryStore(videos, user_items)
    registry = ModelRegistry(settings)
    registry.register(version, {"recall_at_100": 0.5}, "bench")
    release.promote(settings, version, registry=registry, publisher=lambda _v: None)
    return store


class MemoryStore:
    """The online store's read interface over items held in the process (the `--store memory` mode)."""

    def __init__(self, videos: dict[str, dict[str, Any]], users: dict[str, dict[str, Any]]) -> None:
        self.videos, self.users = videos, users
        self.video_table, self.user_table, self.activity_table = "videos", "users", "activity"

    def get_videos(self, ids, attributes=None):
        return [self.videos.get(i) for i in ids]

    def get_users(self, ids):
        return [self.users.get(i) for i in ids]

    def activity_and_engaged(self, user_id, limit):
        return [], []

    def scan(self, table, attributes=None):
        from recsys.feature_store.online import serialize_item

        items = {"videos": self.videos, "users": self.users}.get(table, {})
        return (serialize_item(i) for i in items.values())


class RssSampler:
    """Resident memory of this process and its worker processes, sampled every `every_s` seconds while the
    batch runs: what the batch itself adds, apart from the version and the items set up before it."""

    def __init__(self, every_s: float = 0.5) -> None:
        self.every_s = every_s
        self.parent: list[float] = []
        self.workers: list[float] = []  # the largest worker at each sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss_mb(pid: int | str) -> float:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def _children(self) -> list[str]:
        try:
            return Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
        except OSError:
            return []

    def _run(self) -> None:
        while not self._stop.is_set():
            self.parent.append(self._rss_mb(os.getpid()))
            self.workers.append(max((self._rss_mb(c) for c in self._children()), default=0.0))
            self._stop.wait(self.every_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.parent.append(self._rss_mb(os.getpid()))

    def summary(self) -> dict[str, Any]:
        """The parent at the start, at each quarter of the run, at its largest and at the end; the largest
        worker at each quarter and at its largest."""

        def quarters(samples: list[float]) -> list[float]:
            return [round(samples[min(len(samples) - 1, len(samples) * q // 4)], 1) for q in (1, 2, 3)]

        return {"parent_start": round(self.parent[0], 1), "parent_quarters": quarters(self.parent),
                "parent_max": round(max(self.parent), 1), "parent_end": round(self.parent[-1], 1),
                "worker_quarters": quarters(self.workers) if self.workers else [],
                "worker_max": round(max(self.workers, default=0.0), 1)}  # fmt: skip


def one_run(settings, users: list[str], per_request: int, out: Path, store=None) -> dict[str, Any]:
    from recsys.config import ServingConfig
    from recsys.serving.batch import write_recommendations
    from recsys.serving.service import RecommendationService
    from recsys.serving.tracking import InferenceTracker

    config = ServingConfig(tracking=False)
    service = RecommendationService(
        settings, config, feature_store=store, tracker=InferenceTracker(settings, background=False)
    )
    sampler = RssSampler()
    t, cpu = time.perf_counter(), time.process_time()
    with sampler:
        rows = write_recommendations(service, users, 20, out)
    batch_s, batch_cpu_s = time.perf_counter() - t, time.process_time() - cpu
    t = time.perf_counter()
    for u in users[:per_request]:
        service.recommend(u, k=20, use_cache=False, track=False)
    per_request_s = time.perf_counter() - t
    import resource

    peak_mb = {"parent": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "largest_worker": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}  # fmt: skip
    return {"batch_s": batch_s, "batch_cpu_s": batch_cpu_s, "rows": rows, "batch_users_per_s": len(users) / batch_s,
            "peak_rss_mb": peak_mb, "rss_during_batch_mb": sampler.summary(),
            "per_request_users_per_s": per_request / per_request_s,
            "ratio": (len(users) / batch_s) / (per_request / per_request_s)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--videos", type=int, default=20_000)
    parser.add_argument("--categories", type=int, default=1)
    parser.add_argument("--per-request", type=int, default=1_000)
    parser.add_argument("--ranker-trees", type=int, default=RankerConfig().iterations)
    parser.add_argument("--ranker-depth", type=int, default=RankerConfig().depth)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store", choices=["memory", "local"], default="memory",
                        help="memory: online items read into the process first (compute only); local: moto")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        stack, settings = start_stack(Path(home))
        try:
            t = time.perf_counter()
            store = publish(
                settings,
                args.videos,
                args.users,
                args.categories,
                online=args.store == "local",
                ranker_shape=(args.ranker_trees, args.ranker_depth),
            )
            setup_s = time.perf_counter() - t
            users = [str(i + 1) for i in range(args.users)]
            runs = []
            for i in range(args.runs):
                runs.append(one_run(settings, users, args.per_request, Path(home) / "recs.parquet", store))
                print(f"run {i + 1}: {json.dumps(runs[-1])}", file=sys.stderr)
        finally:
            stack.down()
    med = {
        key: statistics.median(r[key] for r in runs) for key in runs[0] if not isinstance(runs[0][key], dict)
    }
    print(json.dumps({"machine": machine(), "args": vars(args), "setup_s": setup_s,
                      "runs": runs, "median": med}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
