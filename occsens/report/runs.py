"""The engine runs a report is made of: planned once, then executed.

``plan_runs`` lists every ``occlude`` call the report needs (the user's fill, the patch-only view,
the other fills, an image made only of each fill, the notebook's geometry, the colour model and
its greyscale twin) before any of them runs, so a progress bar can be sized from the plan's
length; ``execute`` asks the job's store (``occsens.engine.Runs``, shared with the checks) for each run and
files each result in ``ReportRuns``. A fill the user's already covers (the same engine description,
e.g. grey 0.5) is not run twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from occsens.engine import Occlusion, as_images, plan_for
from occsens.engine.store import Runs

Pair = tuple[int, int]

# The fills the report compares, after the user's own: grey (the notebook's), each image's mean
# colour, a blurred copy of the image, seeded uniform noise, and black.
COMPARED_FILLS: tuple[Any, ...] = (0.5, "mean", "blur", "noise", 0.0)


@dataclass(frozen=True, eq=False)
class Run:
    """One engine call: the field of ``ReportRuns`` it fills, what the progress bar calls it, its settings."""

    role: str  # "main", "reveal", "fills", "fill_only", "notebook", "same_size", "colour" or "grey"
    label: str
    patch: int | Pair  # for the notebook's geometry: its cell size
    stride: int | Pair | None = None
    fill: Any = 0.5
    reveal: bool = False
    notebook: bool = False  # notebook_occlude(size=patch) instead of occlude
    model: Callable | None = None  # None: the report's own model


@dataclass(frozen=True, eq=False)
class RunPlan:
    """Every engine call of a report, in the order they run, on the same images."""

    images: torch.Tensor  # float32 [N, C, H, W], validated once
    runs: tuple[Run, ...]
    twin: bool  # colour-vs-greyscale maps are wanted (a twin that is the report's model reuses ``main``)
    store: Runs  # the job's store, which resolved the fills for ``images`` while planning

    def __len__(self) -> int:
        return len(self.runs)


@dataclass(frozen=True, eq=False)
class ReportRuns:
    """Every ``Occlusion`` result the report is made of, for the same N images."""

    main: Occlusion  # the user's fill, sliding windows: the image minus the window
    reveal: Occlusion  # the same windows and fill, patch-only: only the window is shown
    fills: tuple[Occlusion, ...]  # one per compared fill, the user's first (it is ``main``)
    fill_only: tuple[Occlusion, ...]  # one window covering the whole image: an image made only of the fill
    notebook: Occlusion | None  # notebook_occlude(size=patch); None when the patch is not square
    same_size: Occlusion | None  # true size x size windows at step size, next to the notebook's geometry
    colour: Occlusion | None = None  # the colour model under the main setting, when twins are compared
    grey: Occlusion | None = None  # the greyscale twin under the main setting, when twins are compared


def plan_runs(
    images: Any,
    *,
    patch: int | Pair = 4,
    stride: int | Pair | None = None,
    fill: Any = 0.5,
    twin: tuple[Callable | None, Callable | None] | None = None,
    runs: Runs | None = None,
) -> RunPlan:
    """The engine calls for these settings, in the order ``execute`` makes them.

    ``images`` are checked already (as ``as_images`` returns them: the report builder's door checked
    them); ``runs`` is the job's store (default: a new one), which resolves each fill once for the plan
    and its runs.

    ``twin`` is the colour model and its greyscale twin, each mapped under the main setting too; None
    in place of one that is the report's own model (its map is ``main``). Bad settings (a patch larger
    than the image, an unknown fill) are rejected here, before anything runs.
    """
    x, store = images, Runs() if runs is None else runs
    plan = plan_for((x.shape[2], x.shape[3]), patch, stride)
    planned = [
        Run("main", "occlusion", patch, stride, fill),
        Run("reveal", "patch-only view", patch, stride, fill, reveal=True),
    ]
    # Every fill is resolved on all images (a baseline per image needs them all), by the store that
    # keeps it for the runs: each blur is computed once.
    own = store.fill(fill, x).description
    seen, fills = {own}, [(fill, own)]
    for other in COMPARED_FILLS:
        description = store.fill(other, x).description
        if description in seen:
            continue
        seen.add(description)
        planned.append(Run("fills", f"fill {other}", patch, stride, other))
        fills.append((other, description))
    planned += [Run("fill_only", f"only fill {name}", plan.image_size, None, value) for value, name in fills]
    size = plan.patch[0]
    if plan.patch[0] == plan.patch[1]:
        planned.append(Run("notebook", "notebook geometry", size, None, fill, notebook=True))
        if plan.stride != plan.patch:
            planned.append(Run("same_size", "true size x size", size, size, fill))
    if twin is not None:
        for role, label, model in zip(
            ("colour", "grey"), ("colour model", "greyscale twin"), twin, strict=True
        ):
            if model is not None:
                planned.append(Run(role, label, patch, stride, fill, model=model))
    return RunPlan(x, tuple(planned), twin is not None, store)


def execute(
    model: Callable,
    plan: RunPlan,
    *,
    batch_size: int | None = None,
    step: Callable[[str], None] | None = None,
    output: Any = "softmax",
    runs: Runs | None = None,
) -> ReportRuns:
    """Run the plan with ``model`` (and the twin's models); ``step(label)`` is called after each run.

    ``output`` is what ``model`` returns (see ``occsens.occlude``); the twin's shipped models return logits.
    ``runs`` is the job's store (default: the plan's): a run the checks already made is read from it, not
    made again.
    """
    store = plan.store if runs is None else runs
    done: list[tuple[Run, Occlusion]] = []
    for run in plan.runs:
        which = model if run.model is None else run.model
        scores = output if run.model is None else "softmax"
        if run.notebook:
            assert isinstance(run.patch, int)
            res = store.notebook_occlude(
                which, plan.images, size=run.patch, fill=run.fill, batch_size=batch_size, output=scores
            )
        else:
            res = store.occlude(
                which,
                plan.images,
                patch=run.patch,
                stride=run.stride,
                fill=run.fill,
                reveal=run.reveal,
                batch_size=batch_size,
                output=scores,
            )
        if step is not None:
            step(run.label)
        done.append((run, res))

    def results(role: str) -> list[Occlusion]:
        return [res for run, res in done if run.role == role]

    def one(role: str, otherwise: Occlusion | None) -> Occlusion | None:
        return next(iter(results(role)), otherwise)

    (main,) = results("main")
    (reveal,) = results("reveal")
    notebook = one("notebook", None)
    return ReportRuns(
        main,
        reveal,
        (main, *results("fills")),
        tuple(results("fill_only")),
        notebook,
        one("same_size", main) if notebook is not None else None,  # none planned: the main map is one
        one("colour", main) if plan.twin else None,  # none planned: the report's model is the colour one
        one("grey", main) if plan.twin else None,
    )


def measure(
    model: Callable,
    images: Any,
    *,
    patch: int | Pair = 4,
    stride: int | Pair | None = None,
    fill: Any = 0.5,
    batch_size: int | None = None,
    step: Callable[[str], None] | None = None,
    output: Any = "softmax",
) -> ReportRuns:
    """Plan and execute the report's own runs (no twin) in one call."""
    plan = plan_runs(as_images(images), patch=patch, stride=stride, fill=fill)
    return execute(model, plan, batch_size=batch_size, step=step, output=output)


def runs_count(patch: int | Pair, stride: int | Pair | None, fill: Any, images: Any) -> int:
    """How many times ``measure`` calls ``step`` for these settings (for a progress bar)."""
    return len(plan_runs(as_images(images), patch=patch, stride=stride, fill=fill))
