"""Stage 4 (after the gates passed): refit the candidate sources and the two-tower on all data.

The evaluated models were fitted on the training split (the sources) and its fit window (the two-tower), so
they do not know the held-out interactions, which are every user's latest ones under a time split. Before
deploying, the item-item, recent-activity and popularity sources are fitted again on train + held-out pairs
(`models/sources/{version}/sources.npz`), and the two-tower is retrained on them with the evaluated
configuration, replacing the version's two-tower files (embeddings, serving catalogue with all-data
popularity, the users' watched sets); when the served list is another single source's order (e.g. EASE
alone), the two-tower is not refit (it only adds candidates there) and only the catalogue and watched sets
are rewritten. The ranker is kept: it scores per-source features, which the refit
sources produce the same way. `config.sources.refit = false` deploys the evaluated models instead.

Input: {"preprocessing", "two_tower", "ranker", "evaluation"}. Output: {"version", "two_tower", "sources",
"served"}. A failure here fails the run before deployment: production is unchanged.
"""

from __future__ import annotations

import time
from typing import Any

import polars as pl

from recsys import artifacts as paths
from recsys.config import Settings
from recsys.data import schema as s
from recsys.data.preprocessing import user_features, user_history
from recsys.data.split import ORDER
from recsys.errors import ValidationError
from recsys.ids import check_id
from recsys.pipeline_config import PipelineConfig
from recsys.ranking.candidates import RANKED, SOURCES
from recsys.sources.fit import fit_sources, source_settings
from recsys.stages.two_tower import export_tables, load_inputs, train_and_export, window_vocabularies
from recsys.storage import put_bytes

SOURCES_NAME = "sources.npz"
TWO_TOWER_ORDERS = (RANKED, "two_tower")  # served choices whose order reads the two-tower's scores
PAIR_COLUMNS = (s.USER_ID, s.VIDEO_ID, s.WEIGHT, "first_ts", "last_ts", ORDER)


def all_pairs(train: pl.DataFrame, test: pl.DataFrame) -> pl.DataFrame:
    """Train and held-out positive pairs together (held-out columns a pre-window run lacks become null)."""
    cols = [c for c in PAIR_COLUMNS if c in train.columns]
    test = test.with_columns([pl.lit(None, train.schema[c]).alias(c) for c in cols if c not in test.columns])
    return pl.concat([train.select(cols), test.select(cols).cast(train.select(cols).schema)])


def run(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Refit on all data and write the served sources (see the module docstring)."""
    started = time.perf_counter()
    pre, tt, ev = event["preprocessing"], event["two_tower"], event["evaluation"]
    version = check_id(pre["version"], "version")
    if (ev.get("gates") or {}).get("passed") is not True:
        raise ValidationError(
            f"version {version!r} did not pass the evaluation gates", hint="only gated versions are refit"
        )
    served = (ev.get("gates") or {}).get("served") or (ev.get("metrics") or {}).get("served", {}).get(
        "choice"
    )
    if served not in (RANKED, *SOURCES):
        served = RANKED
    config = PipelineConfig.model_validate(pre["config"])
    has_ts = (pre.get("stats") or {}).get("time_source", "timestamp") == "timestamp"
    data = load_inputs(
        pre, settings, "train_interactions", "test_interactions", "seen", "video_catalog", "vocabularies"
    )
    catalog: pl.DataFrame = data["video_catalog"].sort(s.VIDEO_ID)
    ids = catalog[s.VIDEO_ID].to_list()
    refit = config.sources.refit
    pairs = (
        all_pairs(data["train_interactions"], data["test_interactions"])
        if refit
        else data["train_interactions"]
    )
    fitted = fit_sources(pairs, ids, config.sources, has_ts)
    fitted.info.update(
        {
            "served": served,
            "candidates": source_settings(config.sources).to_dict(),
            "window": "all" if refit else "train",
        }
    )
    two_tower = tt
    if refit:
        test_keys = data["test_interactions"].select(s.USER_ID, s.VIDEO_ID)
        seen = pl.concat([data["seen"].select(s.USER_ID, s.VIDEO_ID), test_keys]).unique()
        counts = pairs.group_by(s.VIDEO_ID).agg(pl.len().alias("_n"))
        refit_catalog = (
            catalog.join(counts, on=s.VIDEO_ID, how="left")
            .with_columns(
                pl.col("_n").fill_null(0).cast(pl.Int64).alias(s.INTERACTION_COUNT),
                pl.Series(s.POPULARITY, fitted.popularity),
                pl.Series(s.TRENDING, fitted.trending),
            )
            .drop("_n")
        )
        last = pairs["last_ts"].max() if "last_ts" in pairs.columns else None
        reference_ts = int(last) if (has_ts and last is not None) else int(pre.get("reference_ts") or 0)
        refit_users = user_features(pairs, refit_catalog, has_ts)
    if refit and served not in TWO_TOWER_ORDERS:
        # The served list is one other source's order: the fit window's two-tower only adds candidates there,
        # so it is kept (no second TensorFlow fit); the catalogue and watched sets are refit all the same.
        tables = export_tables(settings, version, refit_catalog, user_history(pairs, seen, refit_users))
        two_tower = {**tt, "artifacts": {**tt["artifacts"], **tables},
                     "train": {**tt.get("train", {}), "refit": "kept: the served list does not use it"}}  # fmt: skip
    elif refit:
        two_tower = train_and_export(
            settings,
            version,
            config,
            pairs,
            refit_catalog,
            refit_users,
            window_vocabularies(pairs, data["vocabularies"]),
            reference_ts,
            seen,
            job_id=pre.get("job_id"),
            window="all",
        )
    bucket = settings.names.bucket("models")
    key = put_bytes(
        settings,
        bucket,
        paths.sources_key(version, SOURCES_NAME),
        fitted.to_bytes(),
        "application/octet-stream",
    )
    return {
        "version": version,
        "two_tower": two_tower,
        "sources": {"key": key, "models_bucket": bucket, "info": fitted.info},
        "served": served,
        "train": {"refit": refit, "pairs": pairs.height, "seconds": round(time.perf_counter() - started, 3)},
    }
