"""Running the checks: ``run_checks`` validates its input, then runs the checks one by one.

A check that crashes becomes a failed result carrying the error (condition ``CHECK_RAN``), so one broken
check never hides the others. ``CHECKS`` maps the names in ``occsens.checks.names.CHECK_NAMES``, in that
order, to the functions that run them.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from occsens.checks.conditions import CHECK_RAN
from occsens.checks.determinism import check_determinism
from occsens.checks.faithfulness import check_faithfulness
from occsens.checks.leakage import check_leakage
from occsens.checks.names import FAIL
from occsens.checks.patch import check_patch
from occsens.checks.randomisation import check_randomisation
from occsens.checks.results import CheckResult
from occsens.checks.run_state import CheckRun, Explainer
from occsens.constants import MAX_SEED
from occsens.engine import as_images
from occsens.engine.model import progress_bar
from occsens.engine.plan import plan_for
from occsens.engine.store import Runs
from occsens.errors import OcclusionError, integer

CHECKS: dict[str, Callable[[CheckRun], list[CheckResult]]] = {
    "randomisation": check_randomisation,
    "patch": check_patch,
    "faithfulness": check_faithfulness,
    "leakage": check_leakage,
    "determinism": check_determinism,
}


def _crashed(check: str, exc: BaseException, samples: Sequence[int]) -> CheckResult:
    message = f"{type(exc).__name__}: {exc}"
    return CheckResult(
        name=check,
        verdict=FAIL,
        value=None,
        condition=CHECK_RAN,
        explanation=f"The {check} check crashed and could not judge the map: {message}",
        samples=tuple(int(s) for s in samples),
        details={"error": message, "traceback": "".join(traceback.format_exception(exc))},
    )


def run_checks(
    model: Any,
    images: Any,
    *,
    labels: Any = None,
    sample_ids: Sequence[int] | None = None,
    patch: Any = 4,
    stride: Any = None,
    fill: Any = 0.5,
    explainer: Explainer | None = None,
    checks: Sequence[str] | None = None,
    seed: int = 0,
    progress: bool = False,
    class_names: Sequence[str] | None = None,
    output: Any = "softmax",
    runs: Runs | None = None,
    more_images: Any = None,
    more_ids: Sequence[int] | None = None,
) -> list[CheckResult]:
    """Run the sanity checks of occlusion maps of ``model`` on ``images``; one or more results per check.

    Args:
        model, images, patch, stride, fill: as for ``occsens.occlude``; each image's target is its clean
            prediction.
        labels: true classes, reported in the details (optional).
        sample_ids: how the results name the images (e.g. CIFAR-10 test indices); default 0..N-1.
        explainer: ``explainer(model, images) -> maps [N, H, W]`` to check instead of the occlusion map
            (higher = more important); default: ``Occlusion.attribution()`` with these settings.
        checks: names from ``CHECKS`` to run, in that order (default: all).
        seed: seeds every random choice (random orders, window sets, re-initialised weights).
        progress: a progress bar on stderr, one step per check.
        class_names: names used in the explanations (ignored unless there is one per class).
        output: what the model returns, as for ``occsens.occlude`` ("softmax", "probs", "sigmoid" or a
            scoring callable); every check measures those scores.
        runs: the job's store of occlusion runs (``occsens.engine.Runs``), shared with a report on the
            same images so no map is computed twice; default: a store of the checks' own.
        more_images: images the checks may add to ``images`` when those alone do not decide a verdict
            (faithfulness adds them in stages, up to ``DECIDE_IMAGES`` in all, and says how many it
            used); e.g. the 100 embedded CIFAR-10 samples behind the 8 a report shows. Same size as
            ``images``. Their maps are computed only if a check needs them.
        more_ids: how the results name ``more_images`` (default: numbers after ``sample_ids``).

    Bad arguments raise ``OcclusionError``; a check that crashes becomes a failed result with the error.
    """
    # the range of the command line's --seed (numpy's seeds): -1 was accepted here and refused there
    seed = integer(seed, "seed", low=0, high=MAX_SEED)
    x = as_images(images)
    plan_for((x.shape[2], x.shape[3]), patch, stride)
    if runs is not None and not isinstance(runs, Runs):
        raise OcclusionError(f"runs must be an occsens.engine.Runs store or None, got {type(runs).__name__}")
    store = Runs() if runs is None else runs
    # checked here, kept by the store for the runs (``CheckRun`` reads both from it)
    store.fill(fill, x[:1])
    store.output_name(output)
    if explainer is not None and not callable(explainer):
        raise OcclusionError(
            f"explainer must be a callable (model, images) -> maps [N, H, W], got {explainer!r}"
        )
    names = list(CHECKS) if checks is None else list(checks)
    unknown = [c for c in names if c not in CHECKS]
    if unknown:
        raise OcclusionError(f"unknown check(s) {unknown}; valid: {', '.join(CHECKS)}")
    ids = list(range(len(x))) if sample_ids is None else [int(s) for s in sample_ids]
    if len(ids) != len(x):
        raise OcclusionError(f"sample_ids has {len(ids)} entries but there are {len(x)} images")
    label_array = None if labels is None else np.asarray(labels).reshape(-1)
    if label_array is not None and len(label_array) != len(x):
        raise OcclusionError(f"labels has {len(label_array)} entries but there are {len(x)} images")
    more, extra_ids = _more(x, more_images, more_ids, ids)
    run = CheckRun(
        model,
        x,
        label_array,
        ids,
        patch,
        stride,
        fill,
        explainer,
        seed,
        class_names,
        output,
        store,
        more,
        extra_ids,
    )
    if run.was_training:
        warnings.warn(
            "model was in training mode; the checks run it in eval mode and restore its mode afterwards",
            stacklevel=2,
        )
    results: list[CheckResult] = []
    bar = progress_bar(len(names), progress, unit="check", desc="checks")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="model was in training mode")  # reported once, above
            for name in names:
                bar.set_description(name)
                try:
                    results.extend(CHECKS[name](run))
                except Exception as exc:  # a crashing check is a failed result, never a crashed run
                    results.append(_crashed(name, exc, ids))
                bar.update(1)
    finally:
        bar.close()
    return results


def _more(
    x: torch.Tensor, more_images: Any, more_ids: Sequence[int] | None, ids: list[int]
) -> tuple[torch.Tensor | None, list[int]]:
    """``more_images`` as images the size of ``images``, and their ids."""
    if more_images is None:
        if more_ids is not None:
            raise OcclusionError("more_ids names images, but more_images is None")
        return None, []
    more = as_images(more_images)
    if more.shape[1:] != x.shape[1:]:
        raise OcclusionError(
            f"more_images must have the shape of images, {tuple(x.shape[1:])} each; "
            f"got {tuple(more.shape[1:])}"
        )
    start = max(ids, default=-1) + 1
    extra = list(range(start, start + len(more))) if more_ids is None else [int(s) for s in more_ids]
    if len(extra) != len(more):
        raise OcclusionError(f"more_ids has {len(extra)} entries but there are {len(more)} more_images")
    return more, extra
