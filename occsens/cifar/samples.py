"""A hundred CIFAR-10 test images shipped inside the package, so occsens runs without a data directory.

What is embedded: the first 10 images of each class in the official CIFAR-10 test set (``test_batch``,
official order), 100 in all, stored sorted by their official test-set index in
``occsens/samples/cifar10_test_samples.npz`` (compressed, no pickle): ``images`` uint8 ``[100, 3, 32, 32]``,
``labels`` int64 ``[100]`` (0-9, names in ``data.CIFAR10_CLASSES``) and ``indices`` int64 ``[100]``
(positions in the official test set, 0..9999). The choice depends on nothing but the labels, so
anyone holding CIFAR-10 can rebuild and check it: ``build_embedded(data_dir, out_path)``;
``occsens/samples/README.md`` gives the command.

Images are named everywhere by their official test-set index: ``sample_by_index`` takes them from the
embedded set when it holds them and otherwise from the full test set in ``data_dir`` (or
``$OCCSENS_DATA_DIR``).
"""

from __future__ import annotations

import functools
import importlib.resources
import io
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from occsens.cifar import data
from occsens.errors import OcclusionError, integral, shown
from occsens.errors import path as as_path
from occsens.files import read_bounded

SAMPLES_FILE = "cifar10_test_samples.npz"
PER_CLASS = 10
TEST_SIZE = 10_000  # official test-set indices are 0..9999

# The default report's images, all embedded: the first cat (0), the first two ships (1, 2: the first images
# of the test set, and two views of one class), then the first airplane (3), frog (4), automobile (6),
# truck (11) and bird (25) in the official order.
DEFAULT_SAMPLES = (0, 1, 2, 3, 4, 6, 11, 25)

# The embedded file's arrays hold 100 * 3,072 pixel bytes and 2 * 800 bytes of labels and indices;
# deflate never grows data by more than a few bytes per block, so 1 MB is three times what it can be.
MAX_SAMPLES_BYTES = 1 << 20

# A fixed timestamp in the zip entries, so rebuilding the file from the same data gives the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Samples:
    """Test-set images by official index: uint8 ``images [N, 3, 32, 32]``, int64 ``labels``, ``indices``."""

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@functools.cache
def load_samples() -> Samples:
    """The embedded samples, read once from the package (arrays are read-only: they are shared)."""
    resource = importlib.resources.files("occsens").joinpath("samples").joinpath(SAMPLES_FILE)
    if not resource.is_file():
        raise OcclusionError(
            f"the embedded samples occsens/samples/{SAMPLES_FILE} are missing from this installation: "
            "reinstall occsens, or rebuild them with occsens.cifar.samples.build_embedded"
        )
    with importlib.resources.as_file(resource) as file:
        raw = read_bounded(file, MAX_SAMPLES_BYTES, "embedded samples file", "100 CIFAR-10 images")
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        return Samples(
            images=_readonly(npz["images"]),
            labels=_readonly(npz["labels"]),
            indices=_readonly(npz["indices"]),
        )


def _as_indices(indices: int | Iterable[int]) -> np.ndarray:
    one = isinstance(indices, (str, bytes)) or integral(indices) is not None  # a str: one bad value
    items: list[object]
    try:
        items = [indices] if one or not isinstance(indices, Iterable) else list(indices)
    except TypeError:  # an iterable that cannot be iterated (a 0-dimensional float tensor)
        items = [indices]
    if not items:
        raise OcclusionError(
            f"no samples were given: pass CIFAR-10 test indices 0..{TEST_SIZE - 1}, e.g. {DEFAULT_SAMPLES}"
        )
    checked = []
    for item in items:
        value = integral(item)  # Python, numpy and 0-dimensional tensor integers; not bools
        if value is None:
            raise OcclusionError(
                f"sample {shown(item)} is not an integer: CIFAR-10 test indices are 0..{TEST_SIZE - 1}"
            )
        if not 0 <= value < TEST_SIZE:
            raise OcclusionError(
                f"sample {value} is out of range: CIFAR-10 test indices are 0..{TEST_SIZE - 1}"
            )
        checked.append(value)
    return np.asarray(checked, dtype=np.int64)


