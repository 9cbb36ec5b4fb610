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
    """The registered point-wise layer classes, and other libraries' ones checked so far (``adopt``)."""
    return (*_POINTWISE, *(cls for cls, (kind, _) in _ADOPTED.items() if kind == "pointwise"))


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

for _more in (nn.Hardsigmoid, nn.Mish, nn.Softplus, nn.Hardtanh):
    register_pointwise(_more)


# --------------------------------------------------------------------------- nodes of a rebuilt tree
# ``occsens.engine.graph`` rebuilds a traced forward from these besides ``Residual``; each states one
# thing the traced code did, so the walk and the engine can state its arithmetic.


class Product(nn.Module):
    """``left(x) * right(x)`` (a branch that is None is the identity): a gate, such as squeeze-excitation's
    ``x * sigmoid(fc(mean(x)))``, or the product of two maps."""

    def __init__(self, left: nn.Module | None, right: nn.Module | None) -> None:
        super().__init__()
        self.left = left
        self.right = right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x if self.left is None else self.left(x)
        return a * (x if self.right is None else self.right(x))


class GlobalMean(nn.Module):
    """``x.mean((2, 3), keepdim)``: the mean over every position of a map."""

    def __init__(self, keepdim: bool) -> None:
        super().__init__()
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=self.keepdim)


class ChannelsLast(nn.Module):
    """``body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)``: layers that act on the last axis (``nn.Linear``,
    ``nn.LayerNorm`` over channels, activations) run on each pixel's channels (ConvNeXt's MLP)."""

    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Scaled(nn.Module):
    """``x * c`` (or ``x + c``, ``x - c``, ``x / c``) for a tensor ``c`` the model holds (ConvNeXt's layer
    scale ``x.mul(self.gamma.reshape(1, -1, 1, 1))``): read from its owner on every call, then reshaped."""

    def __init__(self, op: str, owner: nn.Module, name: str, shape: tuple[int, ...] | None) -> None:
        super().__init__()
        self.op = op
        self.source = (owner, name)  # a tuple: the owner is not registered as a child of this node
        self.shape = shape

    def constant(self) -> torch.Tensor:
        owner, name = self.source
        value = getattr(owner, name)
        return value if self.shape is None else value.reshape(self.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.constant()
        if self.op == "mul":
            return x * c
        if self.op == "add":
            return x + c
        if self.op == "sub":
            return x - c
        return x / c

    def extra_repr(self) -> str:
        return f"{self.op} {self.source[1]}" + (f" reshaped to {self.shape}" if self.shape else "")


# --------------------------------------------------------------------------- other libraries' layers
# Layers of other libraries whose semantics their documentation states, known by qualified name (the
# engine imports none of those libraries). Each class is checked against its own forward the first time
# a walk meets an instance (``adopt``): its methods are recorded then, so a later monkeypatch shows.
#   "norm-act": batch norm (nn.BatchNorm2d's eval arithmetic on the layer's own tensors), then the
#     children named, in order (timm's BatchNormAct2d: "BatchNorm + Activation", drop then act);
#   "pointwise": each output pixel from the same input pixel alone (checked on a crop: the layer on a
#     crop of a map equals the crop of the layer on the map), the layer's own forward runs;
#   "last-axis": acts on each row of the last axis alone (timm's LayerNorm: nn.LayerNorm's arithmetic),
#     allowed inside ``ChannelsLast``;
#   "linear": nn.Linear's arithmetic on the layer's own weight and bias.
NORM_ACT = {"timm.layers.norm_act.BatchNormAct2d": ("drop", "act")}
BY_NAME = {
    **dict.fromkeys(NORM_ACT, "norm-act"),
    # LayerNorm over each pixel's channels (permute, layer norm, permute back), then drop and act
    "timm.layers.norm.LayerNorm2d": "pointwise",
    "timm.layers.norm_act.LayerNormAct2d": "pointwise",
    "timm.layers.norm.LayerNorm": "last-axis",
    "timm.layers.linear.Linear": "linear",  # nn.Linear's arithmetic (timm's classifier heads)
    # timm's own activations (timm.layers.activations), tensor-free element-wise functions
    **dict.fromkeys(
        [
            f"timm.layers.activations.{name}"
            for name in ("Swish", "Mish", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "HardMish", "GELU")
        ]
        + ["timm.layers.activations.GELUTanh", "timm.layers.activations.QuickGELU"],
        "pointwise",
    ),
}

_ADOPTED: dict[type, tuple[str, dict[str, Any]]] = {}  # class -> (kind, its methods when checked)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def named_kind(cls: type) -> tuple[type, str] | None:
    """The first class in ``cls``'s MRO that ``BY_NAME`` knows, and its kind; None if none."""
    for klass in cls.__mro__:
        kind = BY_NAME.get(_qualified(klass))
        if kind is not None:
            return klass, kind
    return None


def norm_act_children(cls: type) -> tuple[str, ...]:
    """The children a checked norm-act class runs after its batch norm, in order (() for other classes)."""
    found = named_kind(cls) if cls in _ADOPTED else None
    return NORM_ACT.get(_qualified(found[0]), ()) if found is not None and found[1] == "norm-act" else ()


def adopted(cls: type) -> tuple[str, dict[str, Any]] | None:
    """(kind, methods when checked) of a class ``adopt`` checked and accepted, or None."""
    return _ADOPTED.get(cls)


def _probe(module: nn.Module, channels: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, channels, 5, 6, generator=generator)
    return x.to(next(iter(module.parameters()), x).device)


def _channels(module: nn.Module) -> int | None:
    if isinstance(module, nn.BatchNorm2d):
        return int(module.num_features)
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) == 1:
        return int(module.normalized_shape[0])
    if isinstance(module, nn.Linear):
        return int(module.in_features)
    if not any(True for _ in module.parameters()) and not any(True for _ in module.buffers()):
        return 4  # a tensor-free layer: any number of channels
    return None


