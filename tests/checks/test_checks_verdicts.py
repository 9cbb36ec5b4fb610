"""Every check can fail and can pass: one must-fail and one must-pass case each, on synthetic models.

The must-fail cases are the ones the issue names: a random map fails faithfulness, a model-independent
map (an edge detector) fails randomisation, a model that answers one class whenever a uniform square is
present fails leakage, a model whose forward is random even in eval mode fails determinism. The
patch-only/background-only check fails for a map ranked upside down.
"""

from __future__ import annotations

import pytest
import torch

from occsens import checks
from occsens.checks import conditions as cond

from . import check_fakes as fakes


def by_name(results: list[checks.CheckResult]) -> dict[str, checks.CheckResult]:
    return {r.name: r for r in results}


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return fakes.noise_images()


# --------------------------------------------------------------------------- randomisation


def test_randomisation_fails_for_a_model_independent_map(images: torch.Tensor) -> None:
    model = fakes.conv_bn_model()
    (result,) = checks.run_checks(
        model, images, patch=2, checks=["randomisation"], explainer=fakes.edge_explainer
    )
    assert not result.passed
    assert result.value["final_abs_rank_correlation"] == pytest.approx(1.0)
    assert result.value["curve"] == pytest.approx([1.0] * len(result.value["curve"]))


def test_randomisation_passes_for_the_occlusion_map_of_a_model(images: torch.Tensor) -> None:
    model = fakes.conv_bn_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    (result,) = checks.run_checks(model, images, patch=2, checks=["randomisation"])
    assert result.passed, result.explanation
    assert result.value["final_abs_rank_correlation"] < cond.RANDOMISATION_MAX_RHO
    steps = result.details["steps"]
    assert steps[0]["mean_abs_rank_correlation"] == 1.0
    assert [s["randomised_layers"] for s in steps] == [0, 1, 2, 3]  # conv+bn, conv+bn, linear: top down
    assert steps[1]["down_to"] == "8" and steps[-1]["down_to"] == "0"
    for key, value in model.state_dict().items():  # the model itself is untouched (a copy is randomised)
        assert torch.equal(value, before[key]), key


# --------------------------------------------------------------------------- patch-only vs background-only


def test_patch_checks_fail_for_a_map_ranked_upside_down(images: torch.Tensor) -> None:
    results = by_name(
        checks.run_checks(
            fakes.region_model(),
            images,
            patch=fakes.PATCH,
            checks=["patch"],
            explainer=fakes.inverted_explainer,
        )
    )
    background, patch = (
        results["background-only (important windows)"],
        results["patch-only (important windows)"],
    )
    assert not background.passed and background.value["z"] < 0
    # patch-only is information (uncalibrated on real images): never a failure, but it says what it saw
    assert patch.verdict == "info" and patch.value["z"] < 0
    assert "would read fail" in patch.explanation


def test_patch_checks_fail_for_a_random_map(images: torch.Tensor) -> None:
    results = checks.run_checks(
        fakes.region_model(), images, patch=fakes.PATCH, checks=["patch"], explainer=fakes.random_explainer()
    )
    assert not any(r.passed for r in results)


def test_patch_checks_pass_for_the_occlusion_map_of_a_region_model(images: torch.Tensor) -> None:
    results = by_name(checks.run_checks(fakes.region_model(), images, patch=fakes.PATCH, checks=["patch"]))
    background, patch = (
        results["background-only (important windows)"],
        results["patch-only (important windows)"],
    )
    assert background.passed, background.explanation
    assert background.value["top_mean_drop"] > 0
    assert patch.verdict == "info" and "would read pass" in patch.explanation
    assert patch.value["top_mean_prob"] > patch.value["bottom_mean_prob"]


# --------------------------------------------------------------------------- faithfulness


@pytest.mark.parametrize("seed", [0, 2])
def test_faithfulness_never_passes_a_random_map_and_adds_images(images: torch.Tensor, seed: int) -> None:
    # A random map is one more random order: its mean share is 1/2, below the pass line 0.6; on the 6
    # images shown the interval is too wide to say so (inconclusive, with the number of images that would
    # decide), and with more images to draw on the check adds them (32, then 100) while undecided. At 100
    # images the interval of a mean share of 1/2 ends near 0.57, so it usually fails; by chance (a mean
    # near 0.55) it can still reach the line and stay inconclusive. Never a pass.
    random_map = fakes.random_explainer(seed)
    model = fakes.region_model()
    few = checks.run_checks(model, images, patch=fakes.PATCH, checks=["faithfulness"], explainer=random_map)
    assert [r.name for r in few] == ["faithfulness: deletion", "faithfulness: insertion"]
    for r in few:
        assert r.verdict == "inconclusive", r.explanation
        assert r.value["images"] == 6 and r.value["images_needed"] > 6
        assert f"about {r.value['images_needed']} images would decide it" in r.explanation
    more = fakes.noise_images(94, seed=10 + seed)
    many = checks.run_checks(
        model, images, patch=fakes.PATCH, checks=["faithfulness"], explainer=random_map, more_images=more
    )
    for r in many:
        assert r.verdict in ("fail", "inconclusive"), r.explanation
        assert abs(r.value["mean_share"] - 0.5) < 0.1
        assert r.verdict == "fail" or r.value["images"] == 100  # undecided only once the images ran out
        assert r.value["images"] > 6 and len(r.samples) == r.value["images"]
        assert f"added {r.value['images'] - 6} more" in r.explanation


