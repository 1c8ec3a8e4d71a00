"""The serving bundle: one version's serving data as plain numpy arrays in one .npz file.

The pipeline writes Parquet (`serving_catalog.parquet`, `user_history.parquet`) and .npz embeddings.
Reading Parquet needs polars or pyarrow (over 170 MB each), too big for the serving Lambda's package,
so `build_bundle` turns a version's artifacts into `models/two_tower/{version}/serving_bundle.npz`
(numpy only, no pickle). It runs on the training side or wherever polars is installed; the model store
builds and uploads it on first load when it is missing and polars is importable.

Format version: every bundle records `{"format", "version"}` in its `meta` member. `BUNDLE_FORMAT` is the
format this code writes (bump it whenever the arrays or their meaning change); `READABLE_FORMATS` holds
the formats this code loads: the current one and any older one it still reads the same way. A bundle of
any other format (an older incompatible one, one written by newer code, or one that records no format) is
refused with a ValidationError naming the model version and the format: when serving loads it
(`load_bundle`), and before production changes when a version is promoted or rolled back
(`check_bundle`, called by `recsys.release.promote`). Rebuilding the bundle from the version's artifacts
(`recsys cache bundle --version V`) writes the current format.

Arrays (row i of the catalogue arrays is video `video_ids[i]`; embeddings aligned with it):
    video_ids, video_embeddings, category, popularity, trending, duration, upload_ts,
    user_ids, user_embeddings,
    history_offsets / history_video_idx (CSR: watched video rows of user j, oldest first),
    topcat_offsets / topcat_values (CSR: preferred categories of user j, most preferred first),
    neighbour_offsets / neighbour_idx / neighbour_weight (format 2: CSR item-item table, the top-N neighbours
    of row i, from `models/sources/{version}/sources.npz`; empty when the version has none),
    sources_meta (format 2: JSON text, the served choice and the candidate settings).

Format history: 1 = two-tower retrieval only; 2 = + the candidate sources (neighbour table, sources_meta).
"""

from __future__ import annotations

import io
import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys import artifacts
from recsys.aws import client
from recsys.errors import NotFoundError, ValidationError
from recsys.storage import get_bytes_if_exists

if TYPE_CHECKING:
    from recsys.config import Settings

log = logging.getLogger(__name__)

BUNDLE_NAME = "serving_bundle.npz"
BUNDLE_FORMAT = 2  # the format this code writes
READABLE_FORMATS = frozenset({2})  # the formats this code loads (see the module docstring)
CATALOG_NAME = "serving_catalog.parquet"
HISTORY_NAME = "user_history.parquet"
VIDEO_EMBEDDINGS_NAME = "video_embeddings.npz"
USER_EMBEDDINGS_NAME = "user_embeddings.npz"
BUNDLE_KEYS = (
    "video_ids", "video_embeddings", "category", "popularity", "trending", "duration", "upload_ts",
    "user_ids", "user_embeddings", "history_offsets", "history_video_idx", "topcat_offsets", "topcat_values",
    "neighbour_offsets", "neighbour_idx", "neighbour_weight", "sources_meta",
)  # fmt: skip
SOURCES_NAME = "sources.npz"


def bundle_key(version: str) -> str:
    """S3 key (models bucket) of a version's serving bundle."""
    return artifacts.two_tower_key(version, BUNDLE_NAME)


