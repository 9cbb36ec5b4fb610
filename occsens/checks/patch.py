"""Patch-only and background-only views of the windows the map ranks most important.

For those windows, the image minus the window (background only) must lower the target probability more
than random windows do, and the window alone (patch only, the rest filled) must keep more of it than the
least important windows.
"""

from __future__ import annotations

import numpy as np
import torch

from occsens.checks.conditions import BACKGROUND_ONLY, NULL_DRAWS, PATCH_ONLY, TOP_FRACTION
from occsens.checks.results import CheckResult, _result
from occsens.checks.run_state import _Run
from occsens.checks.stats import _order_desc, _z
from occsens.engine.plan import Plan
from occsens.errors import OcclusionError


def _window_scores(maps: torch.Tensor, plan: Plan) -> np.ndarray:
    """float64 [N, P]: the map's mean over each window's pixels, from an integral image (four corner
    lookups per window, so no [P, H, W] masks)."""
    n, h, w = maps.shape
    integral = torch.zeros(n, h + 1, w + 1, dtype=torch.float64)
    integral[:, 1:, 1:] = maps.to(torch.float64).cumsum(dim=1).cumsum(dim=2)
    top, left, bh, bw = plan.windows.reshape(-1, 4).T
    bottom, right = top + bh, left + bw
    sums = (
        integral[:, bottom, right]
        - integral[:, top, right]
        - integral[:, bottom, left]
        + integral[:, top, left]
    )
    return (sums / (bh * bw).to(torch.float64)).numpy()


def check_patch(run: _Run) -> list[CheckResult]:
    """Background-only (the image minus the window) and patch-only (the window alone) at the map's top
    and bottom windows, against random window sets."""
    occ = run.occ
    positions = occ.plan.positions
    if positions < 2:
        raise OcclusionError(f"the patch check needs at least 2 windows; the plan has {positions}")
    k = max(1, int(round(TOP_FRACTION * positions)))
    k = min(k, positions // 2)
    rng = run.rng(2)
    order = _order_desc(_window_scores(run.maps, occ.plan), rng)
    top, bottom = order[:, :k], order[:, -k:]
    drop = occ.drop.reshape(run.n, -1).double().numpy()
    reveal = run.occlusion(run.images, target=run.target, reveal=True)
    kept = reveal.heatmap.reshape(run.n, -1).double().numpy()

    rows = np.arange(run.n)[:, None]
    random_sets = rng.random((NULL_DRAWS, run.n, positions)).argsort(axis=2)
    top_drop, bottom_drop = float(drop[rows, top].mean()), float(drop[rows, bottom].mean())
    null_drop = drop[rows[None], random_sets[:, :, :k]].mean(axis=(1, 2))
    z_bg, null_bg_mean, null_bg_std = _z(top_drop, null_drop)

    top_kept, bottom_kept = float(kept[rows, top].mean()), float(kept[rows, bottom].mean())
    diff = top_kept - bottom_kept
    null_kept = kept[rows[None], random_sets[:, :, :k]].mean(axis=(1, 2)) - kept[
        rows[None], random_sets[:, :, k : 2 * k]
    ].mean(axis=(1, 2))
    z_patch, null_patch_mean, null_patch_std = _z(diff, null_kept)

    clean = float(occ.clean_target_prob.mean())
    shared = {
        "k": k,
        "windows": positions,
        "top_windows": top.tolist(),
        "bottom_windows": bottom.tolist(),
        "clean_target_prob": occ.clean_target_prob.tolist(),
    }
    bg_details = {**shared, "background_only_drop": drop.tolist()}
    patch_details = {**shared, "patch_only_prob": kept.tolist()}
    bg_value = {
        "z": z_bg,
        "top_mean_drop": top_drop,
        "bottom_mean_drop": bottom_drop,
        "random_mean_drop": null_bg_mean,
        "random_std": null_bg_std,
        "k": k,
    }
    circular = (
        " With the default explainer the windows are ranked by this same drop, so this half only "
        "confirms that the map is not flat; the patch-only half is the independent test."
    )
    bg_text = f"""Hiding each of the {k} windows (of {positions}) that {run.map_label} ranks most important,
        the model seeing the image minus the window, lowered the target {run.score} by {top_drop:.4f} on
        average (least important windows: {bottom_drop:.4f}; random sets of {k} windows:
        {null_bg_mean:.4f} +- {null_bg_std:.4f}; z = {z_bg:.2f}). If the map's important windows carry the
        evidence, removing them must cost the model more than removing windows at random.
        {circular if run.explainer is None else ""}"""
    patch_value = {
        "z": z_patch,
        "top_minus_bottom": diff,
        "top_mean_prob": top_kept,
        "bottom_mean_prob": bottom_kept,
        "random_mean": null_patch_mean,
        "random_std": null_patch_std,
        "clean_mean_prob": clean,
        "k": k,
    }
    patch_text = f"""Showing only one window and filling the rest ({run.fill_description}), the target
        {run.score} averaged {top_kept:.4f} for the {k} most important windows and {bottom_kept:.4f} for the
        {k} least important (clean image: {clean:.4f}); the difference {diff:+.4f} is z = {z_patch:.2f}
        random-set standard deviations ({null_patch_mean:+.4f} +- {null_patch_std:.4f}). Evidence that
        matters should, shown on its own, keep more of the target than the window the map calls least
        important; if it does not, the map's ranking reflects what removing the window breaks (e.g. an
        unusual input) rather than what the window contains."""
    samples = run.ids(range(run.n))
    return [
        _result(
            "background-only (important windows)", bg_value, BACKGROUND_ONLY, bg_text, samples, bg_details
        ),
        _result(
            "patch-only (important windows)", patch_value, PATCH_ONLY, patch_text, samples, patch_details
        ),
    ]
