"""The properties: what any correct occlusion must satisfy, each a claim, a way to draw cases and a check.

A check runs the implementation on one case and returns None when the case agrees, or the failure
in words: the numbers that disagree and, when ``diagnose`` is set (only for the final, shrunk case),
the known mistake they match (``expected.diagnose``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from torch import nn

from occsens.conformance import expected
from occsens.conformance.cases import Case, cases, detector_cases, grid_cases
from occsens.conformance.results import ATOL, RERUN_ATOL, Unsupported

Impl = Callable[..., Any]

# A case whose clean prediction is a tie (top two logits closer than this) has no single target and
# is skipped. The oracles' logits are exact multiples of 2**-13 (dyadic pixels and weights, scale at
# least 2**-5 for the largest images drawn), so two logits that differ differ by far more than this.
TIE = 1e-6
# A pixel value the model is handed counts as the fill within this: fills are multiples of 1/16, and
# pixel-space arithmetic on them (x * 0 + fill, a mask blend) is exact or off by float32 ulps (~6e-8).
FILL_ATOL = 1e-6


class Broken(Exception):  # noqa: N818 - carries the failure text of one case
    """The implementation crashed or returned something that is not an attribution [N, H, W]."""


class NotApplicable(Exception):  # noqa: N818 - a drawn case that does not test this property
    """The case cannot test the property (a tied clean prediction, no class change to see)."""


def attribution(impl: Impl, model: nn.Module, images: torch.Tensor, case: Case) -> np.ndarray:
    """The implementation's answer as float64 [N, H, W]; ``Broken`` with the reason otherwise."""
    try:
        out = impl(model, images, patch=case.patch, stride=case.stride, fill=case.fill)
    except Unsupported:
        raise
    except Exception as exc:  # any failure of the user's code is a result, not a crash of ours
        raise Broken(f"{case.describe()}: the implementation raised {type(exc).__name__}: {exc}") from None
    if isinstance(out, torch.Tensor):
        out = out.detach().to("cpu", torch.float64).numpy()
    try:
        arr = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise Broken(f"{case.describe()}: it returned {type(out).__name__}, not an array [N, H, W]") from None
    want = (len(images), *images.shape[2:])
    if arr.shape != want:
        raise Broken(
            f"{case.describe()}: it returned shape {tuple(arr.shape)}; the contract is [N, H, W] = {want}, "
            "one score per pixel (average Captum's [N, C, H, W] over channels)"
        )
    return arr


def _targets(model: nn.Module, images: torch.Tensor) -> list[int]:
    found = []
    for x in images.double():
        target, margin = expected.clean_target(model, x)
        if margin < TIE:
            raise NotApplicable("tied clean prediction")
        found.append(target)
    return found


def closed_form_failure(
    got: np.ndarray, model: nn.Module, images: torch.Tensor, case: Case, diagnose: bool
) -> str | None:
    """None where ``got`` equals the closed form under some border convention; else the numbers."""
    found = expected.compare(got, model, images, case.fill, case.patch, case.stride)
    assert found is not None  # the contract applies to every case
    if found.agrees:
        return None
    text = f"{case.describe()}: {found.words()}"
    if diagnose:
        reading = expected.diagnose(
            got[found.image], model, images[found.image], case.fill, case.patch, case.stride
        )
        text += f". It matches a known mistake: {reading}" if reading else ". It matches no known mistake"
    return text


# ----------------------------------------------------------------------------- the checks


def check_closed_form(impl: Impl, case: Case, diagnose: bool) -> str | None:
    model, images = case.oracle(), case.images()
    _targets(model, images)
    return closed_form_failure(attribution(impl, model, images, case), model, images, case, diagnose)


def check_detector(impl: Impl, case: Case, diagnose: bool) -> str | None:
    model, images = case.oracle(), case.images()
    got = attribution(impl, model, images, case)[0]
    assert case.box is not None
    top, left, bh, bw = case.box
    (ph, pw), (h, w) = case.patch, case.size
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    row_gap = np.maximum(np.maximum(top - rows, rows - (top + bh - 1)), 0)
    col_gap = np.maximum(np.maximum(left - cols, cols - (left + bw - 1)), 0)
    far = (row_gap >= ph) | (col_gap >= pw)  # no window of the patch's size reaches the object
    off = np.where(far, np.abs(np.nan_to_num(got, nan=np.inf)), 0.0)
    if off.max() > ATOL:
        r, c = np.unravel_index(int(np.argmax(off)), off.shape)
        return (
            f"{case.describe()}: pixel (row {r}, col {c}) is "
            f"{_pixels(max(row_gap[r, 0], col_gap[0, c]))} from "
            f"the object, too far for any {case.patch} window to touch it, yet its attribution is "
            f"{got[r, c]:.4g} (must be 0: hiding pixels the model never reads changes nothing)"
        )
    inside = got[top : top + bh, left : left + bw]
    if np.nanmax(inside) < np.nanmax(got) - ATOL:
        r, c = np.unravel_index(int(np.nanargmax(got)), got.shape)
        return (
            f"{case.describe()}: the highest attribution, {got[r, c]:.4g}, is at (row {r}, col {c}) "
            f"outside the object; the object's highest is {np.nanmax(inside):.4g} "
            "(the object must rank first)"
        )
    return closed_form_failure(got[None], model, images, case, diagnose)


