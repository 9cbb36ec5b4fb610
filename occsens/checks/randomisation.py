"""Cascading model randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps").

Re-initialise the model's layers from the top down, one group at a time, and compare each map with the
trained model's map by Spearman rank correlation. A map that survives the loss of everything the model
learned explains the image, not the model.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from occsens.checks import inference
from occsens.checks.conditions import (
    CONFIDENCE,
    RANDOMISATION,
    RANDOMISATION_MAX_RHO,
    RANDOMISATION_POWER,
    RANDOMISATION_SAMPLES,
    RANDOMISATION_STEPS,
)
from occsens.checks.results import CheckResult, check_result
from occsens.checks.run_state import CheckRun
from occsens.checks.stats import spearman
from occsens.engine.model import run_device


def _layer_groups(model: nn.Module) -> list[list[tuple[str, nn.Module]]]:
    """Modules with their own parameters, in registration (forward) order; a normalisation layer joins
    the layer before it (a conv and its batch norm are re-initialised together)."""
    groups: list[list[tuple[str, nn.Module]]] = []
    for name, module in model.named_modules():
        is_norm = isinstance(module, (_NormBase, nn.GroupNorm, nn.LayerNorm))
        if not list(module.parameters(recurse=False)) and not isinstance(module, _NormBase):
            continue
        if is_norm and groups:
            groups[-1].append((name or "model", module))
        else:
            groups.append([(name or "model", module)])
    return groups


def _reinitialise(module: nn.Module) -> None:
    """Fresh initial weights: ``reset_parameters()`` where defined (batch norm: affine 1/0, statistics
    reset, then re-estimated), otherwise a normal draw with each parameter's own mean and spread."""
    reset = getattr(module, "reset_parameters", None)
    if callable(reset):
        reset()
        return
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            std = float(p.std()) if p.numel() > 1 else 1.0
            p.normal_(float(p.mean()), std if std > 0 else 1.0)


def _recalibrate(model: nn.Module, norms: Sequence[_NormBase], images: torch.Tensor) -> None:
    """Re-draw the running statistics of re-initialised batch norms from one pass over the images (their
    inputs changed with the layers below them), so randomised layers keep a working scale in eval mode."""
    norms = [m for m in norms if m.track_running_stats]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    model.eval()
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
            m.train()
        with torch.no_grad():
            model(images.to(run_device(model, None)))
    except (ValueError, RuntimeError):
        for m in norms:  # e.g. one value per channel: keep the reset statistics (mean 0, variance 1)
            m.reset_running_stats()
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()


def _no_cascade(
    run: CheckRun, index: torch.Tensor, groups: int, ranked: int, why: str, remedy: str
) -> CheckResult:
    """The inconclusive result where the cascade cannot run or has nothing to compare."""
    value = {"final_abs_rank_correlation": None, "layer_groups": groups, "ranked_maps": ranked}
    return check_result(
        "model randomisation",
        value,
        RANDOMISATION,
        why,
        run.ids(index),
        power_condition=RANDOMISATION_POWER,
        remedy=remedy,
    )


def check_randomisation(run: CheckRun) -> list[CheckResult]:
    """Cascading randomisation (Adebayo et al. 2018): re-initialise layers from the top down."""
    index = torch.arange(min(RANDOMISATION_SAMPLES, run.n))
    if not isinstance(run.model, nn.Module):
        why = "Model randomisation re-initialises the model's layers; this model is not a torch.nn.Module."
        remedy = "Passing the model itself (a torch.nn.Module), not a function around it, would let it run."
        return [_no_cascade(run, index, 0, 0, why, remedy)]
    groups = _layer_groups(run.model)
    if not groups:
        why = "Model randomisation re-initialises the model's layers; this model has no parameters."
        return [_no_cascade(run, index, 0, 0, why, "A model with learned parameters would give it power.")]
    trained = run.maps[index]
    flat = trained.reshape(len(index), -1)
    ranked = [i for i in range(len(index)) if bool(flat[i].max() > flat[i].min())]
    if not ranked:
        why = f"""{run.map_label.capitalize()} is constant on every image checked: there is no ranking
            whose survival the cascade could measure."""
        remedy = """A map that ranks something would give it power (a constant map fails the patch and
            faithfulness checks instead)."""
        return [_no_cascade(run, index, len(groups), 0, why, remedy)]
    steps_taken = min(RANDOMISATION_STEPS, len(groups))  # layer groups re-initialised at each point
    points = sorted({int(round(v)) for v in np.linspace(1, len(groups), steps_taken)})
    randomised = copy.deepcopy(run.model).eval()
    groups_copy = _layer_groups(randomised)
    top_down = groups_copy[::-1]
    steps: list[dict[str, Any]] = [
        {
            "randomised_layers": 0,
            "down_to": None,
            "mean_rank_correlation": 1.0,
            "mean_abs_rank_correlation": 1.0,
            "per_sample": [1.0] * len(index),
        }
    ]
    done = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.seed)
        for point in points:
            for group in top_down[done:point]:
                for _, module in group:
                    _reinitialise(module)
            done = point
            norms = [m for g in top_down[:done] for _, m in g if isinstance(m, _NormBase)]
            _recalibrate(randomised, norms, run.images)
            maps = run.explain(randomised, index)
            rhos = [spearman(trained[i], maps[i]) for i in range(len(index))]
            kept = [rhos[i] for i in ranked]  # a constant trained map correlates 0 with anything: left out
            steps.append(
                {
                    "randomised_layers": done,
                    "down_to": top_down[done - 1][0][0],
                    "mean_rank_correlation": float(np.mean(kept)),
                    "mean_abs_rank_correlation": float(np.mean(np.abs(kept))),
                    "per_sample": rhos,
                }
            )
    final = steps[-1]
    curve = [round(s["mean_abs_rank_correlation"], 4) for s in steps]
    spread = inference.mean_interval(np.abs([final["per_sample"][i] for i in ranked]), CONFIDENCE)
    value = {
        "images": len(ranked),
        "interval_low": spread.low,
        "interval_high": spread.high,
        "final_abs_rank_correlation": final["mean_abs_rank_correlation"],
        "final_rank_correlation": final["mean_rank_correlation"],
        "curve": curve,
        "layer_groups": len(groups),
        "ranked_maps": len(ranked),
    }
    fell = "fell" if final["mean_abs_rank_correlation"] < 1 else "did not fall"
    constant = (
        f" ({len(index) - len(ranked)} constant map(s) left out: they have no ranking to keep)"
        if len(ranked) < len(index)
        else ""
    )
    explanation = f"""Re-initialising the model's {len(groups)} layer groups from the output towards the input
        (cascade points {points}), the mean absolute Spearman rank correlation between {run.map_label} of the
        trained and the randomised model {fell} from 1 to {final["mean_abs_rank_correlation"]:.3f} once every
        layer was random (curve {curve}){constant}; over {len(ranked)} images its {CONFIDENCE:.0%} interval is
        [{spread.low:.3f}, {spread.high:.3f}] against the line {RANDOMISATION_MAX_RHO}.
        Adebayo et al. (2018): a map that stays similar when the
        learned weights are gone is computed from the image and the architecture, not from what the model
        learned, and cannot explain the model's decision. Randomised batch norms start at their initial
        affine weights with running statistics re-estimated on the images; the randomised model runs in eval
        mode."""
    return [
        check_result(
            "model randomisation",
            value,
            RANDOMISATION,
            explanation,
            run.ids(index),
            {"steps": steps, "layers_top_down": [g[0][0] for g in top_down]},
            power_condition=RANDOMISATION_POWER,
        )
    ]
