"""Hypothesis strategies for the core suite.

Each strategy draws a few numbers (image size, patch, stride, fill, seed) and builds the tensors
from them with a seeded generator, so a failing example prints as a handful of integers and
shrinks towards small images. The ``make_*`` functions build the same objects from explicit
numbers, for ``@example``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from hypothesis import strategies as st
from torch import nn

from occsens.cifar.models import Residual

from .oracles import DYADIC, dyadic_images
from .reference import Window, expected_starts, expected_windows

MAX_SIDE = 40

# Kinds of fill the module docstring lists: a number, one per channel, a baseline image (one for
# all images, or one per image), "mean", "blur", "noise", and a callable.
FILL_KINDS = ("number", "channels", "image", "images", "mean", "blur", "noise", "callable")
# The kinds whose fill values a test can write down exactly (the others are checked with a tolerance).
EXACT_FILL_KINDS = ("number", "channels", "image", "images", "callable")


# ----------------------------------------------------------------------------- callable fills


def invert(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A callable fill: the photographic negative (exact on dyadic pixels)."""
    return 1 - images


def halve(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A callable fill: half the brightness (exact in float32)."""
    return images * 0.5


def checkerboard(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A callable fill that ignores the image: a black-and-white checkerboard."""
    _, _, h, w = images.shape
    ys = torch.arange(h).view(h, 1)
    xs = torch.arange(w).view(1, w)
    return ((ys + xs) % 2).to(images.dtype).expand_as(images).clone()


CALLABLE_FILLS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    f.__name__: f for f in (invert, halve, checkerboard)
}


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Geometry:
    image_size: tuple[int, int]
    patch: tuple[int, int]
    stride: tuple[int, int]

    @property
    def windows(self) -> list[Window]:
        return expected_windows(self.image_size, self.patch, self.stride)


@st.composite
def geometries(
    draw: st.DrawFn,
    *,
    min_side: int = 1,
    max_side: int = MAX_SIDE,
    dividing: bool = False,
    max_windows: int | None = None,
) -> Geometry:
    """Image size (each side min_side..max_side, not necessarily square), patch <= image, stride <= patch.

    ``dividing=True`` draws only geometries where the stride steps exactly from one border to the
    other ((H - ph) % sh == 0, same across), i.e. where no flush border window is needed.
    ``max_windows`` bounds R * C, for tests that run a model once per window.
    """
    per_axis = None if max_windows is None else max(1, math.isqrt(max_windows))
    sides = []
    for _ in range(2):
        if dividing:
            patch = draw(st.integers(min_side, max_side))  # so the image, at least the patch, is >= min_side
            stride = draw(st.integers(1, patch))
            steps = (max_side - patch) // stride
            if per_axis is not None:
                steps = min(steps, per_axis - 1)
            side = patch + stride * draw(st.integers(0, steps))
        else:
            side = draw(st.integers(min_side, max_side))
            patch = draw(st.integers(1, side))
            stride = draw(st.integers(1, patch))
            if per_axis is not None:
                # Keep the drawn patch's proportions but coarsen until at most per_axis windows fit.
                while len(expected_starts(side, patch, stride)) > per_axis:
                    patch = min(side, patch * 2)
                    stride = min(patch, stride * 2)
        sides.append((side, patch, stride))
    (h, ph, sh), (w, pw, sw) = sides
    return Geometry((h, w), (ph, pw), (sh, sw))


# ----------------------------------------------------------------------------- fills and cases


def make_fill(kind: str, *, n: int, channels: int, height: int, width: int, seed: int, value: int = 8) -> Any:
    """A fill of the given kind: numbers are ``value``/16 (0.5 by default), images multiples of 1/16."""
    if kind == "number":
        return value / DYADIC
    if kind == "channels":
        return tuple(((value + 5 * c) % (DYADIC + 1)) / DYADIC for c in range(channels))
    if kind == "image":
        return dyadic_images(1, channels, height, width, seed=seed + 1)[0]
    if kind == "images":
        return dyadic_images(n, channels, height, width, seed=seed + 2)
    if kind in ("mean", "blur", "noise"):
        return kind
    if kind == "callable":
        return list(CALLABLE_FILLS.values())[value % len(CALLABLE_FILLS)]
    raise AssertionError(f"unknown fill kind {kind}")


def fill_images(fill: Any, images: torch.Tensor) -> torch.Tensor | None:
    """The fill as images [N, C, H, W], for the kinds a test can write down exactly; None for the others."""
    n, c, h, w = images.shape
    if isinstance(fill, str):
        return None
    if callable(fill):
        return fill(images.clone(), torch.ones(n, 1, h, w, dtype=torch.bool))
    if isinstance(fill, float | int):
        return torch.full((n, c, h, w), float(fill))
    if isinstance(fill, tuple):
        return torch.tensor(fill, dtype=torch.float32).view(1, c, 1, 1).expand(n, c, h, w).clone()
    tensor = torch.as_tensor(fill, dtype=torch.float32)
    return tensor.expand(n, c, h, w).clone()