def _pixels(k: int) -> str:
    return f"{k} pixel" if k == 1 else f"{k} pixels"


def check_fill(impl: Impl, case: Case, diagnose: bool) -> str | None:
    model, images = case.oracle(), case.images()
    _targets(model, images)
    got = attribution(impl, model, images, case)
    wrong = _unexpected_fill(model.seen, images[0].double(), case.fill)  # type: ignore[arg-type]
    if wrong is not None:
        return f"{case.describe()}: {wrong}"
    return closed_form_failure(got, model, images, case, diagnose)


def _unexpected_fill(seen: list[torch.Tensor], image: torch.Tensor, fill: float) -> str | None:
    """What the model was handed inside windows, where that is not the fill; None if it always was."""
    for batch in seen:
        if batch.ndim != 4 or batch.shape[1:] != image.shape:
            want = ", ".join(map(str, image.shape))
            return f"the model was handed a tensor of shape {tuple(batch.shape)}, not [B, {want}]"
        changed = (batch - image).abs().amax(dim=1) > FILL_ATOL  # [B, H, W]: pixels the window replaced
        values = batch.permute(0, 2, 3, 1)[changed]  # [pixels, C]
        bad = values[(values - fill).abs() > FILL_ATOL]
        if len(bad):
            return _fill_words(values, fill, image.shape[0])
    return None


def _fill_words(values: torch.Tensor, fill: float, channels: int) -> str:
    from occsens.conformance.cases import NORM_MEAN, NORM_STD

    seen = sorted({round(float(v), 4) for v in values.flatten()})[:4]
    text = f"inside the windows the model was handed {seen}, not the fill {fill:g} (in pixel space)"
    mean = torch.tensor(NORM_MEAN[:channels], dtype=torch.float64)
    std = torch.tensor(NORM_STD[:channels], dtype=torch.float64)
    for value, reading in (
        ((fill - mean) / std, "the fill converted to normalised units: applied after normalisation"),
        (fill * std + mean, "the fill taken as a normalised value"),
        (torch.zeros(channels, dtype=torch.float64), "zeros: the fill ignored"),
    ):
        if values.shape[1] == channels and torch.allclose(values, value.expand_as(values), atol=FILL_ATOL):
            return f"{text}; that is {reading}"
    return text


def check_target(impl: Impl, case: Case, diagnose: bool) -> str | None:
    model, images = case.oracle(), case.images()
    targets = _targets(model, images)
    last = [expected.last_class(model, x, case.fill, case.patch, case.stride) for x in images.double()]
    if len(set(targets)) == 1 and last == targets:  # no class change: target mistakes would not show
        raise NotApplicable("the target is the same under every reading")
    return closed_form_failure(attribution(impl, model, images, case), model, images, case, diagnose)


def check_batch(impl: Impl, case: Case, diagnose: bool) -> str | None:
    model, images = case.oracle(), case.images()
    together = attribution(impl, model, images.clone(), case)
    alone = np.concatenate([attribution(impl, model, images[i : i + 1].clone(), case) for i in range(case.n)])
    for i in range(case.n):
        diff = np.abs(together[i] - alone[i])
        if not diff.max() <= ATOL:
            r, c = np.unravel_index(int(np.nanargmax(np.nan_to_num(diff, nan=np.inf))), diff.shape)
            text = (
                f"{case.describe()}: image {i} in the batch gets {together[i, r, c]:.4g} at pixel "
                f"(row {r}, col {c}), alone {alone[i, r, c]:.4g}"
            )
            mates = [j for j in range(case.n) if j != i and np.abs(together[i] - alone[j]).max() <= ATOL]
            if mates:
                text += f"; its result in the batch is image {mates[0]}'s result alone: batch mates swapped"
            return text
    return None


