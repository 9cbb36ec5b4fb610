"""The model's side of a call: validated inputs and targets, eval mode and full float32 (safe across
threads), numpy models, checked outputs, the device, chunk sizes and progress."""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from occsens.constants import OUTPUTS
from occsens.engine import validate
from occsens.errors import OcclusionError, shown

# Default chunk size: a memory budget divided by an estimate of one occluded image's
# footprint in the model. Small conv nets hold about 40-60x their input in activations
# (0.3-0.7 MB per 32x32 image for the two CIFAR nets measured in
# shared/bench/peers-2026-11-26.md); 64x is used as the estimate. On the CPU the budget
# is small on purpose: batches past ~64 images gain nothing there, and above 256 glibc's
# allocator made forwards 1.5-2.5x slower (same source).
_ACTIVATION_FACTOR = 64


MEMORY_BUDGET = {"cpu": 48 << 20, "cuda": 1 << 30}


LAYOUTS = ("NCHW", "NHWC")


def as_images(images: Any, layout: str = "NCHW") -> torch.Tensor:
    """Validate ``images`` and return float32 ``[N, C, H, W]`` in [0, 1] (uint8 is scaled by 1/255).

    ``layout``: where the channel axis is in ``images`` ("NCHW": ``[N, C, H, W]`` or ``[C, H, W]``;
    "NHWC": ``[N, H, W, C]`` or ``[H, W, C]``, as Keras, PIL and numpy code keep images). Images that
    look channels-last under "NCHW" (a last axis of 1, 3 or 4 after a longer one) are refused with a
    pointer to ``layout="NHWC"`` instead of being read as 3-pixel-wide images.
    """
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise OcclusionError(f"layout must be 'NCHW' or 'NHWC', got {shown(layout)}")
    if isinstance(images, np.ndarray):
        if images.dtype.kind not in "uif":
            raise OcclusionError(f"images must hold numbers, got a numpy array of {images.dtype}")
        try:
            array = np.ascontiguousarray(images)
            # A read-only array (np.load, the embedded samples) is copied: torch warns on sharing it,
            # and occsens never writes into the caller's images either way.
            tensor = torch.from_numpy(array if array.flags.writeable else array.copy())
        except TypeError:  # numpy dtypes torch has no counterpart for (float128, ...)
            raise OcclusionError(
                f"images must be float in [0, 1] or uint8 in 0..255, got a numpy array of {images.dtype}"
            ) from None
    elif isinstance(images, torch.Tensor):
        _storable(images)
        tensor = images.detach()
    else:
        raise OcclusionError(
            "images must be a torch tensor or numpy array [N, C, H, W] or [C, H, W], "
            f"got {type(images).__name__}"
            + (" (load the file first, e.g. with occsens.read_image)" if isinstance(images, str) else "")
        )
    given = tuple(tensor.shape)
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 4:
        axes = "[N, C, H, W] or [C, H, W]" if layout == "NCHW" else "[N, H, W, C] or [H, W, C]"
        raise OcclusionError(f"images must have shape {axes} (layout={layout!r}), got {given}")
    if tensor.shape[0] == 0 or 0 in tensor.shape:
        raise OcclusionError(f"images is empty: shape {given}")
    if layout == "NHWC":
        tensor = tensor.permute(0, 3, 1, 2)
    elif tensor.shape[3] in (1, 3, 4) and tensor.shape[1] > 4 and tensor.shape[2] > 4:
        raise OcclusionError(
            f"images of shape {given} look channels-last (height, width, then {tensor.shape[3]} channels): "
            "pass layout='NHWC', or give them as [N, C, H, W]"
        )
    if tensor.dtype == torch.uint8:
        return tensor.cpu().float().div_(255).contiguous()
    if not tensor.is_floating_point():
        raise OcclusionError(f"images must be float in [0, 1] or uint8 in 0..255, got {tensor.dtype}")
    tensor = tensor.cpu().to(torch.float32)
    if not torch.isfinite(tensor).all():
        bad = int((~torch.isfinite(tensor)).sum())
        raise OcclusionError(f"images contain {bad} NaN or infinite values; all pixels must be finite")
    lo, hi = float(tensor.min()), float(tensor.max())
    if lo < 0 or hi > 1:
        raise OcclusionError(
            "images must be in [0, 1] (pixel space, before normalisation), "
            f"got values in [{lo:.4g}, {hi:.4g}]"
            + ("; for 0..255 data pass uint8 or divide by 255" if hi > 1.5 else "")
        )
    return tensor.contiguous()


