"""The closed form: what a correct occlusion returns on an oracle model, and what known mistakes return.

Computed the slow and obvious way, in float64: one occluded copy per window built by slicing, the
oracle's ``logits64``, a softmax, and each pixel's mean drop over the windows covering it. Nothing
here uses the occsens engine, so an engine bug cannot hide in its own yardstick.

Where the windows sit at the far border is a convention (``CONVENTIONS``), not a contract: the
closed form is computed for each, and an answer agrees when it matches any one of them.

``variants`` lists readings of occlusion that are wrong in a known way (the notebook's stale
probability, a transposed grid, logits instead of probabilities, ...); ``diagnose`` names the one a
disagreeing answer matches, so a counterexample says what went wrong, not only that it did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from occsens.conformance.oracles import Box
from occsens.conformance.results import ATOL

Pair = tuple[int, int]

CONVENTIONS = {
    "flush": "full-size windows, the last one flush with the far border: every pixel covered",
    "clipped": "the last window clipped at the far border: every pixel covered, border windows smaller",
    "fit": "windows only where they fit whole: pixels past the last one are never occluded and get 0",
}


def axis_windows(length: int, size: int, step: int, convention: str) -> list[tuple[int, int]]:
    """(start, extent) of the windows along one axis under ``convention``."""
    out: list[tuple[int, int]] = []
    start = 0
    if convention == "clipped":  # step until a window reaches the border; that one is clipped
        while True:
            out.append((start, min(size, length - start)))
            if start + size >= length:
                return out
            start += step
    while start + size <= length:
        out.append((start, size))
        start += step
    if convention == "flush" and out[-1][0] + size < length:
        out.append((length - size, size))
    return out


@dataclass(frozen=True)
class Variant:
    """One reading of occlusion. The defaults are the contract; each other value is a known mistake."""

    target: str | int = "clean"  # "clean", "last" (the last occluded input's argmax) or a class
    reference: str = "clean"  # "clean", "last-max" (np.amax(out) of the last occluded input), "last-target"
    score: str = "softmax"  # "softmax", "logits", "sigmoid", "log-softmax"
    sign: int = 1  # -1: occluded minus clean
    reduce: str = "mean"  # "sum": summed over the covering windows
    transpose_patch: bool = False
    transpose_stride: bool = False
    step: str = "stride"  # "patch": the stride ignored; "one": one pixel
    shift: Pair = (0, 0)  # the filled box is moved by this from the box its drop is credited to
    grow: int = 0  # the filled box grows by grow * patch on every side (2: the notebook's 5x square)
    zero_fill: bool = False  # zeros in the window instead of the fill


CONTRACT = Variant()

SCORES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "softmax": lambda z: torch.softmax(z, dim=-1),
    "logits": lambda z: z,
    "sigmoid": torch.sigmoid,
    "log-softmax": lambda z: torch.log_softmax(z, dim=-1),
}


def window_pairs(
    size: Pair, patch: Pair, stride: Pair, convention: str, v: Variant = CONTRACT
) -> list[tuple[Box, Box]] | None:
    """(filled box, credited box) per window, row-major; None where the variant cannot apply."""
    ph, pw = patch[::-1] if v.transpose_patch else patch
    sh, sw = stride[::-1] if v.transpose_stride else stride
    if v.step == "patch":
        sh, sw = ph, pw
    elif v.step == "one":
        sh, sw = 1, 1
    h, w = size
    if ph > h or pw > w:
        return None
    rows = axis_windows(h, ph, sh, convention)
    cols = axis_windows(w, pw, sw, convention)
    pairs = []
    for top, height in rows:
        for left, width in cols:
            credit = (top, left, height, width)
            t0 = top + v.shift[0] - v.grow * ph
            l0 = left + v.shift[1] - v.grow * pw
            t1 = top + v.shift[0] + height + v.grow * ph
            l1 = left + v.shift[1] + width + v.grow * pw
            t0, l0, t1, l1 = max(t0, 0), max(l0, 0), min(t1, h), min(l1, w)
            pairs.append(((t0, l0, max(t1 - t0, 0), max(l1 - l0, 0)), credit))
    if v.shift != (0, 0) and all(box[2] * box[3] == 0 for box, _ in pairs):
        return None  # every window shifted out of the image: nothing is filled, not a reading of occlusion
    return pairs


def clean_target(model: torch.nn.Module, image: torch.Tensor) -> tuple[int, float]:
    """The clean prediction of one float64 image [C, H, W] and its margin over the runner-up logit."""
    logits = model.logits64(image[None])[0]  # type: ignore[operator]
    top = torch.topk(logits, 2).values if len(logits) > 1 else torch.cat([logits, logits - 1])
    return int(logits.argmax()), float(top[0] - top[1])


def expected_one(
    model: torch.nn.Module,
    image: torch.Tensor,
    fill: float,
    patch: Pair,
    stride: Pair,
    convention: str,
    v: Variant = CONTRACT,
) -> np.ndarray | None:
    """float64 [H, W]: the attribution of one image [C, H, W] under ``convention`` and reading ``v``."""
    _, h, w = image.shape
    pairs = window_pairs((h, w), patch, stride, convention, v)
    if pairs is None:
        return None
    x = image.double()
    occluded = x.expand(len(pairs), *x.shape).clone()
    value = 0.0 if v.zero_fill else fill
    for i, ((t, left, bh, bw), _) in enumerate(pairs):
        occluded[i, :, t : t + bh, left : left + bw] = value
    score = SCORES[v.score]
    clean = score(model.logits64(x[None]))[0]  # type: ignore[operator]
    scores = score(model.logits64(occluded))  # type: ignore[operator]
    if v.target == "clean":
        target = int(clean.argmax())
    elif v.target == "last":
        target = int(scores[-1].argmax())
    else:
        target = int(v.target)
    if v.reference == "clean":
        ref = clean[target]
    elif v.reference == "last-max":
        ref = scores[-1].max()
    else:
        ref = scores[-1][target]
    drops = (v.sign * (ref - scores[:, target])).tolist()
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    for d, (_, (t, left, bh, bw)) in zip(drops, pairs, strict=True):
        total[t : t + bh, left : left + bw] += d
        count[t : t + bh, left : left + bw] += 1
    if v.reduce == "sum":
        return total
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


@dataclass(frozen=True)
class Agreement:
    """How an answer compares with the closed form: the convention it matches best, and where not."""

    convention: str
    error: float  # max |got - expected|; inf where got is NaN or infinite
    image: int
    pixel: Pair
    got: float
    expected: float

    @property
    def agrees(self) -> bool:
        return self.error <= ATOL

    def words(self) -> str:
        r, c = self.pixel
        return (
            f"image {self.image}, pixel (row {r}, col {c}): got {self.got:.4g}, the closed form gives "
            f"{self.expected:.4g} ({self.convention} border); largest difference {self.error:.3g} "
            f"(tolerance {ATOL:g})"
        )


def _error(got: np.ndarray, expected: np.ndarray) -> tuple[float, tuple[int, ...]]:
    diff = np.abs(got - expected)
    diff[~np.isfinite(diff)] = np.inf
    where = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return float(diff[where]), tuple(int(i) for i in where)


def compare(
    got: np.ndarray,
    model: torch.nn.Module,
    images: torch.Tensor,
    fill: float,
    patch: Pair,
    stride: Pair,
    conventions: tuple[str, ...] = tuple(CONVENTIONS),
    v: Variant = CONTRACT,
) -> Agreement | None:
    """How ``got`` [N, H, W] agrees under the best-matching convention; None where ``v`` cannot apply."""
    best: Agreement | None = None
    for conv in conventions:
        rows = [expected_one(model, x, fill, patch, stride, conv, v) for x in images.double()]
        if any(r is None for r in rows):
            return None
        expected = np.stack(rows)  # type: ignore[arg-type]
        error, (i, r, c) = _error(got, expected)
        found = Agreement(conv, error, i, (r, c), float(got[i, r, c]), float(expected[i, r, c]))
        if found.agrees:
            return found
        if best is None or found.error < best.error:
            best = found
    return best


def variants(patch: Pair, stride: Pair, classes: int, clean: int, last: int) -> list[tuple[str, Variant]]:
    """Known wrong readings, each with the sentence that names it (``clean``/``last``: the classes)."""
    found: list[tuple[str, Variant]] = []

    def wrong(words: str, **changed: Any) -> None:  # the contract with these fields changed
        found.append((words, Variant(**changed)))

    for k in range(classes):
        if k != clean:
            wrong(f"the target is class {k}, not the clean prediction (class {clean})", target=k)
    if last != clean:
        said = f"the target is the last occluded input's prediction (class {last}), not the clean one"
        wrong(said, target="last")
    wrong(
        "drops are measured from np.amax(out) of the last occluded input (a stale prediction, the "
        "notebook's print), not from the clean probability",
        reference="last-max",
    )
    said = "drops are measured from the last occluded input's probability, not the clean one (stale)"
    wrong(said, reference="last-target")
    wrong("drops are of raw logits (unnormalised scores), not of softmax probabilities", score="logits")
    wrong("drops are of per-class sigmoid scores, not of softmax probabilities", score="sigmoid")
    wrong("drops are of log-probabilities, not of probabilities", score="log-softmax")
    wrong("the sign is flipped: occluded minus clean", sign=-1)
    wrong("each pixel sums the drops of its windows instead of averaging them", reduce="sum")
    wrong("the window is filled with 0, not with the fill", zero_fill=True)
    (ph, pw), (sh, sw) = patch, stride
    if ph != pw:
        wrong(f"the patch is read as (height, width) = ({pw}, {ph}): transposed", transpose_patch=True)
    if sh != sw:
        wrong(f"the stride is read as ({sw}, {sh}): transposed", transpose_stride=True)
    if ph != pw or sh != sw:
        said = "patch and stride are both transposed (rows and columns swapped)"
        wrong(said, transpose_patch=True, transpose_stride=True)
    if (sh, sw) != (ph, pw):
        wrong(f"the stride is ignored: windows step by the patch {patch}", step="patch")
    if (sh, sw) != (1, 1):
        wrong("the windows step by one pixel, not by the stride", step="one")
    for shift, where in (
        ((1, 0), "one row lower"),
        ((0, 1), "one column further right"),
        ((1, 1), "one pixel down and right"),
        ((-1, 0), "one row higher"),
        ((0, -1), "one column further left"),
    ):
        wrong(f"each window is filled {where} than the pixels its drop is credited to", shift=shift)
    wrong("a square 5x the patch is filled around each window (the notebook's geometry)", grow=2)
    wrong(
        "it is the notebook: a 5x square filled around each cell, and drops measured from np.amax(out) "
        "of the last occluded input",
        grow=2,
        reference="last-max",
    )
    return found


def diagnose(
    got: np.ndarray, model: torch.nn.Module, image: torch.Tensor, fill: float, patch: Pair, stride: Pair
) -> str | None:
    """The known mistakes whose closed form ``got`` [H, W] (one image) matches, in words; None if none.

    On a small case several mistakes can give the same numbers (with one window, a stale reference
    and the notebook's coincide), so up to three are named, in the order of ``variants``.
    """
    x = image.double()
    clean, _ = clean_target(model, x)
    last = last_class(model, x, fill, patch, stride)
    classes = int(model.logits64(x[None]).shape[1])  # type: ignore[operator]
    matches = []
    for sentence, v in variants(patch, stride, classes, clean, last):
        found = compare(got[None], model, image[None], fill, patch, stride, v=v)
        if found is not None and found.agrees:
            matches.append(f"{sentence} ({found.convention} border)")
    if not matches:
        return None
    return matches[0] + "".join(f"; or equally here: {m}" for m in matches[1:3])


def last_class(model: torch.nn.Module, image: torch.Tensor, fill: float, patch: Pair, stride: Pair) -> int:
    """The argmax for the last window (row-major: bottom right) of the flush convention."""
    pairs = window_pairs(tuple(image.shape[1:]), patch, stride, "flush")  # type: ignore[arg-type]
    assert pairs is not None
    (t, left, h, w), _ = pairs[-1]
    x = image.clone()
    x[:, t : t + h, left : left + w] = fill
    return int(model.logits64(x[None])[0].argmax())  # type: ignore[operator]