def check_determinism(impl: Impl, case: Case, diagnose: bool) -> str | None:
    model, images = case.oracle(), case.images()
    given = images.clone()
    first = attribution(impl, model, given, case)
    moved = (given - images).abs()
    if moved.max() > 0:
        n, ch, r, c = np.unravel_index(int(moved.argmax()), moved.shape)
        return (
            f"{case.describe()}: the call changed the images it was given (image {n}, channel {ch}, pixel "
            f"(row {r}, col {c}): {images[n, ch, r, c]:.4g} became {given[n, ch, r, c]:.4g})"
        )
    second = attribution(impl, model, images.clone(), case)
    diff = np.abs(first - second)
    if not diff.max() <= RERUN_ATOL:  # also true where either is NaN
        n, r, c = np.unravel_index(int(np.nanargmax(np.nan_to_num(diff, nan=np.inf))), diff.shape)
        return (
            f"{case.describe()}: two identical calls disagree at image {n}, pixel (row {r}, col {c}): "
            f"{first[n, r, c]:.6g} then {second[n, r, c]:.6g}"
        )
    return None


def check_scale(impl: Impl, case: Case, diagnose: bool) -> str | None:
    model, images = case.oracle(), case.images()
    _targets(model, images)
    got = attribution(impl, model, images, case)
    big = np.abs(np.nan_to_num(got, nan=np.inf))
    if big.max() > 1 + ATOL:
        n, r, c = np.unravel_index(int(np.argmax(big)), big.shape)
        text = (
            f"{case.describe()}: attribution {got[n, r, c]:.4g} at image {n}, pixel (row {r}, col {c}): "
            "a drop of a probability lies in [-1, 1]"
        )
        reading = (
            expected.diagnose(got[n], model, images[n], case.fill, case.patch, case.stride)
            if diagnose
            else None
        )
        return text + (f". It matches a known mistake: {reading}" if reading else "")
    return closed_form_failure(got, model, images, case, diagnose)


# ----------------------------------------------------------------------------- the list


@dataclass(frozen=True)
class Property:
    name: str
    kind: str
    claim: str
    cases: Callable[[], st.SearchStrategy[Case]]
    check: Callable[[Impl, Case, bool], str | None]


PROPERTIES = (
    Property(
        "closed form",
        "contract",
        "On linear models, whose every answer is known in closed form, the attribution equals each "
        "pixel's mean drop of the clean class's softmax probability over the windows covering it.",
        lambda: cases(),
        check_closed_form,
    ),
    Property(
        "object detector",
        "contract",
        "On a model that reads only an object's box, pixels too far for any window to touch the object "
        "get exactly 0, the object ranks first, and the values equal the closed form.",
        detector_cases,
        check_detector,
    ),
    Property(
        "fill in pixel space",
        "contract",
        "Inside each window the model is handed the fill itself, in the pixel space of its input, "
        "before the normalisation it does inside forward; outside the window, the image.",
        lambda: cases(model="normalised", max_n=1),
        check_fill,
    ),
    Property(
        "target is the clean prediction",
        "contract",
        "Each image's target is its own clean prediction, and drops are measured from its clean "
        "probability: not the last occluded input's, not a label, not another image's.",
        lambda: cases(model="steep", min_n=2, max_n=3),
        check_target,
    ),
    Property(
        "batch independence",
        "contract",
        "An image's result does not depend on the other images in its batch, nor on its place there.",
        lambda: cases(min_n=2, max_n=3),
        check_batch,
    ),
    Property(
        "stride and patch",
        "contract",
        "Windows are patch = (height, width) in size and step by stride = (down, across) from the top "
        "left: no transposed, shifted or coarser grid.",
        grid_cases,
        check_closed_form,  # the closed form, on the cases where a wrong grid shows
    ),
    Property(
        "determinism",
        "contract",
        "The same call gives the same numbers twice and leaves the images it was given unchanged.",
        lambda: cases(),
        check_determinism,
    ),
    Property(
        "probability scale",
        "contract",
        "Drops are of softmax probabilities, so they lie in [-1, 1] and equal the closed form even "
        "where the logits are large (not logits, sigmoids or log-probabilities).",
        lambda: cases(model="steep"),
        check_scale,
    ),
)

BORDER = "border windows"
BORDER_CLAIM = (
    "Where the stride does not reach the far border, implementations differ: a last full window flush "
    "with the border, a last window clipped by it, or no window there at all. Any one of these is a "
    "documented choice; the result says which one the implementation follows."
)
# Two probes where the three conventions disagree: along rows of 8 a (3, 2) grid ends at 4, 5 or 6;
# along columns of 6 a (4, 3) grid ends at 2, 3 or nothing; the square probe (3 by 3 on 7 x 8) is one
# the notebook can express.
BORDER_PROBES = (
    Case("linear", 1, 3, (8, 6), (3, 4), (2, 3), 8, 0),
    Case("linear", 1, 3, (7, 8), (3, 3), (3, 3), 8, 1),
)


def property_names() -> list[str]:
    return [p.name for p in PROPERTIES] + [BORDER]
