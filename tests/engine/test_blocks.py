"""Modern blocks read from a traced forward run incrementally and exactly (issue 27).

Spec (``occsens.engine.graph``, ``occsens.engine.receptive``): ``F.pad``/``nn.ZeroPad2d`` constant padding
moves the changed box; pooling with ``ceil_mode`` that adds no partial window is the same pooling; a
squeeze-excitation gate ``x * sigmoid(fc(mean(x)))`` changes with every window, so everything after it
runs dense; a product of two maps changes where either does; ``permute`` to channels-last, per-pixel
layers, ``permute`` back is one per-pixel step; ``x * p`` for a per-channel parameter is per pixel, and a
parameter with a spatial extent is refused. Each model is checked against brute force to the engine's
tolerance (``schedule.ENGINE_TOLERANCE``).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import occsens
from occsens.engine import schedule
from occsens.engine.graph import structure
from occsens.engine.incremental import supports
from occsens.engine.receptive import Region, walk


def _exact(model: nn.Module, size: int = 16, patch: int = 4, stride: int = 3) -> None:
    """The incremental engine (which raises if its checks fail) equals brute force on two images."""
    torch.manual_seed(0)
    model.eval()
    images = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    assert supports(model, (size, size), 3) is None
    brute = occsens.occlude(model, images, patch=patch, stride=stride, engine="brute")
    fast = occsens.occlude(model, images, patch=patch, stride=stride, engine="incremental")
    torch.testing.assert_close(fast.probs, brute.probs, rtol=0, atol=schedule.ENGINE_TOLERANCE)


def _head(channels: int) -> list[nn.Module]:
    return [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 5)]


def _changed(model: nn.Module, size: int, window: tuple[int, int, int, int]) -> list[Region]:
    """The region each convolution's output changes in, as the walk states it."""
    tree, names = structure(model)
    found: list[Region] = []
    top, left, h, w = window
    walk(
        tree,
        Region(top, left, top + h, left + w, (size, size)),
        3,
        lambda m, r, *_: found.append(r),
        names=names,
    )
    return found


class PaddedThenConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pad = nn.ZeroPad2d((2, 0, 1, 1))
        self.conv2 = nn.Conv2d(4, 4, 3)
        self.head = nn.Sequential(*_head(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (1, 1, 1, 1), value=0.25)  # TF "same" padding, written out
        x = self.pad(torch.relu(self.conv(x)))
        return self.head(self.conv2(x))


def test_constant_padding_moves_the_changed_box_and_stays_exact() -> None:
    _exact(PaddedThenConv())
    # the window's top-left pixel (0, 0) is (1, 1) after F.pad: the first 3x3 conv changes its outputs
    # 0..1 x 0..1; ZeroPad2d moves them to rows 1..2, columns 2..3 of an 18x18 map, and the second 3x3
    # conv (no padding) changes rows 0..2 and columns 0..3 of its 16x16 output
    first, second = _changed(PaddedThenConv(), 16, (0, 0, 1, 1))[:2]
    assert (first.top, first.left, first.bottom, first.right) == (0, 0, 2, 2)
    assert (second.top, second.left, second.bottom, second.right, second.size) == (0, 0, 3, 4, (16, 16))


def test_reflect_padding_is_refused_by_name() -> None:
    class Reflect(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Sequential(*_head(3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(F.pad(x, (1, 1, 1, 1), mode="reflect"))

    assert "other than constant padding" in (supports(Reflect().eval(), (8, 8), 3) or "")


@pytest.mark.parametrize("size, accepted", [(16, True), (15, False)])
def test_ceil_mode_pooling_is_accepted_only_where_it_adds_no_window(size: int, accepted: bool) -> None:
    """timm's ResNet-D downsampling, AvgPool2d(2, 2, ceil_mode=True): floor mode's windows on an even map."""
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False), *_head(4)
    )
    reason = supports(net.eval(), (size, size), 3)
    if accepted:
        assert reason is None
        _exact(net, size=size)
    else:
        assert "ceil_mode that adds a partial window" in (reason or "")


class SqueezeExcite(nn.Module):
    """timm's ``SqueezeExcite``, as its forward reads."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, 2, 1)
        self.expand = nn.Conv2d(2, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(F.silu(self.reduce(s))))


def test_a_squeeze_excitation_gate_is_exact_and_everything_after_it_changes() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), SqueezeExcite(6), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), *_head(6)
    )
    _exact(net)
    first, reduce, expand, after = _changed(net, 16, (4, 4, 2, 2))[:4]
    assert first.area == 4 * 4 and reduce.size == (1, 1) and expand.size == (1, 1)
    assert after.full  # the gate changes every channel's scale, so the next conv changes everywhere


def test_a_product_of_two_maps_changes_where_either_does() -> None:
    class Gated(nn.Module):  # a spatial gate: x * sigmoid(conv(x)), as in CBAM or a gated convolution
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.after = nn.Conv2d(3, 4, 1)
            self.head = nn.Sequential(*_head(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.after(x * torch.sigmoid(self.conv(x))))

    _exact(Gated())
    gate, after = _changed(Gated(), 16, (4, 4, 2, 2))[:2]
    assert (after.top, after.left, after.bottom, after.right) == (3, 3, 7, 7)  # the gate's box, not the map


class ConvNeXtBlock(nn.Module):
    """ConvNeXt's block as timm writes it without ``conv_mlp``: depthwise conv, permute to channels-last,
    layer norm and an MLP on each pixel, permute back, layer scale, residual."""

    def __init__(self, channels: int, spatial_gamma: bool = False) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.fc1 = nn.Linear(channels, 2 * channels)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(2 * channels, channels)
        shape = (1, channels, 4, 4) if spatial_gamma else (channels,)
        self.gamma = nn.Parameter(torch.rand(shape) + 0.5)
        self.spatial = spatial_gamma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv_dw(x).permute(0, 2, 3, 1)
        x = self.fc2(self.act(self.fc1(self.norm(x)))).permute(0, 3, 1, 2)
        gamma = self.gamma if self.spatial else self.gamma.reshape(1, -1, 1, 1)
        return x.mul(gamma) + shortcut


def test_convnext_blocks_run_per_pixel_between_their_permutes() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), ConvNeXtBlock(8), ConvNeXtBlock(8), *_head(8))
    _exact(net)


def test_a_parameter_with_a_spatial_extent_is_refused_by_name() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), ConvNeXtBlock(8, spatial_gamma=True), *_head(8))
    reason = supports(net.eval(), (4, 4), 3) or ""
    assert "mul by gamma of shape (1, 8, 4, 4)" in reason and "per pixel needs [1, C, 1, 1]" in reason


def test_a_layer_on_the_last_axis_of_a_map_is_refused_outside_a_permute() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.LayerNorm(8), *_head(8))
    assert "LayerNorm" in (supports(net.eval(), (8, 8), 3) or "")
