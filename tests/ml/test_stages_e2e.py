"""End-to-end: the ML stages against the local stack on a tiny synthetic run (seed paths, baseline present)."""

from __future__ import annotations

import io
import json

import numpy as np
import polars as pl
import pytest

from recsys import artifacts
from recsys.aws import client
from recsys.ranking.candidates import CANDIDATE_FEATURES, RANKED, SOURCES
from recsys.stages import evaluation, features_export, preprocessing, ranker, refit, two_tower

pytestmark = pytest.mark.slow

TINY = {"kind": "synthetic", "n_users": 300, "n_videos": 150, "n_interactions": 4000, "seed": 5}
FAST = {
    "two_tower": {"epochs": 3, "temperature_candidates": [0.05, 0.1, 0.3]},  # selection is opt-in
    "ranker": {"iterations": 40, "depth": 4},
    "gates": {"min_ndcg_lift_over_popularity": -1.0},  # orchestration, not quality: the refit must run
}


def _keys(s3, bucket: str, prefix: str) -> set[str]:
    found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"].removeprefix(prefix) for o in found}


@pytest.fixture(scope="module")
def pipeline_run(local_stack):
    settings = local_stack
    pre = preprocessing.run({"source": TINY, "config": FAST}, settings)
    tt = two_tower.run(pre, settings)
    rk = ranker.run({**pre, "two_tower": tt}, settings)
    feats = features_export.run(pre, settings)
    ev = evaluation.run({"preprocessing": pre, "two_tower": tt, "ranker": rk}, settings)
    fit = refit.run({"preprocessing": pre, "two_tower": tt, "ranker": rk, "evaluation": ev}, settings)
    json.dumps([pre, tt, rk, feats, ev, fit])  # every stage output is JSON (Step Functions payloads)
    return settings, pre, tt, rk, feats, ev, fit


def test_artifacts_at_the_reference_paths(pipeline_run):
    settings, pre, tt, rk, _feats, _ev, _fit = pipeline_run
    s3 = client("s3", settings)
    pre_keys = _keys(s3, settings.names.bucket("artifacts"), artifacts.preprocessing_prefix(pre["job_id"]))
    assert {"vocabularies.json", "video_catalog.parquet", "ranker_train.parquet"} <= pre_keys
    version = pre["version"]
    assert tt["version"] == rk["version"] == version
    models = settings.names.bucket("models")
    assert {
        "video_embeddings.npz",
        "user_embeddings.npz",
        "model_config.json",
        "vocabularies.json",
        "serving_catalog.parquet",
        "user_history.parquet",
    } <= _keys(s3, models, artifacts.two_tower_prefix(version))
    assert {"ranker_model.cbm", "ranker_model.json", "ranker_features.json"} <= _keys(
        s3, models, artifacts.ranker_prefix(version)
    )
    body = s3.get_object(Bucket=models, Key=artifacts.two_tower_key(version, "video_embeddings.npz"))[
        "Body"
    ].read()
    with np.load(io.BytesIO(body), allow_pickle=False) as npz:
        ids, emb = npz[artifacts.NPZ_IDS_VIDEO], npz[artifacts.NPZ_EMBEDDINGS]
    # Every catalogue video has an embedding, including videos nobody watched.
    assert emb.dtype == np.float32 and emb.shape == (TINY["n_videos"], artifacts.EMBEDDING_DIM)
    assert len(set(ids.tolist())) == TINY["n_videos"]
    feats = json.loads(
        s3.get_object(Bucket=models, Key=artifacts.ranker_key(version, "ranker_features.json"))["Body"].read()
    )
    assert feats["features"] == CANDIDATE_FEATURES
    assert rk["train"]["parity_max_abs_diff"] <= 1e-5


