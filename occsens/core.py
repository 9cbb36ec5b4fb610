"""The occlusion engine: one plan of windows, one pass over the model, one tensor of probabilities.

What occsens computes, stated once (every sentence here has a test in ``tests/core``):

* **Windows.** A window is a ``patch`` = (height, width) rectangle. Along each axis its
  top-left corners sit at 0, s, 2s, ... for stride s, as long as the window fits inside
  the image; where the last one does not reach the far border, one more window is added
  flush with the border. So every window is full-size, lies inside the image, and every
  pixel is covered at least once. The windows form an R x C grid (R positions down,
  C across). Rejected alternatives: *clipping* windows at the border (Zeiler & Fergus'
  description; the notebook) makes border windows smaller, so they hide less and look
  less important for no reason about the image; *dropping* the remainder (Captum with a
  stride that does not divide the image) leaves the last rows or columns never
  occluded; *padding* the image (MONAI) occludes pixels that do not exist.
* **Fill.** Inside the window the input is replaced by the fill, in pixel space, before
  whatever normalisation the model does inside its ``forward``: a number (e.g. 0.5,
  mid grey), one number per channel, a baseline image, ``"mean"`` (each image's own
  per-channel mean), ``"blur"`` (a Gaussian blur of the image, sigma ``BLUR_SIGMA``),
  ``"noise"`` (uniform noise in [0, 1], seeded, so reruns agree), or a callable
  ``fill(images, mask) -> images`` whose output is used where ``mask`` is True. Outside
  the window the pixels are the image's own, bit for bit: **the model sees the image
  minus the window**. With ``reveal=True`` it is the other way round: the model sees
  only the window, and everything else is filled (the patch-only view).
* **Outputs.** ``clean_probs`` is the softmax of the unoccluded image, ``probs`` the
  softmax at every grid position. The ``target`` is each image's clean predicted class
  unless given. ``heatmap`` is the target's probability per position (low = the window
  hid something the model needed), ``drop = clean - heatmap`` (positive = the
  probability fell), ``class_map`` the most probable class per position,
  ``class_counts`` how many positions each class wins. ``attribution()`` spreads the
  drop back to pixels: each pixel gets the mean drop over the windows that cover it
  (Captum's ``Occlusion`` definition). All of them are derived from ``probs`` and
  ``clean_probs`` on demand.
* **Model.** Run in eval mode under ``torch.inference_mode()``; each module's training
  flag is put back afterwards. A model handed over in training mode is reported with a
  warning (dropout and batch statistics would make the map random).
* **Engines.** ``engine="brute"`` runs every occluded copy through the model. The
  incremental engine (``occsens.incremental``) recomputes each layer only where the window
  changed it, and agrees with brute force within ``ENGINE_TOLERANCE`` (1e-5 in probability).
  ``"auto"`` uses it only where that is proved and checked, on every call: (1) every layer the
  model calls must be one whose arithmetic the walk states (``occsens.receptive.refusal``:
  known classes or subclasses adding only ``__init__``, unpatched, no hooks of any kind on the
  layer or globally, no ``__torch_function__``/dispatch mode, no autocast); (2) the walk's own
  clean pass must reproduce the model's own clean forward; (3) two windows per call, the
  top-left one of the first image (borders) and the centre one of the last, are also run by
  brute force and must agree. On any failure the whole call runs by brute force, one warning
  names the layer or the check, and ``res.engine`` reads ``"brute (fallback: ...)"``.
  What the guard cannot see: a change the static check misses (for example a patched
  ``torch.nn.functional`` function, or a weight tensor that changes between layers' calls)
  and that leaves the clean output and both checked windows within the tolerance while moving
  other windows: possible in principle for code that treats particular positions specially.
  The checks cost about three image forwards per call (the model's own clean forward and the
  two windows).
* **Threads.** Several threads may call ``occlude`` on one model at once: no hooks are put on
  the model, and mode and TF32 changes are reference-counted (``eval_mode``, ``full_float32``),
  so each call sees eval mode throughout and the caller's flags come back when the last call
  ends. Not safe: training or changing the model in another thread meanwhile; the TF32 flags
  are process-wide, so other threads' CUDA work also runs without TF32 while occsens runs.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import numbers
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from occsens._alloc import keep_heap_memory
from occsens.errors import OcclusionError

BLUR_SIGMA = 2.0  # pixels; kernel radius 3 sigma. Wide enough to remove 4-8 px detail on 32x32 images.
NOISE_SEED = 0
NOTEBOOK_SCALE = 5  # the notebook greys a square of side 5 * size around each size x size cell

# Default chunk size: a memory budget divided by an estimate of one occluded image's
# footprint in the model. Small conv nets hold about 40-60x their input in activations
# (0.3-0.7 MB per 32x32 image for the two CIFAR nets measured in
# shared/bench/peers-2026-11-26.md); 64x is used as the estimate. On the CPU the budget
# is small on purpose: batches past ~64 images gain nothing there, and above 256 glibc's
# allocator made forwards 1.5-2.5x slower (same source).
_ACTIVATION_FACTOR = 64
_MEMORY_BUDGET = {"cpu": 48 << 20, "cuda": 1 << 30}

Pair = tuple[int, int]
FillFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True, eq=False)
class Plan:
    """Where the windows are: computed once per (image size, patch, stride) and cached.

    ``windows[r, c]`` is the (top, left, height, width) rectangle that is filled at grid
    position (r, c); ``cells[r, c]`` is the rectangle that position is drawn as (the same
    as the window, except for the notebook geometry, where a 5*size square is drawn as a
    size x size cell).
    """

    image_size: Pair
    patch: Pair
    stride: Pair
    windows: torch.Tensor  # int64 [R, C, 4]
    cells: torch.Tensor  # int64 [R, C, 4]
    geometry: str  # "sliding" or "notebook"

    @property
    def grid(self) -> Pair:
        return (self.windows.shape[0], self.windows.shape[1])

    @property
    def positions(self) -> int:
        return self.grid[0] * self.grid[1]

    @functools.cached_property
    def masks(self) -> torch.Tensor:
        """bool [R*C, H, W]: True inside each window."""
        h, w = self.image_size
        ys = torch.arange(h).view(1, h, 1)
        xs = torch.arange(w).view(1, 1, w)
        win = self.windows.reshape(-1, 4)
        top, left = win[:, 0].view(-1, 1, 1), win[:, 1].view(-1, 1, 1)
        bottom, right = top + win[:, 2].view(-1, 1, 1), left + win[:, 3].view(-1, 1, 1)
        return (ys >= top) & (ys < bottom) & (xs >= left) & (xs < right)

    @functools.cached_property
    def coverage(self) -> torch.Tensor:
        """int64 [H, W]: how many windows cover each pixel."""
        return self.masks.sum(dim=0)


def _starts(length: int, size: int, step: int) -> list[int]:
    starts = list(range(0, length - size + 1, step))
    if starts[-1] + size < length:
        starts.append(length - size)  # one more window, flush with the border
    return starts


def plan_for(image_size: Pair, patch: Any, stride: Any = None) -> Plan:
    """Validate ``patch`` and ``stride`` (default: the patch) against the image and return their plan."""
    h, w = image_size
    patch_hw = _pair(patch, "patch")
    stride_hw = patch_hw if stride is None else _pair(stride, "stride")
    if patch_hw[0] > h or patch_hw[1] > w:
        raise OcclusionError(f"patch {patch_hw} is larger than the image ({h}, {w})")
    if stride_hw[0] > patch_hw[0] or stride_hw[1] > patch_hw[1]:
        raise OcclusionError(
            f"stride {stride_hw} is larger than the patch {patch_hw}: pixels between windows would never be "
            "occluded; use a stride of at most the patch"
        )
    return sliding_plan((h, w), patch_hw, stride_hw)


@functools.lru_cache(maxsize=64)
def sliding_plan(image_size: Pair, patch: Pair, stride: Pair) -> Plan:
    """Full-size windows at 0, s, 2s, ... plus one flush with the far border where needed."""
    tops = _starts(image_size[0], patch[0], stride[0])
    lefts = _starts(image_size[1], patch[1], stride[1])
    windows = torch.tensor([[[t, x, patch[0], patch[1]] for x in lefts] for t in tops], dtype=torch.int64)
    return Plan(image_size, patch, stride, windows, windows, "sliding")


@functools.lru_cache(maxsize=64)
def notebook_plan(image_size: Pair, size: int) -> Plan:
    """The notebook's geometry: size x size cells at step size, each greying a 5*size square, clipped."""
    h, w = image_size
    reach = (NOTEBOOK_SCALE - 1) // 2 * size  # 2 * size on each side of the cell
    windows, cells = [], []
    for top in range(0, h, size):
        wrow, crow = [], []
        for left in range(0, w, size):
            t0, l0 = max(0, top - reach), max(0, left - reach)
            t1, l1 = min(h, top + size + reach), min(w, left + size + reach)
            wrow.append([t0, l0, t1 - t0, l1 - l0])
            crow.append([top, left, min(size, h - top), min(size, w - left)])
        windows.append(wrow)
        cells.append(crow)
    return Plan(
        image_size, (size, size), (size, size), torch.tensor(windows), torch.tensor(cells), "notebook"
    )


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True, eq=False)
class Occlusion:
    """The result of ``occlude``: probabilities at every window position, and views derived from them.

    Shapes: N images, K classes, an R x C grid of positions, H x W pixels.
    """

    images: torch.Tensor  # float32 [N, C, H, W], the validated inputs
    clean_probs: torch.Tensor  # float32 [N, K], softmax of the unoccluded images
    probs: torch.Tensor  # float32 [N, R, C, K], softmax at every position
    target: torch.Tensor  # int64 [N]
    plan: Plan
    reveal: bool
    fill: str  # a description of the fill, e.g. "0.5" or "blur"
    model_was_training: bool
    _fill: _Fill = field(repr=False)
    engine: str = "brute"  # which engine computed probs: "brute" or "incremental"

    @property
    def windows(self) -> torch.Tensor:
        """int64 [R, C, 4]: (top, left, height, width) of the rectangle filled at each position."""
        return self.plan.windows

    @property
    def grid(self) -> Pair:
        return self.plan.grid

    @property
    def num_classes(self) -> int:
        return self.clean_probs.shape[1]

    @property
    def clean_class(self) -> torch.Tensor:
        """int64 [N]: the most probable class of each unoccluded image."""
        return self.clean_probs.argmax(dim=1)

    @property
    def clean_target_prob(self) -> torch.Tensor:
        """float32 [N]: the target's probability on the unoccluded image."""
        return self.clean_probs.gather(1, self.target.view(-1, 1)).squeeze(1)

    @property
    def heatmap(self) -> torch.Tensor:
        """float32 [N, R, C]: the target's probability at each position (low = important)."""
        n, r, c, _ = self.probs.shape
        index = self.target.view(n, 1, 1, 1).expand(n, r, c, 1)
        return self.probs.gather(3, index).squeeze(3)

    @property
    def drop(self) -> torch.Tensor:
        """float32 [N, R, C]: clean minus occluded target probability (positive = it fell)."""
        return self.clean_target_prob.view(-1, 1, 1) - self.heatmap

    @property
    def class_map(self) -> torch.Tensor:
        """int64 [N, R, C]: the most probable class at each position."""
        return self.probs.argmax(dim=3)

    @property
    def class_counts(self) -> torch.Tensor:
        """int64 [N, K]: how many positions each class is the most probable one at."""
        flat = self.class_map.reshape(len(self.probs), -1)
        counts = torch.zeros(len(self.probs), self.num_classes, dtype=torch.int64)
        return counts.scatter_add_(1, flat, torch.ones_like(flat))

    @property
    def coverage(self) -> torch.Tensor:
        """int64 [H, W]: how many windows cover each pixel."""
        return self.plan.coverage

    def attribution(self) -> torch.Tensor:
        """float32 [N, H, W]: each pixel's mean drop over the windows that cover it (Captum's definition)."""
        masks = self.plan.masks.reshape(self.plan.positions, -1).to(torch.float64)
        total = self.drop.reshape(len(self.probs), -1).to(torch.float64) @ masks
        per_pixel = total / self.plan.coverage.reshape(1, -1).clamp(min=1)
        return per_pixel.reshape(len(self.probs), *self.plan.image_size).to(torch.float32)

    def occluded(self, image: int, row: int, col: int) -> torch.Tensor:
        """float32 [C, H, W]: exactly the input the model saw for ``image`` at grid position (row, col)."""
        r, c = self.grid
        if not (0 <= image < len(self.images) and 0 <= row < r and 0 <= col < c):
            raise OcclusionError(
                f"position (image={image}, row={row}, col={col}) is outside the result: "
                f"images 0..{len(self.images) - 1}, rows 0..{r - 1}, cols 0..{c - 1}"
            )
        return _occluded(self.images, self.plan, self._fill, image, row * c + col, self.reveal)[0]


