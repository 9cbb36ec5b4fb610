"""When and how the incremental engine runs: engine choice, chunks, window order, and its checks.

``engine="auto"`` takes the incremental engine only where the walk proves it exact and it was
measured faster; every incremental call then checks itself against the model's own forward
(``occsens.engine``, "Engines", states the guard and what it cannot see).
"""

from __future__ import annotations

import contextlib
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from occsens.engine import validate
from occsens.engine.extents import layer_extents
from occsens.engine.fill import Fill, compose, occluded_input
from occsens.engine.incremental import CleanActivations, supports, window_logits
from occsens.engine.model import MEMORY_BUDGET, checked_scores, default_batch_size, model_scores, progress_bar
from occsens.engine.plan import Plan, box_masks
from occsens.errors import OcclusionError

# progress=None shows a bar when a call is estimated to take longer than this: past a few seconds a
# user starts to wonder whether anything is happening; below it a bar is only noise in a notebook.
PROGRESS_AFTER_S = 3.0


@dataclass(frozen=True, eq=False)
class Request:
    """One occlusion call with every argument checked: what ``occlusion.compute`` runs.

    ``occlude``'s door builds it from a user's arguments; ``occsens.engine.Runs`` builds it from values
    its callers checked at their own door, so nothing is checked twice.
    """

    model: Callable  # accepted by ``validate.model``
    images: torch.Tensor  # float32 [N, C, H, W], as ``as_images`` returns them
    plan: Plan
    fill: Fill  # resolved for ``images``
    target: int | list[int] | None  # as ``validate.check_target`` returns it
    reveal: bool
    output: Any  # "softmax", "probs", "sigmoid" or a scoring callable
    output_name: str  # ``check_output(output)``
    device: torch.device
    batch_size: int | None = None  # a positive int, or None for ``default_batch_size``
    progress: bool | None = None
    engine: str = "auto"  # one of ``ENGINES``


@dataclass(frozen=True, eq=False)
class Scores:
    """What ``run`` computed for one ``occlude`` call."""

    clean: torch.Tensor  # float32 [N, K]: the model's own scores on the unoccluded images
    target: torch.Tensor  # int64 [N]: the checked target classes
    probs: torch.Tensor  # float32 [N, P, K]: the scores at every window
    engine: str  # which engine computed probs (``Occlusion.engine``)


def run(request: Request) -> Scores:
    """The scores of every window for one checked call, inside ``eval_mode`` and ``full_float32``.

    The incremental engine runs where ``engine`` and ``_use_incremental`` allow it, guarded: its clean
    pass and two spot windows are checked against the model's own forward (``_GuardFailed``); a failed
    guard reruns the call by brute force with one warning ("fallback: ..."), or raises for
    ``engine="incremental"``.
    """
    model, images, plan, fill = request.model, request.images, request.plan, request.fill
    device, progress, engine, output = request.device, request.progress, request.engine, request.output
    batch_size = request.batch_size
    size = batch_size if batch_size is not None else default_batch_size(images, device)
    # A model with its own forward is traced (its Python runs once, on symbolic values): in eval
    # mode and without autograd, as every real call, so the graph is the one the model runs.
    # engine="brute" never traces: it runs nothing but the model's own forward.
    with torch.inference_mode():
        unsupported = supports(model, plan.image_size, images.shape[1], trace=engine != "brute")
    # channels-last pays on CPU (up to 1.4x); on an H200 in full float32 it made brute force 3x slower
    fast_layout = unsupported is None and device.type == "cpu"
    layout = torch.channels_last if fast_layout else torch.contiguous_format
    incremental, not_used = _use_incremental(engine, model, images, plan, request.reveal, unsupported, device)
    spots = _spot_windows(len(images), plan) if incremental else []
    spot_inputs = [occluded_input(images, plan, fill, i, w) for i, w in spots]
    started = time.perf_counter()
    clean, spot_probs = _clean_forward(model, images, spot_inputs, size, device, layout, output)
    if progress is None:  # automatic: a bar when brute force would take more than a few seconds
        per_image = (time.perf_counter() - started) / (len(images) + len(spot_inputs))
        progress = per_image * len(images) * plan.positions > PROGRESS_AFTER_S
    targets = validate.targets(request.target, clean)
    used = "brute" if not_used is None else f"brute (incremental not used: {not_used})"
    if incremental:
        try:
            probs, tolerance = _run_incremental(
                cast(nn.Module, model),
                images,
                plan,
                fill,
                size,
                device,
                progress,
                clean,
                chunk_given=batch_size is not None,
                output=output,
            )
            _check_spots(probs, spots, spot_probs, tolerance)
            return Scores(clean, targets, probs, "incremental")
        except Exception as exc:  # noqa: BLE001 - any failure of the fast path: the exact one decides
            reason = str(exc) if isinstance(exc, _GuardFailed) else f"it raised {type(exc).__name__}: {exc}"
            if engine == "incremental":
                raise OcclusionError(
                    f"engine 'incremental' failed its check on this model: {reason}; use engine='auto' "
                    "or 'brute'"
                ) from exc
            warnings.warn(
                f"incremental engine failed its check ({reason}); running every window in full instead",
                stacklevel=5,
            )
            used = f"brute (fallback: {reason})"
    probs = _brute(model, images, plan, fill, request.reveal, size, device, progress, fast_layout, output)
    return Scores(clean, targets, probs, used)


