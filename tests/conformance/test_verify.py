"""verify: a correct occlusion passes every contract property; each planted mistake fails one, in words.

The implementations come from ``mistakes.py``: a plain loop written from the contract, correct by
default, with one mistake planted on request. Each counterexample must name the case (sizes, patch,
stride, fill), the numbers that disagree and the mistake that was planted.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import occsens
from occsens.conformance import Unsupported, verify
from occsens.conformance.properties import property_names
from occsens.errors import OcclusionError

from .mistakes import MISTAKES, WRONG, correct

EXAMPLES = 10  # cases per property: every planted mistake below is caught within its first 3 draws


def occsens_impl(model, images, *, patch, stride, fill):
    return occsens.occlude(model, images, patch=patch, stride=stride, fill=fill, progress=False).attribution()


@pytest.mark.parametrize("impl", [occsens_impl, correct], ids=["occsens", "plain loop"])
def test_a_correct_occlusion_passes_every_contract_property(impl) -> None:
    results = verify(impl, examples=EXAMPLES)
    assert [r.name for r in results] == property_names()
    for r in results:
        assert r.status == "pass", f"{r.name}: {r.counterexample}"
        assert r.cases > 0 and r.counterexample is None
    border = results[-1]
    assert border.kind == "convention" and border.convention == "flush"  # both put a last window flush


# mistake -> (the property that must fail, what its counterexample must say besides the numbers)
CAUGHT_BY = {
    "stale clean prediction": ("target is the clean prediction", "last occluded input's probability"),
    "wrong target": ("target is the clean prediction", "not the clean prediction (class"),
    "fill ignored": ("fill in pixel space", "the fill ignored"),
    "stride ignored": ("stride and patch", "the stride is ignored"),
    "one-pixel shift": ("stride and patch", "filled one row lower"),
    "transposed grid": ("stride and patch", "transposed"),
    "batch mates swapped": ("batch independence", "batch mates swapped"),
    "unnormalised scores": ("probability scale", "raw logits"),
    "5x square": ("closed form", "5x the patch"),
}


def test_every_planted_mistake_has_a_property_that_catches_it() -> None:
    assert set(CAUGHT_BY) == set(MISTAKES)


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_planted_mistake_fails_with_a_readable_counterexample(mistake: str) -> None:
    name, named = CAUGHT_BY[mistake]
    (result,) = verify(WRONG[mistake], examples=EXAMPLES, properties=[name])
    assert result.kind == "contract" and result.status == "fail" and not result.passed
    text = result.counterexample
    assert text is not None
    # the case, in words and numbers
    assert re.search(r"\d+ images? of \d+x\d+ pixels \(HxW\), \d channels?, patch \(\d+, \d+\), stride", text)
    assert "fill " in text and result.case is not None and result.case["patch"]
    # the mistake, named
    assert named in text, text
    # shrunk: a small case (the drawn images go up to 9x9; shrinking takes them to a few pixels)
    h, w = result.case["size"]
    assert h * w <= 16, text


def test_the_numbers_that_disagree_are_the_implementations_and_the_closed_forms() -> None:
    (result,) = verify(WRONG["unnormalised scores"], examples=EXAMPLES, properties=["closed form"])
    got, closed = re.search(r"got (\S+), the closed form gives (\S+) ", result.counterexample).groups()
    case = result.case
    # rebuild the counterexample's case and run the planted mistake on it: it returns the quoted number
    from occsens.conformance.cases import Case

    rebuilt = Case(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in case.items() if k != "fill"})
    pixel = re.search(r"image (\d+), pixel \(row (\d+), col (\d+)\)", result.counterexample).groups()
    out = WRONG["unnormalised scores"](
        rebuilt.oracle(), rebuilt.images(), patch=rebuilt.patch, stride=rebuilt.stride, fill=rebuilt.fill
    )
    assert float(got) == pytest.approx(float(out[tuple(map(int, pixel))]), rel=1e-3)
    fixed = correct(
        rebuilt.oracle(), rebuilt.images(), patch=rebuilt.patch, stride=rebuilt.stride, fill=rebuilt.fill
    )
    assert float(closed) == pytest.approx(float(fixed[tuple(map(int, pixel))]), rel=1e-3, abs=1e-6)


def test_the_same_seed_draws_the_same_cases_and_the_same_counterexample() -> None:
    first = verify(WRONG["one-pixel shift"], examples=EXAMPLES, seed=3, properties=["stride and patch"])
    again = verify(WRONG["one-pixel shift"], examples=EXAMPLES, seed=3, properties=["stride and patch"])
    assert first == again


def test_a_crash_is_a_failed_property_that_quotes_the_error() -> None:
    def crashes(model, images, *, patch, stride, fill):
        raise ValueError("no windows for you")

    (result,) = verify(crashes, examples=3, properties=["closed form"])
    assert result.status == "fail"
    assert "raised ValueError: no windows for you" in result.counterexample


def test_an_answer_of_the_wrong_shape_is_a_failed_property_that_says_the_contract() -> None:
    def per_channel(model, images, *, patch, stride, fill):
        return torch.zeros(images.shape)  # [N, C, H, W], as Captum returns it

    (result,) = verify(per_channel, examples=3, properties=["closed form"])
    assert result.status == "fail"
    assert "the contract is [N, H, W]" in result.counterexample


def test_numpy_answers_are_accepted() -> None:
    def as_numpy(model, images, **kw):
        return np.asarray(correct(model, images, **kw))

    (result,) = verify(as_numpy, examples=3, properties=["closed form"])
    assert result.status == "pass"


def test_cases_the_implementation_cannot_express_are_skipped_and_a_property_without_any_is_untested() -> None:
    def square_only(model, images, *, patch, stride, fill):
        if patch[0] != patch[1]:
            raise Unsupported("square patches only")
        return correct(model, images, patch=patch, stride=stride, fill=fill)

    closed, grid = verify(square_only, examples=EXAMPLES, properties=["stride and patch", "closed form"])
    # "stride and patch" draws only non-square patches: nothing was tested, which is not a pass
    assert (closed.name, closed.status) == ("closed form", "pass") and closed.skipped > 0
    assert (grid.name, grid.status, grid.verdict) == ("stride and patch", "untested", "UNTESTED")
    assert not grid.passed and grid.cases == 0 and "Not tested" in grid.explanation


def test_a_nondeterministic_implementation_fails_determinism() -> None:
    def noisy(model, images, **kw):
        return correct(model, images, **kw) + 1e-3 * torch.rand(images.shape[0], *images.shape[2:])

    (result,) = verify(noisy, examples=3, properties=["determinism"])
    assert result.status == "fail" and "two identical calls disagree" in result.counterexample


def test_an_implementation_that_writes_into_its_input_fails_model_and_images_unchanged() -> None:
    def in_place(model, images, **kw):
        out = correct(model, images, **kw)
        images[:, :, 0, 0] = kw["fill"] + 0.25
        return out

    (result,) = verify(in_place, examples=3, properties=["model and images unchanged"])
    assert result.status == "fail" and "changed the images it was given" in result.counterexample


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"examples": 0}, "examples must be an int in 1..10000, got 0"),
        ({"seed": -1}, "seed must be an int >= 0, got -1"),
        ({"properties": ["speed"]}, "properties ['speed'] are unknown; choose from 'closed form'"),
    ],
)
def test_bad_arguments_get_one_clear_error(kwargs, message) -> None:
    with pytest.raises(OcclusionError, match=re.escape(message)):
        verify(correct, **kwargs)


def test_an_impl_that_is_not_callable_is_refused() -> None:
    with pytest.raises(OcclusionError, match="impl must be a callable impl"):
        verify("occsens")