def _storable(tensor: torch.Tensor) -> None:
    """Refuse tensors whose values cannot be read as one dense block: meta, sparse, quantized, nested."""
    refused = {
        "on the meta device (a shape without values)": tensor.device.type == "meta",
        "sparse": tensor.layout != torch.strided,
        "quantized": tensor.is_quantized,
        "nested": tensor.is_nested,
    }
    for kind, found in refused.items():
        if found:
            raise OcclusionError(f"images must be a dense tensor holding pixel values, got one {kind}")


# Two threads may run occsens on one model at once. Mode and TF32 changes are counted under one lock:
# the first caller to enter changes a flag, the last to leave puts it back, so no call sees a flag
# that another call restored under it, and the caller's own values come back once all are done.
_STATE_LOCK = threading.Lock()


_TF32_USERS: list[Any] = [0, None]  # [callers inside full_float32, the saved (cudnn, matmul) flags]


_EVAL_USERS: dict[nn.Module, int] = {}  # modules switched to eval by occsens -> callers relying on it


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """No TensorFloat-32 for the duration (restored when the last concurrent caller leaves).

    PyTorch lets cuDNN convolutions on Ampere and later GPUs round their inputs to TF32 (10-bit
    mantissa) by default. On an H200 that moved the shipped model's occlusion probabilities by up
    to 2e-3 between two exact engines and against Captum; an explanation must not depend on it.
    The flags are process-wide: another thread's own CUDA work also runs without TF32 meanwhile.
    """
    with _STATE_LOCK:
        if _TF32_USERS[0] == 0:
            _TF32_USERS[1] = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        _TF32_USERS[0] += 1
    try:
        yield
    finally:
        with _STATE_LOCK:
            _TF32_USERS[0] -= 1
            if _TF32_USERS[0] == 0:
                torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = _TF32_USERS[1]


@contextlib.contextmanager
def eval_flags(model: Any) -> Iterator[bool]:
    """Every module of ``model`` in eval mode for the duration; yields whether any was in training mode.

    Each module's own training flag is restored afterwards, so a model with mixed flags is left
    exactly as found. Safe when several threads run occsens on one model (or on models sharing
    modules): a module occsens switched to eval goes back to training only when the last of them
    is done. Not safe against the caller's own code changing modes or training the model meanwhile.
    Gradients stay available (the sanity checks run users' gradient-based explainers under it).
    """
    # only the modules in training mode are touched: setting a flag goes through Module.__setattr__,
    # which cost 0.4 ms per occlude call on the shipped model's 45 modules
    modules = list(model.modules()) if isinstance(model, nn.Module) else []
    with _STATE_LOCK:
        mine = [m for m in modules if m.training or m in _EVAL_USERS]
        was_training = any(m.training or _EVAL_USERS.get(m) for m in mine)
        for m in mine:
            _EVAL_USERS[m] = _EVAL_USERS.get(m, 0) + 1
            m.training = False
    try:
        yield was_training
    finally:
        with _STATE_LOCK:
            for m in mine:
                _EVAL_USERS[m] -= 1
                if _EVAL_USERS[m] == 0:
                    del _EVAL_USERS[m]
                    m.training = True


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[bool]:
    """``eval_flags`` and no autograd (``torch.inference_mode``) for the duration: how occlusion runs."""
    with eval_flags(model) as was_training, torch.inference_mode():
        yield was_training


