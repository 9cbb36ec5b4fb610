"""What Captum does at the border, as the engine's docstring states it ("Windows", rejected alternatives).

Spec (Captum 0.9 ``Occlusion``, observed): along each axis of length L, with window p and stride s,
its windows start at 0, s, 2s, ..., k*s for k = 0 .. ceil((L - p) / s), so the corners go on until
the image is covered; a window that would hang over the far border is cut there (height or width
L - k*s). Every pixel is covered; the last windows are smaller than the others. occsens instead adds
one full-size window flush with the border (``test_grid.py``).

If a Captum release changes this, these tests fail and the docstring's comparison needs rewriting.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import occsens

captum_attr = pytest.importorskip("captum.attr", reason="Captum is in the test extra")


def captum_rule(length: int, patch: int, stride: int) -> list[tuple[int, int]]:
    """(start, extent) of Captum's windows along one axis, as the module docstring states the rule."""
    count = math.ceil((length - patch) / stride) + 1
    return [(k * stride, min(patch, length - k * stride)) for k in range(count)]


def captum_windows(h: int, w: int, patch: int, stride: int) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of every window Captum fills, read from what its model calls see.

    The image is all ones and the baseline 0, so the zeros in each occluded copy are the window; the
    recording model checks they form a full rectangle before noting it.
    """
    seen: list[tuple[int, int, int, int]] = []

    def model(x: torch.Tensor) -> torch.Tensor:
        for image in x:
            zeros = (image[0] == 0).nonzero()
            if len(zeros):
                top, left = (int(v) for v in zeros.min(dim=0).values)
                bottom, right = (int(v) + 1 for v in zeros.max(dim=0).values)
                assert len(zeros) == (bottom - top) * (right - left), "the filled region is not a rectangle"
                seen.append((top, left, bottom - top, right - left))
        return x.sum(dim=(1, 2, 3)).unsqueeze(1)

    captum_attr.Occlusion(model).attribute(
        torch.ones(1, 1, h, w),
        sliding_window_shapes=(1, patch, patch),
        strides=(1, stride, stride),
        baselines=0.0,
    )
    return seen


def expected(h: int, w: int, patch: int, stride: int) -> list[tuple[int, int, int, int]]:
    return [
        (top, left, height, width)
        for top, height in captum_rule(h, patch, stride)
        for left, width in captum_rule(w, patch, stride)
    ]


@pytest.mark.parametrize(
    "size, patch, stride, starts, extents",
    [
        # the two settings the engine docstring's correction was checked at, written out by hand
        (11, 4, 3, [0, 3, 6, 9], [4, 4, 4, 2]),
        (32, 8, 5, [0, 5, 10, 15, 20, 25], [8, 8, 8, 8, 8, 7]),
        (10, 4, 3, [0, 3, 6], [4, 4, 4]),  # the stride divides L - p: nothing cut
    ],
)
def test_captums_last_window_is_cut_at_the_border(
    size: int, patch: int, stride: int, starts: list[int], extents: list[int]
) -> None:
    windows = captum_windows(size, size, patch, stride)
    assert sorted({(top, height) for top, _, height, _ in windows}) == list(zip(starts, extents, strict=True))
    assert sorted(windows) == sorted(expected(size, size, patch, stride))


@st.composite
def captum_geometries(draw: st.DrawFn, *, max_side: int = 20) -> tuple[int, int, int, int]:
    """(h, w, patch, stride) that Captum accepts: the window fits, and the stride is at most the window."""
    patch = draw(st.integers(1, 6))
    return (
        draw(st.integers(patch, max_side)),
        draw(st.integers(patch, max_side)),
        patch,
        draw(st.integers(1, patch)),
    )


@example(geometry=(11, 11, 4, 3))
@example(geometry=(32, 32, 8, 5))
@example(geometry=(9, 9, 9, 1))  # window = image: one window
@given(geometry=captum_geometries())
@settings(deadline=None, max_examples=20)  # 20: each example runs Captum once; the rule is two lines
def test_captum_covers_every_pixel_with_the_windows_the_rule_gives(geometry: tuple[int, ...]) -> None:
    h, w, patch, stride = geometry
    windows = captum_windows(h, w, patch, stride)
    assert sorted(windows) == sorted(expected(h, w, patch, stride))
    covered = torch.zeros(h, w, dtype=torch.bool)
    for top, left, height, width in windows:
        covered[top : top + height, left : left + width] = True
    assert covered.all()


def test_where_captum_cuts_its_last_window_occsens_places_a_full_one_flush_with_the_border() -> None:
    """11 pixels, patch 4, stride 3: Captum's last window is rows 9-10 (2 high); occsens' is rows 7-10."""
    res = occsens.occlude(lambda x: torch.zeros(len(x), 2), torch.ones(1, 1, 11, 11), patch=4, stride=3)
    assert res.windows[:, 0, 0].tolist() == [0, 3, 6, 7]
    assert (res.windows[..., 2:] == 4).all()
    assert captum_windows(11, 11, 4, 3)[-1] == (9, 9, 2, 2)
