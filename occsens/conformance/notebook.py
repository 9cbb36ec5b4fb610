"""The widely shared notebook's loop, written again from its description (``shared/seed/notes.md``).

For grid step ``size`` it pads the image with ``2 * size`` zeros on every side, and at every
``size x size`` cell (step ``size``, from the top left) writes a grey square of side ``5 * size``
whose centre cell is that cell, then crops the padding away: the square is 5x the cell, clipped at
the border. It records the probability of the correct class (``heatmap``, drawn on the cell) and the
most probable class (``class_pixels``) per cell, and counts those classes. Then it prints its
summary, where the probability shown is ``np.amax(out)``: the top probability of the *last*
occluded input, not of the image (the question's doubt 1).

The notebook reads the correct class from a label (``train_y[4]``, another sample's: bug 2). The
contract here has no labels, so ``correct_class`` defaults to the image's clean prediction, the
charitable reading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import numpy as np
import torch

from occsens.conformance.results import Unsupported


@dataclass
class NotebookRun:
    """What the notebook's loop leaves behind for one image."""

    pred: np.ndarray  # [K] probabilities of the unoccluded image
    out: np.ndarray  # [K] probabilities of the LAST occluded input (what the print reads)
    correct_class: int
    heatmap: np.ndarray  # [H, W] P(correct class | occluded), each cell's value on its pixels
    class_pixels: np.ndarray  # [H, W] the most probable class, per cell
    counters: dict[int, int]  # class -> number of cells where it is the most probable, first-seen order


def _predict(model: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray) -> np.ndarray:
    """``model.predict``: softmax probabilities of a batch [B, C, H, W] as numpy."""
    with torch.no_grad():
        return torch.softmax(
            model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))), dim=1
        ).numpy()


def notebook_loop(
    model: Callable[[torch.Tensor], torch.Tensor],
    data: np.ndarray,
    size: int,
    *,
    fill: float = 0.5,
    correct_class: int | None = None,
    print_to: TextIO | None = None,
) -> NotebookRun:
    """The notebook on one image ``data`` [C, H, W]; with ``print_to``, its print as well."""
    c, h, w = data.shape
    pad = 2 * size
    pred = _predict(model, data[None])[0]
    if correct_class is None:
        correct_class = int(np.argmax(pred))
    heatmap = np.zeros((h, w), np.float32)
    class_pixels = np.zeros((h, w), np.int16)
    counters: dict[int, int] = {}
    padded = np.pad(data, ((0, 0), (pad, pad), (pad, pad)), mode="constant", constant_values=0.0)
    out = pred
    for y in range(pad, h + pad, size):
        for x in range(pad, w + pad, size):
            tmp = padded.copy()
            tmp[:, y - pad : y + size + pad, x - pad : x + size + pad] = fill  # the 5*size square
            occluded = tmp[:, pad : pad + h, pad : pad + w]
            out = _predict(model, occluded[None])[0]
            top, left = y - pad, x - pad
            heatmap[top : top + size, left : left + size] = out[correct_class]
            class_pixels[top : top + size, left : left + size] = int(np.argmax(out))
            counters[int(np.argmax(out))] = counters.get(int(np.argmax(out)), 0) + 1
    if print_to is not None:
        print(f"Correct class: [{correct_class}]", file=print_to)
        print(f"Predicted class: {np.argmax(pred)} (prob: {np.amax(out)})", file=print_to)
        print("Predictions:", file=print_to)
        for class_id, count in counters.items():
            print(f"Class id {class_id}: Count {count}", file=print_to)
    return NotebookRun(pred, out, correct_class, heatmap, class_pixels, counters)


def notebook_occlusion(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    *,
    patch: tuple[int, int],
    stride: tuple[int, int],
    fill: float,
    print_to: TextIO | None = None,
) -> np.ndarray:
    """The notebook as an implementation of the contract: ``patch = stride = (size, size)`` only.

    What it maps: the notebook's one number ``size`` is its grid step and its cell, so only a square
    patch stepping by its own size is expressible (anything else raises ``Unsupported``). The notebook
    draws ``heatmap`` (P(correct class | occluded) on each cell) and prints ``np.amax(out)`` as the
    image's probability; Captum's meaning (how far the probability fell) read off that print and
    figure is ``np.amax(out) - heatmap``, which is what this returns per pixel: the 5x square and the
    stale probability both in place, as a reader of the notebook would take them.
    """
    if patch[0] != patch[1] or tuple(stride) != tuple(patch):
        raise Unsupported(
            f"the notebook has one size (cell = step); patch {patch} with stride {stride} is not one"
        )
    arrays = images.detach().cpu().numpy()
    runs = [notebook_loop(model, x, patch[0], fill=fill, print_to=print_to) for x in arrays]
    return np.stack([np.amax(r.out) - r.heatmap for r in runs])
