"""Where the windows go: the plan of full-size windows (and the notebook's clipped squares).

The rules are stated in ``occsens.engine`` ("Windows"); ``tests/engine`` tests them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from occsens.errors import OcclusionError, integer, integral, shown

NOTEBOOK_SCALE = 5  # the notebook greys a square of side 5 * size around each size x size cell


Pair = tuple[int, int]


@dataclass(frozen=True, eq=False)
class Plan:
    """Where the windows are: computed once per (image size, patch, stride) and cached (``PLAN_CACHE_BYTES``).

    ``windows[r, c]`` is the (top, left, height, width) rectangle that is filled at grid
    position (r, c); ``cells[r, c]`` is the rectangle that position is drawn as (the same
    as the window, except for the notebook geometry, where a 5*size square is drawn as a
    size x size cell).

    A plan holds only these boxes (32 bytes per window, 64 with distinct cells): per-window
    pixel masks are built on demand, a chunk at a time (``window_masks``), never kept.
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

    @property
    def nbytes(self) -> int:
        """Bytes held by the plan's tensors (``cells`` counted once where it is ``windows``)."""
        extra = (
            0 if self.cells.untyped_storage().data_ptr() == self.windows.untyped_storage().data_ptr() else 1
        )
        return self.windows.nbytes + extra * self.cells.nbytes

    def window_masks(self, index: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """bool [len(index), H, W]: True inside each of the windows numbered ``index`` (row-major, r * C + c).

        Built from the boxes on every call (``box_masks``): ``len(index) * H * W`` bytes, so take a
        chunk of windows at a time.
        """
        idx = torch.as_tensor(index, dtype=torch.int64).cpu()
        return box_masks(self.windows.reshape(-1, 4)[idx], self.image_size)

    @property
    def masks(self) -> torch.Tensor:
        """bool [R*C, H, W]: True inside each window. Built afresh on every access and not kept.

        Costs ``R * C * H * W`` bytes: 2.4 GB for a 224x224 image with patch 8 stride 1 (47,089
        windows). Prefer ``window_masks`` on a chunk of windows, or the boxes in ``windows``.
        """
        return self.window_masks(torch.arange(self.positions))

    @property
    def coverage(self) -> torch.Tensor:
        """int64 [H, W]: how many windows cover each pixel. Counted from the boxes on each access, O(H*W)."""
        return box_sums(torch.ones(1, self.positions, dtype=torch.int64), self.windows, self.image_size)[0]


def box_masks(boxes: torch.Tensor, image_size: Pair) -> torch.Tensor:
    """bool [k, H, W], on ``boxes``' device: True inside each (top, left, height, width) row of ``boxes``."""
    h, w = image_size
    ys = torch.arange(h, device=boxes.device).view(1, h, 1)
    xs = torch.arange(w, device=boxes.device).view(1, 1, w)
    top, left = boxes[:, 0].view(-1, 1, 1), boxes[:, 1].view(-1, 1, 1)
    bottom, right = top + boxes[:, 2].view(-1, 1, 1), left + boxes[:, 3].view(-1, 1, 1)
    return ((ys >= top) & (ys < bottom)) & ((xs >= left) & (xs < right))  # [k, H, 1] & [k, 1, W]


def _grid_axes(windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The (start, length) of each row [R, 2] and column [C, 2] when the boxes are a product grid, else None.

    Both constructors make one: a window's top and height depend only on its row, its left and
    width only on its column (the notebook's clipped squares included).
    """
    rows, cols = windows[:, :1, 0::2], windows[:1, :, 1::2]  # [R, 1, 2] (top, height), [1, C, 2]
    same_rows = torch.equal(windows[..., 0::2], rows.expand_as(windows[..., 0::2]))
    if not (same_rows and torch.equal(windows[..., 1::2], cols.expand_as(windows[..., 1::2]))):
        return None
    return rows[:, 0], cols[0]


def _cover(spans: torch.Tensor, length: int, dtype: torch.dtype) -> torch.Tensor:
    """[length, S]: 1 where pixel i lies in span s = (start, length), else 0."""
    i = torch.arange(length).view(-1, 1)
    return ((i >= spans[:, 0]) & (i < spans[:, 0] + spans[:, 1])).to(dtype)


def box_sums(values: torch.Tensor, windows: torch.Tensor, image_size: Pair) -> torch.Tensor:
    """[N, H, W]: ``out[n, y, x]`` = sum of ``values[n, p]`` over the windows p (row-major) containing (y, x).

    ``values`` is [N, R*C] (float64 or int64; the result has its dtype), ``windows`` the plan's
    [R, C, 4] boxes. Never builds per-window masks: extra memory is O(N * H * W), whatever the
    number of windows. Integers go through a 2-D difference array (+v/-v at each box's corners,
    then a cumulative sum along each axis): exact. Floats on a product grid (every plan the
    constructors make) take two products with 0/1 matrices, [H, R] down and [W, C] across, so
    each pixel sums exactly the terms of its covering windows, as the dense ``values @ masks``
    does, only in another order; floats on other boxes take the difference array, whose running
    sums add and cancel terms of windows that do not cover the pixel (rounding of order
    (H + W) * eps * max coverage * max |value|).
    """
    h, w = image_size
    r, c = windows.shape[:2]
    n = len(values)
    grid = values.reshape(n, r, c)
    axes = _grid_axes(windows) if values.dtype.is_floating_point else None
    if axes is not None:
        down, across = _cover(axes[0], h, values.dtype), _cover(axes[1], w, values.dtype)
        return down @ grid @ across.T  # [H, R] @ [N, R, C] @ [C, W]
    win = windows.reshape(-1, 4)
    top, left = win[:, 0], win[:, 1]
    bottom, right = top + win[:, 2], left + win[:, 3]
    diff = values.new_zeros(n, (h + 1) * (w + 1))
    for ys, xs, sign in ((top, left, 1), (top, right, -1), (bottom, left, -1), (bottom, right, 1)):
        diff.index_add_(1, ys * (w + 1) + xs, values * sign)
    return diff.view(n, h + 1, w + 1).cumsum(dim=2).cumsum(dim=1)[:, :h, :w]


def _starts(length: int, size: int, step: int) -> list[int]:
    starts = list(range(0, length - size + 1, step))
    if starts[-1] + size < length:
        starts.append(length - size)  # one more window, flush with the border
    return starts


def plan_for(image_size: Pair, patch: Any, stride: Any = None) -> Plan:
    """Validate ``patch`` and ``stride`` (default: the patch) against the image and return their plan."""
    h, w = image_size
    patch_hw = checked_pair(patch, "patch")
    stride_hw = patch_hw if stride is None else checked_pair(stride, "stride")
    if patch_hw[0] > h or patch_hw[1] > w:
        raise OcclusionError(f"patch {patch_hw} is larger than the image ({h}, {w})")
    if stride_hw[0] > patch_hw[0] or stride_hw[1] > patch_hw[1]:
        raise OcclusionError(
            f"stride {stride_hw} is larger than the patch {patch_hw}: pixels between windows would never be "
            "occluded; use a stride of at most the patch"
        )
    return sliding_plan((h, w), patch_hw, stride_hw)


# The plan cache holds at most this many bytes of plans' tensors. A plan is 32 bytes per window (64 for the
# notebook, whose cells differ from its windows): the largest common case, 224x224 with patch 8 stride 1
# (47,089 windows), is 1.5 MB, so 64 MB keeps about 40 of those, or thousands of CIFAR-sized plans
# (32x32, patch 4 stride 1: 841 windows, 27 KB), while a long run over many image sizes stays within
# 64 MB instead of growing with every size (the old 64-entry cache also kept each plan's dense masks).
PLAN_CACHE_BYTES = 64 << 20


class _PlanCache:
    """Least-recently-used plans by key, their total ``Plan.nbytes`` at most ``budget``; thread-safe."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._plans: OrderedDict[tuple, Plan] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple, build: Callable[[], Plan]) -> Plan:
        with self._lock:
            plan = self._plans.get(key)
            if plan is not None:
                self._plans.move_to_end(key)
                return plan
        plan = build()  # outside the lock: a large plan takes a while, other sizes need not wait
        size = plan.nbytes
        if size > self.budget:
            return plan  # never kept: it would evict everything else and still not fit
        with self._lock:
            if key in self._plans:  # another thread built it meanwhile: everyone shares the first
                self._plans.move_to_end(key)
                return self._plans[key]
            self._plans[key] = plan
            self._bytes += size
            while self._bytes > self.budget:
                _, old = self._plans.popitem(last=False)
                self._bytes -= old.nbytes
            return plan

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._plans)

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()
            self._bytes = 0


_PLANS = _PlanCache(PLAN_CACHE_BYTES)


def plan_cache_bytes() -> int:
    """Bytes of plan tensors the plan cache holds now (at most ``PLAN_CACHE_BYTES``)."""
    return _PLANS.nbytes


def sliding_plan(image_size: Pair, patch: Pair, stride: Pair) -> Plan:
    """Full-size windows at 0, s, 2s, ... plus one flush with the far border where needed."""
    size, p, s = _ints(image_size), _ints(patch), _ints(stride)
    return _PLANS.get(("sliding", size, p, s), lambda: _sliding_plan(size, p, s))


def _sliding_plan(image_size: Pair, patch: Pair, stride: Pair) -> Plan:
    tops = torch.tensor(_starts(image_size[0], patch[0], stride[0]), dtype=torch.int64)
    lefts = torch.tensor(_starts(image_size[1], patch[1], stride[1]), dtype=torch.int64)
    r, c = len(tops), len(lefts)
    windows = torch.stack(  # [R, C, 4]: (top_r, left_c, ph, pw)
        [tops.view(r, 1).expand(r, c), lefts.view(1, c).expand(r, c)]
        + [torch.full((r, c), size, dtype=torch.int64) for size in patch],
        dim=2,
    )
    return Plan(image_size, patch, stride, windows, windows, "sliding")


def notebook_plan(image_size: Pair, size: int) -> Plan:
    """The notebook's geometry: size x size cells at step size, each greying a 5*size square, clipped."""
    hw, s = _ints(image_size), int(size)
    return _PLANS.get(("notebook", hw, s), lambda: _notebook_plan(hw, s))


def _notebook_plan(image_size: Pair, size: int) -> Plan:
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


def _ints(pair: Sequence[int]) -> Pair:
    """A cache key's pair as plain ints (a torch.Size or numpy ints hash and print differently)."""
    return (int(pair[0]), int(pair[1]))


def checked_pair(value: Any, name: str) -> Pair:
    """A positive int or a (height, width) pair of them, each at most ``INT64_MAX``."""
    valid = "a positive int or a (height, width) pair"
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2 or any(integral(v) is None for v in value):
            raise OcclusionError(f"{name} must be {valid}, got {shown(value)}")
        pair = (integer(value[0], name, valid=valid), integer(value[1], name, valid=valid))
    else:
        one = integer(value, name, valid=valid)
        pair = (one, one)
    if min(pair) <= 0:
        raise OcclusionError(f"{name} must be positive, got {shown(value)}")
    return pair
