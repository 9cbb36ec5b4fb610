"""Every conditional sentence of a sample's findings, fed hand-made numbers at and around its threshold.

The numbers start from an oracle's real analysis (``oracles.RegionDetector``) and are then replaced by
hand, so each case states exactly the numbers a sentence must not contradict. Issue 14 named three
sentences that did: the agreement sentence printed whatever the agreement, "spread out or redundant"
for a largest drop of 0.0000, and "replacement follows the fill? no" where nothing was replaced.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from occsens.cifar.data import CIFAR10_CLASSES as NAMES
from occsens.report import analysis as an
from occsens.report.cards import TwinComparison, TwinSample
from occsens.report.findings import (
    finding_fills,
    finding_region,
    finding_reveal,
    finding_spread,
    finding_takeover,
    findings_twins,
)
from occsens.report.runs import measure
from occsens.report.thresholds import FLAT_DROP, IMPORTANT_DROP, SAME_MAP_SHARE, SPREAD_AREA_SHARE, WEAK_CLEAN

from .conftest import fake_card
from .oracles import AIRPLANE, CAT, SHIP, RegionDetector, block_image


@pytest.fixture(scope="module")
def base() -> an.SampleAnalysis:
    runs = measure(RegionDetector(), block_image(), patch=4, fill=0.5)
    (sample,) = an.analyse(runs, names=NAMES, sample_names=["block"], labels=[SHIP])
    return sample


def quiet(m: an.MapStats, **numbers: float) -> an.MapStats:
    """``m`` with no window over IMPORTANT_DROP and the given numbers."""
    return replace(
        m, **{"windows_dropping": 0, "clean_target_prob": 0.9, "median_target_prob": 0.88, **numbers}
    )


# --------------------------------------------------------------------------- how many windows matter


@pytest.mark.parametrize(
    ("max_drop", "expected"),
    [
        (-0.02, "No window lowers P(ship) (the largest drop is -0.0200)"),
        (0.0, "No window lowers P(ship) (the largest drop is 0.0000)"),
        (0.00004, "No window lowers P(ship) (the largest drop is 0.0000)"),  # judged as printed
        (0.0001, "The map is flat: hiding any one window lowers P(ship) by at most 0.0001"),
        (FLAT_DROP - 0.0001, "The map is flat: hiding any one window lowers P(ship) by at most 0.0099"),
        (FLAT_DROP, "the largest drop is 0.0100, and at the median window"),
        (IMPORTANT_DROP - 0.0001, "the largest drop is 0.0999, and at the median window"),
    ],
)
def test_no_window_that_matters_is_worded_by_the_largest_drop(
    base: an.SampleAnalysis, max_drop: float, expected: str
) -> None:
    text = finding_spread(quiet(base.main, max_drop=max_drop), NAMES).text
    assert expected in text
    assert ("spread over several windows" in text) == (max_drop >= FLAT_DROP)


def test_an_untrained_models_flat_map_is_not_called_spread_out(base: an.SampleAnalysis) -> None:
    """Issue 14: "an untrained model with a largest drop of 0.0000 is told the evidence is spread out"."""
    text = finding_spread(quiet(base.main, max_drop=0.0, clean_target_prob=0.52), NAMES).text
    assert "spread" not in text and "redundant" not in text
    assert "shows no region the answer rests on" in text


@pytest.mark.parametrize(
    ("clean", "weak"),
    [(WEAK_CLEAN, True), (WEAK_CLEAN - 0.0001, True), (0.1001, False), (0.00003, True)],
)
def test_a_clean_probability_too_small_to_drop_by_the_threshold_says_so(
    base: an.SampleAnalysis, clean: float, weak: bool
) -> None:
    text = finding_spread(quiet(base.main, clean_target_prob=clean, max_drop=0.05), NAMES).text
    assert ("so no window can lower it by more than 0.1" in text) == weak, text


def test_windows_that_matter_are_counted(base: an.SampleAnalysis) -> None:
    one = finding_spread(replace(base.main, windows_dropping=1), NAMES).text
    assert one.startswith("Hiding 1 of the 64 window (one at a time) lowers P(ship) by more than 0.1")
    many = finding_spread(replace(base.main, windows_dropping=7), NAMES).text
    assert many.startswith("Hiding 7 of the 64 windows")


@pytest.mark.parametrize(
    ("max_drop", "matters"), [(FLAT_DROP - 0.0001, False), (FLAT_DROP, True), (0.3, True)]
)
def test_the_region_that_matters_most_is_named_only_when_a_window_matters(
    base: an.SampleAnalysis, max_drop: float, matters: bool
) -> None:
    text = finding_region(replace(base.main, max_drop=max_drop), NAMES).text
    assert text.startswith("The region that matters most is rows 8-11, cols 16-19") == matters, text
    assert ("too small for any window to matter" in text) == (not matters)


# --------------------------------------------------------------- the image minus the patch, or the patch


def readings(base: an.SampleAnalysis, agree: int, kept: int = 60, kept_reveal: int = 5) -> an.SampleAnalysis:
    """``base`` whose occlusion and patch-only class maps agree at exactly ``agree`` of 64 windows."""
    occ = np.full((8, 8), SHIP)
    rev = occ.copy().reshape(-1)
    rev[agree:] = AIRPLANE
    return replace(
        base,
        main=replace(base.main, class_map=occ, kept=kept),
        reveal=replace(base.reveal, class_map=rev.reshape(8, 8), kept=kept_reveal),
    )


@pytest.mark.parametrize("agree", [64, 58, 57, 40, 0])
def test_the_readings_sentence_concludes_only_where_the_class_maps_differ(
    base: an.SampleAnalysis, agree: int
) -> None:
    """Issue 14: "agree at 51 of 64 windows, so the maps describe the image minus the patch" was printed
    whatever the agreement. At SAME_MAP_SHARE (57.6 of 64) the maps no longer tell the readings apart."""
    s = readings(base, agree)
    assert s.agreement == agree
    text = finding_reveal(s, NAMES).text
    if agree >= SAME_MAP_SHARE * 64:
        assert (
            f"agree at {agree} of 64 windows: on this image they cannot tell the two readings apart" in text
        )
        assert "not a map of the patch alone" not in text
    else:
        assert (
            f"agree at only {agree} of 64 windows, so the occlusion map is not a map of the patch alone"
            in text
        )


def test_a_patch_that_keeps_more_than_the_rest_of_the_image_is_said(base: an.SampleAnalysis) -> None:
    text = finding_reveal(readings(base, 10, kept=20, kept_reveal=40), NAMES).text
    assert "a single window carries more of the answer than the rest of the image" in text
    assert "single window" not in finding_reveal(readings(base, 10, kept=40, kept_reveal=20), NAMES).text


# --------------------------------------------------------------------------- where a class takes over


@pytest.mark.parametrize(("rows", "spread"), [(16, True), (15, False), (32, True), (1, False)])
def test_a_takeover_is_spread_across_when_its_box_covers_half_the_image(
    base: an.SampleAnalysis, rows: int, spread: bool
) -> None:
    box = an.CellSpan(0, rows - 1, 0, 31, 5)  # rows x 32 pixels of a 32x32 image
    assert ((rows * 32) >= SPREAD_AREA_SHARE * 1024) == spread
    text = finding_takeover(replace(base.main, replacement_extent=box), NAMES).text
    assert (f"spread across rows 0-{rows - 1}" in text) == spread
    assert (f"within rows 0-{rows - 1}" in text) == (not spread)


# --------------------------------------------------------------------------- does the fill decide it


def with_replacements(base: an.SampleAnalysis, *replacements: int | None) -> an.SampleAnalysis:
    fills = tuple(
        replace(f, stats=replace(f.stats, replacement=k, replacement_count=0 if k is None else 3))
        for f, k in zip(base.fills, replacements, strict=True)
    )
    return replace(base, fills=fills)


@pytest.mark.parametrize(
    ("replacements", "verdict", "words"),
    [
        ((None,) * 5, "none", "No class takes over under any of the 5 fills"),
        ((AIRPLANE, None, None, None, None), "one", "Only one of the 5 fills lets a class take over"),
        (
            (CAT, CAT, None, CAT, None),
            "same",
            "The top replacement class is cat under each of the 3 of 5 fills",
        ),
        ((CAT,) * 5, "same", "The top replacement class is cat under all 5 fills"),
        ((AIRPLANE, CAT, None, None, None), "changes", "The top replacement class changes with the fill"),
    ],
)
def test_the_fill_sentence_compares_only_what_can_be_compared(
    base: an.SampleAnalysis, replacements: tuple[int | None, ...], verdict: str, words: str
) -> None:
    s = with_replacements(base, *replacements)
    assert s.fill_verdict == verdict
    assert s.fill_driven == (verdict == "changes")
    text = finding_fills(s, NAMES).text
    assert text.startswith(words), text
    if verdict in ("none", "one"):  # issue 14: no verdict about the fill where nothing can be compared
        assert "comes from the image" not in text and "driven by the occluder" not in text


# --------------------------------------------------------------------------- colour and greyscale


@pytest.mark.parametrize(("grey", "words"), [(0.8996, "a tie"), (0.8994, "colour model is 0.1 points more")])
def test_the_accuracy_gap_is_judged_as_printed(base: an.SampleAnalysis, grey: float, words: str) -> None:
    colour, grey_card = fake_card("colour", 0.9), replace(fake_card("grey", 0.9), test_accuracy=grey)
    twins = TwinComparison(
        colour, grey_card, (TwinSample(base.main, base.main, base.clean_probs, base.clean_probs),), (SHIP,)
    )
    assert words in findings_twins(twins, NAMES)[0].text
