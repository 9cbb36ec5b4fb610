"""Exact incremental occlusion: recompute each layer only where the window changed it.

An occluded image is the clean image except inside one window, and a convolution's
output changes only inside that window's projective field (``occsens.receptive``). So
instead of running the whole network on every occluded copy, this engine carries,
for a batch of windows of one image, the clean activation of the current layer
(``[1, C, H, W]``, computed once per batch) and, per window, only a box of changed
values (``[B, C, h, w]`` at per-window positions). Each layer is evaluated on the box
grown by its kernel, read from the clean activation with the window's changed values
pasted in: the same arithmetic as the full layer on the same inputs, so the
probabilities agree with brute force to float32 rounding (the tests hold it to 1e-5).
Once a box covers the whole map (after global pooling at the latest) the batch is
dense and the remaining layers run as usual. This follows the idea of Krypton
(Nakandala, Kumar & Papakonstantinou, SIGMOD 2019); the code is our own.

The walk supports the layers ``occsens.receptive`` lists; ``supports(model)`` says
whether a model qualifies, and ``occlude`` falls back to brute force when it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from occsens.models import Residual
from occsens.receptive import ELEMENTWISE, Region, Unsupported, as_pair, walk


@dataclass
class _Sparse:
    """Full activation of window b = ``clean`` with ``patch[b]`` pasted at (``top[b]``, ``left[b]``)."""

    clean: torch.Tensor  # [1, C, H, W]
    patch: torch.Tensor  # [B, C, h, w]
    top: torch.Tensor  # int64 [B]
    left: torch.Tensor  # int64 [B]

    @property
    def size(self) -> tuple[int, int]:
        return (self.clean.shape[2], self.clean.shape[3])


def supports(model: object, image_size: tuple[int, int], channels: int) -> str | None:
    """None when the incremental engine can run ``model`` exactly; else the reason it cannot."""
    if not isinstance(model, nn.Module):
        return "the model is not a torch.nn.Module"
    try:
        walk(model, Region(0, 0, 1, 1, image_size), channels, lambda *a: None)
    except Unsupported as exc:
        return str(exc)
    return None


def _gather(src: torch.Tensor, top: torch.Tensor, left: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``src[0, :, top_b : top_b + h, left_b : left_b + w]`` for every b: [B, C, h, w]."""
    rows = (top.view(-1, 1) + torch.arange(h, device=src.device)).view(-1, h, 1)
    cols = (left.view(-1, 1) + torch.arange(w, device=src.device)).view(-1, 1, w)
    return src[0][:, rows, cols].permute(1, 0, 2, 3)


def _materialize(
    state: _Sparse,
    top: torch.Tensor,
    left: torch.Tensor,
    h: int,
    w: int,
    pad: int = 0,
    pad_value: float = 0.0,
) -> torch.Tensor:
    """The full activations of every window inside the box (top, left, h, w) of the map padded by ``pad``.

    Coordinates are in the padded map. Clean values come from ``state.clean``, changed ones
    from ``state.patch`` where the patch overlaps the box.
    """
    clean = state.clean
    if pad:
        clean = F.pad(clean, (pad, pad, pad, pad), value=pad_value)
    out = _gather(clean, top, left, h, w).contiguous()
    b, c, ph, pw = state.patch.shape
    # where each patch pixel lands inside the box; pixels outside it go to a spare slot
    dy = (state.top + pad - top).view(b, 1, 1) + torch.arange(ph, device=out.device).view(1, ph, 1)
    dx = (state.left + pad - left).view(b, 1, 1) + torch.arange(pw, device=out.device).view(1, 1, pw)
    inside = (dy >= 0) & (dy < h) & (dx >= 0) & (dx < w)
    flat = torch.where(inside, dy * w + dx, torch.full_like(dy, h * w)).view(b, 1, ph * pw)
    canvas = torch.cat([out.view(b, c, h * w), out.new_zeros(b, c, 1)], dim=2)
    canvas.scatter_(2, flat.expand(b, c, ph * pw), state.patch.reshape(b, c, ph * pw))
    return canvas[:, :, : h * w].view(b, c, h, w)


def _dense(state: _Sparse | torch.Tensor) -> torch.Tensor:
    if isinstance(state, torch.Tensor):
        return state
    zeros = torch.zeros_like(state.top)
    return _materialize(state, zeros, zeros, *state.size)


