"""Faithfulness: deletion and insertion curves (RISE, Petsiuk et al. 2018), judged image by image.

Delete the image in the map's order of importance, in patch-sized tiles filled with the same fill as the
occlusion, and the target probability should fall faster than for random orders of the same tiles;
insert the tiles into a filled image and it should rise faster.

The question is asked of each image: against ``RANDOM_ORDERS`` random orders of that image's tiles, what
share of them does the map's order beat (a lower deletion area, a higher insertion area)? If the map
orders no better than chance its order is one more random order and the share is uniform, mean 1/2,
whatever the model. The verdict reads the interval of the mean share over images against
``BEAT_MIN`` (``occsens.checks.inference``); beside it: the mean area difference, a Wilcoxon
signed-rank test across images, and the early part of the curve (AOPC over the first
``EARLY_FRACTION`` of the tiles, Samek et al. 2017). When the images shown do not decide the verdict
and the caller handed more (``run_checks(more_images=...)``), the check adds them in stages up to
``DECIDE_IMAGES`` and says how many it used.

Cheap by construction: a curve's two ends (the clean image, the fill alone) are the same for every order
and computed once; each image's orders run as one batch; the random orders' insertion curves are their
deletion curves read backwards (keeping the first k tiles of an order is deleting the last n - k, and a
reversed random order is as random), so the null costs one curve per order, not two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from occsens.checks import inference
from occsens.checks.conditions import (
    BEAT_MIN,
    BETTER_OF,
    CONFIDENCE,
    DECIDE_IMAGES,
    DELETION,
    DELETION_POWER,
    EARLY_FRACTION,
    INSERTION,
    INSERTION_POWER,
    POWER_SIMULATIONS,
    RANDOM_ORDERS,
    SPREAD_MIN,
    STAGE_IMAGES,
)
from occsens.checks.names import INCONCLUSIVE
from occsens.checks.results import CheckResult, check_result
from occsens.checks.run_state import CheckRun
from occsens.checks.stats import order_desc
from occsens.engine import resolve_fill
from occsens.engine.fill import Fill
from occsens.engine.plan import checked_pair

_CHUNK_BYTES = 64 << 20  # inputs built at once for one image's curves: bounded for large images


def _tiles(image_size: tuple[int, int], patch: tuple[int, int]) -> torch.Tensor:
    """int64 [H*W]: which patch-sized tile each pixel is in (tiles partition the image, row by row;
    the last row and column of tiles are smaller where the patch does not divide the image)."""
    h, w = image_size
    rows, cols = torch.arange(h) // patch[0], torch.arange(w) // patch[1]
    return (rows[:, None] * (int(cols[-1]) + 1) + cols[None, :]).reshape(-1)


def curve_counts(n_tiles: int) -> np.ndarray:
    """Tiles deleted at each point of a curve: dense at both ends, symmetric (``c[-1 - j] = n - c[j]``).

    Fractions 1/16, 1/8 and 1/2 of the tiles and their mirror images, between the ends (the clean image,
    the fill alone): on 64 tiles 0, 4, 8, 32, 56, 60, 64. Forward passes are the check's whole cost (each
    of 100 random orders per image pays one per inner point), so a curve has 5 inner points, not 15: the
    first eighth, where a good order differs most from a random one and AOPC is read (Samek et al.
    2017), is sampled twice; the middle once. The area is a trapezoid over these points for the map and
    for every random order alike, so the comparison stays fair; it weights the ends more than 16 equal
    steps would. The symmetry lets an order's insertion curve be read off the reversed order's deletion
    curve, so one set of forward passes serves both."""
    lower = sorted({int(np.floor(n_tiles * f)) for f in (0, 1 / 16, 1 / 8, 1 / 2)})
    return np.array(sorted(set(lower) | {n_tiles - c for c in lower}), dtype=np.int64)


def _auc(curves: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Area under curves sampled at ``fractions`` of the tiles (trapezoid rule), along the last axis."""
    widths = np.diff(fractions)
    return ((curves[..., :-1] + curves[..., 1:]) * widths).sum(axis=-1) / 2


