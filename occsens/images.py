"""Read a user's image file into the pixel-space tensor occsens works on."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from occsens.errors import OcclusionError


def read_image(path: str | Path, size: tuple[int, int] | None = None, channels: int = 3) -> torch.Tensor:
    """float32 ``[C, H, W]`` in [0, 1] from a PNG/JPEG/... file, resized to ``size`` (with a warning)."""
    path = Path(path)
    if not path.is_file():
        raise OcclusionError(f"image {str(path)!r} does not exist")
    try:
        with Image.open(path) as opened:
            img = opened.convert("RGB" if channels == 3 else "L")
            if size is not None and img.size != (size[1], size[0]):
                warnings.warn(
                    f"image {path.name} is {img.size[0]}x{img.size[1]} pixels; "
                    f"resized to {size[1]}x{size[0]}, "
                    "the model's input size",
                    stacklevel=2,
                )
                img = img.resize((size[1], size[0]), Image.Resampling.BICUBIC)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise OcclusionError(
            f"image {str(path)!r} is not a readable image file ({type(exc).__name__})"
        ) from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.transpose(2, 0, 1).copy()).float().div_(255)
