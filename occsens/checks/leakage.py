"""Occluder leakage (ROAD, Rong et al. 2022): does the class map read the fill instead of the image?

What the model predicts for the fill alone, whether the windows' replacement classes are that class
(explained by the fill, not the image), whether one "sink" class wins windows across different images,
and how the class map changes between fills.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from occsens.checks import inference
from occsens.checks.conditions import (
    CONFIDENCE,
    FILL_CLASS,
    FILL_CLASS_POWER,
    FILL_EXPLAINED_MAX,
    LEAKAGE_FILLS,
    SINK_CLASS,
    SINK_FRACTION_MAX,
)
from occsens.checks.results import CheckResult, check_result
from occsens.checks.run_state import CheckRun
from occsens.engine import Occlusion


def _fill_alone(run: CheckRun, fill: Any) -> torch.Tensor:
    """Softmax [N, K] of each image's fill alone (every pixel replaced)."""
    everywhere = torch.ones(1, 1, *run.images.shape[2:], dtype=torch.bool)
    filled = run.runs.fill(fill, run.images).images(run.images, list(range(run.n)), everywhere)
    return run.probs(run.model, filled.expand_as(run.images).contiguous())


def _chance_flag(flips: int, classes: int) -> float:
    """P(more than FILL_EXPLAINED_MAX of ``flips`` changed windows take the fill's class by chance), each
    being the fill's class with probability 1/(K-1) when the replacement classes come from the image."""
    if flips == 0:
        return 0.0
    p = 1.0 / (classes - 1) if classes > 2 else 1.0
    if p >= 1.0:
        return 1.0
    first = math.floor(FILL_EXPLAINED_MAX * flips) + 1
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = (
        math.lgamma(flips + 1)
        - math.lgamma(j + 1)
        - math.lgamma(flips - j + 1)
        + j * log_p
        + (flips - j) * log_q
        for j in range(first, flips + 1)
    )
    return min(1.0, sum(math.exp(t) for t in terms))


def _leakage_stats(occ: Occlusion, fill_probs: torch.Tensor, labels: np.ndarray | None) -> dict:
    n = len(occ.images)
    classes = occ.class_map.reshape(n, -1)
    positions = classes.shape[1]
    clean = occ.clean_class
    fill_class = fill_probs.argmax(dim=1)
    flipped = classes != clean[:, None]
    eligible = fill_class != clean
    to_fill = flipped & (classes == fill_class[:, None])
    flips_eligible = int(flipped[eligible].sum())
    share = int(to_fill[eligible].sum()) / flips_eligible if flips_eligible else 0.0
    fractions = []
    for s in range(occ.num_classes):
        others = clean != s
        total = int(others.sum()) * positions
        fractions.append(int((classes[others] == s).sum()) / total if total else 0.0)
    sink = int(np.argmax(fractions))
    per_image = []
    for i in range(n):
        flips = int(flipped[i].sum())
        to = int(to_fill[i].sum())
        per_image.append(
            {
                "clean_class": int(clean[i]),
                "fill_class": int(fill_class[i]),
                "fill_class_prob": float(fill_probs[i, fill_class[i]]),
                "flipped_windows": flips,
                "to_fill_class": to,
                "flagged": bool(eligible[i] and flips and to / flips > FILL_EXPLAINED_MAX),
                "label": None if labels is None else int(labels[i]),
                "fill_class_is_label": labels is not None and int(labels[i]) == int(fill_class[i]),
            }
        )
    # images as the unit: the pooled shares' intervals (windows of one image are not independent)
    share_interval = inference.ratio_interval(
        to_fill.sum(dim=1)[eligible].numpy(), flipped.sum(dim=1)[eligible].numpy(), CONFIDENCE
    ).clipped(0.0, 1.0)
    sink_interval = inference.mean_interval(
        (classes[clean != sink] == sink).double().mean(dim=1).numpy(), CONFIDENCE
    ).clipped(0.0, 1.0)
    return {
        "fill_explained_share": share,
        "fill_explained_interval": [share_interval.low, share_interval.high],
        "sink_interval": [sink_interval.low, sink_interval.high],
        "eligible_images": share_interval.n,
        "sink_judged_images": sink_interval.n,
        "eligible_flips": flips_eligible,
        "chance_flag": _chance_flag(flips_eligible, occ.num_classes),
        "flipped_windows": int(flipped.sum()),
        "flip_rate": float(flipped.float().mean()),
        "sink_class": sink,
        "sink_fraction": fractions[sink],
        "sink_images": int(((classes == sink).any(dim=1) & (clean != sink)).sum()),
        "fill_classes": fill_class.tolist(),
        "class_counts": occ.class_counts.sum(dim=0).tolist(),
        "per_image": per_image,
    }


def _bounds(interval: list[float]) -> str:
    low, high = interval
    return "undefined (fewer than 2 images)" if not math.isfinite(high - low) else f"[{low:.3f}, {high:.3f}]"


def _remedy(value: dict, classes: int) -> str:
    """What would give the fill-class test power, for whichever power clause failed (conditions.py)."""
    if value["eligible_flips"] == 0:
        return """No window changed the most probable class of an image whose class is not the fill's own:
            there is nothing to explain; a larger patch (--patch) hides more and changes more classes."""
    if classes <= 3:
        return f"""With {classes} classes a changed window lands on the fill's class by chance half the time
            or more: this test cannot tell the fill from the image with so few classes."""
    return f"""Only {value["eligible_flips"]} changed window(s): chance alone would put most of them on the
        fill's class {value["chance_flag"]:.0%} of the time; more images (--samples) or a larger patch
        (--patch) would give the test power."""


