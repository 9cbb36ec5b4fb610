"""The engine's door: devices, models and the user's own callables, checked before any work.

Plain arguments (ints, flags, paths) are checked by ``occsens.errors``; this module holds what needs
torch. Every check raises one ``OcclusionError`` naming the argument, quoting the value and saying
what is valid.

Decisions, stated once:

* **Devices** must exist on this machine: ``"cuda"`` without a GPU, ``"cuda:7"`` on a machine with
  fewer GPUs, ``"mps"`` off Apple silicon and ``"meta"`` (no data) are refused by name.
* **Models** run in float32. A model whose parameters or buffers are float16, bfloat16, float64 or
  complex is refused, not converted (occsens never changes a user's model, and an explanation must
  not depend on reduced precision: the engine also turns TF32 off); so is one on the meta device.
* **Images** of any real float dtype (float16 and bfloat16 included) or uint8 are converted to
  float32 by ``as_images``, which is exact; sparse, quantized, nested and meta tensors are refused.
* **The user's code** (the model's forward, a fill callable, an ``output`` function, a numpy model)
  runs inside ``user_call``: an exception it raises comes back as an ``OcclusionError`` naming which
  callable failed, chained to the original (``raise ... from``) so its traceback is kept.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from occsens.errors import OcclusionError, first_line, shown

T = TypeVar("T")


def _available() -> str:
    """The devices this machine has, in words, for messages."""
    found = ["'cpu'"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        found.append("'cuda'" if count == 1 else f"'cuda:0'..'cuda:{count - 1}'")
    if torch.backends.mps.is_available():
        found.append("'mps'")
    return ", ".join(found)


def device(value: Any, name: str = "device") -> torch.device:
    """``value`` as a ``torch.device`` that exists on this machine."""
    if isinstance(value, bool) or not isinstance(value, (str, torch.device, numbers.Integral)):
        raise OcclusionError(
            f"{name} must be a device name such as 'cpu' or 'cuda:0' (or a torch.device), got "
            f"{shown(value)} ({type(value).__name__}); this machine has {_available()}"
        )
    try:
        dev = torch.device(int(value) if isinstance(value, numbers.Integral) else value)
    except (RuntimeError, TypeError, ValueError, OverflowError):
        raise OcclusionError(
            f"{name} {shown(value)} is not a torch device, e.g. 'cpu' or 'cuda:0'; this machine has "
            f"{_available()}"
        ) from None
    if dev.type == "cpu":
        if dev.index not in (None, 0):
            raise OcclusionError(f"{name} {shown(value)} does not exist: the CPU is 'cpu' (or 'cpu:0')")
        return torch.device("cpu")
    if dev.type == "meta":
        raise OcclusionError(
            f"{name} {shown(value)}: the meta device holds shapes but no values, so nothing can run "
            f"on it; this machine has {_available()}"
        )
    backend = getattr(torch, dev.type, None)
    is_available = getattr(backend, "is_available", None)
    if dev.type == "mps":
        is_available = torch.backends.mps.is_available
    if not (callable(is_available) and is_available()):
        raise OcclusionError(
            f"{name} {shown(value)} does not exist: this machine has no {dev.type} device "
            f"(it has {_available()})"
        )
    count = getattr(backend, "device_count", None)
    if dev.index is not None and callable(count) and dev.index >= count():
        raise OcclusionError(
            f"{name} {shown(value)} does not exist: this machine has {count()} {dev.type} device(s) "
            f"(it has {_available()})"
        )
    return dev


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def _tensors(model: nn.Module) -> Any:
    return itertools.chain(model.parameters(), model.buffers())


def model(value: Any, name: str = "model") -> None:
    """A callable; for a ``torch.nn.Module``, float32 parameters and buffers holding data (not meta)."""
    if not callable(value):
        raise OcclusionError(
            f"{name} must be a torch.nn.Module or a callable, got {shown(value)} ({type(value).__name__})"
        )
    if not isinstance(value, nn.Module):
        return
    for tensor_name, tensor in itertools.chain(value.named_parameters(), value.named_buffers()):
        if tensor.device.type == "meta":
            raise OcclusionError(
                f"{name}'s {tensor_name!r} is on the meta device (a shape without values): load its "
                "weights first, e.g. model.to_empty(device='cpu') then model.load_state_dict(...)"
            )
        if (tensor.is_floating_point() and tensor.dtype != torch.float32) or tensor.is_complex():
            raise OcclusionError(
                f"{name}'s {tensor_name!r} is {tensor.dtype}; occsens runs models in float32 (an "
                "explanation must not depend on reduced precision): pass model.float(), or a copy of it"
            )


def model_device(value: Any, given: Any, name: str = "device") -> torch.device:
    """Where ``value`` runs: ``given`` (checked to exist, and to be where the model's tensors are),
    or where its parameters are, or the CPU."""
    where = {t.device for t in _tensors(value)} if isinstance(value, nn.Module) else set[torch.device]()
    if given is None:
        return next(iter(where)) if len(where) == 1 else torch.device("cpu")
    dev = device(given, name)
    if len(where) == 1 and not _same_device(dev, next(iter(where))):
        raise OcclusionError(
            f"{name} {shown(given)} is not where the model is: its parameters are on "
            f"{next(iter(where))}; move it there with model.to({str(dev)!r}), or leave {name}=None"
        )
    return dev


_TARGET = "None, an int or one int per image"


def check_target(target: Any, n: int) -> int | list[int] | None:
    """``target``'s type and count, before any work: None, one int, or a list of ``n`` ints.

    Accepted: an int (Python, numpy, or a 0-dimensional integer tensor such as ``labels[i]``), or a
    list, tuple, 1-dimensional integer tensor or array of ``n`` of them. Their range is checked
    against the model's classes once the clean forward has counted them (``targets``).
    """
    if target is None:
        return None
    if isinstance(target, (torch.Tensor, np.ndarray)) and target.ndim == 0:
        target = target.item()  # a 0-dimensional tensor (e.g. labels[i]) is one number
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        return int(target)
    if isinstance(target, (torch.Tensor, np.ndarray)):  # one int per image, as a tensor or an array
        integral = (
            target.dtype.kind in "iu"
            if isinstance(target, np.ndarray)
            else not (target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool)
        )
        if not integral or target.ndim != 1:
            raise OcclusionError(f"target must be {_TARGET}, got {shown(target)}")
        target = target.tolist()
    if not isinstance(target, (list, tuple)):
        raise OcclusionError(f"target must be {_TARGET}, got {shown(target)} ({type(target).__name__})")
    if not all(isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in target):
        raise OcclusionError(f"target must be {_TARGET}, got {shown(target)}")
    if len(target) != n:
        raise OcclusionError(f"target has {len(target)} entries but there are {n} images; give one per image")
    return [int(t) for t in target]


def targets(target: Any, clean_probs: torch.Tensor) -> torch.Tensor:
    """``target`` as one class per image, int64 [N], each in the model's 0..K-1; None = clean prediction."""
    n, k = clean_probs.shape
    checked = check_target(target, n)
    if checked is None:
        return clean_probs.argmax(dim=1)
    values = [checked] * n if isinstance(checked, int) else checked
    if any(not 0 <= v < k for v in values):
        raise OcclusionError(f"target {shown(values)} out of range: the model has classes 0..{k - 1}")
    return torch.tensor(values, dtype=torch.int64)


def user_call(what: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, with any exception it raises reported as an ``OcclusionError`` naming ``what``.

    An ``OcclusionError`` passes through unchanged (a wrapped numpy model already names itself).
    """
    try:
        return fn(*args)
    except OcclusionError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything: name who raised it
        raise OcclusionError(f"{what} raised {first_line(exc)}") from exc


def callable_name(fn: Any, default: str = "callable") -> str:
    """A user callable's name for messages: ``fn.__name__`` (``<lambda>`` included), or ``default``."""
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) and name else default
