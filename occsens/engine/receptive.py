"""Where a window's change travels through a network: the projective field, layer by layer.

A window changes the input only inside its rectangle. A convolution's output changes
only where its kernel reads a changed input (the rectangle grown by the kernel's reach,
divided by the stride); element-wise layers keep the rectangle; a residual addition
takes the union of both branches; global pooling and everything after it change
everywhere. Walking a model's layers with these rules gives, for each layer, the region
an exact incremental engine must recompute, and so the share of a full forward's
FLOPs that occlusion really needs.

Supported layers: ``nn.Sequential``, ``occsens.engine.layers.Residual``, ``nn.Conv2d``,
``nn.BatchNorm2d``, the point-wise layers registered in ``occsens.engine.layers`` (torch's
activations, the shipped models' ``Normalize``, ``Luminance`` and ``Scale``, and any a user
registers), ``nn.MaxPool2d``/``nn.AvgPool2d``, adaptive pooling to 1x1 or to the map's own size
(the identity: VGG's 7x7 pooling of a 7x7 map), ``nn.Flatten`` (of a map: every output then
changes), ``nn.Linear``, ``nn.Dropout`` (identity in eval mode), ``nn.ConstantPad2d`` (``nn.ZeroPad2d``:
the box moves by the padding), pooling with ``ceil_mode`` where it adds no partial window, other
libraries' layers checked against their own forward (``occsens.engine.layers.adopt``: timm's
``BatchNormAct2d`` is a batch norm whose ``drop`` and ``act`` children must be point-wise, its
``LayerNorm2d`` is point-wise), and the nodes ``occsens.engine.graph`` builds: ``Product`` (a product
of two maps changes where either does; a gate, a 1x1 value such as squeeze-excitation's, changes with
every window, so the product changes everywhere), ``GlobalMean`` (like global pooling),
``ChannelsLast`` (``nn.Linear`` and layer norm on each pixel's channels) and ``Scaled`` (a tensor the
model holds, per channel). Anything else raises
``Unsupported``. A model with its own ``forward`` (torchvision's) is walked as the tree
``occsens.engine.graph.structure`` rebuilds from its traced graph; ``occsens.engine.extents``
(FLOPs and changed boxes per layer) takes any model and does that itself.

The rules describe what those classes' own ``forward`` does, so the walk proves nothing about
a module whose call runs other code. ``refusal`` says why a module is not the layer it looks
like, and the walk raises ``Unsupported`` for it: a class that is not one of the above nor a
subclass that adds nothing but ``__init__`` (a custom ``forward``, ``_conv_forward`` or
``__iter__``; a parametrization, which swaps the class), any method of those classes changed
since occsens was imported (a monkeypatch), an instance attribute that shadows a method
(``conv.forward = ...``), forward or backward hooks or pre-hooks on the module, and parameters
or buffers of a tensor subclass. ``global_refusal`` covers what is set for the whole process
or thread: global module hooks, ``__torch_function__`` and dispatch modes, and autocast.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as torch_module
from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

from occsens.engine.layers import (
    ChannelsLast,
    GlobalMean,
    Product,
    Residual,
    Scaled,
    adopt,
    adopted,
    behaviour,
    named_kind,
    pointwise,
    registered_behaviour,
)


class Unsupported(Exception):
    """The walk met a layer whose spatial dependence it cannot state."""


# --------------------------------------------------------------------------- what the walk may trust

# The structural layers the walk states rules for; point-wise ones come from occsens.engine.layers.
_LAYERS = (
    nn.Sequential,
    Residual,
    nn.Conv2d,
    nn.BatchNorm2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Flatten,
    nn.Linear,
    nn.ConstantPad2d,  # nn.ZeroPad2d is one
    nn.LayerNorm,  # over each pixel's channels, inside ChannelsLast only
    Product,
    GlobalMean,
    ChannelsLast,
    Scaled,
)

# Taken at import: a later monkeypatch of, say, nn.Conv2d.forward or nn.Module.__call__ shows as a difference.
_KNOWN_BEHAVIOUR: dict[type, dict[str, Any]] = {cls: behaviour(cls) for cls in _LAYERS}
_MODULE_BEHAVIOUR = {k: v for k, v in vars(nn.Module).items() if callable(v) or hasattr(v, "__get__")}


def _known(cls: type) -> dict[str, Any] | None:
    found = _KNOWN_BEHAVIOUR.get(cls) or registered_behaviour(cls)
    if found is None and (kind := adopted(cls)) is not None:
        found = kind[1]
    return found


_NAMES: dict[type, frozenset[str]] = {}


def _method_names(cls: type) -> frozenset[str]:
    """Names of the methods a trusted ``cls`` has (those of the known layer it runs as, and nn.Module's)."""
    if cls not in _NAMES:
        base = next(k for k in cls.__mro__ if _known(k) is not None)
        _NAMES[cls] = frozenset(_MODULE_BEHAVIOUR).union(_known(base) or {})
    return _NAMES[cls]


def _changed(mine: dict[str, Any], known: dict[str, Any]) -> list[str]:
    names = set(mine) | set(known)
    return sorted(name for name in names if mine.get(name) is not known.get(name))


def class_refusal(cls: type) -> str | None:
    """Why instances of ``cls`` cannot be trusted to run a known layer's forward, or None."""
    base = next((k for k in cls.__mro__ if _known(k) is not None), None)
    if base is None:
        return f"layer {cls.__name__}"
    known = _known(base)
    assert known is not None
    changed = _changed(behaviour(cls), known)
    if not changed:
        return None
    what = ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "")
    if cls is base:
        return f"{cls.__name__}.{changed[0]} was replaced after occsens saw it ({what})"
    return f"layer {cls.__name__} (a {base.__name__} subclass that defines {what})"


