"""`recsys recommend` and `recsys cache fill` through Typer's CliRunner against the local stack."""

from __future__ import annotations

import json

import polars as pl
from typer.testing import CliRunner

from recsys.cli.main import app

runner = CliRunner()


def test_recommend_all_writes_k_unwatched_items_per_user(service, tiny_world, tmp_path):
    out = tmp_path / "recs.parquet"
    result = runner.invoke(app, ["recommend", "--env", "local", "--all", "--k", "6", "--output", str(out),
                                 "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["data"]
    assert summary["users"] == len(tiny_world.user_ids)
    df = pl.read_parquet(out)
    assert df.height == 6 * len(tiny_world.user_ids)
    per_user = df.group_by("user_id").agg(pl.col("video_id").n_unique().alias("n"))
    assert per_user["n"].to_list() == [6] * len(tiny_world.user_ids)
    for user, watched in tiny_world.watched.items():
        assert not set(df.filter(pl.col("user_id") == user)["video_id"].to_list()) & set(watched)


def test_recommend_one_user_csv_and_json(service, tiny_world, tmp_path):
    result = runner.invoke(app, ["recommend", "--user", tiny_world.user_ids[9], "--k", "3", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["data"]
    assert [r["rank"] for r in rows] == [1, 2, 3]
    out = tmp_path / "one.csv"
    result = runner.invoke(app, ["recommend", "--user", "42", "--k", "2", "--category", "music",
                                 "--output", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert pl.read_csv(out)["category"].to_list() == ["music", "music"]


def test_recommend_usage_errors(service, tmp_path):
    result = runner.invoke(app, ["recommend", "--k", "3", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "usage"
    result = runner.invoke(app, ["recommend", "--all", "--output", str(tmp_path / "x.txt"), "--json"])
    assert result.exit_code == 3
    result = runner.invoke(app, ["recommend", "--users", str(tmp_path / "missing.txt"), "--json"])
    assert result.exit_code == 3 and "does not exist" in json.loads(result.stdout)["error"]["message"]


def test_cache_fill_then_cached(service, tiny_world, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text(f"{tiny_world.user_ids[10]}\n# a comment\n{tiny_world.user_ids[11]}\n")
    result = runner.invoke(app, ["cache", "fill", "--users", str(users), "--k", "4", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"]["users"] == 2
    cached = service.cached(tiny_world.user_ids[11])
    assert len(cached["items"]) == 4 and cached["model_version"] == tiny_world.version


def test_cache_bundle_builds_a_numpy_only_bundle(service, tiny_world, local_stack):
    from recsys.serving.bundle import bundle_key, decode_bundle
    from recsys.storage import get_bytes_if_exists

    result = runner.invoke(app, ["cache", "bundle", "--version", tiny_world.version, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"]["key"] == bundle_key(tiny_world.version)
    raw = get_bytes_if_exists(local_stack, local_stack.names.bucket("models"), bundle_key(tiny_world.version))
    arrays = decode_bundle(raw)
    assert sorted(arrays["video_ids"].tolist()) == sorted(tiny_world.video_ids)
    result = runner.invoke(app, ["cache", "bundle", "--version", "v-does-not-exist", "--json"])
    assert result.exit_code == 4 and json.loads(result.stdout)["error"]["code"] == "not_found"
