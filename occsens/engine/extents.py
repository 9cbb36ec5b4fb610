"""What a window costs, layer by layer: the FLOPs each layer must recompute for each window.

Built on the walk (``occsens.engine.receptive``) over the tree ``occsens.engine.graph.structure``
gives for any model: ``layer_extents`` lists every FLOP-counting layer with each window's changed
output box, ``affected_share``/``window_share`` the share of a forward's FLOPs the windows change
(the floor for exact incremental inference), and ``check_against_model`` compares the walk's boxes
with what really changes when the model runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from occsens.engine.graph import structure
from occsens.engine.plan import sliding_plan
from occsens.engine.receptive import Region, walk


def _structure(model: nn.Module) -> tuple[nn.Module, dict[int, str] | None]:
    """The tree the walk reads for ``model`` (``occsens.engine.graph.structure``)."""
    return structure(model)


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
    tree, names = _structure(model)

    def boxes(region: Region) -> list[tuple[int, int, int, int, int, tuple[int, int]]]:
        """(full, per_pixel, rows, cols, channels, size) per layer for one window."""
        found: list[tuple[int, int, int, int, int, tuple[int, int]]] = []

        def visit(layer, out, full, part):  # noqa: ANN001
            rows, cols = max(0, out.bottom - out.top), max(0, out.right - out.left)
            channels = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
            found.append((full, full // (out.size[0] * out.size[1]), rows, cols, channels, out.size))

        walk(tree, region, channels, visit, names=names)
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
    regions: dict[nn.Module, Region] = {}
    tree, names = _structure(model)
    walk(  # before the hooks below go on: the walk refuses hooked layers
        tree,
        Region(top, left, top + h, left + w, image_size),
        3,
        lambda layer, out, full, part: regions.__setitem__(layer, out),
        names=names,
    )
    outputs: dict[nn.Module, list[torch.Tensor]] = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o: outputs.setdefault(m, []).append(o))
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
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
