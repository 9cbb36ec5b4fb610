"""Results as data: rank correlation, conditions, JSON, crash handling and input validation."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from occsens import OcclusionError, checks
from occsens.checks import conditions as home

from . import check_fakes as fakes

# --------------------------------------------------------------------------- Spearman


def test_spearman_known_values() -> None:
    assert checks.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert checks.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties get their average rank: x ranks (1.5, 1.5, 3), y ranks (1, 2, 3); Pearson of those = sqrt(3)/2
    assert checks.spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2)
    assert checks.spearman([5, 5, 5], [1, 2, 3]) == 0.0  # a constant map shares no ranking


def test_spearman_ties_are_not_broken_by_position() -> None:
    # two block-constant maps with unrelated block values: ordinal ranks would break ties by pixel index
    # identically in both maps and report a strong correlation; average ranks report the block values'.
    a = np.repeat([3.0, 1.0, 2.0, 0.0], 16)
    b = np.repeat([0.0, 1.0, 3.0, 2.0], 16)
    assert checks.spearman(a, b) == pytest.approx(np.corrcoef([3, 1, 2, 0], [0, 1, 3, 2])[0, 1])


@given(st.lists(st.integers(-1000, 1000), min_size=3, max_size=40), st.integers(0, 2**31 - 1))
def test_spearman_is_invariant_to_increasing_transforms_and_symmetric(values: list[int], seed: int) -> None:
    x = np.array(values, dtype=np.float64)  # integers: x**3 is strictly increasing and exact in float64
    y = np.random.default_rng(seed).permutation(x)
    rho = checks.spearman(x, y)
    assert -1 - 1e-12 <= rho <= 1 + 1e-12
    assert checks.spearman(x**3 + 7, y) == pytest.approx(rho, abs=1e-9)
    assert checks.spearman(y, x) == pytest.approx(rho, abs=1e-12)


# --------------------------------------------------------------------------- conditions and JSON


def test_condition_needs_every_clause_and_a_finite_number() -> None:
    cond = home.BACKGROUND_ONLY
    assert cond.holds({"top_mean_drop": 0.1, "z": 2.0})
    assert not cond.holds({"top_mean_drop": 0.1, "z": 1.99})
    assert not cond.holds({"top_mean_drop": 0.0, "z": 5.0})
    assert not cond.holds({"top_mean_drop": 0.1, "z": float("nan")})
    assert not cond.holds({"top_mean_drop": 0.1})
    assert not cond.holds(None)
    assert cond.text == "top_mean_drop > 0 and z >= 2"


def test_every_condition_is_named_with_a_reason_and_every_pass_says_what_it_licenses() -> None:
    conditions = {n: v for n, v in vars(home).items() if isinstance(v, checks.Condition)}
    assert len(conditions) == 15  # 8 pass conditions, CHECK_RAN, 6 power conditions
    for name, cond in conditions.items():
        assert cond.name and len(cond.reason) > 40, name
        if name.endswith("_POWER") or name == "CHECK_RAN":
            assert cond.licence == "", name  # a power condition licenses nothing: it gates the verdict
        else:
            assert len(cond.licence.split()) >= 2, name  # a phrase: "the maps can be trusted for <it>"


def test_results_serialise_to_the_documented_json_keys() -> None:
    results = checks.run_checks(
        fakes.region_model(), fakes.noise_images(3), patch=fakes.PATCH, sample_ids=[10, 20, 30]
    )
    data = json.loads(checks.results_to_json(results))
    assert len(data) == len(results) == 8
    for item, result in zip(data, results, strict=True):
        assert {"name", "verdict", "passed", "power", "value", "condition", "explanation", "samples"} <= set(
            item
        )
        assert isinstance(item["passed"], bool) and item["passed"] == result.passed
        assert item["verdict"] == result.verdict and item["passed"] == (result.verdict == "pass")
        if result.name.startswith("faithfulness"):  # power measured by simulation on this run
            assert item["power"] == result.value["power"]
        elif result.verdict == "info":  # information only: no power claimed
            assert item["power"] is None and result.name not in checks.MEASURED_POWER
        else:  # power measured in calibration
            assert item["power"] == checks.MEASURED_POWER[result.name].fraction
        assert {"name", "text", "reason", "clauses"} <= set(item["condition"])
        assert item["samples"] and set(item["samples"]) <= {10, 20, 30}
        assert "\n" not in item["explanation"] and len(item["explanation"]) > 100
        for clause in item["condition"]["clauses"]:
            assert clause["quantity"] in item["value"]
        for clause in (item["power_condition"] or {}).get("clauses", []):
            assert clause["quantity"] in item["value"]


def test_every_verdict_states_its_images_its_interval_and_its_power() -> None:
    """Issue 23: a reader sees how many images a verdict rests on, how uncertain it is and how often the
    check catches a bad map. Determinism measures maxima over every window (no sample, no interval)
    and says so; patch-only is information, not a verdict."""
    results = checks.run_checks(fakes.region_model(), fakes.noise_images(3), patch=fakes.PATCH)
    for r in results:
        text = r.explanation
        assert re.search(r"\b\d+ image", text) or re.search(r"images?:? \d", text), (r.name, text)
        if r.verdict == "info":
            continue
        assert re.search(r"[Pp]ower", text), (r.name, text)
        if r.name == "determinism":
            assert "carry no interval" in text
        else:
            assert re.search(r"interval[^.]*\[-?\d", text) or "undefined (fewer than 2 images)" in text, (
                r.name,
                text,
            )


def test_non_finite_values_become_null_in_json() -> None:
    result = checks.CheckResult(
        "x", "fail", {"z": math.inf, "v": np.float32(0.5)}, home.PATCH_ONLY, "e", (1,)
    )
    assert json.loads(checks.results_to_json([result]))[0]["value"] == {"z": None, "v": 0.5}


def test_table_lists_every_result_with_its_verdict_value_and_condition() -> None:
    results = checks.run_checks(
        fakes.NoisyModel().eval(), fakes.noise_images(3), patch=fakes.PATCH, checks=["determinism", "leakage"]
    )
    table = checks.format_table(results).splitlines()
    assert table[0].split() == ["check", "result", "value", "power", "condition"]
    assert len(table) == 2 + len(results)
    assert "determinism" in table[2] and "FAIL" in table[2] and "max_diff_repeat=" in table[2]
    assert f"{checks.MEASURED_POWER['determinism'].fraction:.2f}" in table[2]


# --------------------------------------------------------------------------- crashes and bad input


def test_a_crashing_check_becomes_a_failed_result_and_the_others_still_run() -> None:
    def broken(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("the explainer broke")

    results = checks.run_checks(
        fakes.region_model(), fakes.noise_images(3), patch=fakes.PATCH, explainer=broken
    )
    names = [r.name for r in results]
    assert names[:3] == ["randomisation", "patch", "faithfulness"]  # one failed result per crashed check
    for r in results[:3]:
        assert not r.passed and r.value is None and r.condition is home.CHECK_RAN
        assert "RuntimeError: the explainer broke" in r.explanation
        assert "the explainer broke" in r.details["traceback"]
    rest = results[3:]  # leakage and determinism do not use the explainer
    assert [r.name for r in rest] == [
        "occluder leakage: fill class",
        "occluder leakage: sink class",
        "determinism",
    ]
    assert all(r.passed for r in rest)
    json.loads(checks.results_to_json(results))


def test_randomisation_has_no_power_on_a_model_that_is_not_a_module() -> None:
    base = fakes.region_model()
    (result,) = checks.run_checks(
        lambda x: base(x), fakes.noise_images(2), patch=fakes.PATCH, checks=["randomisation"]
    )
    assert result.verdict == "inconclusive" and not result.passed
    assert "torch.nn.Module" in result.explanation and result.explanation.startswith("No power here")


def test_an_explainer_of_the_wrong_shape_is_a_failed_result() -> None:
    (result,) = checks.run_checks(
        fakes.region_model(),
        fakes.noise_images(2),
        patch=fakes.PATCH,
        checks=["faithfulness"],
        explainer=lambda m, x: torch.zeros(len(x), 5),
    )
    assert not result.passed and "expected maps (2, 16, 16)" in result.explanation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patch": 40}, "larger than the image"),
        ({"patch": 4, "stride": 8}, "stride"),
        ({"fill": "sky"}, "fill 'sky' is unknown"),
        ({"checks": ["randomization"]}, "unknown check"),
        ({"sample_ids": [1]}, "sample_ids has 1 entries"),
        ({"labels": [1, 2, 3]}, "labels has 3 entries"),
        ({"explainer": "occlusion"}, "explainer must be a callable"),
        ({"seed": -1}, r"seed must be an int in 0\.\.4294967295, got -1"),  # as --seed -1 is refused
        ({"seed": 2**32}, r"seed must be an int in 0\.\.4294967295"),
    ],
)
def test_bad_arguments_raise_occlusion_error(kwargs: dict, message: str) -> None:
    args = {"patch": fakes.PATCH, **kwargs}
    with pytest.raises(OcclusionError, match=message):
        checks.run_checks(fakes.region_model(), fakes.noise_images(2), **args)


def test_checks_run_in_the_order_asked_and_are_reproducible() -> None:
    model, images = fakes.region_model(), fakes.noise_images(3)
    a = checks.run_checks(model, images, patch=fakes.PATCH, checks=["faithfulness", "patch"], seed=3)
    b = checks.run_checks(model, images, patch=fakes.PATCH, checks=["faithfulness", "patch"], seed=3)
    assert [r.name for r in a][:2] == ["faithfulness: deletion", "faithfulness: insertion"]
    assert checks.results_to_json(a) == checks.results_to_json(b)
