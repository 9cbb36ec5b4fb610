"""notebook_occlude reproduces the widely copied notebook (shared/seed/notes.md), bugs of geometry included.

The notebook, for grid step ``size``: pad the image by 2*size of zeros on each side; at every
size x size cell (step size) write a (5*size)-square of fill whose centre cell is that cell; crop
the padding away; record P(target), the argmax, and count the argmaxes. So the grey square is 5x the
cell, clipped at the border, and the heatmap draws it as the cell. The naive loop below is written
from that description in numpy, with the model called once per cell.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import occsens

from .oracles import LinearOracle, TinyConvNet, Wrapped, dyadic_images
from .reference import as_bytes, notebook_windows

PROB_TOL = 1e-6  # float32 summation order only (see test_engine.py); exact for the linear oracle


def notebook_loop(model, image: np.ndarray, size: int, fill: float = 0.5, target: int | None = None):
    """The notebook loop on one image [C, H, W]: clean, probs [R, C, K], heatmap, classes, counts, inputs."""
    c, h, w = image.shape
    pad = 2 * size
    with torch.no_grad():
        clean = torch.softmax(model(torch.from_numpy(image[None])), dim=1)[0].numpy()
    target = int(clean.argmax()) if target is None else target
    rows, cols = len(range(0, h, size)), len(range(0, w, size))
    probs = np.zeros((rows, cols, len(clean)), dtype=np.float32)
    counts = np.zeros(len(clean), dtype=np.int64)
    inputs = []
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), mode="constant", constant_values=0.0)
    for r, y in enumerate(range(pad, h + pad, size)):
        for k, x in enumerate(range(pad, w + pad, size)):
            tmp = padded.copy()
            # numpy stops a slice at the array's end, so a square past the padding is clipped there.
            tmp[:, y - pad : y + size + pad, x - pad : x + size + pad] = fill
            occluded = np.ascontiguousarray(tmp[:, pad : pad + h, pad : pad + w])
            inputs.append(occluded)
            with torch.no_grad():
                probs[r, k] = torch.softmax(model(torch.from_numpy(occluded[None])), dim=1)[0].numpy()
            counts[probs[r, k].argmax()] += 1
    return clean, probs, probs[..., target], probs.argmax(axis=2), counts, np.stack(inputs)


@example(h=32, w=32, size=4, seed=0, conv=False).via("the question's CIFAR-10 setting")
@example(h=32, w=32, size=5, seed=1, conv=True).via("size does not divide the image")
@example(h=32, w=32, size=3, seed=2, conv=False)
@example(h=13, w=20, size=7, seed=3, conv=True).via("non-square, clipped cells")
@example(h=6, w=6, size=6, seed=4, conv=False).via("size = image: one cell")
@example(h=5, w=3, size=1, seed=5, conv=True).via("size 1")
@given(
    h=st.integers(1, 32),
    w=st.integers(1, 32),
    size=st.integers(1, 32),
    seed=st.integers(0, 2**16),
    conv=st.booleans(),
)
@settings(deadline=None)
def test_notebook_occlude_reproduces_the_notebook_loop(
    h: int, w: int, size: int, seed: int, conv: bool
) -> None:
    size = min(size, h, w)
    images = dyadic_images(2, 3, h, w, seed=seed)
    model = TinyConvNet(3, 4, seed=seed) if conv else LinearOracle(3, h, w, classes=4, seed=seed)
    res = occsens.notebook_occlude(model, images, size=size)
    for n in range(2):
        clean, probs, heatmap, class_map, counts, inputs = notebook_loop(model, images[n].numpy(), size)
        if conv:  # the incremental engine and the notebook sum in different orders
            torch.testing.assert_close(res.probs[n], torch.from_numpy(probs), rtol=0, atol=PROB_TOL)
            torch.testing.assert_close(res.heatmap[n], torch.from_numpy(heatmap), rtol=0, atol=PROB_TOL)
            top2 = torch.from_numpy(probs).topk(2, dim=2).values
            clear = (top2[..., 0] - top2[..., 1]) > 2 * PROB_TOL
            assert torch.equal(res.class_map[n][clear], torch.from_numpy(class_map)[clear])
        else:  # exact logits: the same numbers
            assert torch.equal(res.clean_probs[n], torch.from_numpy(clean))
            assert torch.equal(res.probs[n], torch.from_numpy(probs))
            assert torch.equal(res.heatmap[n], torch.from_numpy(heatmap))
            assert torch.equal(res.class_map[n], torch.from_numpy(class_map))
            assert torch.equal(res.class_counts[n], torch.from_numpy(counts))
            # And occluded(n, r, c) is the notebook's occluded input, bit for bit.
            rows, cols = res.grid
            mine = torch.stack([res.occluded(n, r, c) for r in range(rows) for c in range(cols)])
            assert as_bytes(mine) == as_bytes(torch.from_numpy(inputs))


@example(h=32, w=32, size=4)
@example(h=32, w=32, size=5)
@example(h=7, w=30, size=3)
@given(h=st.integers(1, 40), w=st.integers(1, 40), size=st.integers(1, 40))
@settings(deadline=None)
def test_notebook_windows_are_the_clipped_squares_and_cells_the_grid(h: int, w: int, size: int) -> None:
    """windows[r, c] = the 5*size square around cell (r, c), clipped; cells = the size x size cells."""
    size = min(size, h, w)
    res = occsens.notebook_occlude(lambda x: torch.zeros(len(x), 2), torch.zeros(1, 1, h, w), size=size)
    pairs = notebook_windows((h, w), size)
    rows, cols = -(-h // size), -(-w // size)  # ceil: the last cell may be cut by the border
    assert res.plan.grid == (rows, cols) and len(pairs) == rows * cols
    for square, cell in pairs:
        assert res.windows[square.row, square.col].tolist() == [
            square.top,
            square.left,
            square.height,
            square.width,
        ]
        assert res.plan.cells[cell.row, cell.col].tolist() == [cell.top, cell.left, cell.height, cell.width]
    assert int(res.class_counts.sum()) == rows * cols


def test_question_setting_has_64_cells_and_a_400_pixel_square_inside() -> None:
    """32x32 CIFAR-10 image, size 4: 8 x 8 = 64 cells, the counts sum to 64; an interior cell greys
    20 x 20 = 400 pixels (per channel), a corner one 12 x 12 = 144; true occlusion with patch 4 greys 16."""
    images = dyadic_images(1, 3, 32, 32, seed=0, high=7)  # pixels <= 7/16: never the 0.5 fill
    model = LinearOracle(3, 32, 32, classes=10, seed=0)
    notebook = occsens.notebook_occlude(model, images, size=4)
    true = occsens.occlude(model, images, patch=4)
    assert notebook.grid == (8, 8) == true.grid
    assert int(notebook.class_counts.sum()) == 64
    grey = lambda x: int((x == 0.5).sum()) // 3  # noqa: E731 - pixels (per channel) set to the fill
    assert grey(notebook.occluded(0, 4, 4)) == 400
    assert notebook.windows[4, 4].tolist() == [8, 8, 20, 20]
    assert notebook.plan.cells[4, 4].tolist() == [16, 16, 4, 4]
    assert grey(notebook.occluded(0, 0, 0)) == 144
    assert grey(notebook.occluded(0, 7, 7)) == 144
    assert grey(true.occluded(0, 4, 4)) == 16
    # Up to 400 / 1024 = 39% of the image is grey at an interior cell.
    assert max(grey(notebook.occluded(0, r, c)) for r in range(8) for c in range(8)) / 1024 == pytest.approx(
        0.39, abs=0.005
    )


def test_notebook_runs_the_same_through_both_engines() -> None:
    """The clipped squares differ in size; the incremental engine must still match a full forward."""
    images = dyadic_images(2, 3, 20, 20, seed=9)
    model = TinyConvNet(3, 4, seed=9)
    auto = occsens.notebook_occlude(model, images, size=4)
    brute = occsens.notebook_occlude(Wrapped(model), images, size=4)
    torch.testing.assert_close(auto.probs, brute.probs, rtol=0, atol=PROB_TOL)
