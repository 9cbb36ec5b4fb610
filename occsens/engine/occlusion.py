"""``occlude`` and ``notebook_occlude``: one plan, one pass over the model, one ``Occlusion`` result.

What is computed is stated once, in ``occsens.engine``'s docstring.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from occsens.engine import schedule, validate
from occsens.engine.fill import Fill, occluded_input, resolve_fill
from occsens.engine.model import as_images, check_output, eval_mode, full_float32, run_device
from occsens.engine.plan import Pair, Plan, box_sums, notebook_plan, plan_for
from occsens.engine.schedule import ENGINES, Request
from occsens.errors import OcclusionError, flag, integer, shown


@dataclass(frozen=True, eq=False)
class Occlusion:
    """The result of ``occlude``: probabilities at every window position, and views derived from them.

    Shapes: N images, K classes, an R x C grid of positions, H x W pixels.
    """

    images: torch.Tensor  # float32 [N, C, H, W], the validated inputs
    clean_probs: torch.Tensor  # float32 [N, K], softmax of the unoccluded images
    probs: torch.Tensor  # float32 [N, R, C, K], softmax at every position
    target: torch.Tensor  # int64 [N]
    plan: Plan
    reveal: bool
    fill: str  # a description of the fill, e.g. "0.5" or "blur"
    model_was_training: bool
    _fill: Fill = field(repr=False)
    # which engine computed probs: "incremental", "brute", or "brute (...)" saying why "auto" could not
    # use the incremental engine ("incremental not used: ...") or discarded it ("fallback: ...")
    engine: str = "brute"
    output: str = "softmax"  # what probs hold: "softmax", "probs", "sigmoid" or the scoring callable's name

    @property
    def windows(self) -> torch.Tensor:
        """int64 [R, C, 4]: (top, left, height, width) of the rectangle filled at each position."""
        return self.plan.windows

    @property
    def grid(self) -> Pair:
        return self.plan.grid

    @property
    def num_classes(self) -> int:
        return self.clean_probs.shape[1]

    @property
    def clean_class(self) -> torch.Tensor:
        """int64 [N]: the most probable class of each unoccluded image."""
        return self.clean_probs.argmax(dim=1)

    @property
    def clean_target_prob(self) -> torch.Tensor:
        """float32 [N]: the target's probability on the unoccluded image."""
        return self.clean_probs.gather(1, self.target.view(-1, 1)).squeeze(1)

    @property
    def heatmap(self) -> torch.Tensor:
        """float32 [N, R, C]: the target's probability at each position (low = important)."""
        n, r, c, _ = self.probs.shape
        index = self.target.view(n, 1, 1, 1).expand(n, r, c, 1)
        return self.probs.gather(3, index).squeeze(3)

    @property
    def drop(self) -> torch.Tensor:
        """float32 [N, R, C]: clean minus occluded target probability (positive = it fell)."""
        return self.clean_target_prob.view(-1, 1, 1) - self.heatmap

    @property
    def class_map(self) -> torch.Tensor:
        """int64 [N, R, C]: the most probable class at each position."""
        return self.probs.argmax(dim=3)

    @property
    def class_counts(self) -> torch.Tensor:
        """int64 [N, K]: how many positions each class is the most probable one at."""
        flat = self.class_map.reshape(len(self.probs), -1)
        counts = torch.zeros(len(self.probs), self.num_classes, dtype=torch.int64)
        return counts.scatter_add_(1, flat, torch.ones_like(flat))

    @property
    def coverage(self) -> torch.Tensor:
        """int64 [H, W]: how many windows cover each pixel (counted from the boxes, O(H*W))."""
        return self.plan.coverage

    def attribution(self) -> torch.Tensor:
        """float32 [N, H, W]: each pixel's mean drop over the windows that cover it (Captum's definition).

        Summed in float64 from the window boxes (``occsens.engine.plan.box_sums``), never through
        per-window masks: extra memory O(N * H * W) whatever the number of windows.
        """
        drop = self.drop.reshape(len(self.probs), -1).to(torch.float64)
        total = box_sums(drop, self.plan.windows, self.plan.image_size)  # float64 [N, H, W]
        return (total / self.plan.coverage.clamp(min=1)).to(torch.float32)

    def occluded(self, image: int, row: int, col: int) -> torch.Tensor:
        """float32 [C, H, W]: exactly the input the model saw for ``image`` at grid position (row, col)."""
        r, c = self.grid
        image, row, col = (integer(v, k) for v, k in ((image, "image"), (row, "row"), (col, "col")))
        if not (0 <= image < len(self.images) and 0 <= row < r and 0 <= col < c):
            raise OcclusionError(
                f"position (image={image}, row={row}, col={col}) is outside the result: "
                f"images 0..{len(self.images) - 1}, rows 0..{r - 1}, cols 0..{c - 1}"
            )
        return occluded_input(self.images, self.plan, self._fill, image, row * c + col, self.reveal)[0]

    def __repr__(self) -> str:
        n, ch, h, w = self.images.shape
        (r, c), (ph, pw), (sh, sw) = self.grid, self.plan.patch, self.plan.stride
        geometry = ", notebook geometry" if self.plan.geometry == "notebook" else ""
        return (
            f"<Occlusion: {n} image{'' if n == 1 else 's'} {ch}x{h}x{w}, {self.num_classes} classes, "
            f"patch {ph}x{pw} stride {sh}x{sw} ({r}x{c} positions{geometry}), fill {self.fill[:40]}"
            f"{', reveal' if self.reveal else ''}, engine {self.engine.split(' ')[0]}, {self.output[:40]}>"
        )

    def plot(self, kind: str = "summary", i: int = 0, *, class_names: Any = None) -> Any:
        """A matplotlib ``Figure`` of image ``i``: ``kind`` "summary" (image, heatmap, drop, class map),
        "heatmap", "drop", "class_map" or "attribution"; drawn as the report draws them
        (``occsens.report.plots``). ``class_names``: one per class (default "class 0", "class 1", ...)."""
        return _presentation().plot(self, kind, i, class_names=class_names)

    def overlay(self, i: int = 0) -> Any:
        """uint8 RGB ``[H, W, 3]``: image ``i``'s ``attribution()`` in the drop map's colours over a greyed
        copy of the image, for figures of your own (``occsens.report.plots.overlay``)."""
        return _presentation().overlay(self, i)

    def _repr_html_(self) -> str:
        return _presentation().occlusion_html(self)


