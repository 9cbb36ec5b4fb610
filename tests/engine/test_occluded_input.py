"""What the model is handed: the image minus the window.

Spec (occsens.engine, "Fill"): inside the window the input is replaced by the fill, in pixel space,
before whatever normalisation the model does inside its ``forward``: a number, one number per
channel, a baseline image, "mean" (each image's own per-channel mean), "blur" (a Gaussian blur of
the image, sigma BLUR_SIGMA), "noise" (uniform noise in [0, 1], seeded, so reruns agree), or a
callable ``fill(images, mask) -> images`` whose output is used where ``mask`` is True. Outside the
window the pixels are the image's own, bit for bit. With ``reveal=True`` it is the other way
round: the model sees only the window, and everything else is filled.

A ``Recorder`` at the model's entry keeps every batch it receives; the expected inputs are built
here by slicing (tests/engine/reference.py), never with occsens's own masks.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

import occsens
from occsens.engine import BLUR_SIGMA

from .oracles import LinearOracle, Normalise, Recorder, dyadic_images
from .reference import as_bytes, occlude_by_slicing, reference_blur
from .strategies import EXACT_FILL_KINDS, FILL_KINDS, Case, cases, make_case

# Tests that run the recorder keep the grid small enough that storing and hashing every input is
# cheap; the @examples add the 1x1-patch and full-image extremes.
MAX_WINDOWS = 100


def occluded_all(res: occsens.Occlusion) -> torch.Tensor:
    """[N * R * C, C, H, W]: occluded(n, r, c) for every image and position."""
    rows, cols = res.grid
    return torch.stack(
        [res.occluded(n, r, c) for n in range(len(res.images)) for r in range(rows) for c in range(cols)]
    )


def run_recorded(case: Case, reveal: bool) -> tuple[occsens.Occlusion, Recorder]:
    recorder = Recorder()
    res = occsens.occlude(
        recorder, case.images, patch=case.patch, stride=case.stride, fill=case.fill, reveal=reveal
    )
    return res, recorder


@example(case=make_case((6, 5), (6, 5), fill_kind="number"), reveal=False)  # patch = image: all fill
@example(case=make_case((6, 5), (6, 5), fill_kind="image"), reveal=True)  # patch = image, reveal: the image
@example(case=make_case((5, 4), (1, 1), fill_kind="channels", n=2), reveal=False)  # 1x1 patch
@example(case=make_case((9, 9), (3, 3), fill_kind="images", n=2), reveal=True)  # stride = patch
@example(
    case=make_case((9, 7), (4, 3), (3, 2), fill_kind="callable", fill_value=1), reveal=False
)  # flush windows
@given(case=cases(fill_kinds=EXACT_FILL_KINDS, dyadic=False, max_windows=MAX_WINDOWS), reveal=st.booleans())
@settings(deadline=None)
def test_model_sees_the_image_outside_the_window_and_the_fill_inside(case: Case, reveal: bool) -> None:
    """Every input the model received is the clean image or one image-with-window built here by slicing, and
    each of those was received exactly as often as expected (the model sees the clean image once, then each
    (image, window) pair once), bit for bit; with reveal the roles of image and fill swap."""
    res, recorder = run_recorded(case, reveal)
    fill = case.expected_fill
    expected = [case.images[n] for n in range(len(case.images))]
    expected += [
        occlude_by_slicing(case.images[n], fill[n], win, reveal)
        for n in range(len(case.images))
        for win in case.windows
    ]
    assert as_bytes(recorder.inputs) == as_bytes(torch.stack(expected))


@example(case=make_case((5, 4), (1, 1), fill_kind="noise", n=2), reveal=False)
@example(case=make_case((8, 8), (8, 8), fill_kind="blur"), reveal=True)
@given(case=cases(dyadic=False, max_windows=MAX_WINDOWS), reveal=st.booleans())
@settings(deadline=None)
def test_occluded_returns_exactly_what_the_model_received(case: Case, reveal: bool) -> None:
    """{clean images} + {occluded(n, r, c)} = the multiset of the model's inputs, bit for bit, any fill."""
    res, recorder = run_recorded(case, reveal)
    assert as_bytes(recorder.inputs) == as_bytes(torch.cat([case.images, occluded_all(res)]))


