"""What replaces the window: fills resolved once per call into fill images or a callable.

The rules are stated in ``occsens.engine`` ("Fill").
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from occsens.constants import FILL_NAMES
from occsens.engine import validate
from occsens.engine.plan import Plan
from occsens.errors import OcclusionError, shown

BLUR_SIGMA = 2.0  # pixels; kernel radius 3 sigma. Wide enough to remove 4-8 px detail on 32x32 images.


NOISE_SEED = 0


FillFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Fill:
    """A resolved fill: either one fill image per input image, or a callable applied per chunk."""

    description: str
    per_image: torch.Tensor | None = None  # float32 [N, C, H, W] or [1, C, H, W]
    fn: FillFn | None = None

    def images(
        self, x: torch.Tensor, index: Sequence[int] | torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Fill values for the batch ``x`` (image numbers ``index``) where ``mask`` is True.

        ``mask`` is bool [B, 1, H, W] (or [1, 1, H, W]), built for this chunk of windows only; a fill
        callable receives it as bool [B, 1, H, W], True where its output is used.
        """
        if self.fn is not None:
            full_mask = mask.expand(len(x), 1, *x.shape[2:])
            out = validate.user_call(f"the fill callable {self.description}", self.fn, x, full_mask)
            return _checked_fill(out, x, full_mask, self.description)
        assert self.per_image is not None
        if self.per_image.device != x.device:  # callers move it once with ``on``; this is the fallback
            return self.on(x.device).images(x, index, mask)
        if len(self.per_image) == 1:
            return self.per_image.expand(len(x), -1, -1, -1)
        return self.per_image[torch.as_tensor(index)]

    def on(self, device: torch.device) -> Fill:
        """The same fill with its images on ``device`` (so chunks do not copy them there one by one)."""
        if self.per_image is None or self.per_image.device == device:
            return self
        return Fill(self.description, self.per_image.to(device), self.fn)


def _checked_fill(out: Any, x: torch.Tensor, mask: torch.Tensor, name: str) -> torch.Tensor:
    """A fill callable's output, checked: a real tensor shaped like ``x``, finite and in [0, 1] where
    ``mask`` says it is used (pixel space, as every other fill). Blamed on the callable, not the model."""
    who = f"the fill callable {name}"
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise OcclusionError(f"{who} must return a tensor shaped like its images {tuple(x.shape)}, got {got}")
    if out.device.type == "meta" or out.layout != torch.strided or out.is_complex() or out.is_quantized:
        raise OcclusionError(
            f"{who} must return a dense tensor of real pixel values, got a {out.layout} {out.dtype} tensor "
            f"on {out.device}"
        )
    values = out.to(x.device, x.dtype)
    used = values[mask.expand_as(values)]
    if not torch.isfinite(used).all():
        raise OcclusionError(f"{who} returned NaN or infinite values inside the window; a fill is pixels")
    if len(used) and (float(used.min()) < 0 or float(used.max()) > 1):
        raise OcclusionError(
            f"{who} returned values in [{float(used.min()):.4g}, {float(used.max()):.4g}] inside the window; "
            "a fill is pixel values in [0, 1], applied before the model's normalisation"
        )
    return values


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


def resolve_fill(fill: Any, images: torch.Tensor) -> Fill:
    """Turn the user's ``fill`` into fill images for ``images`` [N, C, H, W]."""
    n, c, h, w = images.shape
    if callable(fill) and not isinstance(fill, torch.Tensor):
        return Fill(validate.callable_name(fill), fn=fill)
    if isinstance(fill, str):
        if fill == "mean":
            return Fill("mean", images.mean(dim=(2, 3), keepdim=True).expand(n, c, h, w).contiguous())
        if fill == "blur":
            return Fill("blur", gaussian_blur(images))
        if fill == "noise":
            gen = torch.Generator().manual_seed(NOISE_SEED)  # one noise image for all: results per image
            return Fill("noise", torch.rand(1, c, h, w, generator=gen))  # do not depend on batch mates
        raise OcclusionError(
            f"fill {fill!r} is unknown; use a number in [0, 1], one per channel, a baseline image, "
            f"a callable, or one of {', '.join(map(repr, FILL_NAMES))}"
        )
    if isinstance(fill, torch.Tensor):
        _real_tensor(fill)
    if isinstance(fill, (torch.Tensor, np.ndarray)) and fill.ndim == 0:
        fill = fill.item()  # a 0-dimensional tensor is a number (a bool or complex one is refused below)
    if isinstance(fill, (bool, np.bool_)) or isinstance(fill, complex):
        raise OcclusionError(f"fill must be a number in [0, 1], got {fill!r}")
    if isinstance(fill, numbers.Real):
        try:
            value = float(fill)
        except OverflowError:  # an int past float's range: outside [0, 1] all the same
            value = math.inf
        if not 0 <= value <= 1:
            raise OcclusionError(
                f"fill {shown(fill)} is outside [0, 1]: it is a pixel value, applied before normalisation"
            )
        return Fill(f"{value:g}", torch.full((1, c, h, w), value))
    tensor = _fill_tensor(fill)
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
    return Fill(description, fill_images.contiguous())


def _real_tensor(fill: torch.Tensor) -> None:
    """Refuse a tensor fill that holds no real pixel values: meta, sparse, quantized, complex or bool."""
    bad = fill.device.type == "meta" or fill.layout != torch.strided or fill.is_quantized
    if bad or fill.is_complex() or fill.dtype == torch.bool:
        raise OcclusionError(
            f"fill must be a dense tensor of real pixel values, got a {fill.layout} {fill.dtype} tensor "
            f"on {fill.device}"
        )


def _fill_tensor(fill: Any) -> torch.Tensor:
    """A sequence, array or tensor fill as float32 on the CPU (shape and values are checked after)."""
    if isinstance(fill, torch.Tensor):
        return fill.detach().cpu().to(torch.float32)
    if isinstance(fill, (str, bytes, dict, set)) or not isinstance(fill, (list, tuple, np.ndarray)):
        raise OcclusionError(
            "fill must be a number in [0, 1], one per channel, a baseline image, a callable or one of "
            f"{', '.join(map(repr, FILL_NAMES))}; got {shown(fill)} ({type(fill).__name__})"
        )
    try:
        array = np.asarray(fill)
        if array.dtype.kind not in "uif":  # bools, strings, objects (ragged lists, ints past 64 bits)
            raise TypeError(array.dtype)
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    except (TypeError, ValueError, OverflowError):
        raise OcclusionError(
            f"fill must hold real numbers in [0, 1] (one per channel, or a baseline image), got {shown(fill)}"
        ) from None


def compose(x: torch.Tensor, fill: torch.Tensor, mask: torch.Tensor, reveal: bool) -> torch.Tensor:
    """The occluded inputs: the fill where the window is (outside it when ``reveal``), the image elsewhere."""
    return torch.where(mask, x, fill) if reveal else torch.where(mask, fill, x)


def occluded_input(
    images: torch.Tensor, plan: Plan, fill: Fill, image: int, window: int, reveal: bool = False
) -> torch.Tensor:
    """[1, C, H, W]: what the model sees for image number ``image`` at window number ``window``.

    The one window's mask [1, 1, H, W] is built from its box (``Plan.window_masks``); nothing of
    the plan's other windows is.
    """
    mask = plan.window_masks([window]).view(1, 1, *plan.image_size).to(images.device)
    x = images[image : image + 1]
    return compose(x, fill.images(x, [image], ~mask if reveal else mask), mask, reveal)