def refusal(module: nn.Module, classes: dict[type, str | None] | None = None) -> str | None:
    """Why the walk's rules may not describe ``module``'s call (not its children's), or None.

    ``classes`` remembers each class's verdict within one walk (the same class recurs).
    """
    cls = type(module)
    if classes is None:
        classes = {}
    if nn.Module not in classes:
        classes[nn.Module] = module_refusal()
    if classes[nn.Module] is not None:
        return classes[nn.Module]
    if cls not in classes:
        # another library's layer (timm's BatchNormAct2d...) is checked against its own forward when first met
        checked = adopt(module) if adopted(cls) is None and named_kind(cls) is not None else None
        classes[cls] = checked or class_refusal(cls)
    if classes[cls] is not None:
        return classes[cls]
    hooks = hook_refusal(module)
    if hooks is not None:
        return hooks
    shadowed = _method_names(cls) & vars(module).keys()  # the class passed: its methods are the known ones
    if shadowed:
        return f"{cls.__name__}.{min(shadowed)} replaced on the instance"
    for name, tensor in itertools.chain(module._parameters.items(), module._buffers.items()):
        if tensor is not None and type(tensor) not in (torch.Tensor, nn.Parameter):
            return f"{cls.__name__}.{name} is a {type(tensor).__name__}, a tensor subclass"
    return None


# Held by ``occsens.engine.graph`` for the whole of a trace, during which torch.fx replaces
# ``nn.Module.__call__`` process-wide: the check below waits for it, so a trace in another thread is
# never mistaken for a user's patch (that sent concurrent calls to brute force at random).
TRACE_LOCK = threading.RLock()


def module_refusal() -> str | None:
    """Why no module's call may be trusted: a method of ``nn.Module`` changed since occsens was imported."""
    with TRACE_LOCK:
        mine = {k: v for k, v in vars(nn.Module).items() if callable(v) or hasattr(v, "__get__")}
    changed = _changed(mine, _MODULE_BEHAVIOUR)
    return f"Module.{changed[0]} was replaced after occsens saw it" if changed else None


def hook_refusal(module: nn.Module) -> str | None:
    """The hooks of any kind on ``module`` (not its children), or None."""
    hooks = [
        kind
        for kind, table in (
            ("forward hook", module._forward_hooks),
            ("forward pre-hook", module._forward_pre_hooks),
            ("backward hook", module._backward_hooks),
            ("backward pre-hook", module._backward_pre_hooks),
        )
        if table
    ]
    return f"a {' and a '.join(hooks)} on {type(module).__name__}" if hooks else None


