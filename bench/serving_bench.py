"""Serving benchmark: ANN choice and recall, in-process recommendation latency, cold import, package size.

    .venv/bin/python bench/serving_bench.py [--sizes 500,100000,1000000] [--out bench/results/serving.json]
        [--runs 5] [--index-cache DIR] [--skip-import] [--ann-size 0]

1. ANN: hnswlib vs usearch (same graph parameters) against exact numpy top-100 on a clustered catalogue.
2. Latency of one warm recommendation in process (`RecommendationService.compute`: user vector,
   the four candidate sources, the ranker at the pipeline's default shape (100 trees of depth 4, or
   `--ranker-trees/--ranker-depth`), rules, reasons) for each catalogue size, also for one category; online features come from the in-process feature cache (warm).
3. Cold import of `lambdas/api/handler.py` in a fresh interpreter (median of 5).
4. Installed size of the serving dependency set (what the API Lambda's zip needs).
Prints a JSON summary; the figures go into bench/results/serving.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine  # noqa: E402

DIM = 64
N_CLUSTERS = 512
CATEGORIES = [f"cat{i:02d}" for i in range(20)]


def served_candidate_settings(per_source: int | None = None) -> dict[str, float]:
    """The candidate settings a version trained today records (the pipeline's defaults; `per_source` set
    to compare), so the synthetic model serves as many candidates per source as a real one."""
    from recsys.pipeline_config import PipelineConfig
    from recsys.sources.fit import source_settings

    found = source_settings(PipelineConfig().sources).to_dict()
    return found if per_source is None else {**found, "per_source": per_source}


def neighbour_sources(
    video_ids: np.ndarray, rng: np.random.Generator, per_video: int = 100, per_source: int | None = None
) -> dict[str, Any]:
    """An item-item neighbour table as the pipeline's sources.npz holds it (`per_video` random neighbours
    with positive weights per video), so the item-item and recent-activity sources do their work."""
    n = len(video_ids)
    return {"video_ids": video_ids, "neighbour_offsets": np.arange(0, n * per_video + 1, per_video, dtype=np.int64),
            "neighbour_idx": rng.integers(0, n, n * per_video).astype(np.int32),
            "neighbour_weight": rng.uniform(0.001, 0.1, n * per_video).astype(np.float32),
            "info": {"served": "ranker", "candidates": served_candidate_settings(per_source)}}  # fmt: skip


def clustered(n: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    """Embeddings around cluster centres (two-tower embeddings are clustered, not uniform)."""
    out = np.empty((n, DIM), dtype=np.float32)
    step = 200_000
    for s in range(0, n, step):
        m = min(step, n - s)
        out[s : s + m] = centers[rng.integers(0, len(centers), m)] + 0.6 * rng.normal(size=(m, DIM))
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# ----------------------------------------------------------------------------- 1. ANN choice
def bench_ann(n: int, n_queries: int = 200, seed: int = 0) -> dict[str, Any]:
    from recsys.serving.retrieval import (
        DEFAULT_HNSW_EF_CONSTRUCTION,
        DEFAULT_HNSW_EF_SEARCH,
        DEFAULT_HNSW_M,
        ExactIndex,
        HnswIndex,
    )

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(N_CLUSTERS, DIM)).astype(np.float32)
    emb = clustered(n, rng, centers)
    queries = clustered(n_queries, rng, centers)
    exact = ExactIndex(emb)
    t = time.perf_counter()
    truth = [exact.search(q, 100).rows for q in queries]
    exact_ms = (time.perf_counter() - t) / n_queries * 1e3
    out: dict[str, Any] = {"n": n, "queries": n_queries, "exact_ms": exact_ms}
    t = time.perf_counter()
    hnsw = HnswIndex(emb)
    build = time.perf_counter() - t
    lat, rec = [], []
    for q, tr in zip(queries, truth, strict=True):
        s = time.perf_counter()
        got = hnsw.search(q, 100)
        lat.append((time.perf_counter() - s) * 1e3)
        rec.append(np.isin(tr, got.rows).mean())
    out["hnswlib"] = {"build_s": build, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "recall_at_100": float(
        np.mean(rec)), "params": {"M": DEFAULT_HNSW_M, "ef_construction": DEFAULT_HNSW_EF_CONSTRUCTION,
                                   "ef": DEFAULT_HNSW_EF_SEARCH}}  # fmt: skip
    try:
        from usearch.index import Index
    except ImportError:
        out["usearch"] = None
        return out
    t = time.perf_counter()
    u = Index(ndim=DIM, metric="ip", connectivity=DEFAULT_HNSW_M, expansion_add=DEFAULT_HNSW_EF_CONSTRUCTION,
              expansion_search=DEFAULT_HNSW_EF_SEARCH)  # fmt: skip
    u.add(np.arange(n), emb, threads=1)
    build = time.perf_counter() - t
    lat, rec = [], []
    for q, tr in zip(queries, truth, strict=True):
        s = time.perf_counter()
        keys = u.search(q, 100, threads=1).keys
        lat.append((time.perf_counter() - s) * 1e3)
        rec.append(np.isin(tr, keys).mean())
    out["usearch"] = {"build_s": build, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
                      "recall_at_100": float(np.mean(rec))}  # fmt: skip
    return out


# ----------------------------------------------------------------------------- 2. latency
class MemoryStore:
    """Stand-in for the online store with items already in the process (the warm feature cache's view)."""

    def __init__(self, videos: dict[str, dict[str, Any]], users: dict[str, dict[str, Any]]) -> None:
        self.videos, self.users = videos, users
        self.video_table = "memory"

    def get_videos(self, ids, attributes=None):
        return [self.videos.get(i) for i in ids]

    def get_users(self, ids):
        return [self.users.get(i) for i in ids]

    def activity_and_engaged(self, user_id, limit):
        return [], []


def ranker_model(rng: np.random.Generator, n_trees: int = 300, depth: int = 6) -> bytes:
    from recsys.ranking.candidates import CANDIDATE_FEATURES

    n_feat = len(CANDIDATE_FEATURES)
    floats = [{"feature_index": i, "flat_feature_index": i, "nan_value_treatment": "AsFalse", "borders": []}
              for i in range(n_feat)]  # fmt: skip
    trees = [{"splits": [{"float_feature_index": int(rng.integers(0, n_feat)), "border": float(rng.normal()),
                          "split_type": "FloatFeature"} for _ in range(depth)],
              "leaf_values": rng.normal(size=2**depth).tolist()} for _ in range(n_trees)]  # fmt: skip
    return json.dumps({"features_info": {"float_features": floats}, "oblivious_trees": trees,
                       "scale_and_bias": [1.0, [0.0]]}).encode()  # fmt: skip


def synthetic_model(
    n: int,
    n_users: int,
    seed: int = 1,
    ranker_shape: tuple[int, int] = (100, 4),
    index_cache: Path | None = None,
    per_source: int | None = None,
):
    """A synthetic serving model of `n` videos; its HNSW graph is kept in `index_cache` (a folder), keyed by
    a digest of the embeddings, so a later run at 1M videos skips the five-minute build."""
    import hashlib

    from recsys.serving.bundle import assemble_bundle
    from recsys.serving.model_store import ServingModel
    from recsys.serving.retrieval import build_index
    from recsys.serving.sources import CandidateRanker

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(N_CLUSTERS, DIM)).astype(np.float32)
    emb = clustered(n, rng, centers)
    video_ids = np.asarray([str(i) for i in range(n)])
    cats = [CATEGORIES[i % len(CATEGORIES)] for i in range(n)]
    now = int(time.time())
    catalog = {"video_id": video_ids.tolist(), "category": cats, "popularity": rng.uniform(0, 1, n).tolist(),
               "trending": rng.uniform(0, 1, n).tolist(), "duration": [300.0] * n,
               "upload_ts": [now - 86_400] * n}  # fmt: skip
    users = np.asarray([f"u{i}" for i in range(n_users)])
    uemb = clustered(n_users, rng, centers)
    history = {"user_id": users.tolist(),
               "watched": [[str(x) for x in rng.integers(0, n, 20)] for _ in range(n_users)],
               "top_categories": [[CATEGORIES[i % len(CATEGORIES)]] for i in range(n_users)]}  # fmt: skip
    arrays = assemble_bundle(
        video_ids,
        emb,
        catalog,
        users,
        uemb,
        history,
        neighbour_sources(video_ids, rng, per_source=per_source),
    )
    cached: Path | None = None
    if index_cache is not None:
        digest = hashlib.sha256(np.ascontiguousarray(arrays["video_embeddings"]).tobytes()).hexdigest()[:16]
        cached = index_cache / f"hnsw-{n}-{digest}.bin"
    t = time.perf_counter()
    index = build_index(
        arrays["video_embeddings"], index_bytes=cached.read_bytes() if cached and cached.exists() else None
    )
    build_s = time.perf_counter() - t
    if cached is not None and not cached.exists() and index.kind == "hnsw":
        index_cache.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(index.to_bytes())
    ranker = CandidateRanker.from_json_bytes(ranker_model(rng, *ranker_shape), None)
    model = ServingModel(version="bench", index=index, ranker=ranker, **arrays)
    return model, build_s