def as_model(fn: Callable[[np.ndarray], Any], outputs: str = "logits", layout: str = "NCHW") -> Callable:
    """Wrap a numpy callable (a Keras or ONNX model) so ``occlude`` can run it.

    ``fn`` gets float32 images in [0, 1] as a numpy array (``layout`` "NCHW" or "NHWC")
    and returns ``[B, K]`` logits, or probabilities when ``outputs="probs"``.
    """
    if not callable(fn):
        raise OcclusionError(
            f"as_model needs a callable (numpy images -> scores), got {shown(fn)} ({type(fn).__name__})"
        )
    if not isinstance(outputs, str) or outputs not in ("logits", "probs"):
        raise OcclusionError(f"outputs must be 'logits' or 'probs', got {shown(outputs)}")
    if not isinstance(layout, str) or layout not in ("NCHW", "NHWC"):
        raise OcclusionError(f"layout must be 'NCHW' or 'NHWC', got {shown(layout)}")
    name = validate.callable_name(fn, "numpy_model")

    def model(x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().cpu().numpy()
        if layout == "NHWC":
            arr = arr.transpose(0, 2, 3, 1)
        raw = validate.user_call(f"the numpy model {name}", fn, np.ascontiguousarray(arr))
        try:
            values = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError, OverflowError):
            raise OcclusionError(
                f"the numpy model {name} returned {shown(raw)}, not an array of numbers [B, K]"
            ) from None
        out = torch.from_numpy(np.ascontiguousarray(values))
        if outputs == "probs":  # log p goes back to p through softmax
            out = out.clamp(min=1e-30).log()
        return out

    model.__name__ = name
    return model


def check_output(output: Any) -> str:
    """Validate ``occlude``'s ``output`` and return its name (a callable's ``__name__``)."""
    if callable(output):
        return validate.callable_name(output)
    if isinstance(output, str) and output in OUTPUTS:
        return output
    raise OcclusionError(
        f"output {shown(output)} is unknown; use 'softmax' (the model returns logits), 'probs' (it returns "
        "probabilities), 'sigmoid' (one logit per class: binary or multi-label) or a callable "
        "(model output) -> [B, K] scores"
    )


def scores_in_words(output: str) -> str:
    """What an ``Occlusion``'s scores are, in words, from its ``output`` name (for reports and tables)."""
    if output == "softmax":
        return "softmax probabilities of the model's logits"
    if output == "probs":
        return "the model's own probabilities, used as they are"
    if output == "sigmoid":
        return (
            "sigmoid probabilities of the model's logits, each class on its own (for one logit z: "
            "the two sides of a binary classifier, 1 - sigmoid(z) and sigmoid(z))"
        )
    return f"scores computed from the model's output by {output}(), in that function's own units"


def is_probability(output: str) -> bool:
    """Whether scores under ``output`` are probabilities in [0, 1] (a scoring callable's need not be)."""
    return output in OUTPUTS


def model_scores(
    model: Callable, x: torch.Tensor, expected_batch: int, output: Any = "softmax"
) -> torch.Tensor:
    """The model on ``x`` (an exception from its code is reported as the model's), scores checked."""
    what = f"the model, on a batch of shape {tuple(x.shape)},"
    return checked_scores(validate.user_call(what, model, x), expected_batch, output)


