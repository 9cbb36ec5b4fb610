"""Where the windows sit.

Spec (occsens.engine, "Windows"): a window is a ``patch`` = (height, width) rectangle. Along each
axis its top-left corners sit at 0, s, 2s, ... as long as the window fits inside the image;
where the last one does not reach the far border, one more window is added flush with the
border. So every window is full-size, lies inside the image, and every pixel is covered at
least once. The windows form an R x C grid.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import occsens

from .reference import expected_count, expected_starts, expected_windows
from .strategies import Geometry, geometries


def constant_model(x: torch.Tensor) -> torch.Tensor:
    """The grid does not depend on the model; this one costs nothing."""
    return torch.zeros(len(x), 2)


def run(geometry: Geometry) -> occsens.Occlusion:
    images = torch.full((1, 1, *geometry.image_size), 0.25)
    return occsens.occlude(constant_model, images, patch=geometry.patch, stride=geometry.stride)


EDGE_CASES = [
    Geometry((32, 32), (4, 4), (4, 4)),  # the question's CIFAR-10 setting: stride = patch, 8 x 8
    Geometry((7, 5), (7, 5), (7, 5)),  # patch = image: one window
    Geometry((6, 9), (6, 9), (1, 1)),  # patch = image, stride 1: still one window
    Geometry((5, 3), (1, 1), (1, 1)),  # 1x1 patch: one window per pixel
    Geometry((1, 1), (1, 1), (1, 1)),  # the smallest image
    Geometry((11, 11), (4, 4), (3, 3)),  # stride does not divide: a flush window at 7
    Geometry((10, 10), (4, 4), (3, 3)),  # stride divides (10 - 4 = 6): no extra window
    Geometry((5, 40), (2, 39), (2, 38)),  # non-square, flush window across only
]


def with_edge_cases(test):
    for geometry in reversed(EDGE_CASES):
        test = example(geometry=geometry)(test)
    return test


@with_edge_cases
@given(geometry=geometries())
@settings(deadline=None)
def test_grid_has_the_documented_number_of_positions(geometry: Geometry) -> None:
    """R, C = the number of regular windows (L - p) // s + 1, plus one if they stop short of the border."""
    (h, w), (ph, pw), (sh, sw) = geometry.image_size, geometry.patch, geometry.stride
    res = run(geometry)
    rows, cols = expected_count(h, ph, sh), expected_count(w, pw, sw)
    assert res.plan.grid == (rows, cols)
    assert tuple(res.windows.shape) == (rows, cols, 4)
    assert tuple(res.probs.shape) == (1, rows, cols, 2)
    assert tuple(res.heatmap.shape) == (1, rows, cols)
    assert int(res.class_counts.sum()) == rows * cols  # every position is counted once


@with_edge_cases
@given(geometry=geometries())
@settings(deadline=None)
def test_windows_sit_at_multiples_of_the_stride_then_flush_with_the_border(geometry: Geometry) -> None:
    """windows[r, c] = (top_r, left_c, ph, pw) with tops 0, s, 2s, ... and the last top H - ph."""
    (h, w), (ph, pw), (sh, sw) = geometry.image_size, geometry.patch, geometry.stride
    windows = run(geometry).windows
    tops, lefts = windows[:, 0, 0].tolist(), windows[0, :, 1].tolist()
    assert tops == expected_starts(h, ph, sh)
    assert lefts == expected_starts(w, pw, sw)
    for r, top in enumerate(tops):
        for c, left in enumerate(lefts):
            assert windows[r, c].tolist() == [top, left, ph, pw]
    for starts, length, size, step in ((tops, h, ph, sh), (lefts, w, pw, sw)):
        # Every start but the last is a multiple of the stride, in order, with no gaps.
        assert starts[:-1] == [i * step for i in range(len(starts) - 1)]
        # The last window always ends at the far border ...
        assert starts[-1] == length - size
        # ... and it is an extra, off-stride window exactly when the stride does not divide the remainder.
        extra = (length - size) % step != 0
        assert (starts[-1] % step != 0) == extra
        if extra:
            assert 0 < starts[-1] - starts[-2] < step


