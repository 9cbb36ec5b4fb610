"""A sentence never claims what a failed check on the same page contradicts, and its qualifiers are computed.

Each claim the report's words can make names the check conditions that veto it; these tests fail each
vetoing check in turn (and pass, make inconclusive, or fail an unrelated one) and state which sentences
must change. "Most" and "the largest" are tested at their thresholds.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from occsens.checks import CheckResult
from occsens.checks import conditions as cond
from occsens.cifar.data import CIFAR10_CLASSES as NAMES
from occsens.report.answers import answer_class_map
from occsens.report.consistency import (
    CLAIMS,
    EVIDENCE_REGION,
    MOST_SHARE,
    POSITION_COUNTS,
    REPLACEMENTS_FROM_IMAGE,
    hedge,
    largest,
    most,
    share_words,
    vetoes,
)

from .test_answers import CAUSES, SAMPLES

ALL = (
    cond.RANDOMISATION,
    cond.BACKGROUND_ONLY,
    cond.PATCH_ONLY,
    cond.DELETION,
    cond.INSERTION,
    cond.FILL_CLASS,
    cond.SINK_CLASS,
    cond.DETERMINISM,
)
NAMED = {
    cond.RANDOMISATION: "model randomisation",
    cond.BACKGROUND_ONLY: "background-only (important windows)",
    cond.PATCH_ONLY: "patch-only (important windows)",
    cond.DELETION: "faithfulness: deletion",
    cond.INSERTION: "faithfulness: insertion",
    cond.FILL_CLASS: "occluder leakage: fill class",
    cond.SINK_CLASS: "occluder leakage: sink class",
    cond.DETERMINISM: "determinism",
}


def result(condition: cond.Condition, verdict: str) -> CheckResult:
    return CheckResult(NAMED[condition], verdict, {}, condition, "", (0,))


EXPECTED_VETOES = {
    REPLACEMENTS_FROM_IMAGE: {cond.FILL_CLASS, cond.SINK_CLASS},
    EVIDENCE_REGION: {cond.RANDOMISATION, cond.BACKGROUND_ONLY, cond.DETERMINISM},
    POSITION_COUNTS: {cond.DETERMINISM},
}


def test_every_claim_is_listed_with_its_vetoes() -> None:
    assert set(CLAIMS) == set(EXPECTED_VETOES)


@pytest.mark.parametrize("claim", list(EXPECTED_VETOES), ids=lambda c: c.name)
@pytest.mark.parametrize("condition", ALL, ids=lambda c: NAMED[c])
def test_only_a_failed_vetoing_check_vetoes_a_claim(claim, condition) -> None:
    vetoing = condition in EXPECTED_VETOES[claim]
    assert vetoes(claim, [result(condition, "fail")]) == ((result(condition, "fail"),) if vetoing else ())
    assert vetoes(claim, [result(condition, "pass")]) == ()
    assert vetoes(claim, [result(condition, "inconclusive")]) == ()  # no power: it contradicted nothing


def test_without_checks_nothing_is_vetoed() -> None:
    assert vetoes(REPLACEMENTS_FROM_IMAGE, None) == () and vetoes(REPLACEMENTS_FROM_IMAGE, []) == ()


def test_a_hedge_names_the_claim_and_each_failed_check() -> None:
    against = (result(cond.FILL_CLASS, "fail"), result(cond.SINK_CLASS, "fail"))
    text = hedge(REPLACEMENTS_FROM_IMAGE, against)
    assert text.startswith("This report cannot say that the replacement classes come from the image")
    assert "“occluder leakage: fill class” and “occluder leakage: sink class” checks fail" in text


# ---- the case: Q2 said the runner-up wins while the fill-class leakage check failed -------------


@pytest.mark.parametrize("condition", [cond.FILL_CLASS, cond.SINK_CLASS])
def test_q2_does_not_say_the_image_decides_while_a_leakage_check_fails(condition) -> None:
    causes = replace(CAUSES, lost=19, runner_up=15)  # the runner-up takes most lost positions
    free = answer_class_map(causes, NAMES, SAMPLES, [result(condition, "pass")]).text
    assert "what wins comes from the image: its own runner-up takes 15 of the 19" in free
    vetoed = answer_class_map(causes, NAMES, SAMPLES, [result(condition, "fail")]).text
    assert "comes from the image:" not in vetoed and "runner-up takes" not in vetoed
    assert f"the “{NAMED[condition]}” check fails, so this report does not say that what wins comes" in vetoed


def test_q2_keeps_its_claim_when_an_unrelated_check_fails() -> None:
    causes = replace(CAUSES, lost=19, runner_up=15)
    text = answer_class_map(causes, NAMES, SAMPLES, [result(cond.PATCH_ONLY, "fail")]).text
    assert "what wins comes from the image" in text


# ---- computed qualifiers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("part", "whole", "is_most"),
    [(51, 100, True), (50, 100, False), (49, 100, False), (1, 1, True), (0, 0, False), (3, 5, True)],
)
def test_most_is_a_strict_majority(part: float, whole: float, is_most: bool) -> None:
    assert MOST_SHARE == 0.5
    assert most(part, whole) is is_most


@pytest.mark.parametrize(
    ("values", "index"), [([1, 3, 2], 1), ([3, 3, 2], None), ([], None), ([0], 0), ([5.7, 4.3, 3.3], 0)]
)
def test_the_largest_is_one_value_above_every_other(values: list[float], index: int | None) -> None:
    assert largest(values) == index


@pytest.mark.parametrize(("part", "whole", "words"), [(57, 189, "30%"), (95, 189, "most"), (0, 0, "none")])
def test_a_share_is_said_as_most_only_past_half(part: int, whole: int, words: str) -> None:
    assert share_words(part, whole) == words


# ---- the summary of a reader's own images: "where the evidence lies" only where no check vetoes it -------


def test_the_image_summary_says_whether_to_read_the_regions_as_evidence() -> None:
    from occsens.report.summary import _trust

    bearing = (cond.RANDOMISATION, cond.BACKGROUND_ONLY, cond.DETERMINISM)
    passed = [result(c, "pass") for c in bearing]
    assert "passed: the regions above can be read so" in _trust(passed)
    for c in bearing:  # any one of them failing vetoes the claim, and is named
        text = _trust([result(k, "fail" if k is c else "pass") for k in bearing])
        assert text.startswith("Do not read these maps as where the evidence lies") and NAMED[c] in text
    untested = _trust([result(k, "inconclusive" if k is cond.DETERMINISM else "pass") for k in bearing])
    assert "did not all have power here" in untested
    assert "can be read so" in _trust([*passed, result(cond.DELETION, "fail")])  # not a region claim
    assert _trust(None).startswith("No sanity checks were run")


def test_a_weak_pass_leaves_the_regions_likely_not_established() -> None:
    """Issue 23: randomisation catches 4 of 10 known-bad maps in calibration; its pass cannot by itself
    license reading the regions as the evidence (the trust list answers "not tested" for it too)."""
    from dataclasses import replace as with_

    from occsens.checks.trust import STRONG_POWER
    from occsens.report.summary import _trust

    bearing = (cond.RANDOMISATION, cond.BACKGROUND_ONLY, cond.DETERMINISM)
    weak = [with_(result(c, "pass"), power=0.4 if c is cond.RANDOMISATION else 1.0) for c in bearing]
    assert 0.4 < STRONG_POWER
    text = _trust(weak)
    assert "can be read so" not in text and "likely, not established" in text
    assert f"“{NAMED[cond.RANDOMISATION]}” (catches 40% of known-bad maps)" in text
