"""The properties: what any correct occlusion must satisfy, each a claim, a way to draw cases and a check.

A check runs the implementation on one case and returns None when the case agrees, or the failure
in words: the numbers that disagree and, when ``diagnose`` is set (only for the final, shrunk case),
the known mistake they match (``expected.diagnose``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from torch import nn

from occsens.conformance import expected
from occsens.conformance.cases import SCALE_CASES, Case, cases, detector_cases, grid_cases
from occsens.conformance.results import ATOL, RERUN_ATOL, Unsupported
from occsens.leash import Escaped, TimedOut, printable

Impl = Callable[..., Any]

# A case whose clean prediction is a tie (top two logits closer than this) has no single target and
# is skipped. The oracles' logits are exact multiples of 2**-13 (dyadic pixels and weights, scale at
# least 2**-5 for the largest images drawn), so two logits that differ differ by far more than this.
TIE = 1e-6
# A pixel value the model is handed counts as the fill within this: fills are multiples of 1/16, and
# pixel-space arithmetic on them (x * 0 + fill, a mask blend) is exact or off by float32 ulps (~6e-8).
FILL_ATOL = 1e-6
# An answer with more values than this is refused before it is copied: the largest case has
# 9 * 32 * 32 = 9,216 pixels, and a huge broadcast view (``expand`` of one value to 10**12) would
# otherwise be materialised in float64 and exhaust memory.
MAX_ANSWER = 10**7


class Broken(Exception):  # noqa: N818 - carries the failure text of one case
    """The implementation crashed or returned something that is not an attribution [N, H, W]."""


class NotApplicable(Exception):  # noqa: N818 - a drawn case that does not test this property
    """The case cannot test the property (a tied clean prediction, no class change to see)."""


def attribution(impl: Impl, model: nn.Module, images: torch.Tensor, case: Case) -> np.ndarray:
    """The implementation's answer as float64 [N, H, W]; ``Broken`` with the reason otherwise."""
    try:
        out = impl(model, images, patch=case.patch, stride=case.stride, fill=case.fill)
    except (Unsupported, TimedOut):
        raise
    except Exception as exc:  # any failure of the user's code is a result, not a crash of ours
        raised = exc.original if isinstance(exc, Escaped) else exc
        raise Broken(
            f"{case.describe()}: the implementation raised {type(raised).__name__}: {printable(str(raised))}"
        ) from None
    try:
        arr = _as_array(out)
    except (TypeError, ValueError, RuntimeError, OverflowError, MemoryError) as exc:
        raise Broken(f"{case.describe()}: it returned {_what(out)}, not an array [N, H, W] ({exc})") from None
    want = (len(images), *images.shape[2:])
    if arr.shape != want:
        raise Broken(
            f"{case.describe()}: it returned shape {tuple(arr.shape)}; the contract is [N, H, W] = {want}, "
            "one score per pixel (average Captum's [N, C, H, W] over channels)"
        )
    return arr


def _as_array(out: Any) -> np.ndarray:
    """``out`` as float64 numpy, refused before any copy where it cannot be an answer of this size."""
    shape = getattr(out, "shape", None)
    if shape is not None and math.prod(int(d) for d in shape) > MAX_ANSWER:
        raise ValueError(f"shape {tuple(shape)} is far larger than any case here")
    if isinstance(out, torch.Tensor):
        if out.is_meta or out.layout != torch.strided:
            kind = "meta" if out.is_meta else str(out.layout)
            raise TypeError(f"a {kind} tensor holds no values to compare")
        out = out.detach().to("cpu", torch.float64).numpy()
    return np.asarray(out, dtype=np.float64)


def _what(out: Any) -> str:
    shape = getattr(out, "shape", None)
    return type(out).__name__ + (f" of shape {tuple(shape)}" if shape is not None else "")


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
    # The implementation gets a model of its own; the closed form comes from another, untouched one
    # (an implementation that writes into the model must not move the answer it is held to).
    model, images = case.oracle(), case.images()
    _targets(model, images)
    got = attribution(impl, case.oracle(), case.images(), case)
    return closed_form_failure(got, model, images, case, diagnose)


