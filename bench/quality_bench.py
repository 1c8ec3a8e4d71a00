"""Recommendation quality on real and synthetic data: popularity, each source alone, the served list.

Starts its own local stack (moto + Redis on free ports, state in a temporary directory), imports the data
with the same code as `recsys data import`, and runs the whole pipeline (`recsys pipeline run`: the state
machine, the refit and the deployment included) once per data set, each in a fresh Python process (wall time
and peak RSS of that process). The table puts popularity, EASE / item-kNN alone, the two-tower alone, the
ranked list and what was served side by side, from one run's metrics.json.

    .venv/bin/python bench/quality_bench.py --movielens PATH/TO/ml-latest-small/ratings.csv \
        --synthetic 100k --out bench/results/quality.md

MovieLens "latest-small" is public (GitHub hosts many copies); pass the path of its ratings.csv, never commit it.
Protocol on it: per-user random 75/25 holdout, all unseen movies ranked (`split.strategy = random`,
`test_share = 0.25`). The synthetic data (long-tailed, timestamped) uses the default leave-last-2-out split.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYNTHETIC = {
    "seed": {"n_users": 1000, "n_videos": 500, "n_interactions": 10_000, "seed": 42},
    "100k": {"n_users": 5000, "n_videos": 5000, "n_interactions": 100_000, "seed": 42},
    "1m": {"n_users": 10_000, "n_videos": 50_000, "n_interactions": 1_000_000, "seed": 42},
}
MOVIELENS_CONFIG = {"split": {"strategy": "random", "test_share": 0.25, "min_train_items": 1}}
MOVIELENS_MAPPING = {"user_id": "userId", "video_id": "movieId", "weight": "rating"}


def child(spec: str) -> None:
    """One pipeline run in this process; prints one JSON line."""
    started = time.perf_counter()
    from recsys.config import load_settings
    from recsys.ids import new_version
    from recsys.pipeline.runner import run_local
    from recsys.stages.evaluation import evaluation_prefix
    from recsys.storage import get_json

    job = json.loads(spec)
    settings = load_settings("local")
    version = new_version()
    event = {"version": version, "source": job["source"], "config": job.get("config") or {}}
    result = run_local(event, settings)
    wall = time.perf_counter() - started
    record = result.record
    try:
        metrics = get_json(
            settings, settings.names.bucket("artifacts"), evaluation_prefix(version) + "metrics.json"
        )
    except Exception:
        metrics = None
    print(
        json.dumps(
            {
                "status": record["status"],
                "error": record.get("error"),
                "cause": (record.get("cause") or "")[:2000],
                "wall_s": wall,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "metrics": metrics,
                "states": {k: v.get("duration_s") for k, v in (record.get("states") or {}).items()},
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--movielens", type=Path, default=None, help="path of ml-latest-small's ratings.csv")
    parser.add_argument(
        "--synthetic", default="100k", help="comma-separated: " + ", ".join(SYNTHETIC) + " (or '')"
    )
    parser.add_argument("--config", default=None, help="JSON pipeline config overrides for every run")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.pipeline_bench import machine
    from recsys.aws import reset_clients
    from recsys.config import load_settings
    from recsys.data.importer import import_dataset
    from recsys.local.processes import free_port
    from recsys.local.stack import LocalStack
    from recsys.pipeline_config import _deep_merge

    home = Path(tempfile.mkdtemp(prefix="recsys-quality-"))
    os.environ.update(
        {
            "RECSYS_ENV": "local",
            "RECSYS_AWS_ENDPOINT": f"http://127.0.0.1:{free_port()}",
            "RECSYS_REDIS_PORT": str(free_port()),
            "RECSYS_HOME": str(home),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    reset_clients()
    stack = LocalStack(load_settings("local"))
    stack.up()
    os.environ["RECSYS_REDIS_URL"] = stack.redis_url()
    extra = json.loads(args.config) if args.config else {}
    jobs: list[tuple[str, dict]] = []
    if args.movielens:
        rows = sum(1 for _ in args.movielens.open()) - 1
        import_dataset(
            load_settings("local"), "movielens", args.movielens, mapping=MOVIELENS_MAPPING, overwrite=True
        )
        jobs.append(
            (
                f"ml-latest-small ratings.csv ({rows:,} ratings), per-user random 75/25",
                {
                    "source": {"kind": "dataset", "name": "movielens"},
                    "config": _deep_merge(MOVIELENS_CONFIG, extra),
                },
            )
        )
    for size in [s for s in args.synthetic.split(",") if s]:
        spec = SYNTHETIC[size]
        jobs.append(
            (
                f"synthetic {size} ({spec['n_users']:,} users, {spec['n_videos']:,} videos, "
                f"{spec['n_interactions']:,} interactions), leave-last-2-out",
                {"source": {"kind": "synthetic", **spec}, "config": extra},
            )
        )
    results = []
    try:
        for label, job in jobs:
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(job)],
                capture_output=True,
                text=True,
                check=False,
            )
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode != 0 or not lines:
                sys.stderr.write(proc.stderr[-4000:])
                raise SystemExit(f"{label}: run failed (exit {proc.returncode})")
            run = json.loads(lines[-1])
            run["process_wall_s"] = time.perf_counter() - t0
            print(
                f"{label}: {run['status']} {run['process_wall_s']:.0f}s {json.dumps(run['states'])}",
                file=sys.stderr,
            )
            results.append((label, run))
    finally:
        stack.down()
    table = render(results, machine())
    print(table)
    if args.out:
        args.out.write_text(table)


def render(results: list[tuple[str, dict]], machine_text: str) -> str:
    """The Markdown table: one block per data set, one row per list."""
    out = ["# Recommendation quality: candidate sources, ranker, served list", ""]
    for label, run in results:
        m = run.get("metrics") or {}
        pop = (m.get("popularity") or {}).get("ndcg@10") or 0.0
        train = (m.get("train") or {}).get("ranker") or {}
        method = ((train.get("sources_train") or {}).get("method") or "item-item").upper()
        rows = [("popularity", m.get("popularity"))]
        names = {
            "item_item": f"{method} alone (item-item)",
            "two_tower": "two-tower alone",
            "recent": "recent-activity alone",
        }
        rows += [(names[s], (m.get("sources") or {}).get(s)) for s in ("item_item", "two_tower", "recent")]
        rows += [("ranked list (CatBoost over the sources)", m.get("final"))]
        served = m.get("served") or {}
        rows += [(f"**served: {served.get('choice')}**", served)]
        out += [
            f"## {label}",
            "",
            f"Status {run['status']}; gates {'passed' if (m.get('gates') or {}).get('passed') else 'FAILED'}; "
            f"wall {run['process_wall_s']:.0f} s for the whole run (preprocessing to deployment, refit included), "
            f"peak RSS {run['peak_rss_mb']:.0f} MB; {m.get('users_evaluated')} users evaluated, catalogue "
            f"{m.get('catalog_size')}.",
            "",
            "| list | nDCG@10 | vs popularity | Recall@10 | Recall@100 | HR@10 | MAP@10 |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, b in rows:
            if not b:
                continue
            lift = f"{(b['ndcg@10'] / pop - 1) * 100:+.0f}%" if pop else "n/a"
            out.append(
                f"| {name} | {b['ndcg@10']:.4f} | {lift} | {b['recall@10']:.4f} | {b['recall@100']:.4f} | "
                f"{b['hit_rate@10']:.4f} | {b['map@10']:.4f} |"
            )
        out += ["", "Stage seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in run["states"].items() if v), ""]
    out += [f"Machine: {machine_text}.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
