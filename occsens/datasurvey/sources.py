"""What a survey reads: images by position, a shard at a time, so memory stays bounded whatever N.

A source has a length, a name and a true class (or None) per image, and hands out the images of one
range of positions as float32 ``[n, C, H, W]`` in [0, 1]. Three kinds: an array or tensor already in
memory (CIFAR-10's test split is 30 MB), a dataset object with ``__len__`` and ``__getitem__``
returning ``(image, label)`` (a torchvision dataset with a tensor transform), and a folder of image
files read a shard at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from occsens.engine import as_images
from occsens.errors import OcclusionError, integral, shown


@dataclass(frozen=True, eq=False)
class Source:
    """Images by position. ``read(start, stop)`` returns float32 images of positions start..stop-1."""

    size: int
    names: Sequence[str]
    labels: Sequence[int | None]
    read_images: Any  # (start, stop) -> float32 [n, C, H, W] in [0, 1]
    description: str  # in words, for the manifest and the report

    def __len__(self) -> int:
        return self.size

    def read(self, start: int, stop: int) -> torch.Tensor:
        return self.read_images(start, stop)

    def shard(self, first: int, count: int) -> tuple[torch.Tensor, list[str], list[int | None]]:
        """The images, names and labels of positions ``first .. first + count - 1``."""
        stop = first + count
        return self.read(first, stop), list(self.names[first:stop]), list(self.labels[first:stop])


def images_digest(images: torch.Tensor) -> str:
    """sha256 of a shard's images as float32 bytes: resuming checks a finished shard saw these pixels."""
    return hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()


def _labels(labels: Any, n: int) -> list[int | None]:
    if labels is None:
        return [None] * n
    values = labels.tolist() if hasattr(labels, "tolist") else list(labels)
    if len(values) != n:
        raise OcclusionError(f"labels has {len(values)} entries for {n} images; give one per image (or None)")
    out: list[int | None] = []
    for i, v in enumerate(values):
        k = integral(v) if v is not None else None
        if v is not None and (k is None or k < 0):
            raise OcclusionError(f"labels[{i}] is {shown(v)}; a label is a class number >= 0 or None")
        out.append(k)
    return out


def _names(names: Any, n: int, default: str) -> list[str]:
    if names is None:
        return [f"{default}{i}" for i in range(n)]
    values = [str(x) for x in names]
    if len(values) != n:
        raise OcclusionError(f"names has {len(values)} entries for {n} images; give one per image")
    return values


def from_array(
    images: Any, labels: Any = None, names: Any = None, description: str = "images in memory"
) -> Source:
    """A source over ``[N, C, H, W]`` images (uint8, or float in [0, 1]) held in memory; each shard is
    validated (``as_images``) when it is read, so a float copy of all N is never made."""
    if isinstance(images, np.ndarray):
        array: Any = images
    elif isinstance(images, torch.Tensor):
        array = images.detach().cpu()
    else:
        raise OcclusionError(
            "images must be an array or tensor [N, C, H, W], or a dataset of (image, label); got "
            f"{shown(images)}"
        )
    if array.ndim != 4 or len(array) == 0:
        raise OcclusionError(f"images must be [N, C, H, W] with N >= 1, got shape {tuple(array.shape)}")
    n = len(array)
    return Source(
        n,
        _names(names, n, "#"),
        _labels(labels, n),
        lambda start, stop: as_images(array[start:stop]),
        description,
    )


def from_dataset(dataset: Any, description: str | None = None) -> Source:
    """A source over a dataset object: ``len(dataset)`` images, ``dataset[i]`` = ``(image, label)`` with
    the image a ``[C, H, W]`` array or tensor (uint8, or float in [0, 1]); read a shard at a time."""
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise OcclusionError(
            f"a dataset needs __len__ and __getitem__ returning (image, label), got {shown(dataset)}"
        )
    n = len(dataset)
    if n == 0:
        raise OcclusionError("the dataset is empty")
    labels: list[int | None] = []
    # Labels are read up front without the images where the dataset exposes them (torchvision: targets).
    targets = getattr(dataset, "targets", None)
    if targets is not None and len(targets) == n:
        labels = _labels(targets, n)
    else:
        labels = []
        for i in range(n):
            item = dataset[i]
            labels.append(_labels([item[1]], 1)[0] if isinstance(item, (tuple, list)) else None)

    def read(start: int, stop: int) -> torch.Tensor:
        items = [dataset[i] for i in range(start, stop)]
        pictures = [item[0] if isinstance(item, (tuple, list)) else item for item in items]
        stacked = [p if isinstance(p, torch.Tensor) else torch.as_tensor(np.asarray(p)) for p in pictures]
        return as_images(torch.stack(stacked))

    return Source(n, _names(None, n, "#"), labels, read, description or f"{type(dataset).__name__} dataset")


def image_files(folder: str | Path) -> list[Path]:
    """The image files of ``folder`` (suffixes of ``occsens.images.IMAGE_SUFFIXES``, any case; hidden files
    skipped; not recursive), by name. No count limit: a survey reads them a shard at a time."""
    from occsens.errors import path as as_path
    from occsens.images import IMAGE_SUFFIXES

    root = as_path(folder, "--images")
    if not root.is_dir():
        raise OcclusionError(f"--images {str(root)!r} is not a folder of images")
    files = sorted(
        (
            p
            for p in root.iterdir()
            if not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        ),
        key=lambda p: p.name,
    )
    if not files:
        raise OcclusionError(
            f"--images {str(root)!r} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return files


def from_files(
    files: Sequence[Path],
    labels: Sequence[int | None],
    size: tuple[int, int] | None,
    channels: int,
    max_pixels: int,
    description: str,
) -> Source:
    """A source over image files, read a shard at a time (``occsens.images.read_images``)."""
    from occsens.images import read_images

    paths = list(files)
    return Source(
        len(paths),
        [p.name for p in paths],
        list(labels),
        lambda start, stop: read_images(paths[start:stop], size, channels, max_pixels).images,
        description,
    )


def source_of(images: Any, labels: Any = None, names: Any = None) -> Source:
    """The source for what ``occsens.survey`` was given: a ``Source``, an array or tensor, or a dataset."""
    if isinstance(images, Source):
        if labels is not None or names is not None:
            raise OcclusionError("labels and names come with the Source itself; leave them out")
        return images
    if isinstance(images, (np.ndarray, torch.Tensor)):
        return from_array(images, labels, names)
    if labels is not None or names is not None:
        raise OcclusionError("labels and names are for an array of images; a dataset gives its own labels")
    return from_dataset(images)
