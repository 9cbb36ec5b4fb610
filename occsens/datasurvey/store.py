"""The survey's store: one Parquet file per shard of images, and a manifest that says what they hold.

A store is a folder::

    _manifest.json        settings, model digest, occsens version, class names, windows, shard list
    shard-00000.parquet   images 0 .. shard_size-1, one row per image
    shard-00001.parquet   ...
    _report.html          the data-set report (written by ``occsens survey``)

Files whose names start with ``_`` are the store's own; pyarrow (and so pandas, polars and DuckDB) skip
them when reading the folder, so ``pandas.read_parquet(folder)`` gives one row per image. A shard and
the manifest that lists it are written together (``occsens.files.write_files``: temporary files, then
renames), so the manifest never lists a shard that is not whole on disk, and a killed survey leaves
the finished shards and a manifest that names exactly them. Nothing in the files depends on when or
where they were written: the same survey gives the same bytes.

Columns, per image (R x C windows, flattened row by row; K classes):

* ``index`` (int64): the image's position in what was surveyed (the CIFAR-10 test index for CIFAR-10);
* ``name`` (string), ``label`` (int64, null where unknown);
* ``clean_class`` (int64), ``clean_prob`` (float32): the model's prediction on the unoccluded image;
* ``probs`` (K float32): the clean probabilities (the scores ``output`` names);
* ``drop`` (R*C float32): clean minus occluded probability of the clean class at each window;
* ``class_map`` (R*C int32): the most probable class at each window;
* ``notebook_drop``, ``notebook_class_map``: the same under the notebook's square geometry, when asked;
* ``thumbnail`` (binary): the image as a PNG of at most ``THUMBNAIL`` pixels a side, for the report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from occsens.errors import OcclusionError
from occsens.files import read_json, write_files

MANIFEST = "_manifest.json"
REPORT = "_report.html"
CHECKS = "_checks.json"  # the sanity checks over some of the survey's images (``checks.py``)
FORMAT = "occsens-survey"
FORMAT_VERSION = 1
THUMBNAIL = 32  # the report draws examples at 32-64 px; larger images are shrunk to this for the store
# A manifest lists settings and one line per shard: 10,000 shards of 200 bytes is 2 MB; 64 MB is far past it.
MAX_MANIFEST_BYTES = 64 << 20
# Parquet's zstd at its default level: shards of the shipped model's maps are ~2x smaller than snappy's.
COMPRESSION = "zstd"


def shard_name(i: int) -> str:
    return f"shard-{i:05d}.parquet"


@dataclass(frozen=True)
class Shard:
    """One finished shard as the manifest lists it."""

    index: int
    first: int  # position of its first image
    count: int
    file: str
    sha256: str  # of the Parquet file's bytes
    images_sha256: str  # of the images it occluded (float32), so a resume can tell the data changed


def _require_pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise OcclusionError(
            "a survey writes Parquet files with pyarrow, an optional dependency: "
            'pip install "occsens[survey]"'
        ) from None
    return pa, pq


def shard_bytes(columns: dict[str, Any], num_windows: int, num_classes: int, notebook_windows: int) -> bytes:
    """One shard's rows as Parquet bytes. ``columns``: numpy arrays and lists, one entry per image."""
    pa, pq = _require_pyarrow()

    def fixed(values: np.ndarray, width: int, kind: Any) -> Any:
        flat = pa.array(np.ascontiguousarray(values).reshape(-1), type=kind)
        return pa.FixedSizeListArray.from_arrays(flat, width)

    arrays = {
        "index": pa.array(columns["index"], type=pa.int64()),
        "name": pa.array(columns["name"], type=pa.string()),
        "label": pa.array(columns["label"], type=pa.int64()),
        "clean_class": pa.array(columns["clean_class"], type=pa.int64()),
        "clean_prob": pa.array(columns["clean_prob"], type=pa.float32()),
        "probs": fixed(columns["probs"], num_classes, pa.float32()),
        "drop": fixed(columns["drop"], num_windows, pa.float32()),
        "class_map": fixed(columns["class_map"], num_windows, pa.int32()),
    }
    if notebook_windows:
        arrays["notebook_drop"] = fixed(columns["notebook_drop"], notebook_windows, pa.float32())
        arrays["notebook_class_map"] = fixed(columns["notebook_class_map"], notebook_windows, pa.int32())
    arrays["thumbnail"] = pa.array(columns["thumbnail"], type=pa.binary())
    table = pa.table(arrays)
    out = io.BytesIO()
    pq.write_table(table, out, compression=COMPRESSION)
    return out.getvalue()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8")


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The store's manifest, or None when ``folder`` holds none; a damaged one is an error."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    manifest = read_json(path, MAX_MANIFEST_BYTES, "survey manifest", "a survey manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise OcclusionError(f"{str(path)!r} is not an occsens survey manifest (no format {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise OcclusionError(
            f"survey store {str(folder)!r} has format version {manifest.get('format_version')!r}; this "
            f"occsens reads version {FORMAT_VERSION}: survey again into a new folder"
        )
    return manifest


def finished_shards(folder: Path, manifest: dict[str, Any]) -> dict[int, Shard]:
    """The shards the manifest lists whose file is there with the listed bytes; the others are redone."""
    out: dict[int, Shard] = {}
    for entry in manifest.get("shards", []):
        shard = Shard(**entry)
        path = folder / shard.file
        if path.is_file() and digest(path.read_bytes()) == shard.sha256:
            out[shard.index] = shard
    return out


def write_shard(folder: Path, manifest: dict[str, Any], shard: Shard, data: bytes) -> dict[str, Any]:
    """Add ``shard`` to the store: its file and the manifest that lists it land together or not at all."""
    shards = [s for s in manifest["shards"] if s["index"] != shard.index] + [dataclasses.asdict(shard)]
    updated = dict(manifest, shards=sorted(shards, key=lambda s: s["index"]))
    write_files(folder, {shard.file: data, MANIFEST: manifest_bytes(updated)}, "the survey shard")
    return updated


def stale_files(folder: Path) -> list[Path]:
    """Files of an earlier survey in ``folder`` (what --overwrite removes): shards, manifest, checks and
    report."""
    if not folder.is_dir():
        return []
    names = {MANIFEST, REPORT, CHECKS}
    return sorted(
        p for p in folder.iterdir() if p.is_file() and (p.name in names or p.name.startswith("shard-"))
    )
