"""`recsys data import`: validation errors name the problem and nothing is written; good files import."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from recsys.aws import client
from recsys.cli.main import app
from recsys.data.datasets import load_dataset
from recsys.data.importer import import_dataset, parse_mapping, prepare
from recsys.errors import ConflictError, ValidationError

runner = CliRunner()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _keys(settings, name: str) -> list[str]:
    found = client("s3", settings).list_objects_v2(
        Bucket=settings.names.bucket("data"), Prefix=f"datasets/{name}/"
    )
    return [o["Key"] for o in found.get("Contents", [])]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("user_id,video_id\n", "has no rows"),
        ("", "is empty"),
        ("user,video_id\nu1,v1\n", "missing required column(s) user_id"),
        ("user_id,video_id,rating\nu1,v1,5\n", "unknown column(s) rating"),
        ("user_id,video_id\n1,v1\nabc,v2\n2,v3\n", "mixes numeric and non-numeric ids"),
        ("user_id,video_id\nu1,v1\n,v2\n", "empty user_id in row(s) 2"),
        ("user_id,video_id,watch_time\nu1,v1,12\nu2,v2,lots\n", "watch_time is not a number in row(s) 2"),
        ("user_id,video_id,watch_time\nu1,v1,-3\n", "negative watch_time in row(s) 1"),
        (
            "user_id,video_id,timestamp\nu1,v1,2024-01-01T00:00:00Z\nu2,v2,yesterday\n",
            "timestamp is not a time",
        ),
    ],
)
def test_bad_interaction_files(tmp_path, content, message):
    path = _write(tmp_path / "inter.csv", content)
    with pytest.raises(ValidationError) as err:
        prepare(path)
    assert message in err.value.message


def test_corrupt_parquet(tmp_path):
    good = tmp_path / "good.parquet"
    pl.DataFrame({"user_id": ["u1"] * 50, "video_id": ["v1"] * 50}).write_parquet(good)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ValidationError, match="not a readable Parquet file"):
        prepare(bad)


def test_normalisation_mapping_and_times(tmp_path):
    path = _write(
        tmp_path / "ratings.csv",
        "userId,movieId,rating,timestamp\n7,10,4.5,964982703\n007,11.0,3,964982224000\n8,10,1,2000-07-30T18:45:03Z\n",
    )
    tables = prepare(path, mapping=parse_mapping(["user_id=userId", "video_id=movieId", "weight=rating"]))
    df = tables["interactions"]
    assert df["user_id"].to_list() == ["7", "7", "8"]  # "7" and "007" are one id
    assert df["video_id"].to_list() == ["10", "11", "10"]
    assert df["timestamp"].to_list() == [964982703, 964982224, 964982703]  # seconds, ms and ISO
    assert df["weight"].to_list() == [4.5, 3.0, 1.0]
    with pytest.raises(ValidationError, match="unknown target column"):
        parse_mapping(["userid=x"])


def test_video_file_validation(tmp_path):
    inter = _write(tmp_path / "i.csv", "user_id,video_id\nu1,v1\n")
    videos = _write(tmp_path / "v.csv", "video_id,category,duration\nv1,music,10\nv1,news,20\n")
    with pytest.raises(ValidationError, match="duplicate video_id v1"):
        prepare(inter, videos=videos)


@pytest.mark.slow
def test_import_writes_dataset_and_nothing_on_error(local_stack, tmp_path):
    settings = local_stack
    inter = _write(tmp_path / "i.csv", "user_id,video_id,event_type\nu1,v1,view\nu2,v1,like\nu2,v2,view\n")
    bad_videos = _write(tmp_path / "v.csv", "video_id,duration\nv1,abc\n")
    with pytest.raises(ValidationError, match="duration is not a number"):
        import_dataset(settings, "bad-one", inter, videos=bad_videos)
    assert _keys(settings, "bad-one") == []

    result = import_dataset(settings, "tiny", inter)
    assert sorted(_keys(settings, "tiny")) == [
        "datasets/tiny/interactions.parquet",
        "datasets/tiny/manifest.json",
    ]
    assert result.manifest["stats"]["has_timestamps"] is False
    assert load_dataset(settings, "tiny").interactions.height == 3
    with pytest.raises(ConflictError):
        import_dataset(settings, "tiny", inter)
    # A failed overwrite leaves the old dataset as it was.
    with pytest.raises(ValidationError):
        import_dataset(settings, "tiny", inter, videos=bad_videos, overwrite=True)
    assert load_dataset(settings, "tiny").interactions.height == 3


@pytest.mark.slow
def test_cli_import_json_and_error(local_stack, tmp_path):
    inter = _write(tmp_path / "events.csv", "user_id,video_id,extra\nu1,v1,x\nu2,v2,y\n")
    res = runner.invoke(app, ["data", "import", "-i", str(inter), "--json"])
    assert res.exit_code == 3
    err = json.loads(res.stdout)["error"]
    assert "unknown column(s) extra" in err["message"] and "--ignore-unknown" in err["hint"]
    res = runner.invoke(app, ["data", "import", "-i", str(inter), "--ignore-unknown", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)["data"]
    assert data["name"] == "events" and data["files"]["interactions"]["rows"] == 2
    res = runner.invoke(app, ["data", "list", "--json"])
    assert "events" in [d["name"] for d in json.loads(res.stdout)["data"]]


def test_cli_generate_writes_importable_files(tmp_path):
    res = runner.invoke(
        app,
        [
            "data",
            "generate",
            "--out",
            str(tmp_path),
            "--users",
            "50",
            "--videos",
            "30",
            "--interactions",
            "400",
            "--format",
            "parquet",
            "--no-timestamps",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    files = json.loads(res.stdout)["data"]
    assert files["interactions"]["rows"] == 400
    tables = prepare(Path(files["interactions"]["path"]), videos=Path(files["videos"]["path"]))
    assert "timestamp" not in tables["interactions"].columns and tables["videos"].height == 30


def test_parquet_ids_of_numeric_types(tmp_path):
    path = tmp_path / "i.parquet"
    pl.DataFrame({"user_id": [1, 2], "video_id": [3.0, 4.0], "timestamp": [1.7e9, 1.7e9]}).write_parquet(path)
    df = prepare(path)["interactions"]
    assert df["user_id"].to_list() == ["1", "2"] and df["video_id"].to_list() == ["3", "4"]
    pl.DataFrame({"user_id": [1, 2], "video_id": [3.5, 4.0]}).write_parquet(path)
    with pytest.raises(ValidationError, match="non-integer numbers in row"):
        prepare(path)
