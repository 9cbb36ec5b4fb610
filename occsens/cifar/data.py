"""Read CIFAR-10 in the official "python version" layout, without trusting pickle.

The official release (Krizhevsky 2009), the one torchvision downloads, is a folder
``cifar-10-batches-py/`` of pickled dicts: ``data_batch_1`` .. ``data_batch_5`` (10,000
training images each), ``test_batch`` (10,000) and ``batches.meta`` (class names).
Each batch holds ``data`` (uint8, N x 3072: the red plane, then green, then blue,
each 32x32 row-major) and ``labels`` (a list of ints 0-9).

Unpickling runs code named by the file. ``_SafeUnpickler`` only lets through the
globals a numpy array needs; anything else is refused before it is called.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from occsens.errors import OcclusionError, flag, one_of
from occsens.errors import path as as_path
from occsens.files import read_bounded

# The official label names (batches.meta), in label order.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
ENV_VAR = "OCCSENS_DATA_DIR"
IMAGES_PER_BATCH = 10_000
NUM_CLASSES = 10

# md5 of the official files, as torchvision's ``datasets.CIFAR10`` lists them.
OFFICIAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}

# The most bytes a batch file may have, per image: its 3,072 pixel bytes twice over (a batch re-saved by
# Python 3 at protocol 2 stores them as latin-1 text, UTF-8 encoded: bytes past 127 take two) plus 256
# for its label and file name (the official files: 3,104 bytes per image in all, 31,035,704 per batch).
_BATCH_BYTES_PER_IMAGE = 2 * 3 * 32 * 32 + 256
# Plus this much for the rest of a batch (its dict, its batch_label) and for batches.meta (ten names).
_FILE_SLACK_BYTES = 1 << 20


def _size_limit(name: str) -> int:
    """The most bytes the release's file ``name`` can have (read at call time: tests shrink batches)."""
    images = IMAGES_PER_BATCH if name != META_FILE else 0
    return images * _BATCH_BYTES_PER_IMAGE + _FILE_SLACK_BYTES


# The only globals a batch file may name: what numpy needs to rebuild an ndarray.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    # what numpy and Python 3 write when such a batch is re-saved at protocol 5 or 2
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Python 3 pickles bytes at protocol 2 as ``_codecs.encode(text, "latin1")``; allow only that."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused to load _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's signature
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def _unpickle(path: Path) -> object:
    raw = read_bounded(path, _size_limit(path.name), "data file", "a CIFAR-10 file")
    try:
        return _SafeUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("refused"):
            raise OcclusionError(
                f"data file {str(path)!r} is not a CIFAR-10 batch: it {str(exc)}, "
                "which the format never needs"
            ) from None
        raise OcclusionError(f"data file {str(path)!r} is truncated or corrupt ({exc})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as exc:
        raise OcclusionError(
            f"data file {str(path)!r} is truncated or corrupt ({type(exc).__name__})"
        ) from None


@dataclass(frozen=True)
class Split:
    """One CIFAR-10 split: uint8 images ``[N, 3, 32, 32]`` and int64 labels ``[N]``."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _read_batch(path: Path) -> Split:
    obj = _unpickle(path)
    if not isinstance(obj, dict):
        raise OcclusionError(f"data file {str(path)!r} holds a {type(obj).__name__}, expected a dict")
    data, labels = obj.get("data"), obj.get("labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise OcclusionError(f"data file {str(path)!r} lacks the 'data' array or the 'labels' list")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise OcclusionError(
            f"data file {str(path)!r}: 'data' is {data.dtype} {tuple(data.shape)}, expected uint8 (N, 3072)"
        )
    labels_arr = np.asarray(labels)
    if (
        labels_arr.ndim != 1
        or len(labels_arr) != len(data)
        or not np.issubdtype(labels_arr.dtype, np.integer)
    ):
        raise OcclusionError(
            f"data file {str(path)!r}: 'labels' must be {len(data)} integers, "
            f"got {labels_arr.shape} {labels_arr.dtype}"
        )
    if len(labels_arr) and (labels_arr.min() < 0 or labels_arr.max() >= NUM_CLASSES):
        raise OcclusionError(
            f"data file {str(path)!r}: labels range {labels_arr.min()}..{labels_arr.max()}, expected 0..9"
        )
    return Split(data.reshape(-1, 3, 32, 32), labels_arr.astype(np.int64))


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The ``cifar-10-batches-py`` folder from ``data_dir``, or ``$OCCSENS_DATA_DIR``.

    Either the folder that contains ``cifar-10-batches-py/`` (torchvision's ``root``)
    or that folder itself is accepted.
    """
    if data_dir is None:
        data_dir = os.environ.get(ENV_VAR)
        if not data_dir:
            raise OcclusionError(
                f"data_dir is not set: pass --data-dir DIR (the folder holding {FOLDER}/) or set {ENV_VAR}"
            )
    root = as_path(data_dir, "data_dir").expanduser()
    for candidate in (root / FOLDER, root):
        if (candidate / TEST_FILE).exists() or (candidate / META_FILE).exists():
            return candidate
    raise OcclusionError(
        f"data_dir {str(root)!r} holds no CIFAR-10: expected {FOLDER}/ with {TEST_FILE} and "
        f"data_batch_1..5 in it (use --download to fetch it where the internet is reachable)"
    )


def load_split(train: bool, data_dir: str | os.PathLike | None = None) -> Split:
    """The training (50,000) or test (10,000) split, checked for shape, labels and class balance."""
    train = flag(train, "train")
    folder = resolve_data_dir(data_dir)
    names = TRAIN_FILES if train else (TEST_FILE,)
    parts = []
    for name in names:
        path = folder / name
        if not path.exists():
            raise OcclusionError(f"data file {str(path)!r} is missing: CIFAR-10 needs {', '.join(names)}")
        part = _read_batch(path)
        if len(part) != IMAGES_PER_BATCH:
            raise OcclusionError(
                f"data file {str(path)!r} has {len(part)} images, expected {IMAGES_PER_BATCH}"
            )
        parts.append(part)
    split = Split(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))
    # 5,000 per class in training, 1,000 in test; read at call time so tests can shrink IMAGES_PER_BATCH.
    per_class = len(names) * IMAGES_PER_BATCH // NUM_CLASSES
    counts = np.bincount(split.labels, minlength=NUM_CLASSES)
    if len(split) != per_class * NUM_CLASSES or not np.all(counts == per_class):
        raise OcclusionError(
            f"{'training' if train else 'test'} split has {len(split)} images with class counts "
            f"{counts.tolist()}, expected {per_class} of each of the 10 classes"
        )
    return split


