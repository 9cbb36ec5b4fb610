"""Three verdicts: a check that had no power here says "inconclusive", why, and what would give it power.

The power conditions (``occsens.checks.conditions``) at and around their thresholds, on hand-made values;
then the cases the issue names on synthetic models: a flat model (nothing to judge), rounding-sized
differences, too few windows, too few classes; then the trust summary built from the verdicts.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from occsens import checks
from occsens.checks import conditions as cond
from occsens.checks.leakage import _chance_flag
from occsens.checks.power import POWER_TOLERANCE
from occsens.checks.results import check_result

from . import check_fakes as fakes

# --------------------------------------------------------------------------- the verdict from two conditions


def verdict(condition: checks.Condition, power: checks.Condition, **value: float) -> str:
    return check_result("x", value, condition, "text.", [0], power_condition=power, remedy="Remedy.").verdict


@pytest.mark.parametrize(
    ("attainable_z", "spread", "z", "expected"),
    [
        (cond.Z_MIN, 0.01, cond.Z_MIN, "pass"),  # both lines are inclusive (>=)
        (cond.Z_MIN, 0.01, cond.Z_MIN - 1e-9, "fail"),
        (cond.Z_MIN - 1e-9, 0.01, cond.Z_MIN - 1e-9, "inconclusive"),  # no ranking could have passed
        (5.0, cond.SPREAD_MIN, 5.0, "inconclusive"),  # differences of rounding size: z means nothing
        (5.0, cond.SPREAD_MIN * 1.01, 5.0, "pass"),
        (5.0, 0.01, float("nan"), "fail"),
    ],
)
def test_power_gates_the_pass_condition(attainable_z: float, spread: float, z: float, expected: str) -> None:
    got = verdict(cond.PATCH_ONLY, cond.PATCH_ONLY_POWER, attainable_z=attainable_z, spread=spread, z=z)
    assert got == expected


@pytest.mark.parametrize(
    ("flips", "chance", "share", "expected"),
    [
        (2, cond.LEAKAGE_CHANCE_MAX, 1.0, "fail"),  # at the line the test has power
        (2, cond.LEAKAGE_CHANCE_MAX + 1e-9, 1.0, "inconclusive"),
        (0, 0.0, 0.0, "inconclusive"),  # nothing changed class: nothing to explain
        (5, 0.01, cond.FILL_EXPLAINED_MAX, "pass"),
    ],
)
def test_fill_class_power(flips: int, chance: float, share: float, expected: str) -> None:
    got = verdict(
        cond.FILL_CLASS,
        cond.FILL_CLASS_POWER,
        eligible_flips=flips,
        chance_flag=chance,
        fill_explained_share=share,
    )
    assert got == expected


def test_an_inconclusive_explanation_says_why_and_what_would_give_power() -> None:
    value = {"attainable_z": 1.5, "spread": 0.01, "z": 0.3}
    result = check_result("x", value, cond.PATCH_ONLY, "The measurement.", [0],
                     power_condition=cond.PATCH_ONLY_POWER, remedy="Use a larger patch.")  # fmt: skip
    assert result.verdict == "inconclusive" and not result.passed
    assert result.explanation.startswith("No power here: the check needs")
    assert "attainable_z = 1.5, needs >= 2" in result.explanation
    assert "spread" not in result.explanation.split("needs")[1].split(")")[0]  # only the unmet clause
    assert "Use a larger patch. The measurement." in result.explanation


def test_a_failure_says_the_check_had_power() -> None:
    value = {"attainable_z": 13.96, "spread": 0.5, "z": -0.15}
    result = check_result("x", value, cond.PATCH_ONLY, "The measurement.", [0],
                     power_condition=cond.PATCH_ONLY_POWER, remedy="Use a larger patch.")  # fmt: skip
    assert result.verdict == "fail"
    assert result.explanation == (
        "The measurement. The check had power here (attainable_z = 14, spread = 0.5): the map failed it, "
        "the test did not lack power. Judged on 1 image(s)."
    )  # the remedy is for inconclusive results only; every result says how many images it judged


def test_a_verdict_outside_the_three_is_refused() -> None:
    with pytest.raises(ValueError, match="verdict 'passed' is not one of pass, fail, inconclusive"):
        checks.CheckResult("x", "passed", {}, cond.PATCH_ONLY, "e", (0,))


@pytest.mark.parametrize(
    ("flips", "classes", "expected"),
    [
        (0, 10, 0.0),
        (1, 10, 1 / 9),
        (2, 10, 1 / 81),
        (3, 10, 3 * (1 / 9) ** 2 * (8 / 9) + (1 / 9) ** 3),  # two or three of three
        (4, 10, 4 * (1 / 9) ** 3 * (8 / 9) + (1 / 9) ** 4),  # more than half: three or four
        (7, 2, 1.0),  # two classes: every changed window takes the other one
        (1, 3, 0.5),
    ],
)
def test_chance_flag_is_the_binomial_tail(flips: int, classes: int, expected: float) -> None:
    assert _chance_flag(flips, classes) == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------------- no power on synthetic models


def by_name(results: list[checks.CheckResult]) -> dict[str, checks.CheckResult]:
    return {r.name: r for r in results}


def test_a_model_that_ignores_the_image_leaves_every_map_check_inconclusive() -> None:
    results = by_name(checks.run_checks(fakes.FlatModel().eval(), fakes.noise_images(3), patch=fakes.PATCH))
    assert results["patch-only (important windows)"].verdict == "info"
    assert "would read inconclusive" in results["patch-only (important windows)"].explanation
    for name in (
        "model randomisation",
        "background-only (important windows)",
        "faithfulness: deletion",
        "faithfulness: insertion",
        "occluder leakage: fill class",
    ):
        assert results[name].verdict == "inconclusive", (name, results[name].explanation)
    assert results["model randomisation"].value["ranked_maps"] == 0
    assert results["background-only (important windows)"].value["attainable_top_drop"] == 0.0
    assert results["occluder leakage: fill class"].value["eligible_flips"] == 0
    assert results["determinism"].verdict == "pass"  # a constant answer is a reproducible one
    assert not checks.any_failed(list(results.values()))


def test_differences_of_rounding_size_give_no_power_however_large_z() -> None:
    results = by_name(
        checks.run_checks(
            fakes.FaintModel().eval(), fakes.noise_images(3), patch=fakes.PATCH, checks=["patch"]
        )
    )
    background = results["background-only (important windows)"]
    assert 0 < background.value["spread"] <= cond.SPREAD_MIN
    assert background.value["z"] >= cond.Z_MIN  # the ranking is real, but of rounding-sized drops
    assert background.verdict == "inconclusive"
    assert "within rounding" in background.explanation and "--patch" in background.explanation


def test_too_few_windows_and_images_give_the_patch_check_no_power() -> None:
    # One 16x16 image, 8x8 patch: 4 windows, the top and bottom one compared. Even the perfect ranking
    # (largest minus smallest) is at most ~1.6 standard deviations of random pairs of 4 values.
    results = checks.run_checks(fakes.region_model(), fakes.noise_images(1), patch=8, checks=["patch"])
    for result in results:
        # patch-only is information whatever it measures; what it would read is still "no power"
        assert result.verdict in ("inconclusive", "info"), result.explanation
        assert result.verdict == "inconclusive" or "would read inconclusive" in result.explanation
        assert result.value["attainable_z"] < cond.Z_MIN
        assert "--samples" in result.explanation and "smaller stride" in result.explanation


def test_with_two_classes_the_fill_class_test_has_no_power() -> None:
    model = torch.nn.Sequential(fakes.region_model(), torch.nn.Linear(fakes.CLASSES, 2)).eval()
    results = by_name(checks.run_checks(model, fakes.noise_images(4), patch=fakes.PATCH, checks=["leakage"]))
    fill = results["occluder leakage: fill class"]
    assert fill.value["chance_flag"] == 1.0 or fill.value["eligible_flips"] == 0
    assert fill.verdict == "inconclusive" and "class" in fill.explanation


@pytest.mark.parametrize("seed", range(3))
def test_no_map_scores_above_the_attainable_bound(seed: int) -> None:
    """attainable_z is the z of the best ranking in reach; a map's own z can never exceed it, so
    "inconclusive" never hides a map that passed."""
    results = checks.run_checks(
        fakes.region_model(),
        fakes.noise_images(3, seed=seed),
        patch=fakes.PATCH,
        checks=["patch"],
        explainer=fakes.random_explainer(seed),
        seed=seed,
    )
    for r in results:
        assert r.value["z"] <= r.value["attainable_z"] + 1e-9, r.name


def test_a_constant_map_scores_the_null_mean_exactly_in_the_patch_check() -> None:
    """Tied windows share the top-k weight, so a constant map ranks nothing and fails deterministically,
    whatever the seed (a random tie-break would pass it by chance ~2-4% of the time)."""
    for seed in range(3):
        results = checks.run_checks(
            fakes.region_model(),
            fakes.noise_images(3),
            patch=fakes.PATCH,
            checks=["patch"],
            explainer=lambda m, x: torch.zeros(len(x), fakes.SIZE, fakes.SIZE),
            seed=seed,
        )
        patch_only = by_name(results)["patch-only (important windows)"]
        assert patch_only.value["top_minus_bottom"] == pytest.approx(0.0, abs=1e-12)
        assert patch_only.verdict == "info" and abs(patch_only.value["z"]) < 0.2
        assert "would read fail" in patch_only.explanation


# --------------------------------------------------------------------------- the trust summary


def made(name: str, verdict: str, condition: checks.Condition) -> checks.CheckResult:
    return checks.CheckResult(name, verdict, {}, condition, "e", (0,))


FAITHFUL = made("faithfulness: deletion", "pass", cond.DELETION)
RANDOMISED = made("model randomisation", "pass", cond.RANDOMISATION)
PATCH_FAIL = made("patch-only (important windows)", "fail", cond.PATCH_ONLY)
PATCH_NO_POWER = made("patch-only (important windows)", "inconclusive", cond.PATCH_ONLY)


def test_trust_summary_names_what_passes_license_and_what_fails_withhold() -> None:
    text = checks.trust_summary([FAITHFUL, RANDOMISED, PATCH_FAIL])
    assert text == (
        f"The maps can be trusted for {cond.DELETION.licence} and {cond.RANDOMISATION.licence}; "
        f"not for {cond.PATCH_ONLY.licence}."
    )


def test_trust_summary_keeps_untested_apart_from_failed() -> None:
    text = checks.trust_summary([FAITHFUL, PATCH_NO_POWER])
    assert text == (
        f"The maps can be trusted for {cond.DELETION.licence}; untested here (the check had no power) "
        f"for {cond.PATCH_ONLY.licence}."
    )
    assert "not for" not in text


def test_trust_summary_when_nothing_passes() -> None:
    assert checks.trust_summary([PATCH_FAIL, PATCH_NO_POWER]).startswith(
        f"The maps cannot be trusted for {cond.PATCH_ONLY.licence}; untested here"
    )
    assert checks.trust_summary([PATCH_NO_POWER]).startswith("No check had power here")
    assert checks.trust_summary([]).startswith("No checks ran")


def test_a_crashed_check_is_named_in_the_summary() -> None:
    crashed = checks.CheckResult("patch", "fail", None, cond.CHECK_RAN, "crashed", (0,))
    assert checks.trust_summary([FAITHFUL, crashed]).endswith("not for what the patch check tests.")


def test_only_a_fail_counts_as_failed() -> None:
    assert checks.any_failed([FAITHFUL, PATCH_FAIL])
    assert not checks.any_failed([FAITHFUL, PATCH_NO_POWER])
    assert not checks.any_failed([])


def test_the_table_shows_three_verdicts_and_the_power() -> None:
    result = check_result(
        "determinism", {"max_diff_repeat": 0.0, "max_diff_batch": 0.0}, cond.DETERMINISM, "e", [0]
    )
    rows = checks.format_table([FAITHFUL, PATCH_FAIL, PATCH_NO_POWER, result]).splitlines()
    assert [row.split()[0] for row in rows[2:]] == [
        "faithfulness:",
        "patch-only",
        "patch-only",
        "determinism",
    ]
    assert "PASS" in rows[2] and "FAIL" in rows[3] and "INCONCLUSIVE" in rows[4]
    assert " - " in rows[2]  # no power measured for a hand-made result
    assert f"{checks.MEASURED_POWER['determinism'].fraction:.2f}" in rows[5]


# --------------------------------------------------------------------------- the names, without torch


def test_the_torch_free_names_are_the_checks_that_run() -> None:
    assert tuple(checks.CHECKS) == checks.CHECK_NAMES
    assert checks.VERDICTS == ("pass", "fail", "inconclusive", "info")


def test_importing_the_check_names_does_not_import_torch() -> None:
    code = "import sys, occsens.checks.names; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


def test_power_fractions_lie_in_zero_one() -> None:
    for name, power in checks.MEASURED_POWER.items():
        assert 0 <= power.fraction <= 1 and power.cases > 0, name
        assert math.isclose(power.fraction, power.flagged / power.cases)
    assert np.isfinite(POWER_TOLERANCE)