def _deletion_curves(
    run: CheckRun,
    x: torch.Tensor,
    target: int,
    fill: Fill,
    index: int,
    orders: np.ndarray,
    tiles: torch.Tensor,
    counts: np.ndarray,
) -> np.ndarray:
    """Target score along the deletion curve of each order: float64 [orders, points].

    ``orders[o]`` lists tile numbers, most important first; at point j the first ``counts[j]`` are
    filled. The clean image and the fill alone (first and last points) run once for all orders."""
    c, h, w = x.shape
    inner = torch.as_tensor(counts[1:-1])
    position = torch.empty(orders.shape, dtype=torch.int64)  # position[o, t]: where tile t is in order o
    position.scatter_(
        1, torch.as_tensor(orders), torch.arange(orders.shape[1]).expand(len(orders), -1).contiguous()
    )
    per_order = max(1, len(inner)) * c * h * w * 4
    step = max(1, _CHUNK_BYTES // per_order)
    ends = torch.stack([torch.zeros(1, h, w, dtype=torch.bool), torch.ones(1, h, w, dtype=torch.bool)])
    scores = []
    for start in range(0, len(orders), step):
        first = position[start : start + step, None, tiles] < inner[None, :, None]  # [O, S-1, HW]
        masks = first.reshape(-1, 1, h, w)
        if start == 0:  # the two ends ride with the first batch of orders: one call, no batch of two
            masks = torch.cat([ends, masks])
        scores.append(run.probs(run.model, _filled(x, masks, fill, index))[:, target])
    probs = torch.cat(scores).double().numpy()
    curves = np.empty((len(orders), len(counts)))
    curves[:, 0], curves[:, -1] = probs[0], probs[1]
    curves[:, 1:-1] = probs[2:].reshape(len(orders), len(inner))
    return curves


def _filled(x: torch.Tensor, masks: torch.Tensor, fill: Fill, index: int) -> torch.Tensor:
    """``x`` with the fill where each mask [B, 1, H, W] is True: a batch of B inputs."""
    batch = x.expand(len(masks), *x.shape)
    return torch.where(masks, fill.images(batch, [index] * len(masks), masks), batch)


def _image_curves(
    run: CheckRun,
    images: torch.Tensor,
    targets: torch.Tensor,
    maps: torch.Tensor,
    offset: int,
    fill: Fill,
    tiles: torch.Tensor,
    counts: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion curves [N, 1 + R, points] of ``images`` (fill index from ``offset``)."""
    n_tiles = int(tiles.max()) + 1
    one_hot = torch.zeros(n_tiles, tiles.numel(), dtype=torch.float64)
    one_hot[tiles, torch.arange(tiles.numel())] = 1.0
    scores = (maps.reshape(len(maps), -1).double() @ one_hot.T / one_hot.sum(dim=1)).numpy()
    map_orders = order_desc(scores, rng)
    deletion, insertion = [], []
    for i in range(len(images)):
        random = np.stack([rng.permutation(n_tiles) for _ in range(RANDOM_ORDERS)])
        orders = np.concatenate([map_orders[i : i + 1], map_orders[i : i + 1, ::-1], random])
        curves = _deletion_curves(run, images[i], int(targets[i]), fill, offset + i, orders, tiles, counts)
        # keeping an order's first k tiles = deleting the reversed order's first n - k (counts symmetric)
        backwards = curves[:, ::-1]
        deletion.append(np.concatenate([curves[:1], curves[2:]]))
        insertion.append(np.concatenate([backwards[1:2], backwards[2:]]))
    return np.stack(deletion), np.stack(insertion)


@dataclass(frozen=True)
class _Judged:
    """One curve's statistics over N images."""

    share: np.ndarray  # [N]: share of random orders the map's order beats, per image
    early_share: np.ndarray  # [N]: the same for the early part (AOPC over the first tiles)
    interval: inference.Interval
    verdict: str  # from the interval alone
    value: dict
    power: float


def _judge(
    curves: np.ndarray,
    fractions: np.ndarray,
    sign: float,
    early: int,
    confidence: float,
    rng: np.random.Generator,
) -> _Judged:
    """The statistics of one kind of curve (``sign`` +1: higher is better, insertion; -1: deletion)."""
    aucs = sign * _auc(curves, fractions)  # [N, 1 + R], higher is better
    clean_or_fill = curves[:, :, :1]
    early_stat = sign * (curves[:, :, 1 : early + 1] - clean_or_fill).mean(axis=2)  # AOPC, sign-corrected
    share = inference.beaten_share(aucs[:, 0], aucs[:, 1:])
    early_share = inference.beaten_share(early_stat[:, 0], early_stat[:, 1:])
    interval = inference.mean_interval(share, confidence).clipped(0.0, 1.0)
    verdict = inference.decide(interval, BEAT_MIN)
    decided = verdict != INCONCLUSIVE
    early_interval = inference.mean_interval(early_share, confidence).clipped(0.0, 1.0)
    difference = aucs[:, 0] - aucs[:, 1:].mean(axis=1)
    diff_interval = inference.mean_interval(difference, confidence)
    n = len(share)
    power = inference.simulated_power(aucs[:, 1:], n, BEAT_MIN, confidence, BETTER_OF, POWER_SIMULATIONS, rng)
    value = {
        "mean_share": interval.mean,
        "share_low": interval.low,
        "share_high": interval.high,
        "threshold": BEAT_MIN,
        "interval_gap": max(interval.low - BEAT_MIN, BEAT_MIN - interval.high),
        "images": n,
        "images_needed": None if decided else inference.images_needed(interval, BEAT_MIN),
        "confidence": confidence,
        "power": power,
        "images_beating_random_mean": int((difference > 0).sum()),
        "wilcoxon_p": inference.wilcoxon_signed_rank(share - 0.5),
        "map_auc": float(sign * aucs[:, 0].mean()),
        "random_auc_mean": float(sign * aucs[:, 1:].mean()),
        "auc_difference": diff_interval.mean,
        "auc_difference_low": diff_interval.low,
        "auc_difference_high": diff_interval.high,
        "early_tiles_fraction": float(fractions[early]),
        "aopc_map": float((sign * early_stat[:, 0]).mean()),
        "aopc_random": float((sign * early_stat[:, 1:]).mean()),
        "early_mean_share": early_interval.mean,
        "early_share_low": early_interval.low,
        "early_share_high": early_interval.high,
        "random_orders": curves.shape[1] - 1,
        "spread": float((curves.max(axis=(1, 2)) - curves.min(axis=(1, 2))).max()),
    }
    return _Judged(share, early_share, interval, verdict, value, power)


def _stages(shown: int, more: int) -> list[int]:
    """How many images each look uses: the images shown, then STAGE_IMAGES steps up to DECIDE_IMAGES."""
    total = min(shown + more, max(shown, DECIDE_IMAGES))
    stages = [shown] + [s for s in STAGE_IMAGES if shown < s < total] + [total]
    return sorted(set(stages))


@dataclass(frozen=True)
class _Evidence:
    """The curves a verdict rests on, and how they were gathered (stages of images, looks' confidence)."""

    deletion: np.ndarray  # [N, 1 + R, points]: the map's order first
    insertion: np.ndarray
    fractions: np.ndarray  # [points]: share of tiles deleted (or kept) at each point
    early: int  # the early part of a curve: points 1..early
    stages: list[int]  # the looks the check may take, in images
    confidence: float  # each look's interval (Bonferroni over the looks)
    n_tiles: int


def _collect(run: CheckRun, *, stop_when_decided: bool = True) -> tuple[_Evidence, list[_Judged], int]:
    """Curves stage by stage until both verdicts are decided (or the images run out): the evidence, the
    two judgements (deletion, insertion) at the last look, and the number of images used."""
    rng, power_rng = run.rng(3), run.rng(4)
    h, w = run.images.shape[2:]
    tiles = _tiles((h, w), checked_pair(run.patch, "patch"))
    n_tiles = int(tiles.max()) + 1
    counts = curve_counts(n_tiles)
    fractions = counts / n_tiles
    early = max(1, int(np.searchsorted(fractions, EARLY_FRACTION, side="right")) - 1)
    more_images = run.more_images if run.more_images is not None else run.images[:0]
    stages = _stages(run.n, len(more_images))
    confidence = 1 - (1 - CONFIDENCE) / len(stages)  # Bonferroni over the looks the stages allow
    fill = resolve_fill(run.fill, torch.cat([run.images, more_images]))
    done = 0
    deletion = np.zeros((0, 1 + RANDOM_ORDERS, len(counts)))
    insertion = deletion
    judged: list[_Judged] = []
    for stage in stages:
        if done == 0:
            images, targets, maps = run.images, run.target, run.maps
        else:
            images = more_images[done - run.n : stage - run.n]
            targets, maps = run.more_maps(done - run.n, stage - run.n)
        d, ins = _image_curves(run, images, targets, maps, done, fill, tiles, counts, rng)
        deletion, insertion = np.concatenate([deletion, d]), np.concatenate([insertion, ins])
        done = stage
        judged = [
            _judge(deletion, fractions, -1.0, early, confidence, power_rng),
            _judge(insertion, fractions, 1.0, early, confidence, power_rng),
        ]
        if stop_when_decided and all(j.verdict != INCONCLUSIVE for j in judged):
            break
    evidence = _Evidence(deletion, insertion, fractions, early, stages, confidence, n_tiles)
    return evidence, judged, done


def check_faithfulness(run: CheckRun) -> list[CheckResult]:
    """Deletion and insertion curves (RISE) against RANDOM_ORDERS random orders per image."""
    evidence, judged, used = _collect(run)
    ids = run.ids(range(run.n)) + [int(s) for s in run.more_ids[: used - run.n]]
    return [
        _faithfulness_result(
            run, name, j, curves, evidence.fractions, ids, evidence.n_tiles, evidence.stages, used
        )
        for name, j, curves in (
            ("deletion", judged[0], evidence.deletion),
            ("insertion", judged[1], evidence.insertion),
        )
    ]


def _faithfulness_result(
    run: CheckRun,
    name: str,
    judged: _Judged,
    curves: np.ndarray,
    fractions: np.ndarray,
    ids: list[int],
    n_tiles: int,
    stages: list[int],
    used: int,
) -> CheckResult:
    v = judged.value
    iv = judged.interval
    pct = f"{iv.confidence:.1%}".replace(".0%", "%")
    if name == "deletion":
        what = (
            f"Filling the image ({run.fill_description}) tile by tile in the order of {run.map_label}, "
            f"most important first, the target {run.score} should fall faster than for a random order of "
            "the same tiles: a lower area under the curve"
        )
        early_words = f"the average drop over the first {v['early_tiles_fraction']:.0%} of the tiles (AOPC)"
    else:
        what = (
            f"Starting from the fill alone ({run.fill_description}) and putting the image back tile by tile "
            f"in the order of {run.map_label}, most important first, the target {run.score} should rise "
            "faster than for a random order: a higher area under the curve"
        )
        early_words = f"the average rise over the first {v['early_tiles_fraction']:.0%} of the tiles"
    more_words = (
        f" The {run.n} image(s) shown did not decide it, so the check added {used - run.n} more "
        f"(looks at {', '.join(str(s) for s in stages if s <= used)} images; each look's interval at "
        f"{pct} so that all looks together keep the 95% level, Bonferroni)."
        if used > run.n
        else ""
    )
    text = f"""{what}. For each of {used} images the map's order was compared with {RANDOM_ORDERS} random
        orders of its {n_tiles} tiles: it beat on average {v["mean_share"]:.0%} of them ({pct} interval
        [{iv.low:.2f}, {iv.high:.2f}] over images; chance is 50%, the pass line {BEAT_MIN:.0%}); its area
        beat the mean random area on {v["images_beating_random_mean"]} of {used} images (Wilcoxon signed-rank
        p = {v["wilcoxon_p"]:.2g}; mean area difference {v["auc_difference"]:+.4f}, interval
        [{v["auc_difference_low"]:+.4f}, {v["auc_difference_high"]:+.4f}]). Early part of the curve,
        {early_words}: the map beat {v["early_mean_share"]:.0%} of random orders (interval
        [{v["early_share_low"]:.2f}, {v["early_share_high"]:.2f}]). Measured power at these {used} images,
        this geometry and this model: an order known to be better (per image the best of {BETTER_OF} random
        orders, which beats a random order {BETTER_OF / (BETTER_OF + 1):.0%} of the time) passes
        {judged.power:.0%} of {POWER_SIMULATIONS} simulated runs.{more_words} A map that orders the image no
        better than chance carries no information about what the model uses (RISE, Petsiuk et al. 2018);
        tiles rather than single pixels, because scattered single pixels hurt a model whatever they show
        (Samek et al. 2017 compare region orders for the same reason)."""
    remedy = ""
    if judged.verdict == INCONCLUSIVE and v["spread"] > SPREAD_MIN:
        needed = v["images_needed"]
        about = (
            f"about {needed} images would decide it"
            if needed is not None
            else "the mean sits on the line, so no number of images would decide it"
        )
        remedy = (
            f"With {used} images the interval [{iv.low:.2f}, {iv.high:.2f}] includes the threshold "
            f"{BEAT_MIN:.2f}; {about} (--samples)."
        )
    elif v["spread"] <= SPREAD_MIN:
        remedy = (
            f"Along every curve the target score moves by at most {v['spread']:.1e}, within rounding: the "
            "model does not react to this fill; another fill (--fill) may give the check power."
        )
    details = {
        "fractions": fractions.tolist(),
        "map_curve": curves[:, 0].mean(axis=0).tolist(),
        "random_curve_mean": curves[:, 1:].mean(axis=(0, 1)).tolist(),
        "random_curve_std": curves[:, 1:].mean(axis=0).std(axis=0, ddof=1).tolist(),
        "share_per_sample": judged.share.tolist(),
        "early_share_per_sample": judged.early_share.tolist(),
        "map_curve_per_sample": curves[:, 0].tolist(),
        "stages": [s for s in stages if s <= used],
    }
    condition, power_condition = (
        (DELETION, DELETION_POWER) if name == "deletion" else (INSERTION, INSERTION_POWER)
    )
    return check_result(
        f"faithfulness: {name}",
        v,
        condition,
        text,
        ids,
        details,
        power_condition=power_condition,
        remedy=remedy,
        measured_power=(judged.power, _power_sentence(judged.power, used)),
    )


def _power_sentence(power: float, images: int) -> str:
    return (
        f"Power {power:.2f}, measured by simulation on this run's own images, random orders and model at "
        f"{images} images (not calibrated on planted objects)."
    )
