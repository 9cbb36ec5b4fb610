"""Oracle models whose answer is known in closed form: "looks plausible" becomes "equals".

Spec (occsens.engine, "Outputs"): ``clean_probs`` is the softmax of the unoccluded image, ``probs``
the softmax at every grid position; ``heatmap`` is the target's probability per position,
``drop = clean - heatmap`` (positive = the probability fell). ("Fill"): with ``reveal=True`` the
model sees only the window, everything else filled (the patch-only view).

Tolerances. The oracles' logits are exact in float32 (tests/engine/oracles.py), so the only rounding
is float32's softmax: exp and the normalising sum add a few units of 2**-24 relative error, at most
(K + 3) * 2**-24 ~ 4e-7 for K <= 4 classes. Probabilities are held to 1e-6 and drops (a difference
of two probabilities) to 2e-6. A misplaced or mis-sized window changes a logit by at least one
weight * pixel step, 2**-8 * scale >= 2**-15, which moves a probability by far more than that only
where the window matters; the exact-zero checks need no tolerance at all.
"""

from __future__ import annotations

import math

import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import occsens

from .oracles import LinearOracle, RegionDetector, object_image
from .reference import Window, expected_windows
from .strategies import Case, Geometry, cases, geometries, make_case

PROB_TOL = 1e-6  # float32 softmax of exact logits (module docstring)
DROP_TOL = 2e-6  # a difference of two such probabilities

NUMERIC_FILLS = ("number", "channels", "image", "images")  # fills a closed form can be written for


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


@example(case=make_case((8, 8), (8, 8), fill_kind="number"), reveal=False).via("patch = image")
@example(case=make_case((5, 7), (1, 1), fill_kind="channels", n=2), reveal=True).via("1x1 patch")
@example(case=make_case((12, 12), (4, 4), fill_kind="image"), reveal=False).via("stride = patch")
@example(case=make_case((13, 11), (4, 5), (3, 2), fill_kind="images", n=2), reveal=True).via("flush windows")
@given(case=cases(fill_kinds=NUMERIC_FILLS, max_windows=400), reveal=st.booleans())
@settings(deadline=None)
def test_two_class_linear_model_probability_is_the_sigmoid_of_the_window_formula(
    case: Case, reveal: bool
) -> None:
    """With logits (z0, z1) linear in the pixels, P(class 1) = sigmoid(z1 - z0) exactly.

    Occluding window W changes z by -<w_W, x_W - f_W>; revealing it, starting from the all-fill image f,
    by +<w_W, x_W - f_W>. Both computed here in float64 from the weights and the window's slice.
    """
    images, fill = case.images, case.expected_fill
    n, channels, h, w = images.shape
    model = LinearOracle(channels, h, w, classes=2, seed=case.seed)
    res = occsens.occlude(
        model, images, patch=case.patch, stride=case.stride, fill=case.fill, reveal=reveal, target=1
    )
    for i in range(n):
        clean = model.logits64(images[i])[0]
        p_clean = sigmoid(float(clean[1] - clean[0]))
        assert abs(float(res.clean_probs[i, 1]) - p_clean) <= PROB_TOL
        start = model.logits64(fill[i])[0] if reveal else clean
        for win in case.windows:
            term = model.window_term64(images[i], fill[i], win)
            z = start + term if reveal else start - term
            p = sigmoid(float(z[1] - z[0]))
            assert abs(float(res.heatmap[i, win.row, win.col]) - p) <= PROB_TOL, (i, win)
            assert abs(float(res.drop[i, win.row, win.col]) - (p_clean - p)) <= DROP_TOL, (i, win)