def expected_fill_values(case: Case) -> tuple[torch.Tensor | None, float]:
    """The fill as images [N, C, H, W], written down independently, and the tolerance the engine gets.

    None where only bounds can be stated: "noise" (uniform in [0, 1]) and "blur" on images smaller than
    the kernel (the docstring fixes sigma, not how the kernel is cut to fit; any blur averages neighbours).
    """
    if case.fill_kind == "mean":
        # Float32 mean of <= 1600 pixels in [0, 1]: pairwise summation keeps the error near
        # log2(1600) * 2**-24 ~ 7e-7; 1e-5 leaves room while any wrong mean (another image's, another
        # channel's, the batch's) differs by far more on random images.
        mean = case.images.double().mean(dim=(2, 3), keepdim=True).expand_as(case.images)
        return mean, 1e-5
    if case.fill_kind == "blur" and min(case.geometry.image_size) > 2 * math.ceil(3 * BLUR_SIGMA):
        # A full kernel (radius 3 sigma) fits. float32 separable convolution, two passes of 13 taps summing
        # to 1 over values in [0, 1]: at most ~26 roundings of 2**-24 each (~1.6e-6); 1e-5 leaves room.
        return reference_blur(case.images, BLUR_SIGMA), 1e-5
    if case.fill_kind in ("noise", "blur"):
        return None, 0.0
    return case.expected_fill, 0.0


@example(case=make_case((5, 4), (1, 1), fill_kind="mean", n=2), reveal=False)
@example(case=make_case((20, 20), (7, 7), (7, 7), fill_kind="blur"), reveal=False)
@example(case=make_case((3, 3), (3, 3), fill_kind="blur"), reveal=True)  # kernel cut to fit a tiny image
@example(case=make_case((13, 13), (1, 1), fill_kind="blur"), reveal=False)  # the smallest full kernel
@example(case=make_case((2, 40), (1, 5), fill_kind="blur"), reveal=False)  # a 2-pixel axis
@given(case=cases(dyadic=False, max_windows=MAX_WINDOWS), reveal=st.booleans())
@settings(deadline=None)
def test_the_filled_pixels_carry_the_documented_fill_for_every_kind(case: Case, reveal: bool) -> None:
    """Per position: pixels not filled are the image's own bit for bit; the filled ones are the fill."""
    res, _ = run_recorded(case, reveal)
    fill, tolerance = expected_fill_values(case)
    for n in range(len(case.images)):
        for win in case.windows:
            seen = res.occluded(n, win.row, win.col)
            filled = torch.zeros(seen.shape[1:], dtype=torch.bool)
            filled[win.top : win.top + win.height, win.left : win.left + win.width] = True
            if reveal:
                filled = ~filled
            kept = ~filled
            assert torch.equal(seen[:, kept], case.images[n][:, kept])
            if fill is not None:
                torch.testing.assert_close(
                    seen[:, filled].double(), fill[n][:, filled].double(), rtol=0, atol=tolerance
                )
            elif case.fill_kind == "noise":  # uniform in [0, 1]
                assert ((seen[:, filled] >= 0) & (seen[:, filled] <= 1)).all()
            else:  # a blur on a small image: each value within its channel's range (1e-6: float32 weights)
                channel = case.images[n].reshape(len(seen), -1)
                lo, hi = channel.min(dim=1).values.view(-1, 1), channel.max(dim=1).values.view(-1, 1)
                assert ((seen[:, filled] >= lo - 1e-6) & (seen[:, filled] <= hi + 1e-6)).all()