def _brute(
    model: Callable,
    images: torch.Tensor,
    plan: Plan,
    fill: Fill,
    reveal: bool,
    batch_size: int,
    device: torch.device,
    progress: bool,
    channels_last: bool = False,
    output: Any = "softmax",
) -> torch.Tensor:
    """Scores (``output``, softmax by default) of every (image, window) pair: [N, R*C, K], in chunks.

    ``channels_last`` hands the model channels-last inputs (only for models whose every layer
    ``occsens.engine.receptive`` knows: a model that calls ``view`` on its maps would break); convolution
    and pooling run up to 1.4x faster that way on CPU, with the same values.
    """
    n, p = len(images), plan.positions
    boxes = plan.windows.reshape(p, 4).to(device)  # each chunk's masks are built from its boxes
    x_all = images.to(device)
    fill = fill.on(device)
    out: torch.Tensor | None = None
    with contextlib.closing(progress_bar(n * p, progress)) as bar:  # closed on errors too
        for start in range(0, n * p, batch_size):
            pairs = torch.arange(start, min(start + batch_size, n * p))
            image_idx, window_idx = pairs // p, pairs % p
            x = x_all[image_idx]
            mask = box_masks(boxes[window_idx.to(device)], plan.image_size).unsqueeze(1)  # bool [B, 1, H, W]
            fill_values = fill.images(x, image_idx, ~mask if reveal else mask).to(device)
            occluded = compose(x, fill_values, mask, reveal)
            if channels_last:
                occluded = occluded.contiguous(memory_format=torch.channels_last)
            probs = model_scores(model, occluded, len(pairs), output)
            if out is None:  # kept on the device until the end: one copy back instead of one per chunk
                out = probs.new_empty(n * p, probs.shape[1])
            out[start : start + len(pairs)] = probs
            bar.update(len(pairs))
    assert out is not None
    return out.view(n, p, -1).cpu()


