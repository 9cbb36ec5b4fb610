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


def _starts_in_place(module: nn.Module) -> bool:
    """Whether the first layer ``module`` runs on its input writes into that input."""
    if isinstance(module, nn.Sequential):
        return len(module) > 0 and _starts_in_place(module[0])
    if isinstance(module, Residual):
        return _starts_in_place(module.body) or (
            module.shortcut is not None and _starts_in_place(module.shortcut)
        )
    return bool(getattr(module, "inplace", False))


def walk(module: nn.Module, region: Region, channels: int, visit) -> tuple[Region, int]:  # noqa: ANN001
    """Propagate ``region`` through ``module``, calling ``visit(layer, out, full_flops, region_flops)``."""
    if isinstance(module, nn.Sequential):
        for child in module:
            region, channels = walk(child, region, channels, visit)
        return region, channels
    if isinstance(module, Residual):
        if _starts_in_place(module.body) or (
            module.shortcut is not None and _starts_in_place(module.shortcut)
        ):
            # Residual.forward would overwrite the input both branches read: the model's own answer
            # then depends on which branch runs first, and no per-layer rule describes it
            raise Unsupported("a residual branch that starts with an in-place layer (it overwrites x)")
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
    if isinstance(module, nn.BatchNorm2d) and module.running_mean is None:
        raise Unsupported("BatchNorm2d without running statistics (it normalises by the batch's own)")
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
    layers = layer_extents(model, image_size, windows, channels)
    changed = sum(float((layer.per_pixel * layer.rows * layer.cols).sum()) for layer in layers)
    return changed / (sum(layer.full for layer in layers) * len(windows))


@dataclass(frozen=True)
class Extent:
    """A FLOP-counting layer: FLOPs for the whole map and per output pixel, and each window's changed box."""

    full: int
    per_pixel: int
    rows: torch.Tensor  # int64 [windows]: changed output rows
    cols: torch.Tensor  # int64 [windows]: changed output columns
    channels: int  # output channels (features, for a linear layer)
    size: tuple[int, int]  # output map (1, 1 for a linear layer)


def layer_extents(
    model: nn.Module, image_size: tuple[int, int], windows: list[list[int]], channels: int = 3
) -> list[Extent]:
    """Each FLOP-counting layer (convolution, linear) and the box every (top, left, h, w) window changes.

    Rows and columns travel through a network independently (each rule above acts on one axis
    at a time), so one walk per distinct (top, height) and one per distinct (left, width)
    answer for a whole grid of windows: 2 x 29 walks instead of 841 for a 4x4 patch at stride 1.
    """
    t0, l0, h0, w0 = windows[0]

    def boxes(region: Region) -> list[tuple[int, int, int, int, int, tuple[int, int]]]:
        """(full, per_pixel, rows, cols, channels, size) per layer for one window."""
        found: list[tuple[int, int, int, int, int, tuple[int, int]]] = []

        def visit(layer, out, full, part):  # noqa: ANN001
            rows, cols = max(0, out.bottom - out.top), max(0, out.right - out.left)
            channels = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
            found.append((full, full // (out.size[0] * out.size[1]), rows, cols, channels, out.size))

        walk(model, region, channels, visit)
        return found

    row_spans = {(t, h) for t, _, h, _ in windows}
    col_spans = {(lft, w) for _, lft, _, w in windows}
    by_row = {(t, h): boxes(Region(t, l0, t + h, l0 + w0, image_size)) for t, h in row_spans}
    by_col = {(lft, w): boxes(Region(t0, lft, t0 + h0, lft + w, image_size)) for lft, w in col_spans}
    first = by_row[(t0, h0)]
    return [
        Extent(
            full,
            per_pixel,
            torch.tensor([by_row[(t, h)][i][2] for t, _, h, _ in windows]),
            torch.tensor([by_col[(lft, w)][i][3] for _, lft, _, w in windows]),
            channels,
            size,
        )
        for i, (full, per_pixel, _, _, channels, size) in enumerate(first)
    ]


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