def _presentation() -> Any:
    """``occsens.report.plots``, loaded on first use: the engine computes nothing with it and does not
    import it (matplotlib and the report's layer sit above the engine)."""
    import importlib

    return importlib.import_module("occsens.report.plots")


def compute(request: Request) -> Occlusion:
    """The ``Occlusion`` of a checked request (its arguments are not checked again)."""
    model, images, plan, fill = request.model, request.images, request.plan, request.fill
    with eval_mode(model) as was_training, full_float32():
        if was_training:
            warnings.warn(
                "model was in training mode; occsens runs it in eval mode (dropout off, batch-norm running "
                "statistics) and restores its mode afterwards",
                stacklevel=4,
            )
        ran = schedule.run(request)
    clean, probs = ran.clean, ran.probs
    if probs.shape[2] != clean.shape[1]:
        raise OcclusionError(
            f"model returned {probs.shape[2]} classes for occluded images but {clean.shape[1]} for clean ones"
        )
    r, c = plan.grid
    return Occlusion(
        images,
        clean,
        probs.view(len(images), r, c, -1),
        ran.target,
        plan,
        request.reveal,
        fill.description,
        was_training,
        fill,
        ran.engine,
        request.output_name,
    )


def _occlude_with_plan(
    model: Callable,
    images: torch.Tensor,
    plan: Plan,
    fill: Any,
    target: Any,
    reveal: bool,
    batch_size: int | None,
    device: Any,
    progress: bool | None,
    engine: str = "auto",
    output: Any = "softmax",
) -> Occlusion:
    # the door: every argument checked before any work (occsens.engine.validate states the decisions)
    output_name = check_output(output)
    if progress is not None and not isinstance(progress, bool):
        raise OcclusionError(f"progress must be True, False or None (automatic), got {shown(progress)}")
    if not isinstance(engine, str) or engine not in ENGINES:
        raise OcclusionError(f"engine {shown(engine)} is unknown; use one of {', '.join(map(repr, ENGINES))}")
    validate.model(model)
    if batch_size is not None:
        batch_size = integer(batch_size, "batch_size", low=1, valid="a positive int or None")
    checked_target = validate.check_target(target, len(images))
    resolved_fill = resolve_fill(fill, images)
    dev = run_device(model, device)
    return compute(
        Request(
            model,
            images,
            plan,
            resolved_fill,
            checked_target,
            reveal,
            output,
            output_name,
            dev,
            batch_size,
            progress,
            engine,
        )
    )


