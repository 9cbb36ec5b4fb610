"""Cases: a handful of numbers (sizes, patch, stride, fill, seed) that build images and an oracle model.

The hypothesis strategies draw only those numbers, so a failing case shrinks towards small images,
small windows, one channel and seed 0, and prints as a sentence a person can read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

import torch
from hypothesis import strategies as st
from torch import nn

from occsens.conformance.oracles import (
    DYADIC,
    Box,
    LinearOracle,
    Normalised,
    Recorder,
    RegionDetector,
    dyadic_images,
    object_image,
)

Pair = tuple[int, int]

MAX_SIDE = 9  # images up to 9x9: at most 81 windows each, so a case costs milliseconds
CLASSES = 3  # the drawn cases' linear models; the fixed cases at scale (``SCALE_CASES``) have 10 or 12
STEEP_GAIN = 16  # logits O(10): drops of logits and of probabilities then differ by far more than ATOL
# The normalisation inside the fill property's model: means multiples of 1/4, stds powers of two
# (exact arithmetic), and different per channel so that a fill applied per channel is visible.
NORM_MEAN = (0.5, 0.25, 0.75)
NORM_STD = (0.25, 0.5, 0.25)

MODELS = {
    "linear": "a linear model (softmax of {classes} linear logits)",
    "steep": "a steep linear model (logits of size ~10)",
    "normalised": "a linear model that normalises its input inside forward ((x - mean) / std)",
    "detector": "an object detector that reads only the object's box",
}


@dataclass(frozen=True)
class Case:
    """One case: everything a property needs, as numbers."""

    model: str  # a key of MODELS
    n: int
    channels: int
    size: Pair
    patch: Pair
    stride: Pair
    fill16: int  # the fill is fill16 / 16
    seed: int
    box: Box | None = None  # the detector's object
    classes: int = CLASSES  # the linear models' classes (the detector has 2)

    @property
    def fill(self) -> float:
        return self.fill16 / DYADIC

    def images(self) -> torch.Tensor:
        """float32 [N, C, H, W], multiples of 1/16; for the detector, a bright object on a dark ground."""
        h, w = self.size
        if self.box is not None:
            return torch.cat(
                [object_image(self.channels, h, w, self.box, seed=self.seed + i) for i in range(self.n)]
            )
        return dyadic_images(self.n, self.channels, h, w, seed=self.seed)

    def oracle(self) -> nn.Module:
        """A fresh oracle model (a ``Recorder`` around the normalising one, to see what it was handed)."""
        h, w = self.size
        if self.model == "detector":
            assert self.box is not None
            return RegionDetector(self.box)
        gain = STEEP_GAIN if self.model == "steep" else 1
        linear = LinearOracle(self.channels, h, w, self.classes, seed=self.seed, gain=gain)
        if self.model == "normalised":
            c = self.channels
            return Recorder(Normalised(linear, NORM_MEAN[:c], NORM_STD[:c]))
        return linear

    def describe(self) -> str:
        h, w = self.size
        images = "1 image" if self.n == 1 else f"{self.n} images"
        channels = "1 channel" if self.channels == 1 else f"{self.channels} channels"
        text = (
            f"{images} of {h}x{w} pixels (HxW), {channels}, patch {self.patch}, stride {self.stride}, "
            f"fill {self.fill:g}, {MODELS[self.model].format(classes=self.classes)} (seed {self.seed})"
        )
        if self.box is not None:
            t, left, bh, bw = self.box
            text += f", object at rows {t}..{t + bh - 1}, cols {left}..{left + bw - 1}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fill": self.fill}


def _drawn(
    draw: st.DrawFn, model: str, n: int, size: Pair, patch: Pair, stride: Pair, max_fill16: int = DYADIC
) -> Case:
    """A case of this geometry, drawing the rest in this order: channels, fill, seed."""
    channels, fill16 = draw(st.sampled_from([1, 3])), draw(st.integers(0, max_fill16))
    return Case(model, n, channels, size, patch, stride, fill16, seed=draw(st.integers(0, 255)))


def _axis(draw: st.DrawFn, max_side: int) -> tuple[int, int, int]:
    side = draw(st.integers(1, max_side))
    patch = draw(st.integers(1, side))
    stride = draw(st.integers(1, patch))
    return side, patch, stride


@st.composite
def cases(
    draw: st.DrawFn, *, model: str = "linear", min_n: int = 1, max_n: int = 2, max_side: int = MAX_SIDE
) -> Case:
    """Any geometry: image sides 1..max_side, patch <= image, stride <= patch, per axis."""
    (h, ph, sh), (w, pw, sw) = _axis(draw, max_side), _axis(draw, max_side)
    return _drawn(draw, model, draw(st.integers(min_n, max_n)), (h, w), (ph, pw), (sh, sw))


@st.composite
def grid_cases(draw: st.DrawFn) -> Case:
    """A non-square patch (so a transposed grid shows), a stride of its own, room for the transpose."""
    ph = draw(st.integers(1, 4))
    pw = draw(st.integers(1, 4).filter(lambda v: v != ph))
    sh, sw = draw(st.integers(1, ph)), draw(st.integers(1, pw))
    side = max(ph, pw)
    h, w = side + draw(st.integers(0, 4)), side + draw(st.integers(0, 4))
    return _drawn(draw, "linear", 1, (h, w), (ph, pw), (sh, sw))


@st.composite
def detector_cases(draw: st.DrawFn) -> Case:
    """An object at least 2 * patch - 1 across, at least a patch away from every border.

    Then one object pixel has every covering window wholly inside the object (so its drop is the
    largest any window can have: the object ranks first under any border convention), and a pixel a
    patch or more from the object shares no window with it (its attribution must be 0).
    """
    per_axis = []
    for _ in range(2):
        p = draw(st.integers(1, 3))
        s = draw(st.integers(1, p))
        before, size, after = (
            p + draw(st.integers(0, 2)),
            2 * p - 1 + draw(st.integers(0, 2)),
            p + draw(st.integers(0, 2)),
        )
        per_axis.append((p, s, before, size, after))
    (ph, sh, top, bh, bottom), (pw, sw, left, bw, right) = per_axis
    sides = (top + bh + bottom, left + bw + right)
    # fills up to 12/16, below the object's brightness 1, so hiding it lowers the score
    case = _drawn(draw, "detector", 1, sides, (ph, pw), (sh, sw), max_fill16=12)
    return dataclasses.replace(case, box=(top, left, bh, bw))


# Cases at the scale of real use, checked one by one (not drawn): the drawn cases above stay tiny so a
# failure shrinks, but a mistake that shows only past a few images or classes (an implementation that
# works 4 images at a time and mishandles the last, partial batch) needs real sizes. CIFAR-sized
# 32x32 and a non-square 24x40; 10 and 12 classes; batches of 1, 4, 5, 7, 8 and 9 images, on both
# sides of the 4- and 8-image boundaries implementations batch by. Every stride divides the image
# less the patch, so all border conventions agree and a failure is a mistake, not a choice. Their
# logits stay exact in float32: 3 * 32 * 32 products of multiples of 1/16 sum below 2**24 / 256.
# Together they cost about 1,500 forwards of a linear model: well under a second.
SCALE_CASES = (
    Case("linear", 8, 3, (32, 32), (8, 8), (4, 4), 8, 1, classes=10),
    Case("linear", 1, 3, (32, 32), (4, 4), (4, 4), 0, 2, classes=10),
    Case("linear", 4, 1, (24, 40), (6, 8), (3, 4), 16, 3, classes=12),
    Case("linear", 5, 3, (32, 32), (8, 4), (8, 4), 4, 4, classes=10),
    Case("linear", 7, 3, (24, 40), (6, 8), (6, 8), 12, 5, classes=10),
    Case("linear", 9, 1, (32, 32), (8, 8), (8, 8), 8, 6, classes=12),
)
