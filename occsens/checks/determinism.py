"""Determinism: the same probabilities for the same inputs scored twice and for different batch sizes.

A model handed over in training mode is reported (occsens runs it in eval mode and says so).
"""

from __future__ import annotations

import torch

from occsens.checks.conditions import DETERMINISM, DETERMINISM_BATCH, DETERMINISM_SAMPLES
from occsens.checks.results import CheckResult, check_result
from occsens.checks.run_state import CheckRun, training_flags
from occsens.engine.model import default_batch_size, run_device


def check_determinism(run: CheckRun) -> list[CheckResult]:
    """The same probabilities for the same inputs scored twice, and for different batch sizes."""
    index = torch.arange(min(DETERMINISM_SAMPLES, run.n))
    images, target = run.images[index], run.target[index]
    first = run.occlusion(images, target=target)
    other = run.occlusion(images, target=target, batch_size=DETERMINISM_BATCH)
    base = run.occ.probs[index]
    size = default_batch_size(images, run_device(run.model, None))
    # One batch, the model on it twice (no second engine call of the same run): the clean images and one
    # engine chunk of occluded copies, their (image, position) pairs spread evenly over the grid.
    r, c = first.grid
    pairs = torch.linspace(0, len(index) * r * c - 1, min(size, len(index) * r * c)).round().long()
    copies = [first.occluded(int(k) // (r * c), int(k) % (r * c) // c, int(k) % c) for k in pairs]
    batch = torch.cat([images, torch.stack(copies)])
    repeat = float((run.probs(run.model, batch) - run.probs(run.model, batch)).abs().max())
    batch_diff = max(float((first.probs - other.probs).abs().max()), float((base - first.probs).abs().max()))
    restored = training_flags(run.model) == run.initial_flags
    value = {
        "max_diff_repeat": repeat,
        "max_diff_batch": batch_diff,
        "batch_sizes": [size, DETERMINISM_BATCH],
        "model_was_training": run.was_training,
        "mode_restored": restored,
    }
    mode = (
        "The model was handed over in training mode: occsens ran every forward in eval mode (dropout off, "
        "batch-norm running statistics) and restored its mode afterwards"
        + ("." if restored else ", but its mode differs now: something changed it.")
        if run.was_training
        else "The model was handed over in eval mode."
    )
    text = f"""Scoring the same {len(batch)} inputs twice ({len(index)} image(s) and {len(copies)} occluded
        copies of them) changed the {run.scores} by at most {repeat:.2e}; occluding the images with a
        different batch size ({DETERMINISM_BATCH}) and batch composition, by at most {batch_diff:.2e}. A map
        must not depend on how the windows were batched or on the run: if it does, the model's forward is
        random (dropout or noise that eval mode does not switch off, or batch statistics) and any difference
        between windows may be noise. Both numbers are maxima over every input compared (for the batch
        sizes, every window of every image), not estimates, so they carry no interval. {mode}"""
    return [check_result("determinism", value, DETERMINISM, text, run.ids(index))]
