"""Determinism: the same probabilities for different batch sizes and repeated runs.

A model handed over in training mode is reported (occsens runs it in eval mode and says so).
"""

from __future__ import annotations

import torch

from occsens.checks.conditions import DETERMINISM, DETERMINISM_BATCH, DETERMINISM_SAMPLES
from occsens.checks.results import CheckResult, _result
from occsens.checks.run_state import CheckRun, _training_flags
from occsens.engine import Occlusion
from occsens.engine.model import default_batch_size, run_device


def check_determinism(run: CheckRun) -> list[CheckResult]:
    """The same probabilities for repeated runs and for different batch sizes."""
    index = torch.arange(min(DETERMINISM_SAMPLES, run.n))
    images, target = run.images[index], run.target[index]
    first = run.occlusion(images, target=target)
    again = run.occlusion(images, target=target, repeat=1)  # the one deliberate rerun
    other = run.occlusion(images, target=target, batch_size=DETERMINISM_BATCH)
    base = run.occ.probs[index]

    def diff(a: Occlusion | torch.Tensor, b: Occlusion) -> float:
        pa = a.probs if isinstance(a, Occlusion) else a
        return float((pa - b.probs).abs().max())

    repeat = max(diff(first, again), float((first.clean_probs - again.clean_probs).abs().max()))
    batch = max(diff(first, other), diff(base, first))
    restored = _training_flags(run.model) == run.initial_flags
    value = {
        "max_diff_repeat": repeat,
        "max_diff_batch": batch,
        "batch_sizes": [default_batch_size(images, run_device(run.model, None)), DETERMINISM_BATCH],
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
    text = f"""Occluding {len(index)} image(s) twice with the same settings changed the {run.scores} by at
        most {repeat:.2e}; with a different batch size ({DETERMINISM_BATCH}) and batch composition, by at most
        {batch:.2e}. A map must not depend on how the windows were batched or on the run: if it does, the
        model's forward is random (dropout or noise that eval mode does not switch off, or batch statistics)
        and any difference between windows may be noise. Both numbers are maxima over every window of
        every image, not estimates from a sample, so they carry no interval. {mode}"""
    return [_result("determinism", value, DETERMINISM, text, run.ids(index))]