def _run_incremental(
    model: nn.Module,
    images: torch.Tensor,
    plan: Plan,
    fill: Fill,
    batch_size: int,
    device: torch.device,
    progress: bool,
    clean_probs: torch.Tensor,
    chunk_given: bool = False,
    output: Any = "softmax",
) -> tuple[torch.Tensor, float]:
    """The same probabilities as ``_brute``, computing each layer only where the window changed it, and
    the tolerance its checks held them to (``engine_tolerance``, the largest over the groups).

    Images go in groups whose clean activations are kept (``_clean_group``); the (image, window)
    pairs of a group run in chunks of ``batch_size`` windows (``_incremental_chunk`` times that
    unless ``chunk_given``), ordered so that windows whose changed boxes have the same shape share
    a chunk (a chunk computes every window on its largest box).
    Raises ``_GuardFailed`` when a group's clean pass, the walk's reconstruction of the model,
    disagrees with ``clean_probs``, the model's own forward on those images, by more than that.
    """

    n, p = len(images), plan.positions
    walked = _walked(model, plan, images.shape[1])
    order = walked.order.to(device)
    if not chunk_given:  # brute force's chunk, grown as far as a window's boxes are smaller than an image
        batch_size = _incremental_chunk(batch_size, walked.footprint)
    fill = fill.on(device)
    win = plan.windows.reshape(-1, 4).to(device)
    box_h, box_w = int(win[:, 2].max()), int(win[:, 3].max())  # one box size: the largest window
    h, w = plan.image_size
    tops, lefts = win[:, 0].clamp(max=h - box_h), win[:, 1].clamp(max=w - box_w)
    rows = tops.view(-1, 1, 1) + torch.arange(box_h, device=device).view(1, -1, 1)  # [P, box_h, 1]
    cols = lefts.view(-1, 1, 1) + torch.arange(box_w, device=device).view(1, 1, -1)  # [P, 1, box_w]
    group = _clean_group(images, device)
    workers = _workers(device, plan.image_size)
    out: torch.Tensor | None = None
    tolerance = ENGINE_TOLERANCE
    with contextlib.closing(progress_bar(n * p, progress)) as bar:  # closed on errors too
        for first in range(0, n, group):
            members = images[first : first + group].to(device)
            clean = CleanActivations(model, members)
            rebuilt = checked_scores(clean.logits, len(members), output)
            tolerance = max(tolerance, engine_tolerance(float(clean.logits.abs().max()), walked.layers))
            off = _off(rebuilt, clean_probs[first : first + len(members)])
            if not off <= tolerance:  # also catches NaN
                raise _GuardFailed(
                    f"the walk's clean pass differs from the model's own forward by {off:.2g} (images "
                    f"{first}..{first + len(members) - 1}, tolerance {tolerance:.2g}): the model runs code "
                    "its layers do not show"
                )
            pairs = len(members) * p
            size = batch_size if chunk_given else _parallel_chunk(batch_size, pairs, workers)

            def chunk(
                start: int,
                members: torch.Tensor = members,
                first: int = first,
                clean: CleanActivations = clean,
                pairs: int = pairs,
                size: int = size,
            ) -> tuple[torch.Tensor, torch.Tensor]:
                pair = torch.arange(start, min(start + size, pairs), device=device)
                member, idx = pair % len(members), order[pair // len(members)]
                x, mask = members[member], box_masks(win[idx], plan.image_size).unsqueeze(1)
                occluded = compose(x, fill.images(x, first + member, mask).to(device), mask, False)
                batch = torch.arange(len(pair), device=device).view(-1, 1, 1, 1)
                chan = torch.arange(x.shape[1], device=device).view(1, -1, 1, 1)
                boxes = occluded[batch, chan, rows[idx].unsqueeze(1), cols[idx].unsqueeze(1)]
                logits = window_logits(model, clean, member, boxes, tops[idx], lefts[idx])
                return (first + member) * p + idx, checked_scores(logits, len(pair), output)

            for index, probs in _chunks_in_parallel(chunk, range(0, pairs, size), workers):
                if out is None:
                    out = probs.new_empty(n * p, probs.shape[1])
                out[index] = probs
                bar.update(len(index))
    assert out is not None
    return out.view(n, p, -1).cpu(), tolerance


# Chunks in flight at once on the CPU, each on one thread, instead of one chunk at a time whose every
# small kernel is split over all threads: with a busy process beside it, a kernel split over threads
# waits for the one the scheduler took away, at every layer (a straggler at every barrier), while
# whole chunks on single threads keep running. See _chunks_in_parallel for the measurements.
_PARALLEL_CHUNKS = True


# The smallest chunk worth splitting a group's windows for, so every worker has one. Measured on the
# shipped model, 1 image, 2 threads (/tmp/par.py in the issue-13 note, 2026-11-30): 64 windows as two
# chunks of 32 took 41 ms quiet against 33 ms as one chunk (no gain under load either: 59 against
# 52 ms); 169 windows as two chunks of 85 took 75 against 73 ms quiet and 128 against 235 ms beside
# a busy process.
_MIN_PARALLEL_CHUNK = 64


def _parallel_chunk(batch_size: int, pairs: int, workers: int) -> int:
    """The chunk size for ``pairs`` windows: ``batch_size``, or, when every worker's share holds at
    least ``_MIN_PARALLEL_CHUNK`` windows, a share of it per worker. Measured with /tmp/par.py and the
    bench's memory probe (shipped model, patch 4 stride 1, 2 threads): workers on chunks of 192 peaked
    317 MB, on chunks of 96 (half each) 186-209 MB at the same speed, against 56-66 MB one chunk at a
    time: each worker thread keeps its own scratch memory (oneDNN's and the allocator's)."""
    share = -(-pairs // workers)
    if share < _MIN_PARALLEL_CHUNK:
        return batch_size
    # the workers' chunks together hold no more windows than one chunk did
    return max(1, min(share, batch_size // workers))


# Parallel workers only for images up to this many pixels: each worker thread keeps its own scratch
# memory, which grows with the image. Measured with the bench's memory probe (1 image, 2 threads):
# the shipped model at 32x32, patch 4 stride 1, peaked 186-209 MB with workers against 56-66 MB
# without (at 2x the speed beside a busy process); torchvision ResNet-18 at 224x224, patch 16 stride 8,
# 663 MB against 241 MB, which issue 13's memory bound does not allow.
_PARALLEL_MAX_PIXELS = 64 * 64


def _workers(device: torch.device, image_size: tuple[int, int]) -> int:
    """Chunks the incremental engine runs at once: one per torch thread on the CPU for images up to
    ``_PARALLEL_MAX_PIXELS``, else one."""
    small = image_size[0] * image_size[1] <= _PARALLEL_MAX_PIXELS
    return torch.get_num_threads() if device.type == "cpu" and _PARALLEL_CHUNKS and small else 1


def _chunks_in_parallel(
    fn: Callable[[int], tuple[torch.Tensor, torch.Tensor]], starts: range, workers: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``fn(start)`` for every chunk, in order; on the CPU with several torch threads, one chunk per
    thread at a time, each chunk's kernels on a single thread.

    torch's intra-op thread count is per OS thread (OpenMP's): the pool's threads set theirs to 1 when
    they start, which also sets torch's process-wide default for threads started meanwhile; it is put
    back when the pool is done.
    """
    threads = torch.get_num_threads()
    workers = min(workers, len(starts))
    if workers <= 1:
        yield from map(fn, starts)
        return
    try:
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            pending = [pool.submit(fn, start) for start in starts[:workers]]
            ahead = iter(starts[workers:])
            while pending:  # at most `workers` chunks held at once: memory as for `workers` chunks
                done = pending.pop(0).result()
                nxt = next(ahead, None)
                if nxt is not None:
                    pending.append(pool.submit(fn, nxt))
                yield done
    finally:
        torch.set_num_threads(threads)


# The incremental engine keeps every layer's clean activation for a group of images: measured 1.84 MB per
# 32x32 RGB image for the shipped model and 2.50 MB for ResNet-20 (150x and 203x the input's 12 KB, where
# a plain forward holds at most 0.39 MB at once). Groups are sized at 256x the input against the same
# memory budget as a chunk of windows.
_KEPT_FACTOR = 256


# A window in the incremental engine carries only its changed boxes, so its chunks can hold more windows
# than brute force's in the same memory, and fewer chunks mean fewer per-layer calls. Measured on the
# shipped model, 1 image (development machine, 2 threads; `occsens bench`'s memory probe): chunks of 64,
# 192, 256 windows took 69, 65, 63 ms for patch 8 stride 2 (169 windows) and 330, 290, 280 ms for patch 4
# stride 1 (841), with peak memory for the 841 windows of 35, 64, 87 MB against 49 MB for one 64-image
# forward pass. A window there carries at most 0.20-0.28 of an image's largest map (``_Walked.footprint``).
# ResNet-20's windows carry 0.5 of it (its maps turn dense at 16x16): at 3x its peak read 64 MB against
# 31 MB for its 64-image forward. So: 1 / footprint times brute force's chunk, at most 3x.
_INCREMENTAL_MAX_CHUNK_FACTOR = 3.0


def _incremental_chunk(batch_size: int, footprint: float) -> int:
    """Windows per incremental chunk: brute force's ``batch_size`` scaled by what a window carries."""
    return int(batch_size * min(_INCREMENTAL_MAX_CHUNK_FACTOR, 1 / max(footprint, 1e-9)))


def _clean_group(images: torch.Tensor, device: torch.device) -> int:
    """Images whose clean activations the incremental engine keeps at once."""
    kept = images[0].numel() * images.element_size() * _KEPT_FACTOR
    return int(max(1, MEMORY_BUDGET["cuda" if device.type == "cuda" else "cpu"] // kept))


ENGINES = ("auto", "brute", "incremental")


def _use_incremental(
    engine: str,
    model: Any,
    images: torch.Tensor,
    plan: Plan,
    reveal: bool,
    unsupported: str | None,
    device: torch.device,
) -> tuple[bool, str | None]:
    """Whether to run the incremental engine (asked for, or "auto" and it applies and saves work), and
    why not when "auto" wanted it but it cannot prove this model exact (the result's ``engine`` says so;
    no warning, since the user did not ask for that engine and brute force is exact).

    ``unsupported`` is ``occsens.engine.incremental.supports``'s answer for this model. "auto" keeps GPUs
    on brute force: there the engine's many small kernels cost more than the FLOPs it saves (H200,
    shipped model in full float32: 13-18 ms against 3-9 ms on one image, 1.4-2.3x as long on 32).
    """
    if engine == "brute":
        return False, None
    reason = "reveal=True changes everything outside the window" if reveal else unsupported
    if engine == "incremental":
        if reason:
            raise OcclusionError(
                f"engine 'incremental' cannot run this model: {reason}; use engine='auto' or 'brute'"
            )
        return True, None
    if reason:
        return False, (reason if not reveal and isinstance(model, nn.Module) else None)
    return device.type == "cpu" and _incremental_pays(model, images, plan), None


# When "auto" picks the incremental engine: a cost model of its time over brute force's,
#     ratio = SHARE_COST * share + (CALL_COST + LAYER_COST * layers) / windows,
# the FLOP share a window changes (its kernels on small boxes cost more per FLOP than brute force's
# large ones), plus per-call work (the clean pass, the checks) and per-layer work (reading and pasting
# boxes) spread over the windows of an image. Fitted by least squares to 15 measurements on the
# development machine (/tmp/costfit.py in the issue-13 note: 2 threads, one image, median of 5
# interleaved runs, 2026-11-30): the shipped model (9 FLOP layers) at 8 settings, ratios 0.63-1.53;
# ResNet-20 (22 layers) at 4, 0.92-1.74; torchvision ResNet-18 at 224x224 (21 layers) at 3, 0.46-0.68.
# RMS error 0.13; the predicted side of 1.0 matched the measured one wherever the measurement was more
# than 10% from it (the machine's noise).
SHARE_COST = 1.58
CALL_COST = 0.82
LAYER_COST = 0.50


def predicted_ratio(share: float, layers: int, windows: int) -> float:
    """The incremental engine's time over brute force's, as the cost model above predicts it."""
    return SHARE_COST * share + (CALL_COST + LAYER_COST * layers) / windows


def _incremental_pays(model: Any, images: torch.Tensor, plan: Plan) -> bool:
    walked = _walked(model, plan, images.shape[1])
    return predicted_ratio(walked.share, walked.layers, plan.positions) < 1.0


@dataclass(frozen=True)
class _Walked:
    """What the projective-field walk says about a model and a plan (``occsens.engine.receptive``)."""

    share: float  # of a full forward's FLOPs that the windows change, averaged
    order: torch.Tensor  # the windows sorted by the shape of their changed box at every layer
    # the largest box of values a window carries through the incremental engine (a layer's largest
    # changed box times its channels), over the largest map a whole image has: what a window costs
    # in memory there, against the one image that sizes brute force's chunks
    footprint: float
    layers: int = 0  # FLOP-counting layers (convolutions, linear) the walk met


_WALKED: dict[tuple, _Walked] = {}


_LAYOUTS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], str]] = weakref.WeakKeyDictionary()


def _layout(model: nn.Module) -> str:
    """``repr(model)``, remembered while the model holds the same module objects (0.2 ms saved per call)."""
    members = tuple(map(id, model.modules()))
    known = _LAYOUTS.get(model)
    if known is None or known[0] != members:
        known = (members, repr(model))
        _LAYOUTS[model] = known
    return known[1]


def _walked(model: nn.Module, plan: Plan, channels: int) -> _Walked:
    """The walk for the plan's windows, remembered per model layout and plan.

    The key is the model's ``repr`` (every layer with its kernel, stride, padding...), which fixes
    the walk; weights do not enter it. A stale entry could only change which engine runs or the
    order of windows, never a result.
    """

    key = (_layout(model), plan.image_size, plan.windows.numpy().tobytes(), channels)
    if key not in _WALKED:
        layers = layer_extents(model, plan.image_size, plan.windows.reshape(-1, 4).tolist(), channels)
        if not layers:  # no convolution or linear layer: no FLOPs to save, so the walk says "all of them"
            return _Walked(1.0, torch.arange(plan.positions), 1.0, 0)
        changed = sum(float((layer.per_pixel * layer.rows * layer.cols).sum()) for layer in layers)
        share = changed / (sum(layer.full for layer in layers) * plan.positions)
        keys = torch.stack([t for layer in layers for t in (layer.rows, layer.cols)], dim=1).tolist()
        order = torch.tensor(sorted(range(plan.positions), key=lambda i: keys[i]), dtype=torch.long)
        carried = max(int(layer.rows.max()) * int(layer.cols.max()) * layer.channels for layer in layers)
        largest = max(layer.size[0] * layer.size[1] * layer.channels for layer in layers)
        if len(_WALKED) >= 64:
            _WALKED.clear()
        _WALKED[key] = _Walked(share, order, carried / largest, len(layers))
    return _WALKED[key]


# How far the incremental engine may differ from brute force, in probability. Both run float32 arithmetic
# and differ only in summation order (a crop against a full map, folded batch norms), so their distance
# grows with the float32 unit roundoff, the number of layers the rounding passes through and the size of
# the values rounded (the logits' scale stands for it): a flat bound does not fit every model (issue 28).
# Measured against a float64 reference (/work/scratch/tol28.py in the issue-28 note; the test is
# tests/engine/test_float64_reference.py): torchvision models, batch norm calibrated on images, logits
# scaled to std 4-7, 2 images at 64x64, patch 16 stride 8. Distance in units of
# FLOAT32_UNIT * layers * max |logit| (brute to float64, incremental to float64, incremental to brute):
#   resnet18 (21 layers)        0.93  0.91  1.25
#   resnet50 (54)               1.10  0.94  1.17
#   mobilenet_v2 (53)           4.29  4.17  1.08
#   regnet_x_400mf (72)         0.96  0.92  0.55
#   vgg11_bn (11), 224x224, 1 image, patch 64 stride 32: 3.47  2.13  3.41
# ROUNDING_SLACK 8 covers the engines' distance to each other with a margin of 2.3 (vgg11_bn: few layers,
# long sums) and brute force's own float32 error on these with 1.9. A model's own float32 error can
# exceed any such bound (a batch norm with a tiny running variance amplifies rounding): the guard
# compares the engines with each other, never with exact arithmetic. ENGINE_TOLERANCE is the floor,
# the bound the tests' small random networks (logits of order 1, a handful of layers) always met.
ENGINE_TOLERANCE = 1e-5
FLOAT32_UNIT = 2.0**-24  # float32's unit roundoff
ROUNDING_SLACK = 8.0


def engine_tolerance(logit_scale: float, layers: int) -> float:
    """The largest difference, in probability, the incremental engine may show against brute force.

    ``max(ENGINE_TOLERANCE, ROUNDING_SLACK * FLOAT32_UNIT * layers * max(1, logit_scale))`` for a model
    whose walk meets ``layers`` convolution and linear layers and whose clean outputs reach
    ``logit_scale`` in absolute value. It bounds the worst window: one that brings a confident image near
    its decision boundary, where a probability moves most with its logits (the shipped model: 9 layers,
    logits up to about 55: 2.7e-4, while its windows measured 3e-7 to 6e-7 off brute force).
    """
    scale = logit_scale if logit_scale == logit_scale else 1.0  # NaN: the guard's own check reports it
    return max(ENGINE_TOLERANCE, ROUNDING_SLACK * FLOAT32_UNIT * max(1, layers) * max(1.0, scale))


class _GuardFailed(Exception):
    """A run-time check of the incremental engine failed: the call is redone by brute force."""


def _spot_windows(n: int, plan: Plan) -> list[tuple[int, int]]:
    """(image, window) pairs that every incremental call also runs by brute force, chosen by position.

    The top-left window of the first image (at two borders, where padding enters) and the centre
    window of the last image (interior boxes, and images past the first group).
    """
    r, c = plan.grid
    return sorted({(0, 0), (n - 1, (r // 2) * c + c // 2)})


def _clean_forward(
    model: Callable,
    images: torch.Tensor,
    extra: list[torch.Tensor],
    size: int,
    device: torch.device,
    layout: torch.memory_format,
    output: Any = "softmax",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's own softmax on ``images`` (in chunks of ``size``) and on the ``extra`` inputs.

    The extra inputs (the spot-check windows) ride along with the first chunk: no extra model call.
    """
    first = images[:size]
    chunks = [torch.cat([first, *extra])] + [images[i : i + size] for i in range(size, len(images), size)]
    probs = [model_scores(model, x.to(device, memory_format=layout), len(x), output) for x in chunks]
    spots = probs[0][len(first) :]
    return torch.cat([probs[0][: len(first)], *probs[1:]]), spots


def _off(got: torch.Tensor, want: torch.Tensor) -> float:
    """Largest difference, relative to the scores' size once they exceed 1 (probabilities never do)."""
    return float((got - want).abs().max()) / max(1.0, float(want.abs().max()))


def _check_spots(
    probs: torch.Tensor, spots: list[tuple[int, int]], expected: torch.Tensor, tolerance: float
) -> None:
    """Raise ``_GuardFailed`` unless the incremental ``probs`` [N, P, K] match brute force at ``spots``."""
    for (image, window), want in zip(spots, expected, strict=True):
        off = _off(probs[image, window], want)
        if not off <= tolerance:
            raise _GuardFailed(
                f"window {window} of image {image} differs from brute force by {off:.2g} "
                f"(tolerance {tolerance:.2g})"
            )
