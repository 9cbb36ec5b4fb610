"""Implementations written to fool the checker (issue 26): each is caught, and says how.

- one that doubles the model's parameters in place and returns occsens' own map on the changed model;
- one that works 4 images at a time and mishandles the last, partial batch;
- one that raises ``Unsupported`` for everything: not verified, never a pass;
- one that hangs, one that raises a ``BaseException`` that is not an ``Exception``, one that returns
  tensors with no values (meta, sparse) or a huge broadcast view.
"""

from __future__ import annotations

import asyncio
import re
import threading

import numpy as np
import pytest
import torch

import occsens
from occsens.conformance import Unsupported, assert_conforms, verify
from occsens.conformance.cases import SCALE_CASES
from occsens.conformance.properties import TIE
from occsens.conformance.results import contract_failures, verified
from occsens.leash import TimedOut

from .mistakes import correct


def occsens_map(model, images, *, patch, stride, fill):
    return occsens.occlude(model, images, patch=patch, stride=stride, fill=fill, progress=False).attribution()


def doubles_parameters(model, images, **kw):
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2)
    return occsens_map(model, images, **kw)


def four_at_a_time(model, images, **kw):
    """Batches of 4; a last, partial batch is padded from the front (images[-4:]) and its maps are then
    taken from the wrong end: the first n - start maps of the padded batch, not the last."""
    n = len(images)
    out = torch.zeros(n, *images.shape[2:], dtype=torch.float64)
    for start in range(0, n, 4):
        if start + 4 <= n:
            out[start : start + 4] = correct(model, images[start : start + 4], **kw)
        else:
            maps = correct(model, images[-4:] if n >= 4 else images, **kw)
            out[start:] = maps[: n - start]  # should be maps[-(n - start):]
    return out


def nothing_supported(model, images, **kw):
    raise Unsupported("nothing")


def test_an_implementation_that_changes_the_models_parameters_fails_with_the_largest_change() -> None:
    results = {r.name: r for r in verify(doubles_parameters, examples=3)}
    changed = results["model and images unchanged"]
    assert changed.status == "fail"
    # the model is Normalised(LinearOracle): its weights are multiples of 1/16 in [-1, 1], so doubling
    # moves one by at most 1; the largest change is quoted with where it was and both values
    size, old, new = re.search(
        r"the model's 'inner\.inner\.weight' by up to (\S+) \(at index \[[\d, ]+\]: (\S+) became (\S+)\)",
        changed.counterexample,
    ).groups()
    assert float(new) == 2 * float(old) and float(size) == abs(float(old)) > 0
    # the values it is held to come from an untouched model: its map of the doubled one disagrees
    assert results["closed form"].status == "fail"
    assert "largest difference" in results["closed form"].counterexample


def test_a_correct_implementation_leaves_model_and_images_unchanged() -> None:
    (result,) = verify(occsens_map, examples=5, properties=["model and images unchanged"])
    assert result.status == "pass" and result.cases > 0


def test_an_implementation_left_in_training_mode_fails() -> None:
    def trains(model, images, **kw):
        out = correct(model, images, **kw)
        model.train()
        return out

    (result,) = verify(trains, examples=3, properties=["model and images unchanged"])
    assert result.status == "fail" and "left the model in training mode" in result.counterexample


def test_the_cases_at_scale_cover_real_sizes_and_every_batch_boundary() -> None:
    sizes = {c.size for c in SCALE_CASES}
    assert (32, 32) in sizes and any(h != w for h, w in sizes)
    assert {1, 4, 5, 7} <= {c.n for c in SCALE_CASES} and max(c.n for c in SCALE_CASES) >= 8
    assert min(c.classes for c in SCALE_CASES) >= 10
    for case in SCALE_CASES:
        model, images = case.oracle(), case.images().double()
        logits = model.logits64(images)
        top2 = logits.topk(2, dim=1).values
        assert (top2[:, 0] - top2[:, 1]).min() > TIE, f"{case.describe()} has a tied prediction"
        if case.n > 1:  # images of different maps: a mix-up of images shows in the values
            maps = correct(model, case.images(), patch=case.patch, stride=case.stride, fill=case.fill)
            assert min(float((maps[i] - maps[0]).abs().max()) for i in range(1, case.n)) > 1e-3


def test_an_index_bug_past_the_fourth_image_fails_realistic_sizes() -> None:
    # the drawn cases have at most 3 images: the bug cannot show there
    drawn = verify(four_at_a_time, examples=5, properties=["closed form", "batch independence"])
    assert all(r.status == "pass" for r in drawn)
    (result,) = verify(four_at_a_time, properties=["realistic sizes"])
    assert result.status == "fail"
    assert result.case["n"] in (5, 7, 9) and "largest difference" in result.counterexample


def test_occsens_and_a_plain_loop_hold_at_realistic_sizes() -> None:
    for impl in (occsens_map, correct):
        (result,) = verify(impl, properties=["realistic sizes"])
        assert result.status == "pass" and result.cases == len(SCALE_CASES)


def test_an_implementation_that_supports_nothing_is_not_verified() -> None:
    results = verify(nothing_supported, examples=2)
    assert all(r.status == "untested" for r in results) and not contract_failures(results)
    assert not verified(results)
    with pytest.raises(AssertionError, match="not verified: the implementation raised Unsupported for every"):
        assert_conforms(nothing_supported, examples=2)


def test_an_implementation_that_hangs_is_stopped_by_the_timeout_with_its_name() -> None:
    release = threading.Event()

    def hangs(model, images, **kw):
        release.wait(30)
        return correct(model, images, **kw)

    try:
        with pytest.raises(TimedOut, match=r"the implementation .*hangs did not return within 0.2 s"):
            verify(hangs, examples=2, properties=["closed form"], timeout=0.2)
    finally:
        release.set()


@pytest.mark.parametrize(
    "exc", [GeneratorExit("bye"), asyncio.CancelledError(), SystemExit(3), pytest.fail.Exception("no")]
)
def test_a_base_exception_from_the_implementation_is_a_failed_property_in_one_line(exc) -> None:
    def raises(model, images, **kw):
        raise exc

    (result,) = verify(raises, examples=2, properties=["closed form"])
    assert result.status == "fail"
    assert f"the implementation raised {type(exc).__name__}" in result.counterexample
    assert "\n" not in result.counterexample


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda n, h, w: torch.zeros(n, h, w, device="meta"), "meta tensor holds no values"),
        (lambda n, h, w: torch.zeros(n, h, w).to_sparse(), "torch.sparse_coo tensor holds no values"),
        (lambda n, h, w: torch.zeros(1).expand(10**6, 10**6, 10), "far larger than any case"),
        (lambda n, h, w: np.broadcast_to(np.float32(0), (10**5, 10**5, 10)), "far larger than any case"),
    ],
    ids=["meta", "sparse", "torch broadcast", "numpy broadcast"],
)
def test_answers_without_values_or_far_too_large_are_failed_properties(answer, words) -> None:
    def returns(model, images, **kw):
        return answer(images.shape[0], *images.shape[2:])

    (result,) = verify(returns, examples=2, properties=["closed form"])
    assert result.status == "fail" and words in result.counterexample, result.counterexample


def test_escape_sequences_in_an_implementations_error_are_shown_escaped() -> None:
    def shouts(model, images, **kw):
        raise RuntimeError("\x1b[2J\x1b]0;owned\x07 cleared")

    (result,) = verify(shouts, examples=2, properties=["closed form"])
    assert "\x1b" not in result.counterexample and "\x07" not in result.counterexample
    assert "\\x1b[2J" in result.counterexample