def class_names(data_dir: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The ten class names from ``batches.meta``."""
    path = resolve_data_dir(data_dir) / META_FILE
    obj = _unpickle(path)
    names = obj.get("label_names") if isinstance(obj, dict) else None
    if not isinstance(names, list) or len(names) != NUM_CLASSES or not all(isinstance(n, str) for n in names):
        raise OcclusionError(f"data file {str(path)!r} does not list 10 class names under 'label_names'")
    return tuple(names)


def file_digests(data_dir: str | os.PathLike | None = None, algorithm: str = "sha256") -> dict[str, str]:
    """Hex digest of every file of the release that is present (for model cards and provenance)."""
    fixed_length = sorted(a for a in hashlib.algorithms_guaranteed if not a.startswith("shake"))
    algorithm = one_of(algorithm, "algorithm", tuple(fixed_length))
    folder = resolve_data_dir(data_dir)
    out = {}
    for name in (*TRAIN_FILES, TEST_FILE, META_FILE):
        path = folder / name
        if path.exists():
            raw = read_bounded(path, _size_limit(name), "data file", "a CIFAR-10 file")
            out[name] = hashlib.new(algorithm, raw).hexdigest()
    return out


def provenance(data_dir: str | os.PathLike | None = None) -> str:
    """'official copy' if all files match the release's md5, else 'unofficial copy, N images, checks passed'.

    Reads and checks every split first, so a damaged copy raises instead of being described.
    """
    train, test = load_split(True, data_dir), load_split(False, data_dir)
    class_names(data_dir)
    md5 = file_digests(data_dir, "md5")
    if md5 == OFFICIAL_MD5:
        return "official copy"
    return f"unofficial copy, {len(train) + len(test)} images, checks passed"


def download(root: str | os.PathLike) -> Path:
    """Fetch the official release into ``root`` with torchvision's downloader."""
    try:
        from torchvision.datasets import CIFAR10  # only for --download: torchvision is slow to import
    except ImportError:
        raise OcclusionError(
            'downloading CIFAR-10 needs torchvision, an optional dependency: pip install "occsens[download]"'
        ) from None
    try:
        CIFAR10(root=str(root), download=True)
    except Exception as exc:  # network errors come in many types
        raise OcclusionError(
            f"download to {str(root)!r} failed ({type(exc).__name__}: {exc}); this machine may have no "
            f"internet access: copy {FOLDER}/ there by hand and pass --data-dir"
        ) from None
    return Path(root) / FOLDER
