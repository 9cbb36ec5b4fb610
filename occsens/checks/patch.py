"""Patch-only and background-only views of the windows the map ranks most important.

For those windows, the image minus the window (background only) must lower the target probability more
than random windows do, and the window alone (patch only, the rest filled) must keep more of it than the
least important windows. Each half has power only where a perfect ranking of the windows (by the very
score the half compares) could reach the line, and the scores differ by more than rounding.
"""

from __future__ import annotations

import numpy as np
import torch

from occsens.checks import inference
from occsens.checks.conditions import (
    BACKGROUND_ONLY,
    BACKGROUND_ONLY_POWER,
    CONFIDENCE,
    NULL_DRAWS,
    PATCH_ONLY,
    PATCH_ONLY_INFORMATION,
    PATCH_ONLY_POWER,
    SPREAD_MIN,
    TOP_FRACTION,
    Z_MIN,
)
from occsens.checks.results import CheckResult, check_result
from occsens.checks.run_state import CheckRun
from occsens.checks.stats import order_desc, z_scores
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


def _remedy(value: dict, run: CheckRun, plan: Plan, view: str) -> str:
    """What would give the patch check power, for whichever power clause failed (see conditions.py)."""
    (ph, pw), (h, w) = plan.patch, plan.image_size
    share = ph * pw / (h * w)
    parts = []
    if value.get("attainable_top_drop", 1.0) <= 0:
        parts.append(
            "Hiding any one window leaves the target score as high or higher: no window carries "
            "evidence the rest of the image lacks; a larger patch (--patch) may hide enough to matter."
        )
    if value["attainable_z"] < Z_MIN:
        parts.append(
            f"With {plan.positions} windows per image (the top and bottom {value['k']} compared) and {run.n} "
            f"image(s), even a perfect ranking reaches only z = {value['attainable_z']:.2f}: more images "
            "(--samples) or a smaller stride (more windows) would give the check power."
        )
    if value["spread"] <= SPREAD_MIN:
        parts.append(
            f"{view} one {ph}x{pw} window ({share:.1%} of the image) changes the target score by at most "
            f"{value['spread']:.1e} from window to window, within rounding: a larger patch (e.g. "
            f"--patch {min(2 * ph, h)}) would give the model enough to react to."
        )
    return " ".join(parts)


def _top_weights(scores: np.ndarray, k: int) -> np.ndarray:
    """float64 [N, P]: each window's share in "the map's top k windows", summing to k per image.

    Windows above the k-th highest score count fully; windows tied with it share what is left, so the
    statistic is its expectation over every way of breaking the tie, not one arbitrary draw. A constant
    map thus picks every window equally and scores the null mean exactly: it ranks nothing, and fails
    without the 2-4% chance a random tie-break would give it."""
    kth = -np.sort(-scores, axis=1)[:, k - 1 : k]
    above = scores > kth
    tied = scores == kth
    left = k - above.sum(axis=1, keepdims=True)
    return above + tied * (left / tied.sum(axis=1, keepdims=True))


def _weighted(scores: np.ndarray, weights: np.ndarray, k: int) -> float:
    """The mean score of the chosen windows (``weights`` from ``_top_weights``), over all images."""
    return float((scores * weights).sum() / (k * len(scores)))


def _best(scores: np.ndarray, k: int) -> tuple[float, float]:
    """(mean of each row's k highest, mean of each row's k lowest) scores: what a perfect ranking picks."""
    ordered = np.sort(scores, axis=1)
    return float(ordered[:, -k:].mean()), float(ordered[:, :k].mean())


def _spread(scores: np.ndarray) -> float:
    """The largest within-image difference between two windows' scores."""
    return float((scores.max(axis=1) - scores.min(axis=1)).max())