def checked_scores(out: Any, expected_batch: int, output: Any = "softmax") -> torch.Tensor:
    """The scores occlusion maps, from the model's output, after checking type, shape and values.

    ``output``: "softmax" of logits (the default), "probs" used as they are, "sigmoid" per class, or
    a callable turning the model's output into ``[B, K]`` scores (see ``occlude``).
    """
    who = "the model"
    if callable(output):
        who = f"the output function {validate.callable_name(output)}"
        out = validate.user_call(who, output, out)
    what = "scores" if callable(output) else ("probabilities" if output == "probs" else "logits")
    if not isinstance(out, torch.Tensor):
        raise OcclusionError(
            f"{who} must return a tensor of {what} [B, K], got {type(out).__name__}"
            + ("" if callable(output) else " (wrap numpy models with occsens.as_model)")
        )
    if out.device.type == "meta" or out.layout != torch.strided or out.is_complex() or out.is_quantized:
        raise OcclusionError(
            f"{who} must return a dense tensor of real {what}, got a {out.layout} {out.dtype} tensor on "
            f"{out.device}"
        )
    least = 2 if output == "softmax" else 1
    if out.ndim != 2 or out.shape[0] != expected_batch or out.shape[1] < least:
        raise OcclusionError(
            f"{who} returned shape {tuple(out.shape)} for {expected_batch} images; expected {what} "
            f"[{expected_batch}, K], K >= {least}"
            + (
                "; for one logit (binary) pass output='sigmoid'"
                if output == "softmax" and out.ndim == 2
                else ""
            )
        )
    if not torch.isfinite(out).all():
        hint = "that function" if callable(output) else "the model and its weights"
        raise OcclusionError(f"{who} returned NaN or infinite {what}; check {hint}")
    out = out.float()
    if output == "softmax":
        if bool((out >= 0).all()) and bool(((out.sum(dim=1) - 1).abs() <= 1e-4).all()):
            warnings.warn(  # one text, so Python's default filter shows it once per call site
                "the model's outputs look like probabilities (non-negative, rows summing to 1); softmax "
                "of them would squash them: pass output='probs' (--output probs) if they are",
                stacklevel=2,
            )
        return torch.softmax(out, dim=1).cpu()
    if output == "sigmoid":
        if out.shape[1] == 1:  # one logit z: the binary classifier's two classes, softmax([0, z])
            positive = torch.sigmoid(out)
            return torch.cat([1 - positive, positive], dim=1).cpu()
        return torch.sigmoid(out).cpu()
    if output == "probs" and (float(out.min()) < -1e-6 or float(out.max()) > 1 + 1e-6):
        raise OcclusionError(
            f"output='probs' but the model returned values in [{float(out.min()):.4g}, "
            f"{float(out.max()):.4g}]; probabilities lie in [0, 1]: pass output='softmax' for logits"
        )
    return out.cpu()


def run_device(model: Any, device: Any) -> torch.device:
    """Where ``model`` runs: ``device`` (checked to exist, and to hold the model), or its parameters'."""
    return validate.model_device(model, device)


# The CPU floor: fewer windows per call than this pays each call's fixed cost (dispatch, oneDNN
# primitive set-up, thread wake-up) on too few images. Measured on this project's 2-core machine
# (2026-11-30, /tmp/r18_occ.py in the issue-13 note): torchvision ResNet-18 at 224x224, 16 windows,
# took 7.5 s at 1 image per call (the old default there) against 1.8 s at 16 per call, while
# per-image time at batch 2..16 stayed within 0.8-0.9x of batch 1 in a plain forward loop: the
# floor costs nothing in speed where it is not needed. The floor yields to memory: never more than
# _FLOOR_MEMORY of estimated activations per call (a 1024x1024 image keeps its small chunk).
_CPU_FLOOR = 16
_FLOOR_MEMORY = 1 << 30


def default_batch_size(images: torch.Tensor, device: torch.device) -> int:
    """Occluded images per model call: the device's memory budget over one image's estimated footprint,
    on the CPU at least ``_CPU_FLOOR`` while that stays under ``_FLOOR_MEMORY``."""
    per_image = images[0].numel() * images.element_size() * _ACTIVATION_FACTOR
    budget = MEMORY_BUDGET["cuda" if device.type == "cuda" else "cpu"]
    size = int(max(1, min(4096, budget // per_image)))
    if device.type != "cuda" and size < _CPU_FLOOR:
        size = int(max(size, min(_CPU_FLOOR, _FLOOR_MEMORY // per_image)))
    return size


class _NoBar:
    def set_description(self, text: str) -> None:
        pass

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


# A bar appears only once work has run this long: shorter work is over before a reader wonders whether
# anything is happening, and a bar that flashes for half a second is noise (in a log, many lines of it).
BAR_DELAY_S = 2.0


def progress_bar(total: int, enabled: bool, unit: str = "window", desc: str = "occluding") -> Any:
    """A tqdm bar on stderr, or a silent stand-in with the same methods. Even when enabled, the bar shows
    only on a terminal (``disable=None``: a redirected stderr, a CI log, gets no carriage-return lines)
    and only after ``BAR_DELAY_S`` seconds of work."""
    if not enabled:
        return _NoBar()
    return tqdm(total=total, unit=unit, desc=desc, leave=False, disable=None, delay=BAR_DELAY_S)
