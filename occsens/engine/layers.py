"""The layers the engine knows besides torch's: ``Residual``, and a registry of point-wise layers.

A point-wise layer computes each output pixel from the same input pixel alone (its channels may
mix), the same function at every position: activations, normalisation by per-channel constants, a
colour conversion. The incremental engine may run such a layer on a box of changed pixels. torch's
activations are registered here; ``occsens.cifar.models`` registers its own, and a user may
register theirs with ``register_pointwise``. Each class's methods are recorded when it is
registered, so the guard (``occsens.engine.receptive.refusal``) notices a later monkeypatch.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch
from torch import nn

from occsens.errors import OcclusionError, shown

# What a subclass of a known layer may define and still run that layer's forward unchanged.
HARMLESS = frozenset({"__init__", "extra_repr", "__repr__", "__module__", "__qualname__", "__doc__"})


def behaviour(cls: type) -> dict[str, Any]:
    """The methods and descriptors ``cls`` has between itself and ``nn.Module`` (own and inherited)."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or klass is nn.Module:  # nn.Module's are checked once per walk
            continue
        for name, value in vars(klass).items():
            if (callable(value) or hasattr(value, "__get__")) and name not in HARMLESS:
                found[name] = value
    return found


class Residual(nn.Module):
    """``shortcut(x) + body(x)``; the shortcut is the identity unless given (e.g. a strided 1x1 conv)."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x if self.shortcut is None else self.shortcut(x)) + self.body(x)


_POINTWISE: dict[type, dict[str, Any]] = {}  # class -> its methods when it was registered

L = TypeVar("L", bound=type)


def register_pointwise(cls: L) -> L:
    """Declare that ``cls`` acts on each pixel alone; usable as a class decorator.

    Its constants must not vary over positions: tensors it holds must broadcast per pixel (shape
    ``[1, C, 1, 1]``, ``[C, 1, 1]`` or one number), which the walk checks on every instance.
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        what = (
            f"an instance of {type(cls).__name__}; pass the class itself"
            if isinstance(cls, nn.Module)
            else f"{shown(cls)} ({type(cls).__name__})"
        )
        raise OcclusionError(f"register_pointwise needs a torch.nn.Module subclass, got {what}")
    _POINTWISE[cls] = behaviour(cls)
    return cls


def pointwise() -> tuple[type, ...]:
    """The registered point-wise layer classes."""
    return tuple(_POINTWISE)


def registered_behaviour(cls: type) -> dict[str, Any] | None:
    """The methods ``cls`` had when it was registered as point-wise, or None."""
    return _POINTWISE.get(cls)


for _layer in (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.CELU,
    nn.ELU,
    nn.Identity,
    nn.Dropout,  # the identity in eval mode, where occsens runs every model
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
):
    register_pointwise(_layer)