def test_serving_tables_have_the_contract_columns(pipeline_run):
    settings, _pre, tt, _rk, _feats, _ev, _fit = pipeline_run
    s3 = client("s3", settings)
    models = settings.names.bucket("models")

    def read(name: str) -> pl.DataFrame:
        key = tt["artifacts"][name]
        return pl.read_parquet(io.BytesIO(s3.get_object(Bucket=models, Key=key)["Body"].read()))

    catalog = read("serving_catalog")
    assert catalog.schema == pl.Schema(
        {
            "video_id": pl.String,
            "category": pl.String,
            "popularity": pl.Float64,
            "trending": pl.Float64,
            "duration": pl.Float64,
            "upload_ts": pl.Int64,
        }
    )
    assert catalog["popularity"].is_between(0, 1).all() and catalog["trending"].is_between(0, 1).all()
    history = read("user_history")
    assert history.schema == pl.Schema(
        {
            "user_id": pl.String,
            "watched": pl.List(pl.String),
            "top_categories": pl.List(pl.String),
        }
    )


def test_metrics_include_the_popularity_baseline_and_gates(pipeline_run):
    settings, _pre, _tt, _rk, _feats, ev, _fit = pipeline_run
    metrics = ev["metrics"]
    for block in [metrics["final"], metrics["popularity"], *metrics["sources"].values()]:
        assert {"ndcg@10", "recall@10", "recall@100", "hit_rate@10", "map@10"} <= set(block)
    assert set(metrics["sources"]) == set(SOURCES)
    assert metrics["served"]["choice"] in (RANKED, *SOURCES)
    assert 0.0 <= metrics["ranker"]["auc"] <= 1.0
    names = {c["name"] for c in ev["gates"]["checks"]}
    assert names == {"served_ndcg_at_10_vs_popularity"}  # the default gate; the reference ones are opt-in
    s3 = client("s3", settings)
    bucket = settings.names.bucket("artifacts")
    stored = json.loads(s3.get_object(Bucket=bucket, Key=ev["metrics_key"])["Body"].read())
    assert stored["popularity"] == metrics["popularity"]
    html = s3.get_object(Bucket=bucket, Key=ev["report_key"])["Body"].read().decode()
    assert "<html" in html and html.count("data:image/png;base64,") == 2
    assert "Segments" in html and "new users" in html and "long-tail items" in html


def test_offline_feature_store_matches_glue_columns(pipeline_run):
    settings, _pre, _tt, _rk, feats, _ev, _fit = pipeline_run
    from recsys.catalog import load_catalog

    s3 = client("s3", settings)
    exported = ("user_features", "video_features")  # the raw-events table is the stream's, not this stage's
    for table, glue in ((t, g) for t, g in load_catalog()["glue"]["tables"].items() if t in exported):
        out = feats["tables"][table]
        assert out["key"].startswith(glue["prefix"])
        df = pl.read_parquet(io.BytesIO(s3.get_object(Bucket=out["bucket"], Key=out["key"])["Body"].read()))
        assert df.columns == [c["name"] for c in glue["columns"]]
        assert df.height == out["rows"] > 0


@pytest.mark.parametrize("timestamps", [True, False], ids=["with-timestamps", "without-timestamps"])
def test_imported_csv_trains_and_evaluates(local_stack, tmp_path, timestamps):
    from recsys.data.importer import import_dataset
    from recsys.data.synthetic import SyntheticSpec, generate

    settings = local_stack
    data = generate(SyntheticSpec(n_users=250, n_videos=120, n_interactions=3500, seed=8))
    inter = data.interactions if timestamps else data.interactions.drop("timestamp")
    inter.write_csv(tmp_path / "interactions.csv")
    data.videos.write_csv(tmp_path / "videos.csv")
    name = f"csv-{'ts' if timestamps else 'nots'}"
    import_dataset(settings, name, tmp_path / "interactions.csv", videos=tmp_path / "videos.csv")

    pre = preprocessing.run({"source": {"kind": "dataset", "name": name}, "config": FAST}, settings)
    assert pre["stats"]["time_source"] == ("timestamp" if timestamps else "file_order")
    tt = two_tower.run(pre, settings)
    rk = ranker.run({**pre, "two_tower": tt}, settings)
    ev = evaluation.run({"preprocessing": pre, "two_tower": tt, "ranker": rk}, settings)
    assert ev["metrics"]["users_evaluated"] > 0
    assert ev["metrics"]["two_tower"]["recall@100"] > 0 and ev["metrics"]["popularity"]["recall@100"] > 0


