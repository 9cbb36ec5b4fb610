"""Faithfulness: deletion and insertion curves (RISE, Petsiuk et al. 2018).

Delete the image in the map's order of importance, in patch-sized tiles filled with the same fill as the
occlusion, and the target probability must fall faster than for random orders of the same tiles; insert
them into a filled image and it must rise faster.
"""

from __future__ import annotations

import numpy as np
import torch

from occsens.checks.conditions import (
    CURVE_STEPS,
    DELETION,
    DELETION_POWER,
    INSERTION,
    INSERTION_POWER,
    RANDOM_ORDERS,
    SPREAD_MIN,
    Z_MIN,
)
from occsens.checks.results import CheckResult, _result
from occsens.checks.run_state import CheckRun
from occsens.checks.stats import order_desc, z_scores
from occsens.engine import resolve_fill
from occsens.engine.fill import Fill
from occsens.engine.plan import checked_pair


def _tiles(image_size: tuple[int, int], patch: tuple[int, int]) -> torch.Tensor:
    """int64 [H*W]: which patch-sized tile each pixel is in (tiles partition the image, row by row;
    the last row and column of tiles are smaller where the patch does not divide the image)."""
    h, w = image_size
    rows, cols = torch.arange(h) // patch[0], torch.arange(w) // patch[1]
    return (rows[:, None] * (int(cols[-1]) + 1) + cols[None, :]).reshape(-1)


def _curve_probs(
    run: CheckRun, image: int, orders: np.ndarray, tiles: torch.Tensor, counts: torch.Tensor, fill: Fill
) -> tuple[np.ndarray, np.ndarray]:
    """Target probability along deletion and insertion curves: float64 [orders, steps + 1] each.

    ``orders[o]`` lists tile numbers, most important first; at step j the first ``counts[j]`` tiles are
    filled (deletion) or are the only ones kept (insertion)."""
    x = run.images[image]
    c, h, w = x.shape
    position = torch.empty(orders.shape, dtype=torch.int64)  # position[o, t]: where tile t is in order o
    ranks = torch.arange(orders.shape[1]).expand(len(orders), -1).contiguous()
    position.scatter_(1, torch.as_tensor(orders), ranks)
    first = position[:, None, tiles] < counts[None, :, None]  # [O, S+1, HW]: pixels of the first tiles
    first = first.reshape(-1, 1, h, w)
    batch = x.expand(len(first), c, h, w)
    index = [image] * len(first)
    deleted = torch.where(first, fill.images(batch, index, first), batch)  # first tiles filled
    inserted = torch.where(~first, fill.images(batch, index, ~first), batch)  # first tiles kept, rest filled
    probs = run.probs(run.model, torch.cat([deleted, inserted]))[:, int(run.target[image])]
    curves = probs.double().numpy().reshape(2, len(orders), len(counts))
    return curves[0], curves[1]


def _auc(curves: np.ndarray) -> np.ndarray:
    """Area under curves sampled at 0, 1/S, ..., 1 (trapezoid rule), along the last axis."""
    return (curves[..., :-1] + curves[..., 1:]).sum(axis=-1) / (2 * (curves.shape[-1] - 1))


def _best_auc(curves: np.ndarray, sign: float) -> float:
    """Mean over images of the AUC of the best curve in reach: the clean score at step 0, the fill alone's
    at the last step (the same for every order), and in between the lowest (deletion, ``sign`` -1) or
    highest (insertion) score reached on any measured curve of that image. No measured curve, the map's
    included, beats it, so its z bounds the map's z from above."""
    best = []
    for image in curves:  # [orders, steps + 1]
        extreme = image.min() if sign < 0 else image.max()
        curve = np.full(image.shape[1], extreme)
        curve[0], curve[-1] = image[0, 0], image[0, -1]
        best.append(_auc(curve))
    return float(np.mean(best))


def _remedy(value: dict, n_tiles: int, steps: int, images: int, name: str) -> str:
    """What would give the curve power, for whichever power clause failed (see conditions.py)."""
    parts = []
    if value["attainable_z"] < Z_MIN:
        parts.append(
            f"With {n_tiles} tiles, {steps} steps and {images} image(s), even a curve that went at once to "
            f"the best score any order reached would give only z = {value['attainable_z']:.2f}: more images "
            "(--samples) or a smaller patch (more, smaller tiles) would give the check power."
        )
    if value["spread"] <= SPREAD_MIN:
        parts.append(
            f"Along every {name} curve the target score moves by at most {value['spread']:.1e}, within "
            "rounding: the model does not react to this fill; another fill (--fill) may give it power."
        )
    return " ".join(parts)