def bench_latency(
    n: int,
    iterations: int,
    ranker_shape: tuple[int, int] = (100, 4),
    index_cache: Path | None = None,
    runs: int = 1,
    per_source: int | None = None,
) -> dict[str, Any]:
    from recsys.config import ServingConfig, load_settings
    from recsys.serving.service import RecommendationService

    n_users = 2000
    model, build_s = synthetic_model(
        n, n_users, ranker_shape=ranker_shape, index_cache=index_cache, per_source=per_source
    )
    store_videos: dict[str, dict[str, Any]] = {}
    now = int(time.time())
    rng = np.random.default_rng(2)
    service = RecommendationService(load_settings("local"), ServingConfig(tracking=False),
                                    feature_store=MemoryStore(store_videos, {}))  # fmt: skip
    service.request_config = lambda: service.config  # no Secrets Manager here: the flags are the settings'
    users = [f"u{i}" for i in range(n_users)]
    for u in users:
        service.store.users[u] = {"user_id": u, "interaction_count": 20, "total_weight": 25.0,
                                  "last_interaction_ts": now - 3600, "top_category": CATEGORIES[0],
                                  "category_affinity": {CATEGORIES[0]: 0.6, CATEGORIES[1]: 0.4}}  # fmt: skip
    # Warm: every video a request touches is in the in-process feature cache (TTL 60 s in production).
    for i in range(n):
        store_videos[str(i)] = {"video_id": str(i), "category": str(model.category[i]),
                                "popularity": float(model.popularity[i]), "interaction_count": 10,
                                "avg_watch_ratio": 0.5, "duration": 300.0, "upload_ts": now - 86_400}  # fmt: skip
    activity = [{"video_id": str(int(v)), "event_type": "view"} for v in rng.integers(0, n, 5)]
    for u in users[:50]:  # warm-up
        service.compute_selection(model, u, 20, None, True, activity)
    per_run = []
    for _ in range(runs):
        lat, cpu = [], []
        for i in range(iterations):
            u = users[i % n_users]
            s, c = time.perf_counter(), time.process_time()
            picks, source, _ = service.compute_selection(model, u, 20, None, True, activity)
            lat.append((time.perf_counter() - s) * 1e3)
            cpu.append(
                (time.process_time() - c) * 1e3
            )  # this process's CPU: what a shared host does not inflate
            assert source == "model" and len(picks) == 20
        per_run.append({"p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "mean_ms": float(np.mean(lat)),
                        "cpu_p50_ms": pct(cpu, 50), "cpu_p99_ms": pct(cpu, 99),
                        "load_avg": os.getloadavg()[0]})  # fmt: skip
        print(json.dumps({"n": n, **per_run[-1]}), file=sys.stderr, flush=True)
    # A request for one category (1 of 20): the two-tower source searches within that category's rows.
    in_category = []
    for i in range(iterations // 2):
        u = users[i % n_users]
        s = time.perf_counter()
        picks, source, _ = service.compute_selection(model, u, 20, CATEGORIES[1], True, activity)
        in_category.append((time.perf_counter() - s) * 1e3)
        assert source == "model" and len(picks) == 20

    def median(key: str) -> float:
        return float(statistics.median(r[key] for r in per_run))

    return {"n": n, "index": model.index.kind, "index_build_s": build_s, "iterations": iterations,
            "per_source": model.sources_info["candidates"]["per_source"],
            "runs": per_run,  # each run's figures; the keys below are their medians
            "p50_ms": median("p50_ms"), "p99_ms": median("p99_ms"), "mean_ms": median("mean_ms"),
            "cpu_p50_ms": median("cpu_p50_ms"), "cpu_p99_ms": median("cpu_p99_ms"),
            "category_p50_ms": pct(in_category, 50), "category_p99_ms": pct(in_category, 99),
            "load_avg": os.getloadavg()[0]}  # fmt: skip


# ----------------------------------------------------------------------------- 3/4. import and size
def cold_import(runs: int = 5) -> dict[str, Any]:
    code = ("import time; t = time.perf_counter(); import lambdas.api.handler; "
            "print(time.perf_counter() - t)")  # fmt: skip
    env = {**os.environ, "POWERTOOLS_METRICS_DISABLED": "true"}
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True)  # fmt: skip
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return {"runs": runs, "median_s": statistics.median(times), "max_s": max(times)}


