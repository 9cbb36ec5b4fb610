"""Calibration on ground truth (``occsens.checks.calibration``): each check passes a known-good map, fails
the known-bad maps and models it can see, and its stored power is what the calibration measures.

The known-good case is the occlusion map of an oracle whose evidence is a planted object, at the shipped
models' default geometry (32 x 32, 4 x 4 windows, grey fill); the known-bad cases corrupt that map
(random, inverted, constant, shifted by half the image, image-only edges) or the model (it reads the fill,
or answers at random or by batch). The whole calibration runs once for this module (~30 s of CPU).
"""

from __future__ import annotations

import pytest
import torch

from occsens.checks import planted as pl
from occsens.checks.calibration import Calibration, calibrate, measure_power
from occsens.checks.conditions import Z_MIN
from occsens.checks.power import MEASURED_POWER, NOT_STORED, POWER_TOLERANCE

pytestmark = pytest.mark.slow  # the calibration: ~25 s of CPU, once for the module

RANKING = (  # the results that judge the map's ranking of the image
    "background-only (important windows)",
    "patch-only (important windows)",
    "faithfulness: deletion",
    "faithfulness: insertion",
)
# The known-bad kinds each result must fail on every image set: the defects it can see by design.
# Randomisation sees maps that do not change with the weights (random noise drawn the same way for every
# model, image edges); it cannot see an inverted or shifted map (both still change with the weights). The
# ranking checks see maps that put the object last or elsewhere, or rank nothing (constant: every window
# tied, which the patch check scores at the null mean exactly); they cannot see the image-only map, which
# finds the planted object by its edges. A random map is one more random ranking: it passes a z-test by
# chance ~2-4% of the time (Z_MIN), so it is held to a count below, not to every case.
# Deletion and insertion judge an interval over the 4 images of a set: an inverted map lies clearly below
# the line there; a shifted or constant map may leave the interval across the line (inconclusive, never a
# pass), which more images would decide (tests/checks/test_checks_verdicts.py adds them).
CAN_SEE = {
    "model randomisation": ("random", "image-only"),
    "background-only (important windows)": ("inverted", "constant", "shifted"),
    "faithfulness: deletion": ("inverted",),
    "faithfulness: insertion": ("inverted",),
    "occluder leakage: fill class": tuple(pl.FILL_READERS),
    "occluder leakage: sink class": tuple(pl.FILL_READERS),
    "determinism": tuple(pl.RANDOM_FORWARDS),
}


@pytest.fixture(scope="module")
def calibration() -> Calibration:
    return calibrate()


def test_the_oracle_answers_with_the_planted_object_and_its_map_finds_it() -> None:
    """The ground truth itself: the oracle predicts the object's class, and the window of highest
    attribution in its occlusion map overlaps the object (so the "known-good" map is good)."""
    images, classes, boxes = pl.planted_images(8, seed=3)
    model = pl.TemplateOracle()
    assert torch.equal(model(images).argmax(dim=1), classes)
    maps = pl.occlusion_map(model, images)
    for i, (top, left, h, w) in enumerate(boxes.tolist()):
        row, col = divmod(int(maps[i].argmax()), maps.shape[2])
        assert top <= row < top + h and left <= col < left + w


def test_every_check_passes_the_known_good_map(calibration: Calibration) -> None:
    # The issue asks for pass or inconclusive on known-good cases; at the shipped default geometry every
    # check has power on these images, so each must pass outright.
    # Patch-only is information (verdict "info"); what it would read is still a pass on planted objects.
    for case in calibration.good:
        verdicts = {r.name: r.verdict for r in case.results}
        assert verdicts.pop("patch-only (important windows)") == "info"
        assert list(verdicts.values()) == ["pass"] * 7, [
            (r.name, r.verdict, r.explanation) for r in case.results if r.verdict not in ("pass", "info")
        ]
        (patch,) = [r for r in case.results if r.name == "patch-only (important windows)"]
        assert "would read pass" in patch.explanation


def test_no_known_bad_map_passes_deletion_or_insertion(calibration: Calibration) -> None:
    # except the image-only map: it finds the planted object by its edges, so its order is a good one for
    # this oracle (only randomisation can see it, CAN_SEE above)
    for case in calibration.bad:
        if case.kind == "image-only":
            continue
        for name in ("faithfulness: deletion", "faithfulness: insertion"):
            assert case.verdict(name) in (None, "fail", "inconclusive"), (name, case.kind, case.seed)


def test_each_check_fails_every_known_bad_case_it_can_see(calibration: Calibration) -> None:
    for name, kinds in CAN_SEE.items():
        for kind in kinds:
            cases = [c for c in calibration.bad if c.kind == kind]
            assert len(cases) == 2
            for case in cases:
                assert case.verdict(name) == "fail", (name, kind, case.seed)


def test_a_random_map_passes_the_ranking_checks_only_by_chance(calibration: Calibration) -> None:
    # 4 ranking results x 2 image sets = 8 z-tests of a random map, each passed by chance with probability
    # ~0.023-0.038 (Z_MIN = 2); two or more chance passes among 8 happen ~3% of the time, so one is allowed.
    random_cases = [c for c in calibration.bad if c.kind == "random"]
    passes = [(n, c.seed) for c in random_cases for n in RANKING if c.verdict(n) == "pass"]
    assert len(passes) <= 1, passes
    assert Z_MIN == 2.0  # the chance figures above assume this line


def test_randomisation_has_no_power_on_a_constant_map(calibration: Calibration) -> None:
    for case in calibration.bad:
        if case.kind == "constant":
            (result,) = [r for r in case.results if r.name == "model randomisation"]
            assert result.verdict == "inconclusive" and result.value["ranked_maps"] == 0
            assert "constant" in result.explanation


def test_stored_power_is_the_measured_power(calibration: Calibration) -> None:
    measured = measure_power(calibration)
    assert set(measured) == set(MEASURED_POWER)
    for name, stored in MEASURED_POWER.items():
        now = measured[name]
        assert (now.cases, now.of) == (stored.cases, stored.of), name
        assert abs(now.fraction - stored.fraction) <= POWER_TOLERANCE, (name, now, stored)


def test_every_result_reports_its_calibrated_power(calibration: Calibration) -> None:
    for result in calibration.good[0].results:
        if result.name in NOT_STORED:  # measured on the run (faithfulness) or information (patch-only)
            continue
        stored = MEASURED_POWER[result.name]
        assert result.power == pytest.approx(stored.fraction)
        assert result.to_dict()["power"] == pytest.approx(stored.fraction)
        assert f"flagged {stored.flagged} of {stored.cases} {stored.of}" in result.explanation
