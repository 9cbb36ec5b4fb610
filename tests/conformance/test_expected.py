"""The yardstick itself: border conventions and the closed form, against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from occsens.conformance import expected
from occsens.conformance.cases import Case, detector_cases
from occsens.conformance.oracles import LinearOracle, RegionDetector, dyadic_images


@pytest.mark.parametrize(
    ("convention", "windows"),
    [
        # rows of 8, patch 3, stride 2: full windows at 0, 2, 4; 4 + 3 = 7 leaves row 7
        ("flush", [(0, 3), (2, 3), (4, 3), (5, 3)]),  # one more, flush with the border
        ("clipped", [(0, 3), (2, 3), (4, 3), (6, 2)]),  # one more at 6, cut to 2 rows
        ("fit", [(0, 3), (2, 3), (4, 3)]),  # none: row 7 is never occluded
    ],
)
def test_the_three_border_conventions(convention: str, windows: list) -> None:
    assert expected.axis_windows(8, 3, 2, convention) == windows


@pytest.mark.parametrize("convention", list(expected.CONVENTIONS))
def test_where_the_stride_reaches_the_border_the_conventions_agree(convention: str) -> None:
    assert expected.axis_windows(7, 3, 2, convention) == [(0, 3), (2, 3), (4, 3)]


def softmax(z: list[float]) -> list[float]:
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def test_one_window_over_the_whole_image_gives_every_pixel_the_same_drop() -> None:
    model = LinearOracle(1, 2, 3, classes=3, seed=5)
    image = dyadic_images(1, 1, 2, 3, seed=6)[0]
    w, b, s = model.weight[:, 0].tolist(), model.bias.tolist(), model.scale
    pixels = image[0].tolist()

    def logits(px: list[list[float]]) -> list[float]:
        return [
            s * sum(wk[r][c] * px[r][c] for r in range(2) for c in range(3)) + bk
            for wk, bk in zip(w, b, strict=True)
        ]

    clean = softmax(logits(pixels))
    target = max(range(3), key=lambda k: clean[k])
    grey = softmax(logits([[0.5] * 3, [0.5] * 3]))
    drop = clean[target] - grey[target]
    got = expected.expected_one(model, image.double(), 0.5, (2, 3), (2, 3), "flush")
    assert got.flatten().tolist() == pytest.approx([drop] * 6, abs=1e-12)


def test_overlapping_windows_average_their_drops() -> None:
    # one row of 3 pixels, patch 2, stride 1: windows [0, 1] and [1, 2]; pixel 1 is in both
    model = LinearOracle(1, 1, 3, classes=2, seed=1)
    image = dyadic_images(1, 1, 1, 3, seed=2)[0].double()
    drops = []
    for left in (0, 1):
        x = image.clone()
        x[:, :, left : left + 2] = 0.25
        p = torch.softmax(model.logits64(x[None]), dim=1)[0]
        p0 = torch.softmax(model.logits64(image[None]), dim=1)[0]
        t = int(p0.argmax())
        drops.append(float(p0[t] - p[t]))
    got = expected.expected_one(model, image, 0.25, (1, 2), (1, 1), "flush")
    assert got[0].tolist() == pytest.approx([drops[0], (drops[0] + drops[1]) / 2, drops[1]], abs=1e-12)


def test_fit_leaves_uncovered_pixels_at_zero() -> None:
    model = LinearOracle(1, 1, 8, seed=0)
    image = dyadic_images(1, 1, 1, 8, seed=0)[0].double()
    got = expected.expected_one(model, image, 0.5, (1, 3), (1, 2), "fit")
    assert got[0, 7] == 0.0 and (got[0, :7] != 0).all()


def test_a_variant_that_cannot_apply_says_so() -> None:
    model = LinearOracle(1, 2, 5, seed=0)
    image = dyadic_images(1, 1, 2, 5, seed=0)[0].double()
    # patch (2, 4) transposed is (4, 2): taller than the image
    assert (
        expected.expected_one(
            model, image, 0.5, (2, 4), (1, 1), "flush", expected.Variant(transpose_patch=True)
        )
        is None
    )


def test_the_detector_cases_keep_their_promises() -> None:
    """An object pixel whose every window lies inside the object has the largest possible drop."""
    from hypothesis import given, settings

    @given(detector_cases())
    @settings(max_examples=20, deadline=None)
    def check(case: Case) -> None:
        model = case.oracle()
        assert isinstance(model, RegionDetector)
        image = case.images()[0].double()
        top, left, bh, bw = case.box
        h, w = case.size
        (ph, pw) = case.patch
        assert top >= ph and left >= pw and h - (top + bh) >= ph and w - (left + bw) >= pw
        for conv in expected.CONVENTIONS:
            got = expected.expected_one(model, image, case.fill, case.patch, case.stride, conv)
            inside = got[top : top + bh, left : left + bw]
            assert inside.max() >= got.max() - 1e-12  # the object ranks first
            assert got[: max(top - ph + 1, 0)].max(initial=0) == 0.0  # rows a patch above: untouched

    check()
