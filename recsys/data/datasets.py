"""Imported datasets on S3: s3://{data}/datasets/{name}/ with interactions.parquet, optional
videos.parquet / users.parquet, and manifest.json (written last: a dataset without a manifest does not exist)."""

from __future__ import annotations

from recsys.config import Settings
from recsys.data.synthetic import Dataset
from recsys.errors import NotFoundError
from recsys.ids import check_id
from recsys.storage import get_json, get_parquet

MANIFEST = "manifest.json"


def dataset_prefix(name: str) -> str:
    """S3 prefix of dataset `name` in the data bucket."""
    return f"datasets/{check_id(name, 'dataset name')}/"


def load_manifest(settings: Settings, name: str) -> dict:
    """The dataset's manifest, or NotFoundError when it was never (fully) imported."""
    try:
        return get_json(settings, settings.names.bucket("data"), dataset_prefix(name) + MANIFEST)
    except NotFoundError:
        raise NotFoundError(
            f"dataset {name!r} does not exist",
            hint="import it: recsys data import --interactions FILE --name NAME",
        ) from None


def load_dataset(settings: Settings, name: str) -> Dataset:
    """Read an imported dataset's tables."""
    manifest = load_manifest(settings, name)
    bucket = settings.names.bucket("data")
    files = manifest["files"]
    tables = {t: get_parquet(settings, bucket, f["key"]) for t, f in files.items()}
    return Dataset(
        interactions=tables["interactions"], videos=tables.get("videos"), users=tables.get("users")
    )