def check_detector(impl: Impl, case: Case, diagnose: bool) -> str | None:
    model, images = case.oracle(), case.images()
    got = attribution(impl, case.oracle(), case.images(), case)[0]
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
        gap = max(row_gap[r, 0], col_gap[0, c])
        return (
            f"{case.describe()}: pixel (row {r}, col {c}) is {gap} pixel{'s' if gap != 1 else ''} from "
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


def check_fill(impl: Impl, case: Case, diagnose: bool) -> str | None:
    model, images = case.oracle(), case.images()
    _targets(model, images)
    given = case.oracle()
    got = attribution(impl, given, case.images(), case)
    wrong = _unexpected_fill(given.seen, images[0].double(), case.fill)  # type: ignore[arg-type]
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
    got = attribution(impl, case.oracle(), case.images(), case)
    return closed_form_failure(got, model, images, case, diagnose)


def check_batch(impl: Impl, case: Case, diagnose: bool) -> str | None:
    images = case.images()  # every call gets a model of its own, as found
    together = attribution(impl, case.oracle(), images.clone(), case)
    alone = np.concatenate(
        [attribution(impl, case.oracle(), images[i : i + 1].clone(), case) for i in range(case.n)]
    )
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
    images = case.images()
    first = attribution(impl, case.oracle(), images.clone(), case)
    second = attribution(impl, case.oracle(), images.clone(), case)
    diff = np.abs(first - second)
    if not diff.max() <= RERUN_ATOL:  # also true where either is NaN
        n, r, c = np.unravel_index(int(np.nanargmax(np.nan_to_num(diff, nan=np.inf))), diff.shape)
        return (
            f"{case.describe()}: two identical calls disagree at image {n}, pixel (row {r}, col {c}): "
            f"{first[n, r, c]:.6g} then {second[n, r, c]:.6g}"
        )
    return None


def check_unchanged(impl: Impl, case: Case, diagnose: bool) -> str | None:
    model, images = case.oracle(), case.images()
    before, given = _tensors(model), images.clone()
    attribution(impl, model, given, case)
    if any(m.training for m in model.modules()):
        return f"{case.describe()}: the call left the model in training mode (it was handed in eval mode)"
    changes = [*_changes(before, _tensors(model), "model"), *_changes({"": images}, {"": given}, "images")]
    if not changes:
        return None
    worst = max(changes, key=lambda c: c[0])
    return f"{case.describe()}: the call changed {worst[1]}" + (
        f" ({len(changes)} tensors changed in all)" if len(changes) > 1 else ""
    )


def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter and buffer of ``model``, by name."""
    named = [*model.named_parameters(), *model.named_buffers()]
    return {name: t.detach().to("cpu", copy=True) for name, t in named}


def _changes(
    before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], whose: str
) -> list[tuple[float, str]]:
    """(size, words) for each tensor that differs between two snapshots; the size is the largest change."""
    found: list[tuple[float, str]] = []
    label = (lambda n: "the images it was given") if whose == "images" else (lambda n: f"the model's {n!r}")
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old is None or new is None:
            found.append((math.inf, f"{label(name)}: {'added' if old is None else 'removed'}"))
        elif old.shape != new.shape or old.dtype != new.dtype:
            was, now = f"{tuple(old.shape)} {old.dtype}", f"{tuple(new.shape)} {new.dtype}"
            found.append((math.inf, f"{label(name)}: {was} became {now}"))
        else:
            diff = (new.double() - old.double()).abs()
            diff[torch.isnan(diff)] = math.inf
            if diff.numel() and diff.max() > 0:
                at = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), tuple(diff.shape)))
                most = float(diff.max())
                change = f"{float(old[at]):.4g} became {float(new[at]):.4g}"
                found.append((most, f"{label(name)} by up to {most:.4g} (at index {list(at)}: {change})"))
    return found


def check_scale(impl: Impl, case: Case, diagnose: bool) -> str | None:
    model, images = case.oracle(), case.images()
    _targets(model, images)
    got = attribution(impl, case.oracle(), case.images(), case)
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
    claim: str
    cases: Callable[[], st.SearchStrategy[Case]]
    check: Callable[[Impl, Case, bool], str | None]
    probes: tuple[Case, ...] = ()  # fixed cases, each checked in turn instead of drawn ones
    kind: str = "contract"  # every one listed here; the border convention is checked apart (run.py)


PROPERTIES = (
    Property(
        "closed form",
        "On linear models, whose every answer is known in closed form, the attribution equals each "
        "pixel's mean drop of the clean class's softmax probability over the windows covering it.",
        lambda: cases(),
        check_closed_form,
    ),
    Property(
        "object detector",
        "On a model that reads only an object's box, pixels too far for any window to touch the object "
        "get exactly 0, the object ranks first, and the values equal the closed form.",
        detector_cases,
        check_detector,
    ),
    Property(
        "fill in pixel space",
        "Inside each window the model is handed the fill itself, in the pixel space of its input, "
        "before the normalisation it does inside forward; outside the window, the image.",
        lambda: cases(model="normalised", max_n=1),
        check_fill,
    ),
    Property(
        "target is the clean prediction",
        "Each image's target is its own clean prediction, and drops are measured from its clean "
        "probability: not the last occluded input's, not a label, not another image's.",
        lambda: cases(model="steep", min_n=2, max_n=3),
        check_target,
    ),
    Property(
        "batch independence",
        "An image's result does not depend on the other images in its batch, nor on its place there.",
        lambda: cases(min_n=2, max_n=3),
        check_batch,
    ),
    Property(
        "stride and patch",
        "Windows are patch = (height, width) in size and step by stride = (down, across) from the top "
        "left: no transposed, shifted or coarser grid.",
        grid_cases,
        check_closed_form,  # the closed form, on the cases where a wrong grid shows
    ),
    Property(
        "determinism",
        "The same call, on the same model and images, gives the same numbers twice.",
        lambda: cases(),
        check_determinism,
    ),
    Property(
        "model and images unchanged",
        "The call leaves the model as it was handed (every parameter and buffer, and eval mode) and "
        "the images it was given unchanged: a caller's model and data are not the implementation's to "
        "edit.",
        lambda: cases(model="normalised", max_n=2),
        check_unchanged,
    ),
    Property(
        "realistic sizes",
        "The closed form holds at the sizes of real use too: 32x32 and 24x40 images, 10 and 12 "
        "classes, batches of 1, 4, 5, 7, 8 and 9 images (either side of where implementations split "
        "their work into batches).",
        lambda: st.sampled_from(SCALE_CASES),
        check_closed_form,
        probes=SCALE_CASES,
    ),
    Property(
        "probability scale",
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
