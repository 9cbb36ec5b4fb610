"""The documented semantics written out again, the slow and obvious way, for the tests to compare against.

Nothing here imports occsens: each function is a plain reading of one sentence of the
``occsens.engine`` docstring (or of the notebook in ``shared/seed/notes.md``), built with Python
loops and tensor slicing, never with the engine's masks or composition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch


def expected_starts(length: int, size: int, step: int) -> list[int]:
    """Starts on one axis: 0, s, 2s, ... while the window fits, then one flush with the border as needed."""
    starts = []
    start = 0
    while start + size <= length:
        starts.append(start)
        start += step
    if starts[-1] + size < length:  # the last regular window stops short of the border
        starts.append(length - size)
    return starts


def expected_count(length: int, size: int, step: int) -> int:
    """The number of windows along one axis, in closed form: regular ones, plus one flush one if needed."""
    regular = (length - size) // step + 1
    return regular + (1 if (length - size) % step else 0)


@dataclass(frozen=True)
class Window:
    row: int
    col: int
    top: int
    left: int
    height: int
    width: int

    def contains(self, y: int, x: int) -> bool:
        return self.top <= y < self.top + self.height and self.left <= x < self.left + self.width

    def overlap(self, top: int, left: int, height: int, width: int) -> int:
        """Pixels shared with the rectangle (top, left, height, width)."""
        dy = min(self.top + self.height, top + height) - max(self.top, top)
        dx = min(self.left + self.width, left + width) - max(self.left, left)
        return max(dy, 0) * max(dx, 0)


def expected_windows(
    image_size: tuple[int, int], patch: tuple[int, int], stride: tuple[int, int]
) -> list[Window]:
    """The documented sliding windows, row-major over the R x C grid."""
    tops = expected_starts(image_size[0], patch[0], stride[0])
    lefts = expected_starts(image_size[1], patch[1], stride[1])
    return [
        Window(r, c, t, left, patch[0], patch[1]) for r, t in enumerate(tops) for c, left in enumerate(lefts)
    ]


def notebook_windows(image_size: tuple[int, int], size: int) -> list[tuple[Window, Window]]:
    """The notebook's (greyed square, drawn cell) pairs: a clipped 5*size square around each cell."""
    h, w = image_size
    pairs = []
    for r, y in enumerate(range(0, h, size)):
        for c, x in enumerate(range(0, w, size)):
            t0, l0, t1, l1 = (
                max(0, y - 2 * size),
                max(0, x - 2 * size),
                min(h, y + 3 * size),
                min(w, x + 3 * size),
            )
            square = Window(r, c, t0, l0, t1 - t0, l1 - l0)
            cell = Window(r, c, y, x, min(size, h - y), min(size, w - x))
            pairs.append((square, cell))
    return pairs


def occlude_by_slicing(
    image: torch.Tensor, fill: torch.Tensor, window: Window, reveal: bool = False
) -> torch.Tensor:
    """One occluded image [C, H, W]: the window copied from ``fill`` (everything else when revealing)."""
    t, left, h, w = window.top, window.left, window.height, window.width
    if reveal:
        out = fill.clone()
        out[:, t : t + h, left : left + w] = image[:, t : t + h, left : left + w]
    else:
        out = image.clone()
        out[:, t : t + h, left : left + w] = fill[:, t : t + h, left : left + w]
    return out


@dataclass
class Reference:
    """What a plain per-position loop computes; every view derived by hand from the per-window forwards."""

    clean_probs: torch.Tensor  # [N, K]
    probs: torch.Tensor  # [N, R, C, K]
    target: torch.Tensor  # [N]
    heatmap: torch.Tensor  # [N, R, C]
    drop: torch.Tensor  # [N, R, C]
    class_map: torch.Tensor  # [N, R, C]
    class_counts: torch.Tensor  # [N, K]
    attribution: torch.Tensor  # [N, H, W], float64