def adopt(module: nn.Module) -> str | None:
    """Check ``module``'s class (the first time one is met) against its documented semantics; the reason
    it fails, or None (then ``adopted(type(module))`` holds its kind). Runs the layer on a small random
    probe, in eval mode and without gradients; a layer in training mode is not checked (and refused)."""
    cls = type(module)
    if cls in _ADOPTED:
        return None
    found = named_kind(cls)
    if found is None:
        return f"layer {cls.__name__}"
    klass, kind = found
    if module.training:
        return f"layer {cls.__name__} in training mode (occsens checks it in eval mode)"
    channels = _channels(module)
    reason: str | None
    if channels is None:
        reason = f"layer {cls.__name__}: its number of channels is unknown, so it cannot be checked"
    else:
        with torch.no_grad():
            reason = _check(module, kind, _probe(module, channels), NORM_ACT.get(_qualified(klass), ()))
    if reason is None:  # failures are not kept: another instance (another act child) may pass
        _ADOPTED[cls] = (kind, behaviour(cls))
    return reason


def _check(module: nn.Module, kind: str, x: torch.Tensor, then: tuple[str, ...]) -> str | None:
    """Why ``module`` does not compute what its ``kind`` states on the probe ``x``, or None."""
    name = type(module).__name__
    try:
        if kind == "linear":
            assert isinstance(module, nn.Linear)
            x = x.permute(0, 2, 3, 1).contiguous()
            want = torch.nn.functional.linear(x, module.weight, module.bias)
            got = module(x)
        elif kind == "last-axis":
            x = x.permute(0, 2, 3, 1).contiguous()
            assert isinstance(module, nn.LayerNorm)
            want = torch.nn.functional.layer_norm(
                x, module.normalized_shape, module.weight, module.bias, module.eps
            )
            got = module(x)
        elif kind == "norm-act":
            assert isinstance(module, nn.BatchNorm2d)
            if module.running_mean is None or module.running_var is None:
                return f"layer {name} without running statistics (it normalises by the batch's own)"
            want = torch.nn.functional.batch_norm(
                x, module.running_mean, module.running_var, module.weight, module.bias, False, 0.0, module.eps
            )
            for child in then:
                want = getattr(module, child)(want.clone())
            got = module(x.clone())
        else:
            got = module(x.clone())
            want = module(x[:, :, 1:4, 2:5].clone())
            if got.shape != x.shape:
                return f"layer {name} changes the shape of a map ({tuple(x.shape)} -> {tuple(got.shape)})"
            got = got[:, :, 1:4, 2:5]
    except Exception as exc:  # noqa: BLE001 - the layer's own code failed on a plain probe
        return f"layer {name} failed on a probe ({type(exc).__name__}: {exc})"
    # The same float32 operations on the same values: only a reduction's order may differ (layer norm
    # over a crop's channels), a few units in the last place (1.2e-7 each) on values of order 1.
    if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-6, atol=1e-6):
        what = {
            "norm-act": "batch norm then " + " then ".join(then),
            "last-axis": "layer norm",
            "linear": "F.linear",
        }
        return f"layer {name} does not compute {what.get(kind, 'each pixel alone')} on a probe"
    return None