def _out_box(
    lo: torch.Tensor, size: int, length: int, kernel: int, stride: int, pad: int, dilation: int
) -> tuple[torch.Tensor, int, int]:
    """Per-window first output index, the common output extent, and the output length along one axis."""
    reach = dilation * (kernel - 1)
    out_len = (length + 2 * pad - reach - 1) // stride + 1
    first = torch.clamp(torch.div(lo + pad - reach + stride - 1, stride, rounding_mode="floor"), min=0)
    last = torch.clamp(torch.div(lo + size - 1 + pad, stride, rounding_mode="floor"), max=out_len - 1)
    extent = int((last - first).max()) + 1
    extent = min(extent, out_len)
    first = torch.clamp(first, max=out_len - extent)
    return first, extent, out_len


def _sliding(state: _Sparse, module: nn.Module) -> _Sparse | torch.Tensor:
    """A convolution or pooling layer evaluated only on each window's changed outputs."""
    kernel: Any
    stride: Any
    pad: Any
    dil: Any
    if isinstance(module, nn.Conv2d):
        kernel, stride, pad, dil = module.kernel_size, module.stride, module.padding, module.dilation
    else:
        kernel, stride = (
            module.kernel_size,
            module.stride if module.stride is not None else module.kernel_size,
        )
        pad, dil = module.padding, getattr(module, "dilation", 1)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = as_pair(kernel), as_pair(stride), as_pair(pad), as_pair(dil)
    if ph != pw:
        raise Unsupported("unequal padding")  # _materialize pads all sides alike
    H, W = state.size
    _, _, h, w = state.patch.shape
    top, oh, out_h = _out_box(state.top, h, H, kh, sh, ph, dh)
    left, ow, out_w = _out_box(state.left, w, W, kw, sw, pw, dw)
    if oh == out_h and ow == out_w:  # the change reaches everywhere: run the layer on dense maps
        return module(_dense(state))
    in_h, in_w = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
    pad_value = float("-inf") if isinstance(module, nn.MaxPool2d) else 0.0
    crop = _materialize(state, top * sh, left * sw, in_h, in_w, pad=ph, pad_value=pad_value)
    if isinstance(module, nn.Conv2d):
        patch = F.conv2d(crop, module.weight, module.bias, (sh, sw), 0, (dh, dw), module.groups)
    elif isinstance(module, nn.MaxPool2d):
        patch = F.max_pool2d(crop, (kh, kw), (sh, sw), 0, (dh, dw))
    else:
        if ph and not module.count_include_pad:
            raise Unsupported("AvgPool2d with count_include_pad=False and padding")
        patch = F.avg_pool2d(crop, (kh, kw), (sh, sw), 0)
    return _Sparse(module(state.clean), patch, top, left)


def _residual(state: _Sparse, module: Residual) -> _Sparse | torch.Tensor:
    body = _run(module.body, state)
    short = state if module.shortcut is None else _run(module.shortcut, state)
    if isinstance(body, torch.Tensor) or isinstance(short, torch.Tensor):
        return _dense(short) + _dense(body)
    H, W = short.size
    h_s, w_s = short.patch.shape[2:]
    h_b, w_b = body.patch.shape[2:]
    top = torch.minimum(short.top, body.top)
    left = torch.minimum(short.left, body.left)
    h = int((torch.maximum(short.top + h_s, body.top + h_b) - top).max())
    w = int((torch.maximum(short.left + w_s, body.left + w_b) - left).max())
    top, left = torch.clamp(top, max=H - h), torch.clamp(left, max=W - w)
    patch = _materialize(short, top, left, h, w) + _materialize(body, top, left, h, w)
    return _Sparse(short.clean + body.clean, patch, top, left)


def _run(module: nn.Module, state: _Sparse | torch.Tensor) -> _Sparse | torch.Tensor:
    if isinstance(state, torch.Tensor):
        return module(state)
    if isinstance(module, nn.Sequential):
        for child in module:
            state = _run(child, state)
        return state
    if isinstance(module, Residual):
        return _residual(state, module)
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        return _sliding(state, module)
    if isinstance(module, nn.BatchNorm2d) or isinstance(module, ELEMENTWISE):
        return _Sparse(module(state.clean), module(state.patch), state.top, state.left)
    # global pooling and whatever follows it: dense from here on
    return module(_dense(state))


def window_logits(
    model: nn.Module, image: torch.Tensor, occluded_boxes: torch.Tensor, top: torch.Tensor, left: torch.Tensor
) -> torch.Tensor:
    """Logits of ``model`` for one image [1, C, H, W] with each box [B, C, h, w] pasted at (top, left)."""
    out = _run(model, _Sparse(image, occluded_boxes, top, left))
    return _dense(out) if isinstance(out, _Sparse) else out