def check_faithfulness(run: CheckRun) -> list[CheckResult]:
    """Deletion and insertion curves (RISE) against RANDOM_ORDERS random orders, in patch-sized tiles."""
    rng = run.rng(3)
    h, w = run.images.shape[2:]
    tiles = _tiles((h, w), checked_pair(run.patch, "patch"))
    n_tiles = int(tiles.max()) + 1
    one_hot = torch.zeros(n_tiles, h * w, dtype=torch.float64)
    one_hot[tiles, torch.arange(h * w)] = 1.0
    maps = run.maps.reshape(run.n, -1).double()
    scores = (maps @ one_hot.T / one_hot.sum(dim=1)).numpy()  # [N, tiles]: the map's mean per tile
    steps = min(CURVE_STEPS, n_tiles)
    counts = torch.as_tensor(np.round(np.linspace(0, n_tiles, steps + 1)).astype(np.int64))
    fill = resolve_fill(run.fill, run.images)
    map_orders = order_desc(scores, rng)
    deletion, insertion = [], []  # per image: [1 + RANDOM_ORDERS, steps + 1]
    for i in range(run.n):
        orders = np.stack([map_orders[i]] + [rng.permutation(n_tiles) for _ in range(RANDOM_ORDERS)])
        d, ins = _curve_probs(run, i, orders, tiles, counts, fill)
        deletion.append(d)
        insertion.append(ins)
    fractions = (counts.double() / n_tiles).tolist()
    samples = run.ids(range(run.n))
    results = []
    for name, curves, sign, condition, power_condition in (
        ("deletion", np.stack(deletion), -1.0, DELETION, DELETION_POWER),
        ("insertion", np.stack(insertion), 1.0, INSERTION, INSERTION_POWER),
    ):
        aucs = _auc(curves)  # [N, 1 + R]
        map_auc = float(aucs[:, 0].mean())
        random_aucs = aucs[:, 1:].mean(axis=0)  # one AUC per random order, averaged over images
        z, mean, std = z_scores(sign * map_auc, sign * random_aucs)
        best_auc = _best_auc(curves, sign)
        value = {
            "z": z,
            "map_auc": map_auc,
            "random_auc_mean": float(random_aucs.mean()),
            "random_auc_std": float(random_aucs.std(ddof=1)),
            "random_orders": RANDOM_ORDERS,
            "attainable_z": z_scores(sign * best_auc, sign * random_aucs)[0],
            "best_auc_in_reach": best_auc,
            "spread": float((curves.max(axis=(1, 2)) - curves.min(axis=(1, 2))).max()),
        }
        details = {
            "fractions": fractions,
            "map_curve": curves[:, 0].mean(axis=0).tolist(),
            "random_curve_mean": curves[:, 1:].mean(axis=(0, 1)).tolist(),
            "random_curve_std": curves[:, 1:].mean(axis=0).std(axis=0, ddof=1).tolist(),
            "map_auc_per_sample": aucs[:, 0].tolist(),
            "random_aucs": random_aucs.tolist(),
            "map_curve_per_sample": curves[:, 0].tolist(),
        }
        if name == "deletion":
            what = (
                f"Filling the image ({run.fill_description}) tile by tile in the order of {run.map_label}, "
                f"most important first, the target {run.score} should fall faster than when the same tiles "
                "are filled in a random order: a lower area under the curve"
            )
            verdict = "lower" if z >= 0 else "higher"
        else:
            what = (
                f"Starting from the fill alone ({run.fill_description}) and putting the image back tile by "
                f"tile in the order of {run.map_label}, most important first, the target {run.score} should "
                "rise faster than for a random order: a higher area under the curve"
            )
            verdict = "higher" if z >= 0 else "lower"
        text = f"""{what}. Over {run.n} images, {n_tiles} tiles of the patch size and {steps} steps, the
            map's {name} AUC is {map_auc:.4f}, {verdict} than {RANDOM_ORDERS} random orders
            ({value["random_auc_mean"]:.4f} +- {value["random_auc_std"]:.4f}), z = {z:.2f}; a curve that went
            at once to the best score any order reached would have AUC {best_auc:.4f}, z =
            {value["attainable_z"]:.2f}, a bound the map's z cannot exceed. A map that orders
            the image no better than chance carries no information about what the model uses (RISE, Petsiuk
            et al. 2018). Tiles rather than single pixels: a random order of single pixels scatters the fill
            over the whole image, which hurts the model more than compact regions whatever they show, so the
            comparison would measure the shape of the removal, not the map (Samek et al. 2017 compare region
            orders against random region orders for the same reason)."""
        results.append(
            _result(
                f"faithfulness: {name}",
                value,
                condition,
                text,
                samples,
                details,
                power_condition=power_condition,
                remedy=_remedy(value, n_tiles, steps, run.n, name),
            )
        )
    return results