def check_leakage(run: CheckRun) -> list[CheckResult]:
    """Occluder leakage (ROAD): the fill's own class, sink classes, and the class map across fills."""
    fills: dict[str, tuple[Any, Occlusion]] = {run.fill_description: (run.fill, run.occ)}
    for label, fill in LEAKAGE_FILLS:
        description = run.runs.fill(fill, run.images).description  # resolved once, for the runs too
        if description != run.fill_description:
            fills[label] = (fill, run.occlusion(run.images, fill=fill, target=run.target))
    stats = {
        label: _leakage_stats(occ, _fill_alone(run, fill), run.labels) for label, (fill, occ) in fills.items()
    }
    labels = list(fills)
    agreement = {
        f"{a} vs {b}": float((fills[a][1].class_map == fills[b][1].class_map).float().mean())
        for i, a in enumerate(labels)
        for b in labels[i + 1 :]
    }
    flags = [
        {"sample": run.sample_ids[i], "fill": label, **s["per_image"][i]}
        for label, s in stats.items()
        for i in range(run.n)
        if s["per_image"][i]["flagged"]
    ]
    main = stats[run.fill_description]
    fill_classes = sorted(set(main["fill_classes"]))
    samples = run.ids(range(run.n))
    details = {"by_fill": stats, "class_map_agreement": agreement, "flags": flags}
    sink_keys = ("sink_class", "sink_fraction", "sink_images", "class_counts")
    sink_details = {"by_fill": {label: {k: s[k] for k in sink_keys} for label, s in stats.items()}}
    summary = {
        label: {
            "fill_class": s["fill_classes"][0] if len(set(s["fill_classes"])) == 1 else s["fill_classes"],
            "flip_rate": s["flip_rate"],
            "fill_explained_share": s["fill_explained_share"],
            "sink_class": s["sink_class"],
            "sink_fraction": s["sink_fraction"],
        }
        for label, s in stats.items()
    }
    fill_value = {
        "fill_explained_share": main["fill_explained_share"],
        "interval_low": main["fill_explained_interval"][0],
        "interval_high": main["fill_explained_interval"][1],
        "eligible_flips": main["eligible_flips"],
        "chance_flag": main["chance_flag"],
        "flipped_windows": main["flipped_windows"],
        "flip_rate": main["flip_rate"],
        "fill_classes": main["fill_classes"],
        "flagged_maps": len(flags),
        "by_fill": summary,
        "min_class_map_agreement": min(agreement.values()) if agreement else 1.0,
    }
    flagged = ", ".join(f"sample {f['sample']} with fill {f['fill']}" for f in flags) or "none"
    ambiguous = [f for f in flags if f["fill_class_is_label"]]
    if ambiguous:  # e.g. grey read as sky on an airplane the model called a ship
        flagged += (
            f"; in {len(ambiguous)} of them the fill's class is also the image's true label, so fill and "
            "image point to the same class and this test cannot tell them apart"
        )
    agree = ", ".join(f"{k} {v:.2f}" for k, v in agreement.items())
    fill_text = f"""The model classifies the fill alone ({run.fill_description}) as
        {", ".join(run.name(c) for c in fill_classes)}. Of the {main["flipped_windows"]} windows whose most
        probable class differs from the clean prediction ({main["flip_rate"]:.1%} of all windows), a share of
        {main["fill_explained_share"]:.2f} take that class (images already of that class excluded). If the
        replacement classes came from the image, they would hit the fill's class only by chance; a high share
        means the class map reports what the fill looks like (ROAD, Rong et al. 2022). Maps flagged because
        most of their replacement classes are the fill's own class, over the fills
        {", ".join(labels)}: {flagged} (the mean and blur fills are computed from the image itself, so
        their fill-alone class partly reflects the image). Fraction of windows with the same class between
        fills: {agree}. Over the {main["eligible_images"]} image(s) whose class is not the fill's own, the
        share's {CONFIDENCE:.0%} interval (images as the unit) is {_bounds(main["fill_explained_interval"])}
        against the line {FILL_EXPLAINED_MAX}."""
    sink_value = {
        "sink_fraction": main["sink_fraction"],
        "interval_low": main["sink_interval"][0],
        "interval_high": main["sink_interval"][1],
        "sink_class": main["sink_class"],
        "sink_images": main["sink_images"],
        "by_fill": {k: v["sink_fraction"] for k, v in stats.items()},
    }
    sink_text = f"""With fill {run.fill_description}, class {run.name(main["sink_class"])} wins
        {main["sink_fraction"]:.1%} of all windows of the images whose clean prediction is another class
        (present in {main["sink_images"]} of those images); by fill:
        {", ".join(f"{k} {v['sink_fraction']:.1%} ({run.name(v['sink_class'])})" for k, v in stats.items())}.
        A class that takes over windows across different images, whatever they show, is a sink of the
        occluder: the square itself is read as that class. Over the {main["sink_judged_images"]} image(s)
        of other classes, the {CONFIDENCE:.0%} interval of that share (images as the unit) is
        {_bounds(main["sink_interval"])} against the line {SINK_FRACTION_MAX}."""
    return [
        check_result(
            "occluder leakage: fill class",
            fill_value,
            FILL_CLASS,
            fill_text,
            samples,
            details,
            power_condition=FILL_CLASS_POWER,
            remedy=_remedy(fill_value, run.occ.num_classes),
        ),
        check_result(
            "occluder leakage: sink class", sink_value, SINK_CLASS, sink_text, samples, sink_details
        ),
    ]