def occlude(
    model: Callable,
    images: Any,
    *,
    patch: int | Pair,
    stride: int | Pair | None = None,
    fill: Any = 0.5,
    target: Any = None,
    reveal: bool = False,
    batch_size: int | None = None,
    device: Any = None,
    progress: bool | None = None,
    engine: str = "auto",
    layout: str = "NCHW",
    output: Any = "softmax",
) -> Occlusion:
    """Occlusion sensitivity of ``model`` on ``images``: slide a ``patch`` over them, record the softmax.

    Args:
        model: ``torch.nn.Module`` or callable taking float32 ``[B, C, H, W]`` images in [0, 1]
            and returning logits ``[B, K]`` (see ``as_model`` for numpy models).
        images: ``[N, C, H, W]`` or ``[C, H, W]`` tensor or array (``layout="NHWC"``: channels last),
            float in [0, 1] or uint8.
        patch: window size, int or (height, width).
        stride: step between windows, int or pair, at most the patch; default = patch.
        fill: what replaces the window (see the module docstring): number, per-channel
            sequence, baseline image, "mean", "blur", "noise" or callable(images, mask).
        target: class whose probability the heatmap shows; None = each image's clean prediction.
        reveal: False shows the image minus the window; True shows only the window.
        batch_size: occluded images per model call; None = ``default_batch_size`` (up to 3x that
            many windows per call for the incremental engine, whose windows carry only changed boxes).
        device: where the model runs; None = where its parameters are.
        progress: a progress bar on stderr: True, False, or None (default) for one whenever the
            call is estimated to take more than ``schedule.PROGRESS_AFTER_S`` seconds (from the time of its
            clean forward pass, times the windows).
        engine: "auto" (incremental on CPU where it applies and saves time, checked on every call and
            replaced by brute force when a check fails: see "Engines" in the module docstring),
            "brute" (every occluded copy through the whole model) or "incremental" (error if it
            cannot run, or fails its checks).
        layout: "NCHW" (default) or "NHWC", where the channel axis is in ``images``; the result
            (``res.images`` and every view) is channels-first either way.
        output: what the maps measure. "softmax" (default): the model returns logits; "probs": it
            returns probabilities, used as they are; "sigmoid": one logit per class, multi-label (each
            class its own sigmoid), or binary with one logit z, which gives the two classes'
            scores [1 - sigmoid(z), sigmoid(z)] (= softmax of [0, z]); or a callable
            ``(model output) -> [B, K]`` scores (a segmentation model's mean logit of a class over a
            region, a regression's value). The
            views keep their names (``probs``, ``heatmap``, ``drop``) and hold these scores;
            ``res.output`` says which.
    """
    x = as_images(images, layout)
    h, w = x.shape[2:]
    plan = plan_for((h, w), patch, stride)
    return _occlude_with_plan(
        model, x, plan, fill, target, flag(reveal, "reveal"), batch_size, device, progress, engine, output
    )


def notebook_occlude(
    model: Callable,
    images: Any,
    *,
    size: int,
    fill: Any = 0.5,
    target: Any = None,
    batch_size: int | None = None,
    device: Any = None,
    progress: bool | None = None,
    engine: str = "auto",
    layout: str = "NCHW",
    output: Any = "softmax",
) -> Occlusion:
    """Reproduce the widely copied notebook: size x size cells at step size, each greying a 5*size square.

    The square is centred on its cell and clipped at the image border; ``windows`` holds
    the clipped squares, ``plan.cells`` the size x size cells the notebook drew. Use it to
    recompute a notebook's heatmap, class map and counts exactly, and compare with
    ``occlude(model, images, patch=size)``, which greys only the cell.
    """
    x = as_images(images, layout)
    h, w = x.shape[2:]
    s = integer(size, "size", low=1, valid="a positive int (the notebook's grid step)")
    if s > min(h, w):
        raise OcclusionError(f"size {s} is larger than the image ({h}, {w})")
    plan = notebook_plan((h, w), s)
    return _occlude_with_plan(
        model, x, plan, fill, target, False, batch_size, device, progress, engine, output
    )