def _listed(values: np.ndarray, most: int = 5) -> str:
    shown = ", ".join(str(v) for v in values[:most])
    return shown + (f" and {len(values) - most} more" if len(values) > most else "")


def sample_by_index(indices: int | Iterable[int], data_dir: str | os.PathLike | None = None) -> Samples:
    """The test-set images at official ``indices`` (0..9999), in the order given, repeats kept.

    Embedded images are taken from the package; any other index needs the full test set, from ``data_dir``
    or, when that is None, ``$OCCSENS_DATA_DIR``. Raises ``OcclusionError`` for an index that is not an
    integer in 0..9999, or that is not embedded when neither is given, and for a ``data_dir`` (or
    ``$OCCSENS_DATA_DIR``) that is not a folder, even when every index is embedded: a typo in a path
    must not pass unnoticed.
    """
    wanted = _as_indices(indices)
    if data_dir is not None:
        as_path(data_dir, "data_dir")
    given = data_dir if data_dir is not None else (os.environ.get(data.ENV_VAR) or None)
    if given is not None and not Path(given).expanduser().is_dir():
        source = "data_dir" if data_dir is not None else f"${data.ENV_VAR}"
        raise OcclusionError(
            f"{source} {str(given)!r} is not a folder: give the folder holding {data.FOLDER}/, "
            "or leave it unset to use only the embedded samples"
        )
    embedded = load_samples()
    pos = np.minimum(np.searchsorted(embedded.indices, wanted), len(embedded) - 1)
    hit = embedded.indices[pos] == wanted
    images = np.empty((len(wanted), 3, 32, 32), dtype=np.uint8)
    labels = np.empty(len(wanted), dtype=np.int64)
    images[hit], labels[hit] = embedded.images[pos[hit]], embedded.labels[pos[hit]]
    if not hit.all():
        missing = np.unique(wanted[~hit])
        if data_dir is None and not os.environ.get(data.ENV_VAR):
            which = f"samples {_listed(missing)} are" if len(missing) > 1 else f"sample {missing[0]} is"
            raise OcclusionError(
                f"{which} not embedded (embedded: {len(embedded)} samples, {PER_CLASS} per class, "
                f"see occsens.cifar.samples) and no data_dir was given: "
                f"pass --data-dir DIR (the folder holding {data.FOLDER}/) or set {data.ENV_VAR}"
            )
        test = data.load_split(False, data_dir)
        images[~hit], labels[~hit] = test.images[wanted[~hit]], test.labels[wanted[~hit]]
    return Samples(images=images, labels=labels, indices=wanted)


def choose_indices(labels: np.ndarray, per_class: int = PER_CLASS) -> np.ndarray:
    """The first ``per_class`` positions of each class in ``labels``, sorted: the embedded test images."""
    chosen = [np.flatnonzero(labels == c)[:per_class] for c in range(data.NUM_CLASSES)]
    short = [c for c, idx in enumerate(chosen) if len(idx) < per_class]
    if short:
        raise OcclusionError(
            f"classes {short} have fewer than {per_class} test images: cannot embed {per_class} per class"
        )
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def build_embedded(data_dir: str | os.PathLike | None, out_path: str | os.PathLike) -> Path:
    """Write the embedded samples file from the CIFAR-10 test set in ``data_dir``; return its path.

    The same test set gives the same arrays and, with the same zlib, the same bytes (no timestamps).
    """
    test = data.load_split(False, data_dir)
    indices = choose_indices(test.labels)
    arrays = {
        "images": np.ascontiguousarray(test.images[indices]),
        "labels": test.labels[indices].astype(np.int64),
        "indices": indices,
    }
    out = Path(out_path)
    with zipfile.ZipFile(out, "w") as archive:
        for name, array in arrays.items():
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(entry, "w") as f:
                np.lib.format.write_array(f, array, allow_pickle=False)
    return out