def check_patch(run: CheckRun) -> list[CheckResult]:
    """Background-only (the image minus the window) and patch-only (the window alone) at the map's top
    and bottom windows, against random window sets."""
    occ = run.occ
    positions = occ.plan.positions
    if positions < 2:
        raise OcclusionError(f"the patch check needs at least 2 windows; the plan has {positions}")
    k = max(1, int(round(TOP_FRACTION * positions)))
    k = min(k, positions // 2)
    rng = run.rng(2)
    scores = _window_scores(run.maps, occ.plan)
    order = order_desc(scores, rng)  # one tie-break, for the lists in the details
    top, bottom = order[:, :k], order[:, -k:]
    top_w, bottom_w = _top_weights(scores, k), _top_weights(-scores, k)
    drop = occ.drop.reshape(run.n, -1).double().numpy()
    reveal = run.occlusion(run.images, target=run.target, reveal=True)
    kept = reveal.heatmap.reshape(run.n, -1).double().numpy()

    rows = np.arange(run.n)[:, None]
    random_sets = rng.random((NULL_DRAWS, run.n, positions)).argsort(axis=2)
    top_drop, bottom_drop = _weighted(drop, top_w, k), _weighted(drop, bottom_w, k)
    null_drop = drop[rows[None], random_sets[:, :, :k]].mean(axis=(1, 2))
    z_bg, null_bg_mean, null_bg_std = z_scores(top_drop, null_drop)
    best_drop = _best(drop, k)[0]

    top_kept, bottom_kept = _weighted(kept, top_w, k), _weighted(kept, bottom_w, k)
    diff = top_kept - bottom_kept
    null_kept = kept[rows[None], random_sets[:, :, :k]].mean(axis=(1, 2)) - kept[
        rows[None], random_sets[:, :, k : 2 * k]
    ].mean(axis=(1, 2))
    z_patch, null_patch_mean, null_patch_std = z_scores(diff, null_kept)
    best_high, best_low = _best(kept, k)

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
    per_image = inference.mean_interval((drop * top_w).sum(axis=1) / k, CONFIDENCE)
    bg_value = {
        "images": run.n,
        "interval_low": per_image.low,
        "interval_high": per_image.high,
        "z": z_bg,
        "top_mean_drop": top_drop,
        "bottom_mean_drop": bottom_drop,
        "random_mean_drop": null_bg_mean,
        "random_std": null_bg_std,
        "k": k,
        "attainable_z": z_scores(best_drop, null_drop)[0],
        "attainable_top_drop": best_drop,
        "spread": _spread(drop),
    }
    circular = (
        " With the default explainer the windows are ranked by this same drop, so this half only "
        "confirms that the map is not flat; the patch-only half is the independent test."
    )
    bg_text = f"""Hiding each of the {k} windows (of {positions}) that {run.map_label} ranks most important,
        the model seeing the image minus the window, lowered the target {run.score} by {top_drop:.4f} on
        average (least important windows: {bottom_drop:.4f}; random sets of {k} windows:
        {null_bg_mean:.4f} +- {null_bg_std:.4f}; z = {z_bg:.2f}; the {k} windows of largest drop, the best
        any map could pick: {best_drop:.4f}, z = {bg_value["attainable_z"]:.2f}; over {run.n} images the
        {CONFIDENCE:.0%} interval of the top windows' mean drop is [{per_image.low:.4f},
        {per_image.high:.4f}]). If the map's important
        windows carry the evidence, removing them must cost the model more than removing windows at
        random. {circular if run.explainer is None else ""}"""
    patch_value = {
        "z": z_patch,
        "top_minus_bottom": diff,
        "top_mean_prob": top_kept,
        "bottom_mean_prob": bottom_kept,
        "random_mean": null_patch_mean,
        "random_std": null_patch_std,
        "clean_mean_prob": clean,
        "k": k,
        "attainable_z": z_scores(best_high - best_low, null_kept)[0],
        "attainable_top_minus_bottom": best_high - best_low,
        "spread": _spread(kept),
    }
    patch_text = f"""Showing only one window and filling the rest ({run.fill_description}), the target
        {run.score} averaged {top_kept:.4f} for the {k} most important windows and {bottom_kept:.4f} for the
        {k} least important (clean image: {clean:.4f}); the difference {diff:+.4f} is z = {z_patch:.2f}
        random-set standard deviations ({null_patch_mean:+.4f} +- {null_patch_std:.4f}). Ranked by their own
        patch-only {run.score}, the best any map could do, the windows would give
        {best_high - best_low:+.4f}, z = {patch_value["attainable_z"]:.2f}. Evidence that matters should,
        shown on its own, keep more of the target than the window the map calls least important; if it
        does not, the map's ranking reflects what removing the window breaks in the context of the rest of
        the image rather than what the window shows by itself."""
    samples = run.ids(range(run.n))
    return [
        check_result(
            "background-only (important windows)",
            bg_value,
            BACKGROUND_ONLY,
            bg_text,
            samples,
            bg_details,
            power_condition=BACKGROUND_ONLY_POWER,
            remedy=_remedy(bg_value, run, occ.plan, "Hiding"),
        ),
        check_result(
            "patch-only (important windows)",
            patch_value,
            PATCH_ONLY,
            patch_text,
            samples,
            patch_details,
            power_condition=PATCH_ONLY_POWER,
            remedy=_remedy(patch_value, run, occ.plan, "Showing"),
            information=PATCH_ONLY_INFORMATION,
        ),
    ]