@given(case=cases(fill_kinds=("number", "channels"), max_windows=MAX_WINDOWS), reveal=st.booleans())
@settings(deadline=None)
def test_fill_is_applied_in_pixel_space_before_the_models_own_normalisation(case: Case, reveal: bool) -> None:
    """A model that normalises inside its forward receives the pixel-space fill (0.5 stays 0.5), and its
    normalisation layer then sees (fill - mean) / std, as it does for every other pixel."""
    channels = case.images.shape[1]
    mean, std = (0.485, 0.456, 0.406)[:channels], (0.229, 0.224, 0.225)[:channels]
    entry, after = Recorder(nn.Identity()), Recorder()  # entry passes the images on; after is the classifier
    model = nn.Sequential(entry, Normalise(mean, std), after).eval()
    occsens.occlude(model, case.images, patch=case.patch, stride=case.stride, fill=case.fill, reveal=reveal)
    fill = case.expected_fill
    expected = [case.images[n] for n in range(len(case.images))]
    expected += [
        occlude_by_slicing(case.images[n], fill[n], win, reveal)
        for n in range(len(case.images))
        for win in case.windows
    ]
    expected = torch.stack(expected)
    assert as_bytes(entry.inputs) == as_bytes(expected)
    normalised = (expected - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    assert as_bytes(after.inputs) == as_bytes(normalised)


def test_a_half_grey_window_reaches_the_model_as_exactly_half() -> None:
    """The question's setting: fill 0.5 reaches the model's entry as 0.5, not as (0.5 - mean) / std."""
    images = torch.zeros(1, 3, 8, 8)
    entry = Recorder(nn.Identity())
    model = nn.Sequential(entry, Normalise((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), Recorder()).eval()
    occsens.occlude(model, images, patch=4)
    occluded = entry.inputs[1:]  # the first input is the clean image; the rest hold one grey window each
    assert set(occluded.unique().tolist()) == {0.0, 0.5}
    assert ((occluded == 0.5).sum(dim=(1, 2, 3)) == 3 * 4 * 4).all()


@example(case=make_case((4, 4), (4, 4), fill_kind="images", n=2), reveal=False)
@example(case=make_case((7, 3), (1, 1), fill_kind="images"), reveal=True)
@given(case=cases(fill_kinds=("images",), max_windows=MAX_WINDOWS), reveal=st.booleans())
@settings(deadline=None)
def test_a_fill_equal_to_the_image_changes_nothing(case: Case, reveal: bool) -> None:
    """fill = the images themselves: every input is the clean image, so probs == clean_probs exactly.

    Exact because the linear oracle's logits are exact on dyadic images (tests/engine/oracles.py),
    whatever batch they are computed in.
    """
    images = case.images
    recorder = Recorder(LinearOracle(images.shape[1], *images.shape[2:], classes=3, seed=case.seed))
    res = occsens.occlude(
        recorder, images, patch=case.patch, stride=case.stride, fill=images.clone(), reveal=reveal
    )
    assert as_bytes(recorder.inputs) == as_bytes(images.repeat_interleave(1 + len(case.windows), dim=0))
    assert torch.equal(res.probs, res.clean_probs.view(len(images), 1, 1, -1).expand_as(res.probs))
    assert (res.drop == 0).all()


@pytest.mark.parametrize("fill", ["image", "identity", "mean-of-constant"])
def test_other_fills_equal_to_the_image_change_nothing(fill: str) -> None:
    """A baseline image equal to the image, a callable returning its input, and "mean" on a flat image."""
    images = (
        torch.full((1, 3, 9, 11), 3 / 16)
        if fill == "mean-of-constant"
        else dyadic_images(1, 3, 9, 11, seed=3)
    )
    value = {"image": images[0].clone(), "identity": lambda x, mask: x, "mean-of-constant": "mean"}[fill]
    res = occsens.occlude(LinearOracle(3, 9, 11, classes=3), images, patch=(3, 4), stride=(2, 3), fill=value)
    assert torch.equal(res.probs, res.clean_probs.view(1, 1, 1, -1).expand_as(res.probs))


def test_noise_fill_is_uniform_in_the_unit_interval_and_reruns_agree() -> None:
    """Two runs with fill="noise" hand the model identical inputs; the noise covers [0, 1] evenly."""
    images = dyadic_images(2, 3, 16, 16, seed=1)
    first, second = Recorder(), Recorder()
    res1 = occsens.occlude(first, images, patch=8, fill="noise")
    res2 = occsens.occlude(second, images, patch=8, fill="noise")
    assert torch.equal(first.inputs, second.inputs)
    assert torch.equal(res1.probs, res2.probs)
    noise = torch.stack(
        [
            res1.occluded(n, r, c)[:, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8]
            for n in range(2)
            for r in range(2)
            for c in range(2)
        ]
    )
    # 1536 draws from U(0, 1): mean 0.5 with standard error 0.289 / sqrt(1536) = 0.0074, so 0.04 is
    # over five standard errors; each decile holds 10% +- 0.8% (one s.e.), 5% allows six.
    assert noise.min() >= 0 and noise.max() <= 1
    assert abs(float(noise.mean()) - 0.5) < 0.04
    deciles = torch.histc(noise, bins=10, min=0, max=1) / noise.numel()
    assert (deciles - 0.1).abs().max() < 0.05


@pytest.mark.parametrize("reveal", [False, True], ids=["occlude", "reveal"])
def test_callable_fill_output_is_used_only_where_its_mask_is_true(reveal: bool) -> None:
    """The callable's contract: its output is used where ``mask`` is True (and only there).

    The callable answers 0.25 where the mask is True and 0.75 where it is False; the image holds
    neither value. So 0.25 must reach the model, 0.75 never, in both modes.
    """
    images = torch.full((1, 1, 6, 6), 1 / 16)
    masks: list[torch.Tensor] = []

    def two_tone(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        masks.append(mask.clone())
        return torch.where(mask, 0.25, 0.75).to(x.dtype).expand_as(x).clone()

    recorder = Recorder()
    occsens.occlude(recorder, images, patch=2, fill=two_tone, reveal=reveal)
    received = recorder.inputs[1:]  # after the clean image
    assert masks and all(m.dtype == torch.bool for m in masks)
    assert (received == 0.25).any(dim=(1, 2, 3)).all(), "the callable's output must be used"
    assert not (received == 0.75).any(), "the callable's output was used where its mask is False"


def test_callable_fill_is_told_the_window_through_its_mask() -> None:
    """Occluding: the callable's mask is True on exactly the window (one mask per image in the batch)."""
    images = dyadic_images(2, 3, 7, 5, seed=4)
    seen: list[torch.Tensor] = []

    def record(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        assert mask.shape[0] == x.shape[0] and mask.shape[2:] == x.shape[2:]
        seen.append(mask.expand_as(x).all(dim=1))  # [B, H, W]; a per-channel mask must agree across channels
        return x * 0.5

    res = occsens.occlude(LinearOracle(3, 7, 5), images, patch=(3, 2), stride=(2, 2), fill=record)
    rectangles = []
    for top, left, h, w in res.windows.reshape(-1, 4).tolist():
        rect = torch.zeros(7, 5, dtype=torch.bool)
        rect[top : top + h, left : left + w] = True
        rectangles.append(rect)
    assert as_bytes(torch.cat(seen).unsqueeze(1).float()) == as_bytes(
        torch.stack(rectangles * 2).unsqueeze(1).float()
    )


@pytest.mark.parametrize("fill", sorted(set(FILL_KINDS) - {"noise"}))
def test_each_image_gets_the_same_result_alone_or_in_a_batch(fill: str) -> None:
    """Occluding [a, b] gives, for b, what occluding [b] alone gives (fills are per image, not per batch)."""
    case = make_case((10, 10), (4, 4), (3, 3), fill_kind=fill, n=2, seed=5)
    model = LinearOracle(3, 10, 10, classes=3)
    together = occsens.occlude(model, case.images, patch=4, stride=3, fill=case.fill)
    alone_fill = case.fill[1:] if fill == "images" else case.fill  # one baseline per image: b's own
    alone = occsens.occlude(model, case.images[1:], patch=4, stride=3, fill=alone_fill)
    torch.testing.assert_close(
        together.probs[1:], alone.probs, rtol=0, atol=1e-6
    )  # exact logits: softmax rounding only


def test_noise_fill_for_an_image_does_not_depend_on_its_batch_mates() -> None:
    images = dyadic_images(2, 3, 10, 10, seed=6)
    model = LinearOracle(3, 10, 10, classes=3)
    together = occsens.occlude(model, images, patch=4, fill="noise")
    alone = occsens.occlude(model, images[1:], patch=4, fill="noise")
    assert torch.equal(together.occluded(1, 0, 0), alone.occluded(0, 0, 0))


@pytest.mark.parametrize("size", [(1, 8), (8, 1), (1, 1)], ids=str)
def test_blur_fill_on_an_image_one_pixel_high_or_wide(size: tuple[int, int]) -> None:
    """Regression: "blur" must work on any valid image (it raised a RuntimeError from F.pad here).

    Whatever radius a fix picks, a blur is a weighted average of neighbours: each blurred pixel lies within
    its channel's range, a 1x1 image blurs to itself, and a line of pixels is smoothed along its length.
    """
    images = dyadic_images(1, 3, *size, seed=7)
    res = occsens.occlude(Recorder(), images, patch=1, fill="blur")
    blurred = torch.stack(
        [res.occluded(0, r, c)[:, r, c] for r in range(size[0]) for c in range(size[1])], dim=1
    )
    flat = images[0].reshape(3, -1)
    lo, hi = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    assert ((blurred >= lo - 1e-6) & (blurred <= hi + 1e-6)).all()  # 1e-6: float32 rounding of the weights
    if size == (1, 1):
        assert torch.equal(blurred, flat)
    else:
        assert not torch.equal(blurred, flat)
