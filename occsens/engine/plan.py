"""Where the windows go: the plan of full-size windows (and the notebook's clipped squares).

The rules are stated in ``occsens.engine`` ("Windows"); ``tests/engine`` tests them.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from occsens.errors import OcclusionError

NOTEBOOK_SCALE = 5  # the notebook greys a square of side 5 * size around each size x size cell


Pair = tuple[int, int]


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