def global_refusal() -> str | None:
    """Why nothing may run incrementally in this thread now (set process- or thread-wide), or None."""
    for name in (
        "_global_forward_hooks",
        "_global_forward_pre_hooks",
        "_global_backward_hooks",
        "_global_backward_pre_hooks",
    ):
        if getattr(torch_module, name, None):
            return f"a global module hook ({name.removeprefix('_global_').replace('_', ' ')[:-1]})"
    if torch.overrides._get_current_function_mode_stack():
        return "a __torch_function__ mode is active"
    if _get_current_dispatch_mode_stack():
        return "a torch dispatch mode is active"
    if torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda"):
        return "autocast is on (lower precision rounds the two engines differently)"
    return None


def _pointwise_refusal(module: nn.Module) -> str | None:
    """A point-wise layer is per pixel only while the tensors it holds have no spatial extent."""
    held = itertools.chain(
        module._parameters.items(),
        module._buffers.items(),
        ((k, v) for k, v in vars(module).items() if isinstance(v, torch.Tensor)),
    )
    for name, tensor in held:
        if tensor is None or tensor.numel() == 1:
            continue
        shape = tuple(tensor.shape)
        if not (len(shape) in (3, 4) and shape[-2:] == (1, 1) and (len(shape) == 3 or shape[0] == 1)):
            return f"{type(module).__name__}.{name} of shape {shape} (per pixel needs [1, C, 1, 1])"
    return None


@dataclass(frozen=True)
class Region:
    """Rows [top, bottom) and columns [left, right) of a feature map of ``size`` (height, width)."""

    top: int
    left: int
    bottom: int
    right: int
    size: tuple[int, int]

    @property
    def area(self) -> int:
        return max(0, self.bottom - self.top) * max(0, self.right - self.left)

    @property
    def full(self) -> bool:
        return self.area == self.size[0] * self.size[1]

    def union(self, other: Region) -> Region:
        return Region(
            min(self.top, other.top),
            min(self.left, other.left),
            max(self.bottom, other.bottom),
            max(self.right, other.right),
            self.size,
        )