SERVING_ROOTS = [
    "boto3",
    "numpy",
    "pydantic",
    "redis",
    "aws-lambda-powertools",
    "aws-xray-sdk",
    "chroma-hnswlib",
    "threadpoolctl",
]
LAMBDA_RUNTIME_PROVIDES = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}


def _requirements(dist: metadata.Distribution) -> list[str]:
    names = []
    for req in dist.requires or []:
        if "extra ==" in req:
            continue
        name = req.split(";")[0].split("[")[0]
        for sep in "<>=!~ (":
            name = name.split(sep)[0]
        names.append(name.strip())
    return names


def serving_size() -> dict[str, Any]:
    seen: dict[str, int] = {}
    todo = list(SERVING_ROOTS)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        files = {Path(dist.locate_file(f)).resolve() for f in dist.files or []}
        libs = Path(dist.locate_file("")) / f"{dist.metadata['Name'].lower()}.libs"
        if libs.is_dir():
            files |= {x.resolve() for x in libs.rglob("*")}
        size = sum(p.stat().st_size for p in files if p.is_file() and "__pycache__" not in p.parts)
        seen[key] = size
        todo.extend(_requirements(dist))
    code = sum(p.stat().st_size for d in ("recsys", "lambdas") for p in (ROOT / d).rglob("*.py"))
    code += sum(p.stat().st_size for p in (ROOT / "recsys").rglob("*.json"))
    total = sum(seen.values()) + code
    without_runtime = total - sum(v for k, v in seen.items() if k in LAMBDA_RUNTIME_PROVIDES)
    return {"packages_mb": {k: round(v / 2**20, 1) for k, v in sorted(seen.items(), key=lambda kv: -kv[1])},
            "code_mb": round(code / 2**20, 2), "total_mb": round(total / 2**20, 1),
            "total_without_lambda_runtime_boto_mb": round(without_runtime / 2**20, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,100000,1000000")
    parser.add_argument("--ann-size", type=int, default=100_000, help="0 skips the ANN comparison")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--ranker-trees", type=int, default=100)
    parser.add_argument("--ranker-depth", type=int, default=4)
    parser.add_argument("--index-cache", type=Path, default=None,
                        help="a folder that keeps each synthetic catalogue's HNSW graph between runs")  # fmt: skip
    parser.add_argument("--runs", type=int, default=1, help="latency runs per size (one model built)")
    parser.add_argument("--skip-import", action="store_true", help="skip the cold import and package size")
    parser.add_argument("--per-source", default="",
                        help="comma-separated candidates per source to compare (default: the pipeline's)")  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("RECSYS_ENV", "local")
    result: dict[str, Any] = {"machine": machine()}
    if args.ann_size > 0:
        print("ann…", file=sys.stderr)
        result["ann"] = bench_ann(args.ann_size)
    result["latency"] = []
    for n in [int(x) for x in args.sizes.split(",")]:
        print(f"latency n={n}…", file=sys.stderr)
        shape = (args.ranker_trees, args.ranker_depth)
        iterations = 2000 if n <= 100_000 else 1000
        for per_source in [int(x) for x in args.per_source.split(",") if x] or [None]:
            found = bench_latency(n, iterations, shape, args.index_cache, args.runs, per_source)
            result["latency"].append(found)
    if not args.skip_import:
        print("cold import…", file=sys.stderr)
        result["cold_import"] = cold_import()
        result["package"] = serving_size()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
