"""Builders of tiny CIFAR-10 releases in the official pickle layout (the real copy: ``cifar_dir``).

The official batches were written by Python 2 (protocol 2, byte strings as ``BINSTRING``) with numpy 1.x
(the array rebuilder is named ``numpy.core.multiarray._reconstruct``). ``write_batch`` writes exactly that,
so the loader is tested on the format it meets in the wild, not on whatever Python 3 happens to write.
"""

from __future__ import annotations

import io
import pickle
import struct
import types
from pathlib import Path

import numpy as np
import pytest

from occsens.cifar import data

# Small enough to write in a millisecond, large enough for 2 test images per class.
SMALL_BATCH = 20


class _Python2Pickler(pickle._Pickler):  # the pure-Python pickler lets us change how bytes are written
    """Writes ``bytes`` as Python 2 ``str`` (``SHORT_BINSTRING``/``BINSTRING``), as the official files do."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_str8(self, obj: bytes) -> None:
        n = len(obj)
        head = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)
        self.write(head + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_str8


def official_pickle(obj: object) -> bytes:
    """``obj`` pickled as the official release was: Python 2, protocol 2, numpy 1.x global names."""
    buf = io.BytesIO()
    _Python2Pickler(buf, protocol=2).dump(obj)
    raw = buf.getvalue()
    # numpy 1.x named its array rebuilder numpy.core.*; GLOBAL opcodes are newline-terminated, so the
    # rename needs no length fix-up.
    return raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def write_batch(path: Path, images: np.ndarray, labels, *, raw: bytes | None = None) -> Path:
    """Write one batch file: ``images`` uint8 ``[N, 3, 32, 32]`` (or any ``data`` array) and ``labels``."""
    if raw is None:
        flat = images.reshape(len(images), -1) if images.ndim == 4 else images
        raw = official_pickle({"batch_label": "made up for a test", "data": flat, "labels": list(labels)})
    path.write_bytes(raw)
    return path


def balanced_labels(n: int, seed: int) -> list[int]:
    """``n`` labels, ``n / 10`` of each class, in a shuffled (but seeded) order."""
    labels = np.arange(n) % data.NUM_CLASSES
    np.random.default_rng(seed).shuffle(labels)
    return [int(x) for x in labels]


def batch_images(n: int, seed: int) -> np.ndarray:
    """``n`` uint8 images ``[n, 3, 32, 32]`` of seeded noise: cheap, and no two batches alike."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_release(root: Path, per_batch: int) -> Path:
    """A complete made-up release under ``root/cifar-10-batches-py``: 5 training batches, test, meta."""
    folder = root / data.FOLDER
    folder.mkdir(parents=True)
    for seed, name in enumerate((*data.TRAIN_FILES, data.TEST_FILE)):
        write_batch(folder / name, batch_images(per_batch, seed), balanced_labels(per_batch, seed))
    meta = {"num_cases_per_batch": per_batch, "label_names": list(CLASS_NAMES), "num_vis": 3072}
    (folder / data.META_FILE).write_bytes(official_pickle(meta))
    return folder


@pytest.fixture
def cifar():
    """The file builders above, as a fixture (test modules do not import conftest)."""
    return types.SimpleNamespace(
        official_pickle=official_pickle,
        write_batch=write_batch,
        write_release=write_release,
        balanced_labels=balanced_labels,
        batch_images=batch_images,
        CLASS_NAMES=CLASS_NAMES,
    )


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    """Make the loader expect ``SMALL_BATCH`` images per batch (and so 2 test / 10 training per class)."""
    monkeypatch.setattr(data, "IMAGES_PER_BATCH", SMALL_BATCH)
    return SMALL_BATCH


@pytest.fixture
def release(tmp_path: Path, small_batches: int) -> Path:
    """The folder that holds a made-up ``cifar-10-batches-py/`` (torchvision's ``root``)."""
    write_release(tmp_path, small_batches)
    return tmp_path