def _load_npz(data: bytes, ids_key: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        ids = np.asarray(npz[ids_key]).astype(str)
        emb = np.asarray(npz[artifacts.NPZ_EMBEDDINGS], dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != ids.shape[0]:
        raise ValidationError(f"embeddings of shape {emb.shape} do not match {ids.shape[0]} ids")
    return ids, emb


def _csr(lists: list[list[Any]], dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(x) for x in lists])
    flat = [v for x in lists for v in x]
    return offsets, np.asarray(flat, dtype=dtype)


def assemble_bundle(
    video_ids: np.ndarray,
    video_embeddings: np.ndarray,
    catalog: dict[str, list[Any]] | None,
    user_ids: np.ndarray | None = None,
    user_embeddings: np.ndarray | None = None,
    history: dict[str, list[Any]] | None = None,
    sources: dict[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Arrays of a bundle from in-memory artifacts (catalog/history as column dicts, e.g. `df.to_dict(as_series=False)`).

    `sources` holds the arrays of a version's sources.npz (video_ids, neighbour_offsets, neighbour_idx,
    neighbour_weight) and its `info`; None gives an empty neighbour table (serving uses the other sources).

    The catalogue's videos define the rows; a catalogue video without an embedding is dropped, and an
    embedded video missing from the catalogue gets category "unknown" and zero popularity.
    """
    emb_rows = {v: i for i, v in enumerate(video_ids.astype(str))}
    if catalog is None:
        catalog = {"video_id": list(video_ids.astype(str))}
    cat_ids = [str(v) for v in catalog["video_id"]]
    n_cat = len(cat_ids)

    def col(name: str, default: Any) -> list[Any]:
        values = catalog.get(name)
        return [default if v is None else v for v in values] if values is not None else [default] * n_cat

    cols = {
        "category": col("category", "unknown"),
        "popularity": col("popularity", 0.0),
        "trending": col("trending", 0.0),
        "duration": col("duration", 0.0),
        "upload_ts": col("upload_ts", 0),
    }
    keep = [i for i, v in enumerate(cat_ids) if v in emb_rows]
    ids = [cat_ids[i] for i in keep]
    seen = set(ids)
    extra = [v for v in video_ids.astype(str) if v not in seen]
    ids += extra
    out: dict[str, np.ndarray] = {
        "video_ids": np.asarray(ids, dtype=str),
        "video_embeddings": video_embeddings[[emb_rows[v] for v in ids]].astype(np.float32),
        "category": np.asarray(
            [str(cols["category"][i]) for i in keep] + ["unknown"] * len(extra), dtype=str
        ),
        "popularity": np.asarray([float(cols["popularity"][i]) for i in keep] + [0.0] * len(extra)),
        "trending": np.asarray([float(cols["trending"][i]) for i in keep] + [0.0] * len(extra)),
        "duration": np.asarray([float(cols["duration"][i]) for i in keep] + [0.0] * len(extra)),
        "upload_ts": np.asarray([int(cols["upload_ts"][i]) for i in keep] + [0] * len(extra), dtype=np.int64),
    }
    dim = out["video_embeddings"].shape[1]
    if user_ids is None or user_embeddings is None:
        user_ids, user_embeddings = np.asarray([], dtype=str), np.zeros((0, dim), dtype=np.float32)
    out["user_ids"] = user_ids.astype(str)
    out["user_embeddings"] = np.asarray(user_embeddings, dtype=np.float32).reshape(-1, dim)
    row_of = {v: i for i, v in enumerate(ids)}
    h_users: list[str] = []
    watched: list[list[int]] = []
    topcats: list[list[str]] = []
    if history is not None:
        for uid, w, tc in zip(
            history["user_id"],
            history.get("watched") or [],
            history.get("top_categories") or [],
            strict=False,
        ):
            h_users.append(str(uid))
            watched.append([row_of[str(v)] for v in (w or []) if str(v) in row_of])
            topcats.append([str(c) for c in (tc or [])])
    # History rows follow user_ids; users that only have history are appended with a zero embedding.
    u_index = {u: i for i, u in enumerate(out["user_ids"])}
    missing = [u for u in h_users if u not in u_index]
    if missing:
        out["user_ids"] = np.concatenate([out["user_ids"], np.asarray(missing, dtype=str)])
        out["user_embeddings"] = np.vstack(
            [out["user_embeddings"], np.zeros((len(missing), dim), np.float32)]
        )
        u_index = {u: i for i, u in enumerate(out["user_ids"])}
    per_user_w: list[list[int]] = [[] for _ in out["user_ids"]]
    per_user_c: list[list[str]] = [[] for _ in out["user_ids"]]
    for u, w, tc in zip(h_users, watched, topcats, strict=True):
        per_user_w[u_index[u]] = w
        per_user_c[u_index[u]] = tc
    out["history_offsets"], out["history_video_idx"] = _csr(per_user_w, np.int32)
    out["topcat_offsets"], out["topcat_values"] = _csr(per_user_c, str)
    out.update(_neighbours(sources, row_of, len(ids)))
    return out


def _neighbours(sources: dict[str, Any] | None, row_of: dict[str, int], n: int) -> dict[str, np.ndarray]:
    """The sources' neighbour table re-indexed to the bundle's rows (videos the bundle lacks dropped)."""
    meta = {} if sources is None else dict(sources.get("info") or {})
    if sources is None:
        offsets, idx, weight = np.zeros(n + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32)
    else:
        ids = [str(v) for v in sources["video_ids"]]
        to_row = np.asarray([row_of.get(v, -1) for v in ids], dtype=np.int64)
        src_off = np.asarray(sources["neighbour_offsets"], dtype=np.int64)
        owner = to_row[np.repeat(np.arange(len(ids)), np.diff(src_off))]
        target = to_row[np.asarray(sources["neighbour_idx"], dtype=np.int64)]
        weight = np.asarray(sources["neighbour_weight"], dtype=np.float32)
        keep = (owner >= 0) & (target >= 0)
        owner, target, weight = owner[keep], target[keep], weight[keep]
        order = np.argsort(owner, kind="stable")
        owner, idx, weight = owner[order], target[order].astype(np.int32), weight[order]
        offsets = np.zeros(n + 1, np.int64)
        offsets[1:] = np.cumsum(np.bincount(owner, minlength=n))
    return {
        "neighbour_offsets": offsets,
        "neighbour_idx": idx,
        "neighbour_weight": weight,
        "sources_meta": np.asarray(json.dumps(meta)),
    }


def build_bundle(settings: Settings, version: str) -> dict[str, np.ndarray]:
    """Read a version's artifacts from S3 (Parquet through polars) and assemble its bundle arrays."""
    bucket = settings.names.bucket("models")
    raw = get_bytes_if_exists(settings, bucket, artifacts.two_tower_key(version, VIDEO_EMBEDDINGS_NAME))
    if raw is None:
        raise NotFoundError(
            f"model version {version!r} has no {VIDEO_EMBEDDINGS_NAME}",
            hint="run the pipeline (recsys pipeline run) or promote a version that finished training",
        )
    video_ids, video_emb = _load_npz(raw, artifacts.NPZ_IDS_VIDEO)
    user_ids = user_emb = None
    raw = get_bytes_if_exists(settings, bucket, artifacts.two_tower_key(version, USER_EMBEDDINGS_NAME))
    if raw is not None:
        user_ids, user_emb = _load_npz(raw, artifacts.NPZ_IDS_USER)
    catalog = _read_parquet(settings, bucket, artifacts.two_tower_key(version, CATALOG_NAME))
    history = _read_parquet(settings, bucket, artifacts.two_tower_key(version, HISTORY_NAME))
    return assemble_bundle(
        video_ids, video_emb, catalog, user_ids, user_emb, history, _read_sources(settings, version)
    )


def _read_sources(settings: Settings, version: str) -> dict[str, Any] | None:
    raw = get_bytes_if_exists(
        settings, settings.names.bucket("models"), artifacts.sources_key(version, SOURCES_NAME)
    )
    if raw is None:
        return None
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        out: dict[str, Any] = {
            k: npz[k] for k in ("video_ids", "neighbour_offsets", "neighbour_idx", "neighbour_weight")
        }
        out["info"] = json.loads(str(npz["info"])) if "info" in npz.files else {}
    return out


def _read_parquet(settings: Settings, bucket: str, key: str) -> dict[str, list[Any]] | None:
    raw = get_bytes_if_exists(settings, bucket, key)
    if raw is None:
        return None
    import polars as pl  # training side / local only; the serving Lambda reads the bundle

    return pl.read_parquet(io.BytesIO(raw)).to_dict(as_series=False)


def encode_bundle(arrays: dict[str, np.ndarray], version: str) -> bytes:
    """The .npz bytes of a bundle (with its format and version recorded)."""
    buf = io.BytesIO()
    meta = np.asarray(json.dumps({"format": BUNDLE_FORMAT, "version": version}))
    np.savez(buf, meta=meta, **{k: arrays[k] for k in BUNDLE_KEYS})
    return buf.getvalue()


def _meta(npz: Any) -> dict[str, Any]:
    if "meta" not in npz.files:
        return {}
    try:
        meta = json.loads(str(npz["meta"]))
    except (ValueError, json.JSONDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _format_of(meta: dict[str, Any]) -> int | None:
    fmt = meta.get("format")
    return fmt if isinstance(fmt, int) and not isinstance(fmt, bool) else None


def bundle_format(data: bytes) -> int | None:
    """The format a bundle's .npz bytes record (None when they record none)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return _format_of(_meta(npz))
    except (ValueError, OSError) as exc:
        raise ValidationError(f"not a serving bundle: {exc}") from None


def require_readable(fmt: int | None, version: str) -> None:
    """Nothing when this code loads bundles of format `fmt`; else a ValidationError naming version and format."""
    if fmt in READABLE_FORMATS:
        return
    readable = ", ".join(str(f) for f in sorted(READABLE_FORMATS))
    if fmt is None:
        what = "records no format"
    elif fmt > BUNDLE_FORMAT:
        what = f"has format {fmt}, newer than this code's format {BUNDLE_FORMAT}"
    else:
        what = f"has format {fmt}, which this code no longer reads"
    raise ValidationError(
        f"the serving bundle of model version {version!r} {what} (readable formats: {readable})",
        hint=f"rebuild it from the version's artifacts with `recsys cache bundle --version {version}`, "
        "or deploy code that reads that format",
    )


def decode_bundle(data: bytes, version: str | None = None) -> dict[str, np.ndarray]:
    """The arrays of a bundle's .npz bytes (no pickle); a ValidationError for a format this code cannot load."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        meta = _meta(npz)
        fmt = _format_of(meta)
        version = version or str(meta.get("version", "?"))
        require_readable(fmt, version)
        missing = [k for k in BUNDLE_KEYS if k not in npz.files]
        if missing:
            raise ValidationError(
                f"the serving bundle of model version {version!r} (format {fmt}) lacks {', '.join(missing)}",
                hint=f"rebuild it with `recsys cache bundle --version {version}`",
            )
        return {k: npz[k] for k in BUNDLE_KEYS}


def check_bundle(settings: Settings, version: str) -> int | None:
    """The format of a version's uploaded serving bundle, after checking that this code can load it.

    None when the version has no bundle yet (the model store builds it on first load where polars is
    installed). A bundle of a format outside READABLE_FORMATS is a ValidationError naming the version and
    the format; `recsys.release.promote` calls this before it publishes anything or moves production.
    """
    raw = get_bytes_if_exists(settings, settings.names.bucket("models"), bundle_key(version))
    if raw is None:
        return None
    fmt = bundle_format(raw)
    require_readable(fmt, version)
    return fmt


def write_bundle(settings: Settings, version: str) -> str:
    """Build a version's serving bundle and upload it; returns its S3 key. Call after training/deployment."""
    arrays = build_bundle(settings, version)
    key = bundle_key(version)
    client("s3", settings).put_object(
        Bucket=settings.names.bucket("models"), Key=key, Body=encode_bundle(arrays, version)
    )
    return key


def load_bundle(settings: Settings, version: str) -> dict[str, np.ndarray]:
    """A version's bundle arrays: the uploaded bundle, else built from the artifacts (and uploaded)."""
    raw = get_bytes_if_exists(settings, settings.names.bucket("models"), bundle_key(version))
    if raw is not None:
        return decode_bundle(raw, version)
    try:
        import polars  # noqa: F401
    except ImportError:
        raise NotFoundError(
            f"model version {version!r} has no serving bundle and this package cannot read Parquet",
            hint=f"run `recsys cache bundle --version {version}` where polars is installed",
        ) from None
    arrays = build_bundle(settings, version)
    try:
        client("s3", settings).put_object(
            Bucket=settings.names.bucket("models"),
            Key=bundle_key(version),
            Body=encode_bundle(arrays, version),
        )
    except Exception as exc:  # best effort: the next cold start rebuilds it
        log.warning("could not upload the serving bundle of %s: %s", version, exc)
    return arrays
