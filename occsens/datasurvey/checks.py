"""The sanity checks over a survey's images, for the data-set report.

A survey's maps answer "what does the model look at across the data set?"; whether those maps can be
trusted is the checks' question (``occsens.run_checks``), and eight images cannot settle it (a verdict
that fails at 8 images can pass at 100). So a survey runs the same checks as a report, on up to
``CHECK_IMAGES`` of its images spread evenly over it, with the survey's settings, and stores their
verdicts beside the shards (``_checks.json``): per check the verdict, the numbers with their interval
and power as the check states them, and the trust list, all read by the data-set report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from occsens.checks import run_checks
from occsens.datasurvey.sources import Source
from occsens.datasurvey.store import CHECKS
from occsens.errors import OcclusionError
from occsens.files import read_json, write_files
from occsens.report.verdicts import power_text, read_checks

# The checks are calibrated on the 100 embedded CIFAR-10 samples (issue 23), where the verdicts settle
# that 8 images leave open; more images cost minutes of forward passes and change no verdict there.
CHECK_IMAGES = 100
MAX_CHECKS_BYTES = 64 << 20  # per-image numbers of 100 images are ~1 MB; far past it is not ours


def positions(total: int, count: int) -> list[int]:
    """``count`` positions spread evenly over ``total`` images (all of them when there are fewer): a
    class-sorted data set still gives every class its share."""
    if count >= total:
        return list(range(total))
    return sorted({int(round(p)) for p in np.linspace(0, total - 1, count)})


def check_survey(
    folder: Path,
    model: Any,
    source: Source,
    *,
    count: int,
    patch: Any,
    stride: Any,
    fill: Any,
    output: Any,
    class_names: list[str],
    seed: int = 0,
    progress: bool = False,
) -> Path:
    """Run the checks on ``count`` of the survey's images and write ``folder/_checks.json``."""
    chosen = positions(len(source), count)
    images = torch.cat([source.read(i, i + 1) for i in chosen])
    labels = [source.labels[i] for i in chosen]
    results = run_checks(
        model,
        images,
        labels=None if None in labels else labels,
        sample_ids=chosen,
        patch=patch,
        stride=stride,
        fill=fill,
        output=output,
        class_names=class_names,
        seed=seed,
        progress=progress,
    )
    reading = read_checks(results)
    payload = {
        "images": len(chosen),
        "positions": chosen,
        "seed": seed,
        "summary": reading.summary,
        "rows": [vars(r) for r in reading.rows],
        "trust": [
            dict(t.to_dict(), checks=", ".join(t.checks), power=power_text(t.power)) for t in reading.trust
        ],
        "results": [r.to_dict() for r in results],
    }
    text = json.dumps(payload, indent=1, allow_nan=False) + "\n"
    write_files(folder, {CHECKS: text.encode("utf-8")}, "the survey's checks")
    return folder / CHECKS


def read_survey_checks(folder: Path) -> dict[str, Any] | None:
    """The stored checks of the survey in ``folder``, or None where it has none (``--check-images 0``)."""
    path = folder / CHECKS
    if not path.exists():
        return None
    data = read_json(path, MAX_CHECKS_BYTES, "survey checks file", "the checks of a survey")
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise OcclusionError(
            f"{str(path)!r} is not an occsens survey checks file; survey again with --overwrite"
        )
    return data