@with_edge_cases
@given(geometry=geometries())
@settings(deadline=None)
def test_every_window_is_full_size_and_inside_the_image(geometry: Geometry) -> None:
    """No window is clipped at the border (Zeiler & Fergus, the notebook) and none hangs over it (padding)."""
    (h, w), (ph, pw) = geometry.image_size, geometry.patch
    windows = run(geometry).windows.reshape(-1, 4)
    assert (windows[:, 2] == ph).all() and (windows[:, 3] == pw).all()
    assert (windows[:, 0] >= 0).all() and (windows[:, 1] >= 0).all()
    assert (windows[:, 0] + ph <= h).all() and (windows[:, 1] + pw <= w).all()
    # Distinct positions: no window is repeated.
    assert len({tuple(win) for win in windows.tolist()}) == len(windows)


@with_edge_cases
@given(geometry=geometries())
@settings(deadline=None)
def test_every_pixel_is_covered_and_coverage_counts_the_windows(geometry: Geometry) -> None:
    """coverage[y, x] = windows containing (y, x), counted here by slicing; never 0 (nothing dropped)."""
    res = run(geometry)
    counted = torch.zeros(geometry.image_size, dtype=torch.int64)
    for win in expected_windows(geometry.image_size, geometry.patch, geometry.stride):
        counted[win.top : win.top + win.height, win.left : win.left + win.width] += 1
    assert counted.min() >= 1
    assert torch.equal(res.coverage, counted)


@with_edge_cases
@given(geometry=geometries(max_side=24))
@settings(deadline=None)
def test_plan_masks_are_exactly_the_window_rectangles(geometry: Geometry) -> None:
    """plan.masks[r * C + c] is True on the rectangle windows[r, c] and nowhere else; cells = windows."""
    res = run(geometry)
    plan = res.plan
    assert torch.equal(plan.cells, plan.windows)  # sliding windows are drawn where they are filled
    _, cols = plan.grid
    for win in expected_windows(geometry.image_size, geometry.patch, geometry.stride):
        expected = torch.zeros(geometry.image_size, dtype=torch.bool)
        expected[win.top : win.top + win.height, win.left : win.left + win.width] = True
        assert torch.equal(plan.masks[win.row * cols + win.col], expected), win


@given(length=st.integers(1, 200), data=st.data())
def test_closed_form_count_agrees_with_the_loop(length: int, data: st.DataObject) -> None:
    """The two readings of the rule in tests/engine/reference.py agree (either may be the oracle)."""
    size = data.draw(st.integers(1, length))
    step = data.draw(st.integers(1, size))
    assert len(expected_starts(length, size, step)) == expected_count(length, size, step)


@pytest.mark.parametrize(
    ("length", "size", "step", "starts"),
    [
        (32, 4, 4, [0, 4, 8, 12, 16, 20, 24, 28]),
        (32, 5, 5, [0, 5, 10, 15, 20, 25, 27]),  # 25 + 5 = 30 < 32: flush window at 27
        (10, 4, 3, [0, 3, 6]),  # 6 + 4 = 10 reaches the border: no extra window
        (11, 4, 3, [0, 3, 6, 7]),
        (7, 7, 3, [0]),  # patch = image
        (3, 1, 1, [0, 1, 2]),  # 1x1 patch
        (40, 39, 38, [0, 1]),
    ],
)
def test_window_starts_worked_examples(length: int, size: int, step: int, starts: list[int]) -> None:
    """Hand-worked positions along one axis, checked on both axes of a non-square image."""
    res = run(Geometry((length, 2), (size, 1), (step, 1)))
    assert res.windows[:, 0, 0].tolist() == starts
    res = run(Geometry((2, length), (1, size), (1, step)))
    assert res.windows[0, :, 1].tolist() == starts


def test_patch_and_stride_accept_an_int_and_stride_defaults_to_the_patch() -> None:
    images = torch.full((1, 1, 13, 9), 0.25)
    pair = occsens.occlude(constant_model, images, patch=(3, 3), stride=(3, 3))
    assert torch.equal(occsens.occlude(constant_model, images, patch=3).windows, pair.windows)
    assert torch.equal(occsens.occlude(constant_model, images, patch=3, stride=3).windows, pair.windows)
    rect = occsens.occlude(constant_model, images, patch=(4, 2))
    assert rect.windows[:, 0, 0].tolist() == [0, 4, 8, 9]
    assert rect.windows[0, :, 1].tolist() == [0, 2, 4, 6, 7]
