"""Benchmark of the full local ML pipeline (preprocessing -> training -> evaluation -> deployment).

Starts its own local stack (moto + Redis on free ports, state in a temporary directory), then runs the
pipeline `--repeat` times per size, each run in a fresh Python process (so TensorFlow's import is part of
the wall time) through the same state machine runner as `recsys pipeline run --env local`. Reports the
median wall time, the peak RSS of the pipeline process, and the quality metrics beside the popularity
baseline, and writes a Markdown table.

    .venv/bin/python bench/pipeline_bench.py --sizes seed --repeat 3
    .venv/bin/python bench/pipeline_bench.py --sizes seed,1m --repeat 1 --out bench/results/pipeline.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {
    "seed": {"n_users": 1000, "n_videos": 500, "n_interactions": 10_000, "seed": 42},
    "100k": {"n_users": 5000, "n_videos": 5000, "n_interactions": 100_000, "seed": 42},
    "1m": {"n_users": 10_000, "n_videos": 50_000, "n_interactions": 1_000_000, "seed": 42},
}


def child(size: str, config: str | None) -> None:
    """One pipeline run in this process; prints one JSON line of results."""
    started = time.perf_counter()
    from recsys.artifacts import evaluation_prefix
    from recsys.config import load_settings
    from recsys.ids import new_version
    from recsys.pipeline.runner import run_local
    from recsys.storage import get_json

    settings = load_settings("local")
    version = new_version()
    event: dict = {"version": version, "source": {"kind": "synthetic", **SIZES[size]}}
    if config:
        event["config"] = json.loads(config)
    result = run_local(event, settings)
    wall = time.perf_counter() - started
    record = result.record
    try:  # also when the gates failed: evaluation wrote metrics.json
        metrics = get_json(
            settings, settings.names.bucket("artifacts"), evaluation_prefix(version) + "metrics.json"
        )
    except Exception:
        metrics = None
    states = {k: v.get("duration_s") for k, v in (record.get("states") or {}).items()}
    print(
        json.dumps(
            {
                "status": record["status"],
                "error": record.get("error"),
                "cause": (record.get("cause") or "")[:2000],
                "wall_s": wall,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "metrics": metrics,
                "states": states,
            }
        )
    )


def machine() -> str:
    from bench.machine import machine as this_machine

    m = this_machine()
    versions = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib.metadata as m; print(' '.join(f'{p} {m.version(p)}' for p in "
            "('tensorflow', 'tensorflow-recommenders', 'catboost', 'polars', 'numpy')))",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"{m['cpus']} cores ({m['cpu']}), {m['memory_gib']} GiB RAM, Python {m['python']}, "
        f"{versions}, {platform.system()} {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="seed", help="comma-separated: " + ", ".join(SIZES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--config", default=None, help="JSON pipeline config overrides")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.config)
        return

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from recsys.aws import reset_clients
    from recsys.config import load_settings
    from recsys.local.processes import free_port
    from recsys.local.stack import LocalStack

    home = Path(tempfile.mkdtemp(prefix="recsys-bench-"))
    env = {
        "RECSYS_ENV": "local",
        "RECSYS_AWS_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "RECSYS_REDIS_PORT": str(free_port()),
        "RECSYS_HOME": str(home),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(env)
    reset_clients()
    stack = LocalStack(load_settings("local"))
    stack.up()
    os.environ["RECSYS_REDIS_URL"] = stack.redis_url()
    rows = []
    try:
        for size in args.sizes.split(","):
            runs = []
            for i in range(args.repeat):
                cmd = [sys.executable, __file__, "--child", size] + (
                    ["--config", args.config] if args.config else []
                )
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                outer = time.perf_counter() - t0
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
                if proc.returncode != 0 or not lines:
                    sys.stderr.write(proc.stderr[-4000:])
                    raise SystemExit(f"{size} run {i + 1} failed (exit {proc.returncode})")
                run = json.loads(lines[-1])
                run["process_wall_s"] = outer
                runs.append(run)
                m = run.get("metrics") or {}
                print(
                    f"{size} run {i + 1}: {run['status']} {outer:.1f}s, peak RSS {run['peak_rss_mb']:.0f} MB, "
                    f"states {json.dumps(run['states'])}",
                    file=sys.stderr,
                )
                if run["status"] != "SUCCEEDED":
                    print(f"  {run.get('error')}: {run.get('cause')}", file=sys.stderr)
                if m:
                    print(
                        "  " + json.dumps({k: m.get(k) for k in ("two_tower", "popularity", "ranker")}),
                        file=sys.stderr,
                    )
            rows.append((size, runs))
    finally:
        stack.down()
    table = render(rows, machine(), args.config)
    print(table)
    if args.out:
        args.out.write_text(table)


def render(rows, machine_text: str, config: str | None) -> str:
    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else float("nan")

    lines = [
        "| size | users / videos / interactions | runs | status | wall s (median) | peak RSS MB (median) | "
        "two-tower Recall@100 | popularity Recall@100 | two-tower NDCG@10 | popularity NDCG@10 | "
        "ranker AUC | ranker NDCG | two-tower score alone: AUC / NDCG | two-tower NDCG@100 | gates |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, runs in rows:
        spec = SIZES[size]

        def metric(block: str, name: str, runs=runs):
            return med([((r.get("metrics") or {}).get(block) or {}).get(name) for r in runs])

        def base(name: str, runs=runs):
            return med(
                [
                    (((r.get("metrics") or {}).get("ranker_baselines") or {}).get("two_tower") or {}).get(
                        name
                    )
                    for r in runs
                ]
            )

        def gates(runs=runs) -> str:
            results = [((r.get("metrics") or {}).get("gates") or {}).get("passed") for r in runs]
            return ", ".join("passed" if g else "failed" if g is False else "n/a" for g in results)

        statuses = ",".join(sorted({r["status"] for r in runs}))
        lines.append(
            f"| {size} | {spec['n_users']:,} / {spec['n_videos']:,} / {spec['n_interactions']:,} | {len(runs)} | "
            f"{statuses} | {med([r['process_wall_s'] for r in runs]):.1f} | {med([r['peak_rss_mb'] for r in runs]):.0f} | "
            f"{metric('two_tower', 'recall@100'):.4f} | {metric('popularity', 'recall@100'):.4f} | "
            f"{metric('two_tower', 'ndcg@10'):.4f} | {metric('popularity', 'ndcg@10'):.4f} | "
            f"{metric('ranker', 'auc'):.4f} | {metric('ranker', 'ndcg'):.4f} | "
            f"{base('auc'):.4f} / {base('ndcg'):.4f} | "
            f"{metric('two_tower', 'ndcg@100'):.4f} | {gates(runs)} |"
        )
    lines += ["", f"Machine: {machine_text}.", f"Config overrides: {config or 'none (defaults)'}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
