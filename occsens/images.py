"""Read a user's image file into the pixel-space tensor occsens works on.

Whatever the file holds comes out as float32 ``[C, H, W]`` in [0, 1], the way it looks on screen:

* **Depth.** 8-bit images are divided by 255; 16-bit ones (``I;16``, and 16-bit greyscale PNGs,
  which Pillow opens as 32-bit ``I``) by 65535, so a dark 16-bit image stays dark; 32-bit float
  images (``F``, e.g. TIFF) are used as they are when they lie in [0, 1], and otherwise scaled by
  their own minimum and maximum, with a warning.
* **Orientation.** The EXIF orientation tag is applied (a phone photo stored on its side is turned
  upright, as viewers show it).
* **Colour.** Palette, CMYK, bilevel and greyscale images are converted; transparency is composited
  onto white (as a browser shows it on a white page), with a warning.
* **Size.** Images over ``max_pixels`` (default ``MAX_PIXELS``) are refused before they are decoded:
  a small compressed file can hold a huge image (a decompression bomb). A file that Pillow's own
  bomb limit stops is refused the same way. Resizing to the model's input warns, naming both sizes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from occsens.errors import OcclusionError

# 50 megapixels: more than any camera photo a user explains (a 45 MP full-frame sensor), and far below
# what decoding can cost in memory (a 50 MP RGB image is 150 MB as bytes, 600 MB as float32).
MAX_PIXELS = 50_000_000

_SIXTEEN_BIT = 65535.0


def read_image(
    path: str | Path,
    size: tuple[int, int] | None = None,
    channels: int = 3,
    max_pixels: int = MAX_PIXELS,
) -> torch.Tensor:
    """float32 ``[C, H, W]`` in [0, 1] from an image file, resized to ``size`` (height, width) with a warning.

    ``channels``: 3 (RGB) or 1 (luminance). See the module docstring for depth, orientation, colour
    and the ``max_pixels`` limit.
    """
    path = Path(path)
    if channels not in (1, 3):
        raise OcclusionError(f"channels must be 1 or 3, got {channels!r}")
    if not path.is_file():
        raise OcclusionError(f"image {str(path)!r} does not exist")
    try:
        with Image.open(path) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise OcclusionError(_too_large(path, width, height, max_pixels))
            upright = ImageOps.exif_transpose(opened)
            planes = _planes(upright, channels, path.name)
    except OcclusionError:
        raise
    except Image.DecompressionBombError:
        limit = Image.MAX_IMAGE_PIXELS or 0
        raise OcclusionError(
            f"image {str(path)!r} is over Pillow's decompression-bomb limit ({2 * limit:,} pixels); "
            "raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise OcclusionError(
            f"image {str(path)!r} is not a readable image file ({type(exc).__name__})"
        ) from None
    if size is not None and planes[0].size != (size[1], size[0]):
        warnings.warn(
            f"image {path.name} is {planes[0].size[0]}x{planes[0].size[1]} pixels; "
            f"resized to {size[1]}x{size[0]}, the model's input size",
            stacklevel=2,
        )
        planes = [p.resize((size[1], size[0]), Image.Resampling.BICUBIC) for p in planes]
    return _tensor(planes)


def _too_large(path: Path, width: int, height: int, limit: int) -> str:
    return (
        f"image {str(path)!r} is {width}x{height} = {width * height:,} pixels, over the limit of "
        f"{limit:,} (a guard against decompression bombs); raise it with --max-pixels N on the "
        "command line or read_image(..., max_pixels=N)"
    )


def _planes(img: Image.Image, channels: int, name: str) -> list[Image.Image]:
    """The image as 8-bit ``L``/``RGB`` (one plane) or as float ``F`` planes in [0, 1] (high depth)."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        if img.mode == "F":
            lo, hi = float(values.min()), float(values.max())
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise ValueError("float image with NaN or infinite values")
            if lo < 0 or hi > 1:
                warnings.warn(
                    f"image {name} holds floats in [{lo:.4g}, {hi:.4g}]; scaled from that range to [0, 1]",
                    stacklevel=3,
                )
                values = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
        elif float(values.max()) > _SIXTEEN_BIT or float(values.min()) < 0:  # 32-bit integers
            lo, hi = float(values.min()), float(values.max())
            warnings.warn(
                f"image {name} holds integers in [{lo:.0f}, {hi:.0f}]; scaled from that range to [0, 1]",
                stacklevel=3,
            )
            values = (values - lo) / (hi - lo)
        else:
            values = values / _SIXTEEN_BIT
        plane = Image.fromarray(np.clip(values, 0, 1).astype(np.float32), mode="F")
        return [plane] * channels  # grey: the same plane in every channel
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        warnings.warn(f"image {name} has transparency; composited onto white", stacklevel=3)
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return [img.convert("RGB" if channels == 3 else "L")]


def _tensor(planes: list[Image.Image]) -> torch.Tensor:
    if planes[0].mode == "F":
        arr = np.stack([np.asarray(p, dtype=np.float32) for p in planes])
        return torch.from_numpy(np.clip(arr, 0, 1).copy())
    arr = np.asarray(planes[0], dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.transpose(2, 0, 1).copy()).float().div_(255)
