"""Read a user's image files into the pixel-space tensors occsens works on, and their labels.

Whatever a file holds comes out as float32 ``[C, H, W]`` in [0, 1], the way it looks on screen:

* **Depth.** 8-bit images are divided by 255; 16-bit ones (``I;16``, and 16-bit greyscale PNGs,
  which Pillow opens as 32-bit ``I``) by 65535, so a dark 16-bit image stays dark; 32-bit float
  images (``F``, e.g. TIFF) are used as they are when they lie in [0, 1], and otherwise scaled by
  their own minimum and maximum, with a note.
* **Orientation.** The EXIF orientation tag is applied (a phone photo stored on its side is turned
  upright, as viewers show it), with a note.
* **Colour.** Palette, CMYK, bilevel and greyscale images are converted; transparency is composited
  onto white (as a browser shows it on a white page), with a note.
* **Size.** Images over ``max_pixels`` (default ``MAX_PIXELS``) are refused before they are decoded:
  a small compressed file can hold a huge image (a decompression bomb). A file that Pillow's own
  bomb limit stops is refused the same way. Resizing to the model's input is noted, naming both sizes.

A *note* is one human-readable line on how a file was read. ``read_images`` (a folder or a list of
files) returns them per image in ``ImageFiles.notes`` for the report to show; ``read_image`` (one
file) warns with the same text, as ``image NAME: NOTE``, except for the EXIF note (turning a photo
upright is how every viewer shows it, not a surprise). Sizes are always written height x width, as
``HxW`` (``40x48`` is 40 rows of 48 pixels), the order of ``size=(H, W)`` and of ``--input-size H W``.

``read_labels`` reads a ``file,label`` CSV naming the class of some of those files.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from occsens.errors import INT64_MAX, OcclusionError, integer, shown
from occsens.errors import path as as_path
from occsens.files import open_regular, read_bounded

if TYPE_CHECKING:  # torch is imported where a tensor is made: the CLI's parser reads MAX_PIXELS
    import torch

# 50 megapixels: more than any camera photo a user explains (a 45 MP full-frame sensor), and far below
# what decoding can cost in memory (a 50 MP RGB image is 150 MB as bytes, 600 MB as float32).
MAX_PIXELS = 50_000_000

# The images of a folder are held at once as one float32 [N, C, H, W] tensor: 10,000 RGB images at
# 224x224 (the common ImageNet input) are 10,000 * 3 * 224 * 224 * 4 bytes = 6.0 GB, about what a
# workstation spares; at CIFAR's 32x32 they are 123 MB. More images than that is a job for a data loader.
MAX_FILES = 10_000

# A label file has one short line per image ("a_long_file_name.png,airplane" is 30 bytes): 10 MB holds
# MAX_FILES lines of 1,000 bytes each, far beyond any real label file, and is nothing to hold in memory.
MAX_LABEL_BYTES = 10_000_000

# An image file holds at most this many bytes per pixel of the limit, plus the slack below: 16 is the
# deepest layout Pillow opens (4 channels of 32 bits, uncompressed, as in a float or CMYK TIFF).
_BYTES_PER_PIXEL = 16
# Metadata besides the pixels: EXIF, ICC profiles and embedded thumbnails of camera files run to a few
# MB; 64 MB is far past any real file and still a bound.
_METADATA_BYTES = 64 << 20

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"})

_SIXTEEN_BIT = 65535.0
_THIRTY_TWO_BIT = 2.0**31 - 1  # Pillow's "I" mode: signed 32-bit integers
_EXIF_ORIENTATION = 0x0112
_SHOWN_CLASSES = 10  # an unknown label's error lists this many class names, then "..."


@dataclass(frozen=True, eq=False)
class ImageFiles:
    """Images read from files, with how each was read.

    ``images``: float32 ``[N, C, H, W]`` in [0, 1]; ``names``: each file's name (``"cat.png"``);
    ``sizes``: each file's own (height, width), after its EXIF orientation and before any resize;
    ``notes``: per image, the lines on how it was read (sizes in them are height x width, ``HxW``):
    ``"resized from 40x48 to 32x32 (height x width)"``, ``"transparency; composited onto white"``,
    ``"floats in [-2, 6]; scaled from that range to [0, 1]"``, ``"integers in [0, 70000]; scaled
    from that range to [0, 1]"``, ``"rotated upright by its EXIF orientation (6)"``.
    """

    images: torch.Tensor
    names: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    notes: tuple[tuple[str, ...], ...]


class _Note(NamedTuple):
    text: str
    warn: bool  # read_image warns with it; the EXIF note is information only


class _Read(NamedTuple):
    image: torch.Tensor  # [C, H, W]
    size: tuple[int, int]  # (height, width) upright, before any resize
    notes: list[_Note]


def read_image(
    path: str | Path,
    size: tuple[int, int] | None = None,
    channels: int = 3,
    max_pixels: int = MAX_PIXELS,
) -> torch.Tensor:
    """float32 ``[C, H, W]`` in [0, 1] from an image file, resized to ``size`` (height, width) with a warning.

    ``channels``: 3 (RGB) or 1 (luminance). See the module docstring for depth, orientation, colour,
    the notes it warns with, and the ``max_pixels`` limit.
    """
    _check_channels(channels)
    max_pixels = _check_max_pixels(max_pixels)
    _check_size(size, max_pixels)
    path = as_path(path, "image")
    read = _read(path, size, channels, max_pixels)
    for note in read.notes:
        if note.warn:
            warnings.warn(f"image {path.name}: {note.text}", stacklevel=2)
    return read.image


def read_images(
    paths: str | Path | Sequence[str | Path],
    size: tuple[int, int] | None = None,
    channels: int = 3,
    max_pixels: int = MAX_PIXELS,
) -> ImageFiles:
    """The images of a folder, or of a list of files, as one ``ImageFiles``; never warns.

    ``paths``: a folder, whose files with a suffix in ``IMAGE_SUFFIXES`` (any case; not recursive;
    hidden files skipped) are read in order of name, or a file, or a list of files. ``size``:
    (height, width) to resize every image to, each resized one with a note; ``None`` keeps each
    image's own size, which must then be the same for all. At most ``MAX_FILES`` images; file names
    must be unique (labels and the report name images by them). ``channels`` and ``max_pixels`` as
    for ``read_image``.
    """
    _check_channels(channels)
    max_pixels = _check_max_pixels(max_pixels)
    _check_size(size, max_pixels)
    files = _image_files(paths)
    names = tuple(_utf8_name(f.name) for f in files)
    reads: list[_Read] = []
    for file in files:
        read = _read(file, size, channels, max_pixels)
        if reads and read.image.shape[1:] != reads[0].image.shape[1:]:
            (h0, w0), (h, w) = reads[0].size, read.size
            raise OcclusionError(
                f"images differ in size: {names[0]!r} is {h0}x{w0} and {file.name!r} is {h}x{w} "
                "(height x width); pass --input-size H W on the command line or size=(H, W) to "
                "resize them all to one size"
            )
        reads.append(read)
    import torch

    return ImageFiles(
        images=torch.stack([r.image for r in reads]),
        names=names,
        sizes=tuple(r.size for r in reads),
        notes=tuple(tuple(n.text for n in r.notes) for r in reads),
    )


def read_labels(
    csv_path: str | Path, file_names: Sequence[str], class_names: Sequence[str]
) -> list[int | None]:
    """The class index of each of ``file_names`` from a ``file,label`` CSV; ``None`` for a file it omits.

    One row per file: its name as in ``file_names`` and its label, a name from ``class_names`` or a
    number 0..K-1. A first row ``file,label`` (any case) is a header; cells are stripped of
    whitespace; blank lines are skipped; UTF-8, with or without a byte-order mark. At most
    ``MAX_LABEL_BYTES``. A file listed twice must have the same label both times.
    """
    path = as_path(csv_path, "labels file")
    where = f"labels file {str(path)!r}"
    data = read_bounded(path, MAX_LABEL_BYTES, "labels file", "a label file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OcclusionError(f"{where} is not UTF-8 text (byte {exc.start})") from None
    wanted = set(file_names)
    labels: dict[str, tuple[int, int]] = {}  # file -> (label, line)
    reader = csv.reader(io.StringIO(text, newline=""))
    first = True
    try:
        for row in reader:
            line = reader.line_num
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            if first and [c.lower() for c in cells] == ["file", "label"]:
                first = False
                continue
            first = False
            if len(cells) != 2:
                raise OcclusionError(
                    f"{where} line {line} has {len(cells)} column(s); each row must be file,label"
                )
            if not all(cells):
                raise OcclusionError(f"{where} line {line} has an empty cell; each row must be file,label")
            name, label = cells
            if name not in wanted:
                example = f", e.g. {file_names[0]!r}" if file_names else ""
                raise OcclusionError(
                    f"{where} line {line}: file {name!r} is not among the {len(wanted)} images read "
                    f"(name a file as it is in the folder, without its directory{example})"
                )
            index = label_index(label, class_names, f"{where} line {line}: label")
            if name in labels and labels[name][0] != index:
                raise OcclusionError(
                    f"{where} line {line}: file {name!r} is labelled {label!r}, but line "
                    f"{labels[name][1]} gave it {class_names[labels[name][0]]!r}"
                )
            labels.setdefault(name, (index, line))
    except csv.Error as exc:
        raise OcclusionError(f"{where} line {reader.line_num}: not valid CSV ({exc})") from None
    return [labels[n][0] if n in labels else None for n in file_names]


def label_index(label: str, class_names: Sequence[str], where: str) -> int:
    """A class given by name or number ("ship", "8"); ``where`` names it in the error (``--label``)."""
    names = list(class_names)
    if label in names:
        return names.index(label)
    # at most 19 digits: int() refuses 4,300 and more (and no class count needs more than an int64)
    if label.isascii() and label.isdigit() and len(label) <= 19 and int(label) < len(names):
        return int(label)
    shown = ", ".join(names[:_SHOWN_CLASSES]) + (", ..." if len(names) > _SHOWN_CLASSES else "")
    raise OcclusionError(
        f"{where} {label if len(label) <= 60 else label[:57] + '...'!r} is not a class: use a name "
        f"({shown}) or a number 0..{len(names) - 1}"
    )


def _check_channels(channels: object) -> None:
    if integer(channels, "channels", valid="1 or 3") not in (1, 3):
        raise OcclusionError(f"channels must be 1 or 3, got {shown(channels)}")


def _check_max_pixels(max_pixels: object) -> int:
    return integer(max_pixels, "max_pixels", low=1, high=INT64_MAX)


def _check_size(size: object, max_pixels: int) -> None:
    """``size`` is None or (height, width): two positive ints, at most ``MAX_PIXELS`` pixels in all (or
    ``max_pixels``, where that was raised): the same bound on memory as for the images read."""
    if size is None:
        return
    ok = (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in size)
    )
    if not ok:
        raise OcclusionError(f"size must be two positive integers (height, width), got {shown(size)}")
    assert isinstance(size, (tuple, list))  # for type checkers: ``ok`` said so
    h, w, most = int(size[0]), int(size[1]), max(MAX_PIXELS, max_pixels)
    if h * w > most:
        raise OcclusionError(
            f"size {h}x{w} is {h * w:,} pixels, over the limit of {most:,} (height x width); raise it "
            "with --max-pixels N on the command line or max_pixels=N"
        )


def _utf8_name(name: str) -> str:
    """A file name as its bytes read in UTF-8, whatever the locale (under ``LC_ALL=C`` Python decodes
    names as ASCII); bytes that are not UTF-8 stay surrogate escapes, shown escaped by the report."""
    return os.fsencode(name).decode("utf-8", "surrogateescape")


def _image_files(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """The files ``read_images`` reads: a folder's images by name, or the files given."""
    if isinstance(paths, (str, os.PathLike)):
        folder = as_path(paths, "image folder")
        if folder.is_file():
            return [folder]
        if not folder.is_dir():
            raise OcclusionError(f"image folder {str(folder)!r} does not exist")
        files: list[Path] = []
        for entry in folder.iterdir():
            if entry.name.startswith(".") or entry.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if entry.is_symlink() and not entry.exists():  # never dropped silently: the user meant it
                raise OcclusionError(
                    f"image folder {str(folder)!r}: {entry.name!r} is a link that leads nowhere (its "
                    "target is missing, or links loop back to themselves); remove it or point it at an image"
                )
            if not entry.is_file():
                continue
            if len(files) == MAX_FILES:
                raise OcclusionError(
                    f"image folder {str(folder)!r} holds over {MAX_FILES:,} images, more than occsens "
                    "holds in memory at once; split it into smaller folders"
                )
            files.append(entry)
        if not files:
            accepted = " ".join(sorted(IMAGE_SUFFIXES))
            raise OcclusionError(
                f"image folder {str(folder)!r} has no image files (accepted suffixes, any case: {accepted})"
            )
        return sorted(files, key=lambda p: p.name)
    if not isinstance(paths, (list, tuple)):
        raise OcclusionError(
            "paths must be a folder, a file, or a list of files (str or pathlib.Path), got "
            f"{shown(paths)} ({type(paths).__name__})"
        )
    files = [as_path(p, "image") for p in paths]
    if not files:
        raise OcclusionError("no image files given: pass a folder or a list of files")
    if len(files) > MAX_FILES:
        raise OcclusionError(
            f"{len(files):,} image files given, over the limit of {MAX_FILES:,} that occsens holds "
            "in memory at once; read them in smaller groups"
        )
    seen: dict[str, Path] = {}
    for file in files:
        if file.name in seen:
            raise OcclusionError(
                f"image files {str(seen[file.name])!r} and {str(file)!r} have the same name "
                f"{file.name!r}; images are named by their file name, so names must be unique"
            )
        seen[file.name] = file
    return files