def as_pair(v: Any) -> tuple[int, int]:
    """An int or a pair of ints (a layer's kernel, stride, padding...) as a pair."""
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _axis(
    lo: int, hi: int, length: int, kernel: int, stride: int, pad: int, dilation: int = 1
) -> tuple[int, int, int]:
    """Output range [a, b) whose kernel reads any input in [lo, hi), and the output length."""
    reach = dilation * (kernel - 1)
    out_len = (length + 2 * pad - reach - 1) // stride + 1
    a = max(0, -(-(lo + pad - reach) // stride))  # ceil division
    b = min(out_len, (hi - 1 + pad) // stride + 1)
    return a, b, out_len


def _sliding(region: Region, kernel, stride, pad, dilation=1) -> Region:  # noqa: ANN001
    kh, kw = as_pair(kernel)
    sh, sw = as_pair(stride)
    ph, pw = as_pair(pad)
    dh, dw = as_pair(dilation)
    t, b, oh = _axis(region.top, region.bottom, region.size[0], kh, sh, ph, dh)
    lft, r, ow = _axis(region.left, region.right, region.size[1], kw, sw, pw, dw)
    return Region(t, lft, b, r, (oh, ow))


def _starts_in_place(module: nn.Module) -> bool:
    """Whether the first layer ``module`` runs on its input writes into that input."""
    if isinstance(module, nn.Sequential):
        return len(module) > 0 and _starts_in_place(module[0])
    if isinstance(module, Residual):
        return _starts_in_place(module.body) or (
            module.shortcut is not None and _starts_in_place(module.shortcut)
        )
    return bool(getattr(module, "inplace", False))


def walk(
    module: nn.Module,
    region: Region,
    channels: int,
    visit,  # noqa: ANN001
    name: str = "model",
    classes: dict[type, str | None] | None = None,
    names: dict[int, str] | None = None,
) -> tuple[Region, int]:
    """Propagate ``region`` through ``module``, calling ``visit(layer, out, full_flops, region_flops)``.

    Raises ``Unsupported`` naming the layer (``name``, then its path inside the model; ``names`` maps
    a layer's ``id`` to its own name, for a tree rebuilt from a traced graph) for a module whose call
    the rules do not describe (``refusal``).
    """
    classes = {} if classes is None else classes
    if names:
        name = names.get(id(module), name)
    reason = refusal(module, classes)
    if reason is None and isinstance(module, pointwise()) and adopted(type(module)) is None:
        reason = _pointwise_refusal(module)
    if reason is not None:
        raise Unsupported(f"{reason} at {name}")
    if isinstance(module, nn.Sequential):
        for child_name, child in module._modules.items():
            if child is not None:
                region, channels = walk(
                    child, region, channels, visit, f"{name}.{child_name}", classes, names
                )
        return region, channels
    if isinstance(module, Residual):
        if _starts_in_place(module.body) or (
            module.shortcut is not None and _starts_in_place(module.shortcut)
        ):
            # Residual.forward would overwrite the input both branches read: the model's own answer
            # then depends on which branch runs first, and no per-layer rule describes it
            raise Unsupported(
                f"a residual branch that starts with an in-place layer (it overwrites x) at {name}"
            )
        body_region, body_channels = walk(
            module.body, region, channels, visit, f"{name}.body", classes, names
        )
        short_region, short_channels = (
            (region, channels)
            if module.shortcut is None
            else walk(module.shortcut, region, channels, visit, f"{name}.shortcut", classes, names)
        )
        if body_region.size != short_region.size or body_channels != short_channels:
            raise Unsupported(f"a residual whose branches differ in shape at {name}")
        return short_region.union(body_region), short_channels
    if isinstance(module, Product):
        return _product(module, region, channels, visit, name, classes, names)
    if isinstance(module, ChannelsLast):
        return _channels_last(module, region, channels, visit, name, classes, names)
    if isinstance(module, Scaled):
        return _scaled(module, region, channels, name), channels
    if isinstance(module, GlobalMean):
        return Region(0, 0, 1, 1, (1, 1)), channels
    if isinstance(module, nn.ConstantPad2d):
        left, right, top, bottom = module.padding
        if min(left, right, top, bottom) < 0:
            raise Unsupported(f"padding by a negative amount (a crop) {module.padding} at {name}")
        h, w = region.size
        shifted = Region(
            region.top + top,
            region.left + left,
            region.bottom + top,
            region.right + left,
            (h + top + bottom, w + left + right),
        )
        return shifted, channels
    kind = adopted(type(module))
    if kind is not None and kind[0] != "linear":  # another library's layer, checked (``adopt``): its children
        # run per pixel too
        if kind[0] == "last-axis":
            raise Unsupported(
                f"{type(module).__name__} over the last axis of a map (its width, not its channels) at {name}"
            )
        if kind[0] == "norm-act" and getattr(module, "running_mean", None) is None:
            raise Unsupported(
                f"{type(module).__name__} without running statistics (it normalises by the "
                f"batch's own) at {name}"
            )
        for child_name, child in module.named_children():
            _per_pixel(child, f"{name}.{child_name}", classes, names)
        return region, channels
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise Unsupported(f"Conv2d with padding {module.padding!r} ({module.padding_mode}) at {name}")
        out = _sliding(region, module.kernel_size, module.stride, module.padding, module.dilation)
        per_pixel = (
            2
            * module.out_channels
            * (module.in_channels // module.groups)
            * module.kernel_size[0]
            * module.kernel_size[1]
        )
        visit(module, out, per_pixel * out.size[0] * out.size[1], per_pixel * out.area)
        return out, module.out_channels
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        if getattr(module, "ceil_mode", False) and not _ceil_is_floor(module, region.size):
            raise Unsupported(f"pooling with ceil_mode that adds a partial window at {name}")
        if getattr(module, "return_indices", False):
            raise Unsupported(f"pooling that returns indices at {name}")
        padded = module.padding not in (0, (0, 0))
        if isinstance(module, nn.AvgPool2d) and not module.count_include_pad and padded:
            # near the border the divisor counts only the pixels inside the map, which a crop cannot see
            raise Unsupported(f"AvgPool2d with count_include_pad=False and padding at {name}")
        stride = module.stride if module.stride is not None else module.kernel_size
        return _sliding(
            region, module.kernel_size, stride, module.padding, getattr(module, "dilation", 1)
        ), channels
    if isinstance(module, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)):
        if getattr(module, "return_indices", False):
            raise Unsupported(f"pooling that returns indices at {name}")
        given: Any = module.output_size
        sizes = tuple(given) if isinstance(given, (tuple, list)) else (given, given)
        pooled = tuple(region.size[i] if sizes[i] is None else int(sizes[i]) for i in range(2))
        if pooled == (1, 1):  # global pooling: everything after it changes
            return Region(0, 0, 1, 1, (1, 1)), channels
        if pooled == region.size:  # every output is the mean (max) of one input: the identity
            return region, channels
        raise Unsupported(
            f"adaptive pooling to {pooled[0]}x{pooled[1]} of a {region.size[0]}x{region.size[1]} map "
            f"at {name}"
        )
    if isinstance(module, nn.BatchNorm2d) and module.running_mean is None:
        raise Unsupported(
            f"BatchNorm2d without running statistics (it normalises by the batch's own) at {name}"
        )
    if isinstance(module, nn.BatchNorm2d) or isinstance(module, pointwise()):
        return region, channels
    if isinstance(module, nn.Flatten):
        if module.start_dim < 1 and (module.start_dim, module.end_dim) != (-1, -1):
            raise Unsupported(f"flatten from dimension {module.start_dim} (it may merge the batch) at {name}")
        if region.size == (1, 1):
            return region, channels
        if (module.start_dim, module.end_dim) != (1, -1):
            raise Unsupported(
                f"flatten of dimensions {module.start_dim}..{module.end_dim} of a map at {name}"
            )
        # channels and positions into one vector: every output may change, the rest runs in full
        return Region(0, 0, 1, 1, (1, 1)), channels * region.size[0] * region.size[1]
    if isinstance(module, nn.Linear):
        if region.size != (1, 1):
            raise Unsupported(f"Linear on a spatial map (it mixes the last axis, width) at {name}")
        flops = 2 * module.in_features * module.out_features
        visit(module, region, flops, flops)
        return region, module.out_features
    raise Unsupported(f"layer {type(module).__name__} at {name}")


def _ceil_is_floor(module: nn.Module, size: tuple[int, int]) -> bool:
    """Whether pooling with ``ceil_mode`` gives the same windows as without on a map of ``size``.

    torch's rule (``pooling_output_shape``): ceil mode rounds the window count up, unless the last window
    would then start past the input and its left padding. Where the counts agree the windows are the same
    (timm's ResNet-D downsampling, AvgPool2d(2, 2, ceil_mode=True), on a map of even size).
    """
    kernel, pad = as_pair(module.kernel_size), as_pair(module.padding)
    stride = as_pair(module.stride if module.stride is not None else module.kernel_size)
    dilation = as_pair(getattr(module, "dilation", 1))
    for length, k, s, p, d in zip(size, kernel, stride, pad, dilation, strict=True):
        span = length + 2 * p - d * (k - 1) - 1
        floor, ceil = span // s + 1, -(-span // s) + 1
        if (ceil - 1) * s >= length + p:
            ceil -= 1
        if ceil != floor:
            return False
    return True


def _per_pixel(
    module: nn.Module,
    name: str,
    classes: dict[type, str | None],
    names: dict[int, str] | None,
    last_axis: bool = False,
) -> None:
    """Raise ``Unsupported`` unless ``module`` is a layer that acts on each pixel alone (on its channels in
    the last axis when ``last_axis``): a point-wise layer holding no per-channel tensor, or, on the last
    axis, ``nn.Linear`` and a layer norm over it."""
    if names:
        name = names.get(id(module), name)
    reason = refusal(module, classes)
    if reason is not None:
        raise Unsupported(f"{reason} at {name}")
    kind = adopted(type(module))
    if last_axis and (isinstance(module, nn.Linear) or (kind is not None and kind[0] == "last-axis")):
        return
    if last_axis and isinstance(module, nn.LayerNorm) and type(module) is nn.LayerNorm:
        return
    if isinstance(module, pointwise()) and not isinstance(module, nn.LayerNorm):
        held = [t for t in (*module.parameters(), *module.buffers()) if t.numel() > 1]
        if kind is not None or not held:  # a checked layer, or one without per-channel tensors
            return
        if not last_axis and _pointwise_refusal(module) is None:
            return
    where = "each pixel's channels in the last axis" if last_axis else "each pixel"
    raise Unsupported(f"layer {type(module).__name__} where occsens needs one that acts on {where} at {name}")


def _product(
    module: Product,
    region: Region,
    channels: int,
    visit,
    name: str,  # noqa: ANN001
    classes: dict[type, str | None],
    names: dict[int, str] | None,
) -> tuple[Region, int]:
    """``left(x) * right(x)``: a product of two maps changes where either does; a gate (one side a
    1x1 value, such as squeeze-excitation's) changes with every window, so the product changes everywhere."""
    sides = []
    for side, branch in (("left", module.left), ("right", module.right)):
        sides.append(
            (region, channels)
            if branch is None
            else walk(branch, region, channels, visit, f"{name}.{side}", classes, names)
        )
    (a, ca), (b, cb) = sides
    if a.size == b.size:
        if ca != cb and 1 not in (ca, cb):
            raise Unsupported(f"a product of maps with {ca} and {cb} channels at {name}")
        return a.union(b), max(ca, cb)
    gate, other = (a, b) if a.size == (1, 1) else (b, a) if b.size == (1, 1) else (None, None)
    if gate is None or other is None:
        raise Unsupported(
            f"a product of a {a.size[0]}x{a.size[1]} and a {b.size[0]}x{b.size[1]} map at {name}"
        )
    if gate.area == 0:
        return other, max(ca, cb)
    h, w = other.size
    return Region(0, 0, h, w, (h, w)), max(ca, cb)


def _channels_last(
    module: ChannelsLast,
    region: Region,
    channels: int,
    visit,
    name: str,  # noqa: ANN001
    classes: dict[type, str | None],
    names: dict[int, str] | None,
) -> tuple[Region, int]:
    """Layers on each pixel's channels (the last axis after a permute): the region stays, channels change."""
    for child_name, child in module.body.named_children():
        where = f"{name}.{child_name}"
        _per_pixel(child, where, classes, names, last_axis=True)
        if isinstance(child, nn.Linear):
            if child.in_features != channels:
                raise Unsupported(f"Linear of {child.in_features} features on {channels} channels at {where}")
            per_pixel = 2 * child.in_features * child.out_features
            visit(child, region, per_pixel * region.size[0] * region.size[1], per_pixel * region.area)
            channels = child.out_features
        elif isinstance(child, nn.LayerNorm) and tuple(child.normalized_shape) != (channels,):
            raise Unsupported(
                f"layer norm over {tuple(child.normalized_shape)} of {channels} channels at {where}"
            )
    return region, channels


def _scaled(module: Scaled, region: Region, channels: int, name: str) -> Region:
    """``x * c`` for a tensor the model holds: per pixel while ``c`` has no spatial extent."""
    try:
        value = module.constant()
    except Exception as exc:  # noqa: BLE001 - the model no longer holds it, or it cannot be reshaped
        raise Unsupported(
            f"a constant the model held ({module.source[1]}) cannot be read ({exc}) at {name}"
        ) from None
    if type(value) not in (torch.Tensor, nn.Parameter):
        raise Unsupported(f"{module.source[1]} is a {type(value).__name__}, not a plain tensor, at {name}")
    shape = tuple(value.shape)
    per_channel = len(shape) in (3, 4) and shape[-2:] == (1, 1) and (len(shape) == 3 or shape[0] == 1)
    if not (value.numel() == 1 or (per_channel and shape[-3] in (1, channels))):
        raise Unsupported(
            f"{module.op} by {module.source[1]} of shape {shape} on {channels} channels (per pixel needs "
            f"[1, C, 1, 1]) at {name}"
        )
    return region
