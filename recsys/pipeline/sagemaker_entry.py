"""The training container's entry point: `python -m recsys.pipeline.sagemaker_entry [STAGE | train]`.

SageMaker starts the image with the argument `train`; the stage then comes from the hyperparameters.
Reads `/opt/ml/input/config/hyperparameters.json` (`stage`, `env`, `input_s3`, `output_s3`, `failure_s3`),
runs `recsys.stages.<stage>.run(input, settings)` and writes its output JSON to `output_s3`. On failure it
writes `/opt/ml/output/failure` (SageMaker shows it as the job's FailureReason) and `failure_s3`, and exits 1.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys.config import load_settings
from recsys.errors import ValidationError
from recsys.stages.table import STAGES, Stage
from recsys.storage import get_json, put_json

if TYPE_CHECKING:
    from recsys.config import Settings

DEFAULT_BASE = Path("/opt/ml")
FAILURE_MAX_CHARS = 1024


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValidationError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def run_job(
    base: Path,
    settings: Settings | None = None,
    stage: str | None = None,
    stages: Mapping[str, Stage] | None = None,
) -> dict[str, Any]:
    """Run the job described under `base` (the /opt/ml directory); returns the stage output."""
    stages = dict(stages or {name: s for name, s in STAGES.items() if s.training_job})
    params = json.loads((base / "input" / "config" / "hyperparameters.json").read_text(encoding="utf-8"))
    if settings is None:
        settings = load_settings(params.get("env") or None)
    try:
        chosen = params.get("stage") if stage in (None, "train") else stage
        if params.get("stage") and chosen != params["stage"]:
            raise ValidationError(
                f"stage argument {stage!r} differs from the hyperparameter {params['stage']!r}"
            )
        if chosen not in stages:
            raise ValidationError(f"unknown training stage {chosen!r}", hint=f"one of {sorted(stages)}")
        event = get_json(settings, *_split_s3(params["input_s3"]))
        output = stages[chosen].run(event, settings)
        put_json(settings, *_split_s3(params["output_s3"]), output)
        return output
    except Exception as exc:
        failure = {
            "errorType": type(exc).__name__,
            "errorMessage": getattr(exc, "message", None) or str(exc),
            "stackTrace": traceback.format_tb(exc.__traceback__)[-5:],
        }
        out_dir = base / "output"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "failure").write_text(
            f"{failure['errorType']}: {failure['errorMessage']}"[:FAILURE_MAX_CHARS], encoding="utf-8"
        )
        if params.get("failure_s3"):
            try:
                put_json(settings, *_split_s3(params["failure_s3"]), failure)
            except Exception:  # the failure file above still reaches SageMaker
                traceback.print_exc()
        raise


def main(argv: list[str] | None = None) -> int:
    """Console entry: exit 0 on success, 1 on failure (after writing the failure files)."""
    argv = sys.argv[1:] if argv is None else argv
    base = Path(os.environ.get("SM_BASE_DIR", str(DEFAULT_BASE)))
    try:
        run_job(base, stage=argv[0] if argv else None)
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