def _read(path: Path, size: tuple[int, int] | None, channels: int, max_pixels: int) -> _Read:
    """One existing file as ``[C, H, W]``, its upright (height, width) and the notes on reading it."""
    notes: list[_Note] = []
    limit = max_pixels * _BYTES_PER_PIXEL + _METADATA_BYTES
    try:
        with open_regular(path, limit, "image", "an image within max_pixels") as f, Image.open(f) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise OcclusionError(_too_large(path, width, height, max_pixels))
            frames = int(getattr(opened, "n_frames", 1) or 1)
            if frames > 1:  # an animation or a multi-page file: one image is read, and that is said
                said = f"first of {frames} frames (an animation or a multi-page file)"
                notes.append(_Note(said, warn=True))
            orientation = opened.getexif().get(_EXIF_ORIENTATION)
            upright = ImageOps.exif_transpose(opened)
            if orientation in range(2, 9):  # 1 is upright already; 2..8 flip and/or turn
                notes.append(_Note(f"rotated upright by its EXIF orientation ({orientation})", warn=False))
            planes = _planes(upright, channels, notes)
    except OcclusionError:
        raise
    except Image.DecompressionBombError:
        pillow = 2 * (Image.MAX_IMAGE_PIXELS or 0)  # Pillow refuses past twice its limit, before decoding
        if max_pixels <= pillow:  # over both limits: occsens's is the one the user can raise
            raise OcclusionError(
                f"image {str(path)!r} is over {pillow:,} pixels, so over the limit of {max_pixels:,} (a "
                "guard against decompression bombs); raise it with --max-pixels N on the command line or "
                "read_image(..., max_pixels=N), and PIL.Image.MAX_IMAGE_PIXELS past "
                f"{pillow // 2:,} in Python if you trust the file"
            ) from None
        raise OcclusionError(
            f"image {str(path)!r} is over Pillow's decompression-bomb limit ({pillow:,} pixels); "
            "raise PIL.Image.MAX_IMAGE_PIXELS in Python if you trust the file"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise OcclusionError(
            f"image {str(path)!r} is not a readable image file ({type(exc).__name__})"
        ) from None
    w, h = planes[0].size
    if size is not None and (h, w) != tuple(size):
        notes.append(_Note(f"resized from {h}x{w} to {size[0]}x{size[1]} (height x width)", warn=True))
        planes = [p.resize((size[1], size[0]), Image.Resampling.BICUBIC) for p in planes]
    return _Read(_tensor(planes), (h, w), notes)


def _too_large(path: Path, width: int, height: int, limit: int) -> str:
    return (
        f"image {str(path)!r} is {width}x{height} = {width * height:,} pixels, over the limit of "
        f"{limit:,} (a guard against decompression bombs); raise it with --max-pixels N on the "
        "command line or read_image(..., max_pixels=N)"
    )


def _planes(img: Image.Image, channels: int, notes: list[_Note]) -> list[Image.Image]:
    """The image as 8-bit ``L``/``RGB`` (one plane) or as float ``F`` planes in [0, 1] (high depth)."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        if img.mode == "F":
            lo, hi = float(values.min()), float(values.max())
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise ValueError("float image with NaN or infinite values")
            if lo < 0 or hi > 1:
                note = f"floats in [{lo:.4g}, {hi:.4g}]; scaled from that range to [0, 1]"
                notes.append(_Note(note, warn=True))
                values = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
        elif float(values.max()) > _SIXTEEN_BIT or float(values.min()) < 0:  # 32-bit integers
            lo, hi = float(values.min()), float(values.max())
            if hi > lo:
                note = f"integers in [{lo:.0f}, {hi:.0f}]; scaled from that range to [0, 1]"
                values = (values - lo) / (hi - lo)
            else:  # one value throughout: no range to scale from, so its place in the 32-bit range
                values = np.full_like(values, min(max(lo, 0.0), _THIRTY_TWO_BIT) / _THIRTY_TWO_BIT)
                note = f"one integer value, {lo:.0f}, throughout; read as {lo:.0f} / (2**31 - 1)"
            notes.append(_Note(note, warn=True))
        else:
            values = values / _SIXTEEN_BIT
        plane = Image.fromarray(np.clip(values, 0, 1).astype(np.float32), mode="F")
        return [plane] * channels  # grey: the same plane in every channel
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        notes.append(_Note("transparency; composited onto white", warn=True))
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return [img.convert("RGB" if channels == 3 else "L")]


def _tensor(planes: list[Image.Image]) -> torch.Tensor:
    import torch

    if planes[0].mode == "F":
        arr = np.stack([np.asarray(p, dtype=np.float32) for p in planes])
        return torch.from_numpy(np.clip(arr, 0, 1).copy())
    arr = np.asarray(planes[0], dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.transpose(2, 0, 1).copy()).float().div_(255)
