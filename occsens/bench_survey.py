"""The ``survey`` row of ``occsens bench``: images per second of ``occsens.survey`` (store and all), with
Captum's time for the same work measured in the same run as the reference (issue 24).

The same work: each image's map of its clean class at patch 4, stride 4, fill 0.5, on the same model.
Captum (``Occlusion.attribute``, ``perturbations_per_eval`` 64, the best of the peers' settings on this
machine: ``../shared/bench``) gets the images one call per image, as a loop over a data set would; the
survey writes its Parquet store and thumbnails besides. Interleaved rep by rep, so a machine that gets
busier slows both.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

PATCH = 4
CAPTUM_PPE = 64


def measure(
    model: nn.Module, images: torch.Tensor, reps: int, captum_map: Callable[..., Any] | None
) -> dict[str, Any]:
    """Best-of-``reps`` seconds for surveying ``images`` and, given ``captum_map`` (``occsens.bench``'s
    Captum runner, passed in so the two modules do not import each other), for Captum on each image."""
    from occsens.datasurvey import survey

    n = len(images)
    with torch.inference_mode():
        targets = model(images).argmax(dim=1)
    survey_s, captum_s = [], []
    for _ in range(reps):
        folder = Path(tempfile.mkdtemp(prefix="occsens-bench-survey-"))
        try:
            start = time.perf_counter()
            survey(model, images, out=folder / "s", patch=PATCH, progress=False)
            survey_s.append(time.perf_counter() - start)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if captum_map is not None:
            start = time.perf_counter()
            for i in range(n):
                captum_map(model, images[i : i + 1], targets[i : i + 1], PATCH, PATCH, CAPTUM_PPE)
            captum_s.append(time.perf_counter() - start)
    row: dict[str, Any] = {"images": n, "patch": PATCH, "stride": PATCH, "survey_s": min(survey_s)}
    row["survey_images_per_s"] = n / row["survey_s"]
    if captum_s:
        row["captum_s_per_image"] = min(captum_s) / n
        row["captum_images_per_s"] = n / min(captum_s)
        row["speedup_vs_captum"] = min(captum_s) / row["survey_s"]
    return row


def markdown(row: dict[str, Any]) -> str:
    """The section ``bench.md`` ends with."""
    lines = [
        "",
        "## Survey (issue 24)",
        "",
        f"`occsens.survey` of {row['images']} images at patch {row['patch']} stride {row['stride']} (the "
        "store written, thumbnails included) against Captum's `Occlusion` on each image (ppe 64), best of "
        "the reps:",
        "",
        "| engine | images/s | s per image |",
        "|---|---|---|",
        f"| occsens survey | {row['survey_images_per_s']:.2f} | {row['survey_s'] / row['images']:.3f} |",
    ]
    if "captum_s_per_image" in row:
        fast, each = row["captum_images_per_s"], row["captum_s_per_image"]
        lines.append(f"| Captum, one call per image | {fast:.2f} | {each:.3f} |")
        lines += ["", f"The survey is {row['speedup_vs_captum']:.2f}x Captum's speed on the same work."]
    return "\n".join(lines) + "\n"