# --------------------------------------------------------------------------- validation


def _pair(value: Any, name: str) -> Pair:
    if isinstance(value, bool):
        raise OcclusionError(f"{name} must be a positive int or a (height, width) pair, got {value!r}")
    if isinstance(value, numbers.Integral):
        pair = (int(value), int(value))
    elif (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise OcclusionError(f"{name} must be a positive int or a (height, width) pair, got {value!r}")
    if min(pair) <= 0:
        raise OcclusionError(f"{name} must be positive, got {value!r}")
    return pair


def as_images(images: Any) -> torch.Tensor:
    """Validate ``images`` and return float32 ``[N, C, H, W]`` in [0, 1] (uint8 is scaled by 1/255)."""
    if isinstance(images, np.ndarray):
        if images.dtype.kind not in "uif":
            raise OcclusionError(f"images must hold numbers, got a numpy array of {images.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(images))
    elif isinstance(images, torch.Tensor):
        tensor = images.detach()
    else:
        raise OcclusionError(
            "images must be a torch tensor or numpy array [N, C, H, W] or [C, H, W], "
            f"got {type(images).__name__}"
            + (" (load the file first, e.g. with occsens.read_image)" if isinstance(images, str) else "")
        )
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 4:
        raise OcclusionError(f"images must have shape [N, C, H, W] or [C, H, W], got {tuple(tensor.shape)}")
    if tensor.shape[0] == 0 or 0 in tensor.shape:
        raise OcclusionError(f"images is empty: shape {tuple(tensor.shape)}")
    if tensor.dtype == torch.uint8:
        return tensor.cpu().float().div_(255)
    if not tensor.is_floating_point():
        raise OcclusionError(f"images must be float in [0, 1] or uint8 in 0..255, got {tensor.dtype}")
    tensor = tensor.cpu().to(torch.float32)
    if not torch.isfinite(tensor).all():
        bad = int((~torch.isfinite(tensor)).sum())
        raise OcclusionError(f"images contain {bad} NaN or infinite values; all pixels must be finite")
    lo, hi = float(tensor.min()), float(tensor.max())
    if lo < 0 or hi > 1:
        raise OcclusionError(
            "images must be in [0, 1] (pixel space, before normalisation), "
            f"got values in [{lo:.4g}, {hi:.4g}]"
            + ("; for 0..255 data pass uint8 or divide by 255" if hi > 1.5 else "")
        )
    return tensor.contiguous()


def _targets(target: Any, clean_probs: torch.Tensor) -> torch.Tensor:
    n, k = clean_probs.shape
    if target is None:
        return clean_probs.argmax(dim=1)
    if isinstance(target, (torch.Tensor, np.ndarray)) and target.ndim == 0:
        target = target.item()  # a 0-dimensional tensor (e.g. labels[i]) is one number
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        values = torch.full((n,), int(target), dtype=torch.int64)
    else:
        try:
            values = torch.as_tensor(np.asarray(target))
        except (TypeError, ValueError):
            raise OcclusionError(
                f"target must be None, an int or one int per image, got {target!r}"
            ) from None
        if values.dtype.is_floating_point or values.dtype == torch.bool or values.ndim != 1:
            raise OcclusionError(f"target must be None, an int or one int per image, got {target!r}")
        if len(values) != n:
            raise OcclusionError(
                f"target has {len(values)} entries but there are {n} images; give one per image"
            )
        values = values.to(torch.int64)
    if (values < 0).any() or (values >= k).any():
        raise OcclusionError(f"target {values.tolist()} out of range: the model has classes 0..{k - 1}")
    return values


# --------------------------------------------------------------------------- fills


@dataclass(frozen=True)
class _Fill:
    """A resolved fill: either one fill image per input image, or a callable applied per chunk."""

    description: str
    per_image: torch.Tensor | None = None  # float32 [N, C, H, W] or [1, C, H, W]
    fn: FillFn | None = None

    def images(
        self, x: torch.Tensor, index: Sequence[int] | torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Fill values for the batch ``x`` (image numbers ``index``) where ``mask`` is True."""
        if self.fn is not None:
            out = self.fn(x, mask.expand(len(x), 1, *x.shape[2:]))
            if not isinstance(out, torch.Tensor) or out.shape != x.shape:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise OcclusionError(
                    f"fill callable must return a tensor shaped like its images {tuple(x.shape)}, got {got}"
                )
            return out.to(x.dtype)
        assert self.per_image is not None
        if self.per_image.device != x.device:  # callers move it once with ``on``; this is the fallback
            return self.on(x.device).images(x, index, mask)
        if len(self.per_image) == 1:
            return self.per_image.expand(len(x), -1, -1, -1)
        return self.per_image[torch.as_tensor(index)]

    def on(self, device: torch.device) -> _Fill:
        """The same fill with its images on ``device`` (so chunks do not copy them there one by one)."""
        if self.per_image is None or self.per_image.device == device:
            return self
        return _Fill(self.description, self.per_image.to(device), self.fn)


def gaussian_blur(images: torch.Tensor, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding; radius 3 sigma, at most the axis length - 1 per axis."""
    c = images.shape[1]
    x = images
    for axis in (2, 3):  # rows, then columns; an axis one pixel long is left as it is
        radius = min(int(math.ceil(3 * sigma)), images.shape[axis] - 1)
        if radius < 1:
            continue
        xs = torch.arange(-radius, radius + 1, dtype=torch.float64)
        kernel = torch.exp(-0.5 * (xs / sigma) ** 2)
        kernel = (kernel / kernel.sum()).to(images.dtype)
        if axis == 2:
            x = F.conv2d(
                F.pad(x, (0, 0, radius, radius), mode="reflect"),
                kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1),
                groups=c,
            )
        else:
            x = F.conv2d(
                F.pad(x, (radius, radius, 0, 0), mode="reflect"),
                kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1),
                groups=c,
            )
    return x.clamp(0, 1)


FILL_NAMES = ("mean", "blur", "noise")


def resolve_fill(fill: Any, images: torch.Tensor) -> _Fill:
    """Turn the user's ``fill`` into fill images for ``images`` [N, C, H, W]."""
    n, c, h, w = images.shape
    if callable(fill) and not isinstance(fill, torch.Tensor):
        return _Fill(getattr(fill, "__name__", "callable"), fn=fill)
    if isinstance(fill, str):
        if fill == "mean":
            return _Fill("mean", images.mean(dim=(2, 3), keepdim=True).expand(n, c, h, w).contiguous())
        if fill == "blur":
            return _Fill("blur", gaussian_blur(images))
        if fill == "noise":
            gen = torch.Generator().manual_seed(NOISE_SEED)  # one noise image for all: results per image
            return _Fill("noise", torch.rand(1, c, h, w, generator=gen))  # do not depend on batch mates
        raise OcclusionError(
            f"fill {fill!r} is unknown; use a number in [0, 1], one per channel, a baseline image, "
            f"a callable, or one of {', '.join(map(repr, FILL_NAMES))}"
        )
    if isinstance(fill, (torch.Tensor, np.ndarray)) and fill.ndim == 0:
        fill = float(fill)  # a 0-dimensional tensor is a number
    if isinstance(fill, bool):
        raise OcclusionError(f"fill must be a number in [0, 1], got {fill!r}")
    if isinstance(fill, numbers.Real):
        value = float(fill)
        if not 0 <= value <= 1:
            raise OcclusionError(
                f"fill {fill!r} is outside [0, 1]: it is a pixel value, applied before normalisation"
            )
        return _Fill(f"{value:g}", torch.full((1, c, h, w), value))
    try:
        tensor = torch.as_tensor(
            np.asarray(fill.cpu() if isinstance(fill, torch.Tensor) else fill), dtype=torch.float32
        )
    except (TypeError, ValueError):
        raise OcclusionError(
            f"fill must be a number, a sequence, an image or a name, got {type(fill).__name__}"
        ) from None
    if tensor.ndim == 1:
        if len(tensor) != c:
            raise OcclusionError(
                f"fill has {len(tensor)} values but the images have {c} channels; give one per channel"
            )
        fill_images, description = (
            tensor.view(1, c, 1, 1).expand(1, c, h, w),
            "(" + ", ".join(f"{v:g}" for v in tensor.tolist()) + ")",
        )
    elif tuple(tensor.shape) == (c, h, w):
        fill_images, description = tensor.unsqueeze(0), "baseline image"
    elif tuple(tensor.shape) == (n, c, h, w):
        fill_images, description = tensor, "baseline images"
    else:
        raise OcclusionError(
            f"fill has shape {tuple(tensor.shape)}; valid shapes are ({c},) per channel, ({c}, {h}, {w}) "
            f"for one baseline image, or ({n}, {c}, {h}, {w}) for one per image"
        )
    if not torch.isfinite(tensor).all() or float(tensor.min()) < 0 or float(tensor.max()) > 1:
        raise OcclusionError("fill values must be finite and in [0, 1] (pixel space, before normalisation)")
    return _Fill(description, fill_images.contiguous())


def _compose(x: torch.Tensor, fill: torch.Tensor, mask: torch.Tensor, reveal: bool) -> torch.Tensor:
    """The occluded inputs: the fill where the window is (outside it when ``reveal``), the image elsewhere."""
    return torch.where(mask, x, fill) if reveal else torch.where(mask, fill, x)


def _occluded(
    images: torch.Tensor, plan: Plan, fill: _Fill, image: int, window: int, reveal: bool = False
) -> torch.Tensor:
    """[1, C, H, W]: what the model sees for image number ``image`` at window number ``window``."""
    mask = plan.masks[window].view(1, 1, *plan.image_size)
    x = images[image : image + 1]
    return _compose(x, fill.images(x, [image], ~mask if reveal else mask), mask, reveal)


# --------------------------------------------------------------------------- models


# Two threads may run occsens on one model at once. Mode and TF32 changes are counted under one lock:
# the first caller to enter changes a flag, the last to leave puts it back, so no call sees a flag
# that another call restored under it, and the caller's own values come back once all are done.
_STATE_LOCK = threading.Lock()
_TF32_USERS: list[Any] = [0, None]  # [callers inside full_float32, the saved (cudnn, matmul) flags]
_EVAL_USERS: dict[nn.Module, int] = {}  # modules switched to eval by occsens -> callers relying on it


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """No TensorFloat-32 for the duration (restored when the last concurrent caller leaves).

    PyTorch lets cuDNN convolutions on Ampere and later GPUs round their inputs to TF32 (10-bit
    mantissa) by default. On an H200 that moved the shipped model's occlusion probabilities by up
    to 2e-3 between two exact engines and against Captum; an explanation must not depend on it.
    The flags are process-wide: another thread's own CUDA work also runs without TF32 meanwhile.
    """
    with _STATE_LOCK:
        if _TF32_USERS[0] == 0:
            _TF32_USERS[1] = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        _TF32_USERS[0] += 1
    try:
        yield
    finally:
        with _STATE_LOCK:
            _TF32_USERS[0] -= 1
            if _TF32_USERS[0] == 0:
                torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = _TF32_USERS[1]


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[bool]:
    """Eval mode and no autograd for the duration; yields whether any module was in training mode.

    Each module's own training flag is restored afterwards, so a model with mixed flags is left
    exactly as found. Safe when several threads run occsens on one model (or on models sharing
    modules): a module occsens switched to eval goes back to training only when the last of them
    is done. Not safe against the caller's own code changing modes or training the model meanwhile.
    """
    # only the modules in training mode are touched: setting a flag goes through Module.__setattr__,
    # which cost 0.4 ms per occlude call on the shipped model's 45 modules
    modules = list(model.modules()) if isinstance(model, nn.Module) else []
    with _STATE_LOCK:
        mine = [m for m in modules if m.training or m in _EVAL_USERS]
        was_training = any(m.training or _EVAL_USERS.get(m) for m in mine)
        for m in mine:
            _EVAL_USERS[m] = _EVAL_USERS.get(m, 0) + 1
            m.training = False
    try:
        with torch.inference_mode():
            yield was_training
    finally:
        with _STATE_LOCK:
            for m in mine:
                _EVAL_USERS[m] -= 1
                if _EVAL_USERS[m] == 0:
                    del _EVAL_USERS[m]
                    m.training = True


def as_model(fn: Callable[[np.ndarray], Any], outputs: str = "logits", layout: str = "NCHW") -> Callable:
    """Wrap a numpy callable (a Keras or ONNX model) so ``occlude`` can run it.

    ``fn`` gets float32 images in [0, 1] as a numpy array (``layout`` "NCHW" or "NHWC")
    and returns ``[B, K]`` logits, or probabilities when ``outputs="probs"``.
    """
    if outputs not in ("logits", "probs"):
        raise OcclusionError(f"outputs must be 'logits' or 'probs', got {outputs!r}")
    if layout not in ("NCHW", "NHWC"):
        raise OcclusionError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")

    def model(x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().cpu().numpy()
        if layout == "NHWC":
            arr = arr.transpose(0, 2, 3, 1)
        out = torch.as_tensor(np.asarray(fn(np.ascontiguousarray(arr)), dtype=np.float32))
        if outputs == "probs":  # log p goes back to p through softmax
            out = out.clamp(min=1e-30).log()
        return out

    model.__name__ = getattr(fn, "__name__", "numpy_model")
    return model


def _forward(model: Callable, x: torch.Tensor, expected_batch: int) -> torch.Tensor:
    return _check_logits(model(x), expected_batch)


def _check_logits(out: Any, expected_batch: int) -> torch.Tensor:
    """Softmax of the model's logits, after checking their type, shape and values."""
    if not isinstance(out, torch.Tensor):
        raise OcclusionError(
            f"model must return a tensor of logits [B, K], got {type(out).__name__} "
            "(wrap numpy models with occsens.as_model)"
        )
    if out.ndim != 2 or out.shape[0] != expected_batch or out.shape[1] < 2:
        raise OcclusionError(
            f"model returned shape {tuple(out.shape)} for {expected_batch} images; "
            f"expected logits [{expected_batch}, K], K >= 2"
        )
    if not torch.isfinite(out).all():
        raise OcclusionError("model returned NaN or infinite logits; check the model and its weights")
    return torch.softmax(out.float(), dim=1).cpu()


def _device(model: Any, device: Any) -> torch.device:
    if device is not None:
        try:
            return torch.device(device)
        except (RuntimeError, TypeError):
            raise OcclusionError(f"device {device!r} is not a torch device, e.g. 'cpu' or 'cuda:0'") from None
    if isinstance(model, nn.Module):
        first = next(itertools.chain(model.parameters(), model.buffers()), None)
        if first is not None:
            return first.device
    return torch.device("cpu")


def default_batch_size(images: torch.Tensor, device: torch.device) -> int:
    """Occluded images per model call: the device's memory budget over one image's estimated footprint."""
    per_image = images[0].numel() * images.element_size() * _ACTIVATION_FACTOR
    budget = _MEMORY_BUDGET["cuda" if device.type == "cuda" else "cpu"]
    return int(max(1, min(4096, budget // per_image)))


# --------------------------------------------------------------------------- the engine


def _run(
    model: Callable,
    images: torch.Tensor,
    plan: Plan,
    fill: _Fill,
    reveal: bool,
    batch_size: int,
    device: torch.device,
    progress: bool,
    channels_last: bool = False,
) -> torch.Tensor:
    """Softmax for every (image, window) pair: float32 [N, R*C, K], in chunks of ``batch_size``.

    ``channels_last`` hands the model channels-last inputs (only for models whose every layer
    ``occsens.receptive`` knows: a model that calls ``view`` on its maps would break); convolution
    and pooling run up to 1.4x faster that way on CPU, with the same values.
    """
    n, p = len(images), plan.positions
    masks = plan.masks.unsqueeze(1).to(device)  # [P, 1, H, W]
    x_all = images.to(device)
    fill = fill.on(device)
    out: torch.Tensor | None = None
    with contextlib.closing(progress_bar(n * p, progress)) as bar:  # closed on errors too
        for start in range(0, n * p, batch_size):
            pairs = torch.arange(start, min(start + batch_size, n * p))
            image_idx, window_idx = pairs // p, pairs % p
            x, mask = x_all[image_idx], masks[window_idx]
            fill_values = fill.images(x, image_idx, ~mask if reveal else mask).to(device)
            occluded = _compose(x, fill_values, mask, reveal)
            if channels_last:
                occluded = occluded.contiguous(memory_format=torch.channels_last)
            probs = _forward(model, occluded, len(pairs))
            if out is None:  # kept on the device until the end: one copy back instead of one per chunk
                out = probs.new_empty(n * p, probs.shape[1])
            out[start : start + len(pairs)] = probs
            bar.update(len(pairs))
    assert out is not None
    return out.view(n, p, -1).cpu()


def _run_incremental(
    model: nn.Module,
    images: torch.Tensor,
    plan: Plan,
    fill: _Fill,
    batch_size: int,
    device: torch.device,
    progress: bool,
    clean_probs: torch.Tensor,
    chunk_given: bool = False,
) -> torch.Tensor:
    """The same probabilities as ``_run``, computing each layer only where the window changed it.

    Images go in groups whose clean activations are kept (``_clean_group``); the (image, window)
    pairs of a group run in chunks of ``batch_size`` windows (``_incremental_chunk`` times that
    unless ``chunk_given``), ordered so that windows whose changed boxes have the same shape share
    a chunk (a chunk computes every window on its largest box).
    Raises ``_GuardFailed`` when a group's clean pass, the walk's reconstruction of the model,
    disagrees with ``clean_probs``, the model's own forward on those images.
    """
    from occsens.incremental import CleanActivations, window_logits

    n, p = len(images), plan.positions
    walked = _walked(model, plan, images.shape[1])
    order = walked.order.to(device)
    if not chunk_given:  # brute force's chunk, grown as far as a window's boxes are smaller than an image
        batch_size = _incremental_chunk(batch_size, walked.footprint)
    fill = fill.on(device)
    masks = plan.masks.unsqueeze(1).to(device)
    win = plan.windows.reshape(-1, 4).to(device)
    box_h, box_w = int(win[:, 2].max()), int(win[:, 3].max())  # one box size: the largest window
    h, w = plan.image_size
    tops, lefts = win[:, 0].clamp(max=h - box_h), win[:, 1].clamp(max=w - box_w)
    rows = tops.view(-1, 1, 1) + torch.arange(box_h, device=device).view(1, -1, 1)  # [P, box_h, 1]
    cols = lefts.view(-1, 1, 1) + torch.arange(box_w, device=device).view(1, 1, -1)  # [P, 1, box_w]
    group = _clean_group(images, device)
    out: torch.Tensor | None = None
    with contextlib.closing(progress_bar(n * p, progress)) as bar:  # closed on errors too
        for first in range(0, n, group):
            members = images[first : first + group].to(device)
            clean = CleanActivations(model, members)
            rebuilt = _check_logits(clean.logits, len(members))
            off = float((rebuilt - clean_probs[first : first + len(members)]).abs().max())
            if not off <= ENGINE_TOLERANCE:  # also catches NaN
                raise _GuardFailed(
                    f"the walk's clean pass differs from the model's own forward by {off:.2g} (images "
                    f"{first}..{first + len(members) - 1}): the model runs code its layers do not show"
                )
            pairs = len(members) * p
            for start in range(0, pairs, batch_size):
                pair = torch.arange(start, min(start + batch_size, pairs), device=device)
                member, idx = pair % len(members), order[pair // len(members)]
                x, mask = members[member], masks[idx]
                occluded = _compose(x, fill.images(x, first + member, mask).to(device), mask, False)
                batch = torch.arange(len(pair), device=device).view(-1, 1, 1, 1)
                chan = torch.arange(x.shape[1], device=device).view(1, -1, 1, 1)
                boxes = occluded[batch, chan, rows[idx].unsqueeze(1), cols[idx].unsqueeze(1)]
                logits = window_logits(model, clean, member, boxes, tops[idx], lefts[idx])
                probs = _check_logits(logits, len(pair))
                if out is None:
                    out = probs.new_empty(n * p, probs.shape[1])
                out[(first + member) * p + idx] = probs
                bar.update(len(pair))
    assert out is not None
    return out.view(n, p, -1).cpu()


# The incremental engine keeps every layer's clean activation for a group of images: measured 1.84 MB per
# 32x32 RGB image for the shipped model and 2.50 MB for ResNet-20 (150x and 203x the input's 12 KB, where
# a plain forward holds at most 0.39 MB at once). Groups are sized at 256x the input against the same
# memory budget as a chunk of windows.
_KEPT_FACTOR = 256

# A window in the incremental engine carries only its changed boxes, so its chunks can hold more windows
# than brute force's in the same memory, and fewer chunks mean fewer per-layer calls. Measured on the
# shipped model, 1 image (development machine, 2 threads; `occsens bench`'s memory probe): chunks of 64,
# 192, 256 windows took 69, 65, 63 ms for patch 8 stride 2 (169 windows) and 330, 290, 280 ms for patch 4
# stride 1 (841), with peak memory for the 841 windows of 35, 64, 87 MB against 49 MB for one 64-image
# forward pass. A window there carries at most 0.20-0.28 of an image's largest map (``_Walked.footprint``).
# ResNet-20's windows carry 0.5 of it (its maps turn dense at 16x16): at 3x its peak read 64 MB against
# 31 MB for its 64-image forward. So: 1 / footprint times brute force's chunk, at most 3x.
_INCREMENTAL_MAX_CHUNK_FACTOR = 3.0


def _incremental_chunk(batch_size: int, footprint: float) -> int:
    """Windows per incremental chunk: brute force's ``batch_size`` scaled by what a window carries."""
    return int(batch_size * min(_INCREMENTAL_MAX_CHUNK_FACTOR, 1 / max(footprint, 1e-9)))


def _clean_group(images: torch.Tensor, device: torch.device) -> int:
    """Images whose clean activations the incremental engine keeps at once."""
    kept = images[0].numel() * images.element_size() * _KEPT_FACTOR
    return int(max(1, _MEMORY_BUDGET["cuda" if device.type == "cuda" else "cpu"] // kept))


class _NoBar:
    def set_description(self, text: str) -> None:
        pass

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, enabled: bool, unit: str = "window", desc: str = "occluding") -> Any:
    """A tqdm bar on stderr, or a silent stand-in with the same methods."""
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, leave=False)


ENGINES = ("auto", "brute", "incremental")


def _use_incremental(
    engine: str,
    model: Any,
    images: torch.Tensor,
    plan: Plan,
    reveal: bool,
    unsupported: str | None,
    device: torch.device,
) -> bool:
    """Whether to run the incremental engine: asked for, or "auto" and it applies and saves work.

    ``unsupported`` is ``occsens.incremental.supports``'s answer for this model. "auto" keeps GPUs
    on brute force: there the engine's many small kernels cost more than the FLOPs it saves (H200,
    shipped model in full float32: 13-18 ms against 3-9 ms on one image, 1.4-2.3x as long on 32).
    """
    if engine == "brute":
        return False
    reason = "reveal=True changes everything outside the window" if reveal else unsupported
    if engine == "incremental":
        if reason:
            raise OcclusionError(
                f"engine 'incremental' cannot run this model: {reason}; use engine='auto' or 'brute'"
            )
        return True
    if reason:
        if not reveal and isinstance(model, nn.Module):
            warnings.warn(
                f"incremental engine not used ({reason}); running every window in full", stacklevel=4
            )
        return False
    return device.type == "cpu" and _incremental_pays(model, images, plan)


# When "auto" picks the incremental engine: it recomputes a share of the FLOPs but pays per layer for
# reading and pasting boxes. Measured on the development machine (2 threads, 2026-11-26, one image,
# median of 7 interleaved runs; incremental / brute time at FLOP share): shipped model 0.355 -> 0.59,
# 0.377 -> 0.66, 0.399 -> 0.65, 0.498 -> 0.73, and with 16 windows 0.457 -> 1.08, 25 windows 0.701 ->
# 1.10; ResNet-20 (19 convolutions, so more per-layer work) 0.500 -> 0.99, 0.531 -> 1.16, 0.542 -> 1.07,
# 0.629 -> 1.19. So: a share up to 0.5 and at least 32 windows per image.
_INCREMENTAL_MAX_SHARE = 0.5
_INCREMENTAL_MIN_WINDOWS = 32


def _incremental_pays(model: Any, images: torch.Tensor, plan: Plan) -> bool:
    if plan.positions < _INCREMENTAL_MIN_WINDOWS:
        return False
    return _walked(model, plan, images.shape[1]).share <= _INCREMENTAL_MAX_SHARE


@dataclass(frozen=True)
class _Walked:
    """What the projective-field walk says about a model and a plan (``occsens.receptive``)."""

    share: float  # of a full forward's FLOPs that the windows change, averaged
    order: torch.Tensor  # the windows sorted by the shape of their changed box at every layer
    # the largest box of values a window carries through the incremental engine (a layer's largest
    # changed box times its channels), over the largest map a whole image has: what a window costs
    # in memory there, against the one image that sizes brute force's chunks
    footprint: float


_WALKED: dict[tuple, _Walked] = {}


_LAYOUTS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], str]] = weakref.WeakKeyDictionary()


def _layout(model: nn.Module) -> str:
    """``repr(model)``, remembered while the model holds the same module objects (0.2 ms saved per call)."""
    members = tuple(map(id, model.modules()))
    known = _LAYOUTS.get(model)
    if known is None or known[0] != members:
        known = (members, repr(model))
        _LAYOUTS[model] = known
    return known[1]


def _walked(model: nn.Module, plan: Plan, channels: int) -> _Walked:
    """The walk for the plan's windows, remembered per model layout and plan.

    The key is the model's ``repr`` (every layer with its kernel, stride, padding...), which fixes
    the walk; weights do not enter it. A stale entry could only change which engine runs or the
    order of windows, never a result.
    """
    from occsens.receptive import layer_extents

    key = (_layout(model), plan.image_size, plan.windows.numpy().tobytes(), channels)
    if key not in _WALKED:
        layers = layer_extents(model, plan.image_size, plan.windows.reshape(-1, 4).tolist(), channels)
        changed = sum(float((layer.per_pixel * layer.rows * layer.cols).sum()) for layer in layers)
        share = changed / (sum(layer.full for layer in layers) * plan.positions)
        keys = torch.stack([t for layer in layers for t in (layer.rows, layer.cols)], dim=1).tolist()
        order = torch.tensor(sorted(range(plan.positions), key=lambda i: keys[i]), dtype=torch.long)
        carried = max(int(layer.rows.max()) * int(layer.cols.max()) * layer.channels for layer in layers)
        largest = max(layer.size[0] * layer.size[1] * layer.channels for layer in layers)
        if len(_WALKED) >= 64:
            _WALKED.clear()
        _WALKED[key] = _Walked(share, order, carried / largest)
    return _WALKED[key]


# --------------------------------------------------------------------------- the guard

# How far the incremental engine may differ from brute force, in probability: both run the same
# float32 arithmetic per output value, only the summation order inside a convolution differs
# between a full map and a crop (a few units in the last place of logits of order 1). The run-time
# checks and the tests use the same bound.
ENGINE_TOLERANCE = 1e-5


class _GuardFailed(Exception):
    """A run-time check of the incremental engine failed: the call is redone by brute force."""


def _spot_windows(n: int, plan: Plan) -> list[tuple[int, int]]:
    """(image, window) pairs that every incremental call also runs by brute force, chosen by position.

    The top-left window of the first image (at two borders, where padding enters) and the centre
    window of the last image (interior boxes, and images past the first group).
    """
    r, c = plan.grid
    return sorted({(0, 0), (n - 1, (r // 2) * c + c // 2)})


def _clean_forward(
    model: Callable,
    images: torch.Tensor,
    extra: list[torch.Tensor],
    size: int,
    device: torch.device,
    layout: torch.memory_format,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's own softmax on ``images`` (in chunks of ``size``) and on the ``extra`` inputs.

    The extra inputs (the spot-check windows) ride along with the first chunk: no extra model call.
    """
    first = images[:size]
    chunks = [torch.cat([first, *extra])] + [images[i : i + size] for i in range(size, len(images), size)]
    probs = [_forward(model, x.to(device, memory_format=layout), len(x)) for x in chunks]
    spots = probs[0][len(first) :]
    return torch.cat([probs[0][: len(first)], *probs[1:]]), spots


def _check_spots(probs: torch.Tensor, spots: list[tuple[int, int]], expected: torch.Tensor) -> None:
    """Raise ``_GuardFailed`` unless the incremental ``probs`` [N, P, K] match brute force at ``spots``."""
    for (image, window), want in zip(spots, expected, strict=True):
        off = float((probs[image, window] - want).abs().max())
        if not off <= ENGINE_TOLERANCE:
            raise _GuardFailed(
                f"window {window} of image {image} differs from brute force by {off:.2g} "
                f"(tolerance {ENGINE_TOLERANCE:g})"
            )


def _occlude_with_plan(
    model: Callable,
    images: torch.Tensor,
    plan: Plan,
    fill: Any,
    target: Any,
    reveal: bool,
    batch_size: int | None,
    device: Any,
    progress: bool,
    engine: str = "auto",
) -> Occlusion:
    if engine not in ENGINES:
        raise OcclusionError(f"engine {engine!r} is unknown; use one of {', '.join(map(repr, ENGINES))}")
    if not callable(model):
        raise OcclusionError(f"model must be a torch.nn.Module or a callable, got {type(model).__name__}")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0
    ):
        raise OcclusionError(f"batch_size must be a positive int or None, got {batch_size!r}")
    resolved_fill = resolve_fill(fill, images)
    dev = _device(model, device)
    size = int(batch_size) if batch_size is not None else default_batch_size(images, dev)
    from occsens.incremental import supports  # occsens.incremental builds on this module

    unsupported = supports(model, plan.image_size, images.shape[1])
    # channels-last pays on CPU (up to 1.4x); on an H200 in full float32 it made brute force 3x slower
    fast_layout = unsupported is None and dev.type == "cpu"
    layout = torch.channels_last if fast_layout else torch.contiguous_format
    keep_heap_memory()
    with eval_mode(model) as was_training, full_float32():
        if was_training:
            warnings.warn(
                "model was in training mode; occsens runs it in eval mode (dropout off, batch-norm running "
                "statistics) and restores its mode afterwards",
                stacklevel=3,
            )
        incremental = _use_incremental(engine, model, images, plan, reveal, unsupported, dev)
        spots = _spot_windows(len(images), plan) if incremental else []
        spot_inputs = [_occluded(images, plan, resolved_fill, i, w) for i, w in spots]
        clean, spot_probs = _clean_forward(model, images, spot_inputs, size, dev, layout)
        targets = _targets(target, clean)
        probs, used = None, "brute"
        if incremental:
            try:
                probs = _run_incremental(
                    cast(nn.Module, model),
                    images,
                    plan,
                    resolved_fill,
                    size,
                    dev,
                    progress,
                    clean,
                    chunk_given=batch_size is not None,
                )
                _check_spots(probs, spots, spot_probs)
                used = "incremental"
            except Exception as exc:  # noqa: BLE001 - any failure of the fast path: the exact one decides
                reason = (
                    str(exc) if isinstance(exc, _GuardFailed) else f"it raised {type(exc).__name__}: {exc}"
                )
                if engine == "incremental":
                    raise OcclusionError(
                        f"engine 'incremental' failed its check on this model: {reason}; use engine='auto' "
                        "or 'brute'"
                    ) from exc
                warnings.warn(
                    f"incremental engine failed its check ({reason}); running every window in full instead",
                    stacklevel=3,
                )
                probs, used = None, f"brute (fallback: {reason})"
        if probs is None:
            probs = _run(model, images, plan, resolved_fill, reveal, size, dev, progress, fast_layout)
    if probs.shape[2] != clean.shape[1]:
        raise OcclusionError(
            f"model returned {probs.shape[2]} classes for occluded images but {clean.shape[1]} for clean ones"
        )
    r, c = plan.grid
    return Occlusion(
        images,
        clean,
        probs.view(len(images), r, c, -1),
        targets,
        plan,
        reveal,
        resolved_fill.description,
        was_training,
        resolved_fill,
        used,
    )


def occlude(
    model: Callable,
    images: Any,
    *,
    patch: int | Pair,
    stride: int | Pair | None = None,
    fill: Any = 0.5,
    target: Any = None,
    reveal: bool = False,
    batch_size: int | None = None,
    device: Any = None,
    progress: bool = False,
    engine: str = "auto",
) -> Occlusion:
    """Occlusion sensitivity of ``model`` on ``images``: slide a ``patch`` over them, record the softmax.

    Args:
        model: ``torch.nn.Module`` or callable taking float32 ``[B, C, H, W]`` images in [0, 1]
            and returning logits ``[B, K]`` (see ``as_model`` for numpy models).
        images: ``[N, C, H, W]`` or ``[C, H, W]`` tensor or array, float in [0, 1] or uint8.
        patch: window size, int or (height, width).
        stride: step between windows, int or pair, at most the patch; default = patch.
        fill: what replaces the window (see the module docstring): number, per-channel
            sequence, baseline image, "mean", "blur", "noise" or callable(images, mask).
        target: class whose probability the heatmap shows; None = each image's clean prediction.
        reveal: False shows the image minus the window; True shows only the window.
        batch_size: occluded images per model call; None = ``default_batch_size`` (up to 3x that
            many windows per call for the incremental engine, whose windows carry only changed boxes).
        device: where the model runs; None = where its parameters are.
        progress: show a progress bar.
        engine: "auto" (incremental on CPU where it applies and saves time, checked on every call and
            replaced by brute force when a check fails: see "Engines" in the module docstring),
            "brute" (every occluded copy through the whole model) or "incremental" (error if it
            cannot run, or fails its checks).
    """
    x = as_images(images)
    h, w = x.shape[2:]
    plan = plan_for((h, w), patch, stride)
    return _occlude_with_plan(
        model, x, plan, fill, target, bool(reveal), batch_size, device, progress, engine
    )


def notebook_occlude(
    model: Callable,
    images: Any,
    *,
    size: int,
    fill: Any = 0.5,
    target: Any = None,
    batch_size: int | None = None,
    device: Any = None,
    progress: bool = False,
    engine: str = "auto",
) -> Occlusion:
    """Reproduce the widely copied notebook: size x size cells at step size, each greying a 5*size square.

    The square is centred on its cell and clipped at the image border; ``windows`` holds
    the clipped squares, ``plan.cells`` the size x size cells the notebook drew. Use it to
    recompute a notebook's heatmap, class map and counts exactly, and compare with
    ``occlude(model, images, patch=size)``, which greys only the cell.
    """
    x = as_images(images)
    h, w = x.shape[2:]
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size <= 0:
        raise OcclusionError(f"size must be a positive int (the notebook's grid step), got {size!r}")
    s = int(size)
    if s > min(h, w):
        raise OcclusionError(f"size {s} is larger than the image ({h}, {w})")
    plan = notebook_plan((h, w), s)
    return _occlude_with_plan(model, x, plan, fill, target, False, batch_size, device, progress, engine)