@example(case=make_case((6, 6), (6, 6), fill_kind="number", fill_value=3), classes=3).via("patch = image")
@example(case=make_case((4, 9), (1, 1), fill_kind="images", n=2), classes=4).via("1x1 patch")
@given(case=cases(fill_kinds=NUMERIC_FILLS, max_windows=400), classes=st.integers(2, 4))
@settings(deadline=None)
def test_occlude_and_reveal_are_complementary_for_an_additive_model(case: Case, classes: int) -> None:
    """Occluding and revealing a window are complements, seen through an additive model.

    For logits additive over pixels, log p_k - log p_0 = z_k - z_0 is additive too, and a window's occluded
    and revealed images together hold each pixel once from the image and once from the fill. So for every
    class k and window W: ratio(occlude W) + ratio(reveal W) = ratio(image) + ratio(all-fill image).
    """
    images = case.images
    n, channels, h, w = images.shape
    model = LinearOracle(channels, h, w, classes=classes, seed=case.seed)
    kwargs = dict(patch=case.patch, stride=case.stride, fill=case.fill)
    occluded = occsens.occlude(model, images, **kwargs)
    revealed = occsens.occlude(model, images, reveal=True, **kwargs)
    # One window as large as the image: its occluded input is the all-fill image.
    all_fill = occsens.occlude(model, images, patch=(h, w), fill=case.fill).probs[:, 0, 0]

    def ratio(p: torch.Tensor) -> torch.Tensor:
        logp = p.double().log()
        return logp - logp[..., :1]

    lhs = ratio(occluded.probs) + ratio(revealed.probs)
    rhs = (ratio(occluded.clean_probs) + ratio(all_fill)).view(n, 1, 1, classes)
    # Each log-ratio carries about twice the softmax's relative error (~8e-7); four of them, 1e-5 with margin.
    torch.testing.assert_close(lhs, rhs.expand_as(lhs), rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- a detector of one region


@st.composite
def detector_scenes(
    draw: st.DrawFn, *, max_side: int = 40
) -> tuple[torch.Tensor, Geometry, tuple[int, int, int, int]]:
    """An image with a bright square (the object) inside one of the windows, on a darker background."""
    geometry = draw(geometries(max_side=max_side, max_windows=400))
    window = draw(st.sampled_from(geometry.windows))
    bh, bw = draw(st.integers(1, window.height)), draw(st.integers(1, window.width))
    top = window.top + draw(st.integers(0, window.height - bh))
    left = window.left + draw(st.integers(0, window.width - bw))
    box = (top, left, bh, bw)
    channels = draw(st.sampled_from([1, 3]))
    image = object_image(channels, *geometry.image_size, box, seed=draw(st.integers(0, 2**16)))
    return image, geometry, box


def make_scene(
    size: tuple[int, int], patch: tuple[int, int], stride: tuple[int, int], box: tuple[int, int, int, int]
):
    return object_image(3, *size, box, seed=0), Geometry(size, patch, stride), box


DETECTOR_EXAMPLES = [
    make_scene((8, 8), (8, 8), (8, 8), (2, 3, 4, 4)),  # patch = image: the only window contains the object
    make_scene((6, 6), (1, 1), (1, 1), (0, 0, 1, 1)),  # 1x1 patch, 1x1 object in the corner
    make_scene((16, 16), (4, 4), (4, 4), (12, 12, 4, 4)),  # stride = patch, object under the corner window
    make_scene((11, 11), (4, 4), (3, 3), (7, 7, 4, 4)),  # object under the flush corner window only
]


def detector_examples(test=None, **extra):
    """Pin the DETECTOR_EXAMPLES (``extra`` gives values for the test's other arguments)."""

    def decorate(test):
        for image, geometry, box in reversed(DETECTOR_EXAMPLES):
            test = example(scene=(image, geometry, box), **extra)(test)
        return test

    return decorate(test) if test is not None else decorate


def overlaps(geometry: Geometry, box: tuple[int, int, int, int]) -> list[tuple[Window, int]]:
    return [
        (win, win.overlap(*box))
        for win in expected_windows(geometry.image_size, geometry.patch, geometry.stride)
    ]


@detector_examples
@given(scene=detector_scenes())
@settings(deadline=None)
def test_windows_that_miss_the_object_have_exactly_zero_drop_and_the_others_a_positive_one(scene) -> None:
    """The detector reads only the object's box, so a window that does not touch it leaves the model's input
    there bit for bit unchanged: the drop is exactly 0.0. Any overlap dims the box (fill 0.5 < object 1.0)."""
    image, geometry, box = scene
    res = occsens.occlude(RegionDetector(box), image, patch=geometry.patch, stride=geometry.stride)
    assert int(res.target) == 1  # the object is seen in the clean image
    for win, overlap in overlaps(geometry, box):
        drop = float(res.drop[0, win.row, win.col])
        if overlap == 0:
            assert drop == 0.0, win
        else:
            assert drop > 0, win


@detector_examples(reveal=True)
@detector_examples(reveal=False)
@given(scene=detector_scenes(), reveal=st.booleans())
@settings(deadline=None)
def test_detector_probability_follows_the_visible_share_of_the_object(scene, reveal: bool) -> None:
    """P(object) = sigmoid(gain * (box mean - threshold)), the box mean set by how much of the object shows.

    The window hides (occlude) or shows (reveal) part of it: mean = (visible * 1.0 + hidden * 0.5) / area.
    """
    image, geometry, box = scene
    detector = RegionDetector(box)
    res = occsens.occlude(detector, image, patch=geometry.patch, stride=geometry.stride, reveal=reveal)
    area = box[2] * box[3]
    for win, overlap in overlaps(geometry, box):
        visible = overlap if reveal else area - overlap
        mean = (visible * 1.0 + (area - visible) * 0.5) / area
        assert abs(float(res.heatmap[0, win.row, win.col]) - detector.p_object64(mean)) <= PROB_TOL, win


@detector_examples
@given(scene=detector_scenes())
@settings(deadline=None)
def test_the_top_ranked_windows_are_the_ones_that_hide_most_of_the_object(scene) -> None:
    """Ranking windows by drop is ranking them by overlap with the object: the top-ranked ones overlap it.

    Strict: one more hidden pixel out of at most 1600 moves the logit by >= 16 * 0.5 / 1600 = 5e-3,
    and P(object) by >= 5e-3 * p(1 - p) >= 8e-5 for logits within +-4, far above float32 rounding.
    """
    image, geometry, box = scene
    res = occsens.occlude(RegionDetector(box), image, patch=geometry.patch, stride=geometry.stride)
    pairs = overlaps(geometry, box)
    drop = torch.tensor([float(res.drop[0, win.row, win.col]) for win, _ in pairs])
    overlap = torch.tensor([float(o) for _, o in pairs])
    assert overlap[drop.argmax()] > 0
    assert torch.equal(drop == drop.max(), overlap == overlap.max())
    assert torch.equal(
        torch.sign(drop.view(-1, 1) - drop.view(1, -1)), torch.sign(overlap.view(-1, 1) - overlap.view(1, -1))
    )


@detector_examples
@given(scene=detector_scenes())
@settings(deadline=None)
def test_patch_only_view_of_the_object_keeps_the_class_and_background_only_loses_it(scene) -> None:
    """Revealing a window around the whole object: still "object"; occluding it (background only): not.

    Windows that miss the object give the opposite answers.
    """
    image, geometry, box = scene
    detector = RegionDetector(box)
    kwargs = dict(patch=geometry.patch, stride=geometry.stride)
    patch_only = occsens.occlude(detector, image, reveal=True, **kwargs).class_map[0]
    background_only = occsens.occlude(detector, image, **kwargs).class_map[0]
    area = box[2] * box[3]
    containing = 0
    for win, overlap in overlaps(geometry, box):
        if overlap == area:
            containing += 1
            assert patch_only[win.row, win.col] == 1 and background_only[win.row, win.col] == 0, win
        elif overlap == 0:
            assert patch_only[win.row, win.col] == 0 and background_only[win.row, win.col] == 1, win
    assert containing >= 1  # the scene puts the object inside a window