def test_two_tower_temperature_is_chosen_on_validation(pipeline_run):
    _settings, _pre, tt, _rk, _feats, _ev, _fit = pipeline_run
    selection = tt["train"]["temperature_selection"]
    assert selection is not None and selection["validation_users"] >= 20
    scores = selection["recall_at_100"]
    assert set(scores) == {"0.05", "0.1", "0.3"}
    assert tt["train"]["temperature"] == selection["temperature"]
    assert scores[str(selection["temperature"])] == max(scores.values())


def test_refit_knows_the_held_out_interactions(pipeline_run):
    """The deployed version is refit on all data: a user's held-out (latest) videos are in their watched set."""
    settings, pre, tt, _rk, _feats, _ev, fit = pipeline_run
    assert fit["two_tower"]["train"]["window"] == "all" and tt["train"]["window"] == "fit"
    assert fit["two_tower"]["train"]["pairs"] > tt["train"]["pairs"]
    s3 = client("s3", settings)
    models = settings.names.bucket("models")
    history = pl.read_parquet(
        io.BytesIO(
            s3.get_object(Bucket=models, Key=fit["two_tower"]["artifacts"]["user_history"])["Body"].read()
        )
    )
    test = pl.read_parquet(
        io.BytesIO(
            s3.get_object(Bucket=pre["artifacts_bucket"], Key=pre["artifacts"]["test_interactions"])[
                "Body"
            ].read()
        )
    )
    watched = dict(zip(history["user_id"].to_list(), history["watched"].to_list(), strict=True))
    held_out = test.group_by("user_id").agg(pl.col("video_id")).rows()
    assert held_out and all(set(videos) <= set(watched[user]) for user, videos in held_out)
    assert fit["sources"]["info"]["window"] == "all"
    assert fit["sources"]["info"]["pairs"] == pre["stats"]["train_pairs"] + pre["stats"]["test_pairs"]


def test_refit_keeps_the_two_tower_when_another_source_alone_is_served(pipeline_run):
    """EASE (or another single source) served: no second TensorFlow fit, the watched sets still refit."""
    settings, pre, tt, rk, _feats, ev, _fit = pipeline_run
    served_alone = {**ev, "gates": {**ev["gates"], "served": "item_item"}}
    fit = refit.run(
        {"preprocessing": pre, "two_tower": tt, "ranker": rk, "evaluation": served_alone}, settings
    )
    assert fit["served"] == "item_item"
    assert fit["two_tower"]["train"]["window"] == "fit" and fit["two_tower"]["train"]["refit"].startswith(
        "kept"
    )
    assert fit["sources"]["info"]["window"] == "all"
    s3 = client("s3", settings)
    body = s3.get_object(
        Bucket=settings.names.bucket("models"), Key=fit["two_tower"]["artifacts"]["user_history"]
    )
    history = pl.read_parquet(io.BytesIO(body["Body"].read()))
    test = pl.read_parquet(io.BytesIO(s3.get_object(Bucket=pre["artifacts_bucket"],
                                                    Key=pre["artifacts"]["test_interactions"])["Body"].read()))  # fmt: skip
    watched = dict(zip(history["user_id"].to_list(), history["watched"].to_list(), strict=True))
    held_out = test.group_by("user_id").agg(pl.col("video_id")).rows()
    assert held_out and all(set(videos) <= set(watched[user]) for user, videos in held_out)
