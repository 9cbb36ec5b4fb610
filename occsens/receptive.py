"""Where a window's change travels through a network: the projective field, layer by layer.

A window changes the input only inside its rectangle. A convolution's output changes
only where its kernel reads a changed input (the rectangle grown by the kernel's reach,
divided by the stride); element-wise layers keep the rectangle; a residual addition
takes the union of both branches; global pooling and everything after it change
everywhere. Walking a model's layers with these rules gives, for each layer, the region
an exact incremental engine must recompute, and so the share of a full forward's
FLOPs that occlusion really needs.

Supported layers: ``nn.Sequential``, ``occsens.models.Residual``, ``nn.Conv2d``,
``nn.BatchNorm2d``, element-wise activations and the shipped models' ``Normalize``,
``Luminance`` and ``Scale``, ``nn.MaxPool2d``/``nn.AvgPool2d``, adaptive pooling to
1x1, ``nn.Flatten``, ``nn.Linear``, ``nn.Dropout`` (identity in eval mode). Anything
else raises ``Unsupported``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from occsens.core import sliding_plan
from occsens.models import Luminance, Normalize, Residual, Scale

ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.CELU,
    nn.ELU,
    nn.Identity,
    nn.Dropout,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
    Normalize,
    Luminance,
    Scale,
)


class Unsupported(Exception):
    """The walk met a layer whose spatial dependence it cannot state."""


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


def walk(module: nn.Module, region: Region, channels: int, visit) -> tuple[Region, int]:  # noqa: ANN001
    """Propagate ``region`` through ``module``, calling ``visit(layer, out, full_flops, region_flops)``."""
    if isinstance(module, nn.Sequential):
        for child in module:
            region, channels = walk(child, region, channels, visit)
        return region, channels
    if isinstance(module, Residual):
        body_region, body_channels = walk(module.body, region, channels, visit)
        short_region, short_channels = (
            (region, channels) if module.shortcut is None else walk(module.shortcut, region, channels, visit)
        )
        if body_region.size != short_region.size or body_channels != short_channels:
            raise Unsupported("a residual whose branches differ in shape")
        return short_region.union(body_region), short_channels
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise Unsupported(f"Conv2d with padding {module.padding!r} ({module.padding_mode})")
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
        if getattr(module, "ceil_mode", False):
            raise Unsupported("pooling with ceil_mode")
        stride = module.stride if module.stride is not None else module.kernel_size
        return _sliding(
            region, module.kernel_size, stride, module.padding, getattr(module, "dilation", 1)
        ), channels
    if isinstance(module, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)):
        if as_pair(module.output_size) != (1, 1):
            raise Unsupported("adaptive pooling to more than 1x1")
        return Region(0, 0, 1, 1, (1, 1)), channels
    if isinstance(module, nn.BatchNorm2d) or isinstance(module, ELEMENTWISE):
        return region, channels
    if isinstance(module, nn.Flatten):
        if region.size != (1, 1):
            raise Unsupported("flatten of a spatial map (every output depends on every pixel)")
        return region, channels
    if isinstance(module, nn.Linear):
        flops = 2 * module.in_features * module.out_features
        visit(module, region, flops, flops)
        return region, module.out_features
    raise Unsupported(f"layer {type(module).__name__}")


def affected_share(
    model: nn.Module, image_size: tuple[int, int], patch: int, stride: int, channels: int = 3
) -> float:
    """Share of a full forward's FLOPs (convolutions and linear layers) that the windows change, averaged."""
    plan = sliding_plan(image_size, (patch, patch), (stride, stride))
    return window_share(model, image_size, plan.windows.reshape(-1, 4).tolist(), channels)


def window_share(
    model: nn.Module, image_size: tuple[int, int], windows: list[list[int]], channels: int = 3
) -> float:
    """``affected_share`` for any list of (top, left, height, width) windows."""
    full_total, region_total = 0, 0
    for top, left, h, w in windows:
        sums = [0, 0]

        def visit(layer, out, full, part, sums=sums):  # noqa: ANN001
            sums[0] += full
            sums[1] += part

        walk(model, Region(top, left, top + h, left + w, image_size), channels, visit)
        full_total += sums[0]
        region_total += sums[1]
    return region_total / full_total


def check_against_model(
    model: nn.Module, image_size: tuple[int, int], window: tuple[int, int, int, int]
) -> bool:
    """True when filling ``window`` leaves every conv output outside the predicted region unchanged."""
    top, left, h, w = window
    x = torch.rand(1, 3, *image_size, generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, :, top : top + h, left : left + w] = 0.5
    outputs: dict[nn.Module, list[torch.Tensor]] = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o: outputs.setdefault(m, []).append(o))
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
    regions: dict[nn.Module, Region] = {}
    walk(
        model,
        Region(top, left, top + h, left + w, image_size),
        3,
        lambda layer, out, full, part: regions.__setitem__(layer, out),
    )
    with torch.inference_mode():
        model.eval()
        model(x)
        model(y)
    for hook in hooks:
        hook.remove()
    for layer, (a, b) in outputs.items():
        changed = (a - b).abs().amax(dim=(0, 1)) > 0
        r = regions[layer]
        inside = torch.zeros_like(changed)
        inside[r.top : r.bottom, r.left : r.right] = True
        if (changed & ~inside).any():
            return False
    return True