def reference_loop(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    windows: list[Window],
    fill: torch.Tensor,
    *,
    target: Iterable[int] | None = None,
    reveal: bool = False,
) -> Reference:
    """One model call per (image, window), each on one image built by slicing; ``fill`` is [N, C, H, W]."""
    n, _, height, width = images.shape
    rows = 1 + max(w.row for w in windows)
    cols = 1 + max(w.col for w in windows)
    with torch.no_grad():
        clean = torch.stack([torch.softmax(model(images[i : i + 1]), dim=1)[0] for i in range(n)])
        k = clean.shape[1]
        probs = torch.empty(n, rows, cols, k)
        for i in range(n):
            for win in windows:
                x = occlude_by_slicing(images[i], fill[i], win, reveal)
                probs[i, win.row, win.col] = torch.softmax(model(x.unsqueeze(0)), dim=1)[0]
    targets = clean.argmax(dim=1) if target is None else torch.tensor(list(target), dtype=torch.int64)
    heatmap = torch.empty(n, rows, cols)
    drop = torch.empty(n, rows, cols)
    class_map = torch.empty(n, rows, cols, dtype=torch.int64)
    counts = torch.zeros(n, k, dtype=torch.int64)
    total = torch.zeros(n, height, width, dtype=torch.float64)
    covered = torch.zeros(height, width, dtype=torch.float64)
    for i in range(n):
        t = int(targets[i])
        for win in windows:
            p = probs[i, win.row, win.col]
            heatmap[i, win.row, win.col] = p[t]
            drop[i, win.row, win.col] = clean[i, t] - p[t]
            best = int(p.argmax())
            class_map[i, win.row, win.col] = best
            counts[i, best] += 1
            total[i, win.top : win.top + win.height, win.left : win.left + win.width] += float(
                drop[i, win.row, win.col]
            )
    for win in windows:
        covered[win.top : win.top + win.height, win.left : win.left + win.width] += 1
    return Reference(clean, probs, targets, heatmap, drop, class_map, counts, total / covered)


def spread_to_pixels(drop: torch.Tensor, windows: list[Window], image_size: tuple[int, int]) -> torch.Tensor:
    """Each pixel's mean drop over the windows covering it, in float64, by looping over windows."""
    total = torch.zeros(drop.shape[0], *image_size, dtype=torch.float64)
    covered = torch.zeros(*image_size, dtype=torch.float64)
    for win in windows:
        total[:, win.top : win.top + win.height, win.left : win.left + win.width] += (
            drop[:, win.row, win.col].double().view(-1, 1, 1)
        )
        covered[win.top : win.top + win.height, win.left : win.left + win.width] += 1
    return total / covered


def reference_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur in float64 with numpy: a separable kernel of radius min(ceil(3 sigma), H-1, W-1).

    The radius and edge rule are the ones ``occsens.engine.gaussian_blur`` documents (the module docstring
    only says "a Gaussian blur of the image, sigma BLUR_SIGMA"); np.pad's "reflect" mirrors without
    repeating the edge pixel.
    """
    arr = images.double().numpy()
    _, _, h, w = arr.shape
    radius = max(1, min(int(np.ceil(3 * sigma)), h - 1, w - 1))
    xs = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (xs / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(arr, ((0, 0), (0, 0), (radius, radius), (radius, radius)), mode="reflect")
    rows = sum(kernel[j] * padded[:, :, :, j : j + w] for j in range(2 * radius + 1))
    out = sum(kernel[i] * rows[:, :, i : i + h, :] for i in range(2 * radius + 1))
    return torch.from_numpy(np.clip(out, 0, 1))


def as_bytes(images: torch.Tensor) -> Counter:
    """The multiset of images [B, C, H, W] as float32 bytes: what a model saw, in any order, bit for bit."""
    return Counter(x.contiguous().numpy().tobytes() for x in images.to(torch.float32))