@dataclass(frozen=True)
class Case:
    """Images, a window geometry and a fill; ``repr`` shows the numbers, not the pixels."""

    images: torch.Tensor
    geometry: Geometry
    fill: Any
    fill_kind: str
    seed: int

    def __repr__(self) -> str:
        return (
            f"Case(images={tuple(self.images.shape)}, image_size={self.geometry.image_size}, "
            f"patch={self.geometry.patch}, stride={self.geometry.stride}, fill_kind={self.fill_kind!r}, "
            f"fill={self.fill if isinstance(self.fill, float | tuple | str) else '...'}, seed={self.seed})"
        )

    def _repr_pretty_(
        self, printer: Any, cycle: bool
    ) -> None:  # hypothesis prints falsifying examples with this
        printer.text(repr(self))

    @property
    def patch(self) -> tuple[int, int]:
        return self.geometry.patch

    @property
    def stride(self) -> tuple[int, int]:
        return self.geometry.stride

    @property
    def windows(self) -> list[Window]:
        return self.geometry.windows

    @property
    def expected_fill(self) -> torch.Tensor | None:
        return fill_images(self.fill, self.images)


def make_case(
    image_size: tuple[int, int],
    patch: tuple[int, int],
    stride: tuple[int, int] | None = None,
    *,
    fill_kind: str = "number",
    fill_value: int = 8,
    n: int = 1,
    channels: int = 3,
    seed: int = 0,
    dyadic: bool = True,
) -> Case:
    """A Case from explicit numbers (for ``@example``)."""
    h, w = image_size
    if dyadic:
        images = dyadic_images(n, channels, h, w, seed=seed)
    else:
        images = torch.rand(n, channels, h, w, generator=torch.Generator().manual_seed(seed))
    fill = make_fill(fill_kind, n=n, channels=channels, height=h, width=w, seed=seed, value=fill_value)
    return Case(images, Geometry(image_size, patch, stride or patch), fill, fill_kind, seed)


@st.composite
def cases(
    draw: st.DrawFn,
    *,
    max_side: int = MAX_SIDE,
    max_images: int = 2,
    channels: Sequence[int] = (1, 3),
    fill_kinds: Sequence[str] = FILL_KINDS,
    dyadic: bool = True,
    dividing: bool = False,
    max_windows: int | None = None,
) -> Case:
    """Images of a drawn size, count and channel count, a window geometry, a fill of a drawn kind, a seed.

    ``dyadic=True`` makes every pixel and every numeric or image fill a multiple of 1/16 (see
    ``oracles``), so linear oracles compute exactly; otherwise pixels are uniform floats.
    """
    geometry = draw(geometries(max_side=max_side, dividing=dividing, max_windows=max_windows))
    n = draw(st.integers(1, max_images))
    c = draw(st.sampled_from(list(channels)))
    kinds = list(fill_kinds)
    kind = draw(st.sampled_from(kinds))
    value = draw(st.integers(0, DYADIC))
    seed = draw(st.integers(0, 2**16))
    case = make_case(
        geometry.image_size,
        geometry.patch,
        geometry.stride,
        fill_kind=kind,
        fill_value=value,
        n=n,
        channels=c,
        seed=seed,
        dyadic=dyadic,
    )
    return case


# ----------------------------------------------------------------------------- networks


@st.composite
def networks(draw: st.DrawFn, *, channels: int, size: int) -> nn.Sequential:
    """A random stack of supported layers that keeps the map at least 1x1, ending in a linear classifier."""
    layers: list[nn.Module] = []
    c, s = channels, size
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "pool", "residual", "downsample"]))
        if kind == "conv":
            k = draw(st.integers(1, min(5, s)))
            stride = draw(st.integers(1, 2))
            dilation = draw(st.integers(1, 2)) if k > 1 and (k - 1) * 2 + 1 <= s else 1
            pad = draw(st.integers(0, (k - 1) * dilation // 2 + 1))
            out_s = (s + 2 * pad - dilation * (k - 1) - 1) // stride + 1
            if out_s < 1:
                continue
            c_out = draw(st.integers(1, 6))
            layers += [nn.Conv2d(c, c_out, k, stride, pad, dilation), nn.BatchNorm2d(c_out), nn.ReLU()]
            c, s = c_out, out_s
        elif kind == "pool" and s >= 2:
            pool = draw(st.sampled_from([nn.MaxPool2d, nn.AvgPool2d]))
            k = draw(st.integers(2, min(3, s)))
            layers.append(pool(k, draw(st.integers(1, k))))
            s = (s - k) // layers[-1].stride + 1
        elif kind == "residual":
            k = draw(st.sampled_from([1, 3]))
            body = nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2), nn.BatchNorm2d(c), nn.GELU())
            layers.append(Residual(body))
        elif kind == "downsample" and s >= 2:  # ResNet's strided block with a 1x1 conv shortcut
            c_out = draw(st.integers(1, 6))
            body = nn.Sequential(
                nn.Conv2d(c, c_out, 3, 2, 1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.Conv2d(c_out, c_out, 3, 1, 1),
            )
            layers += [Residual(body, shortcut=nn.Conv2d(c, c_out, 1, 2)), nn.ReLU()]
            c, s = c_out, (s - 1) // 2 + 1
    pool = draw(st.sampled_from([nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d]))
    net = nn.Sequential(*layers, pool(1), nn.Flatten(), nn.Linear(c, 3))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):  # random running statistics and affine terms
                m.running_mean.normal_(0, 0.5, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0, 0.2, generator=gen)
    return net.eval()