def test_faithfulness_passes_for_the_occlusion_map_of_a_region_model(images: torch.Tensor) -> None:
    deletion, insertion = checks.run_checks(
        fakes.region_model(), images, patch=fakes.PATCH, checks=["faithfulness"]
    )
    assert deletion.passed, deletion.explanation
    assert deletion.value["map_auc"] < deletion.value["random_auc_mean"]
    assert insertion.passed, insertion.explanation
    assert insertion.value["map_auc"] > insertion.value["random_auc_mean"]
    for r in (deletion, insertion):
        assert r.value["random_orders"] >= 100  # the issue asks for at least 100 per image
        assert r.value["share_low"] > cond.BEAT_MIN and r.value["images"] == len(images)
        assert 0 <= r.power <= 1 and f"Power {r.power:.2f}, measured by simulation" in r.explanation
    curve = deletion.details["map_curve"]
    assert len(curve) == len(deletion.details["fractions"])
    assert deletion.details["fractions"][0] == 0 and deletion.details["fractions"][-1] == 1


def test_curve_points_are_symmetric_so_insertion_reads_the_reversed_deletion() -> None:
    from occsens.checks.faithfulness import curve_counts

    for tiles in (1, 2, 5, 16, 63, 64, 196):
        counts = curve_counts(tiles)
        assert counts[0] == 0 and counts[-1] == tiles
        assert list(counts) == sorted(set(counts.tolist()))
        assert list(tiles - counts[::-1]) == list(counts)
    assert list(curve_counts(64)) == [0, 4, 8, 32, 56, 60, 64]


# --------------------------------------------------------------------------- leakage


def test_leakage_fails_for_a_model_that_answers_one_class_for_a_uniform_square(images: torch.Tensor) -> None:
    results = by_name(
        checks.run_checks(fakes.UniformSquareModel().eval(), images, patch=fakes.PATCH, checks=["leakage"])
    )
    fill_class, sink = results["occluder leakage: fill class"], results["occluder leakage: sink class"]
    assert not fill_class.passed and fill_class.value["fill_explained_share"] == 1.0
    assert fill_class.value["fill_classes"] == [fakes.SINK] * len(images)
    assert fill_class.value["flagged_maps"] > 0
    flags = fill_class.details["flags"]
    clean = [p["clean_class"] for p in fill_class.details["by_fill"]["0.5"]["per_image"]]
    others = [i for i, c in enumerate(clean) if c != fakes.SINK]
    assert len(others) >= 4
    for fill in ("0.5", "mean"):  # the uniform fills: every map of an image of another class is flagged
        assert sorted(f["sample"] for f in flags if f["fill"] == fill) == others
    assert not [f for f in flags if f["fill"] == "noise"]  # a noise square is not uniform
    assert not sink.passed and sink.value["sink_class"] == fakes.SINK and sink.value["sink_fraction"] == 1.0
    by_fill = fill_class.value["by_fill"]  # blur and noise squares are not uniform: no sink there
    assert by_fill["blur"]["fill_explained_share"] < by_fill["0.5"]["fill_explained_share"]
    assert fill_class.value["min_class_map_agreement"] < 0.5


def test_leakage_passes_when_replacement_classes_come_from_the_image(
    images: torch.Tensor,
) -> None:
    results = by_name(checks.run_checks(fakes.region_model(), images, patch=fakes.PATCH, checks=["leakage"]))
    fill_class, sink = results["occluder leakage: fill class"], results["occluder leakage: sink class"]
    assert fill_class.value["flipped_windows"] > 0  # not a pass by having nothing to explain
    assert fill_class.passed, fill_class.explanation
    assert sink.passed, sink.explanation


# --------------------------------------------------------------------------- determinism


def test_determinism_fails_for_a_forward_that_is_random_in_eval_mode(images: torch.Tensor) -> None:
    (result,) = checks.run_checks(
        fakes.NoisyModel().eval(), images, patch=fakes.PATCH, checks=["determinism"]
    )
    assert not result.passed
    assert result.value["max_diff_repeat"] > cond.DETERMINISM_TOL


def test_determinism_passes_and_reports_a_model_handed_over_in_training_mode(images: torch.Tensor) -> None:
    model = fakes.DropoutModel().train()
    with pytest.warns(UserWarning, match="training mode"):
        (result,) = checks.run_checks(model, images, patch=fakes.PATCH, checks=["determinism"])
    assert result.passed, result.explanation
    assert result.value["model_was_training"] is True and result.value["mode_restored"] is True
    assert "training mode" in result.explanation
    assert model.training and model.drop.training  # left as found


def test_determinism_reports_a_model_in_eval_mode(images: torch.Tensor) -> None:
    (result,) = checks.run_checks(fakes.region_model(), images, patch=fakes.PATCH, checks=["determinism"])
    assert result.passed and result.value["model_was_training"] is False
    assert result.value["max_diff_repeat"] == 0.0
