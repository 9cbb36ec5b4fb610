"""Exact incremental occlusion: recompute each layer only where the window changed it.

An occluded image is the clean image except inside one window, and a convolution's
output changes only inside that window's projective field (``occsens.engine.receptive``). So
instead of running the whole network on every occluded copy, this engine keeps every
layer's clean activation for a group of images (``CleanActivations``: one pass through
the layers, run by the engine itself so no hooks go on the caller's model; it also gives the
walk's clean logits, which ``occsens.engine`` checks against the model's own) and carries, per
window, only a box of
changed values (``[B, C, h, w]`` at per-window positions). Each layer is evaluated on
the box grown by its kernel, read from the clean activation with the window's changed
values pasted in: the same arithmetic as the full layer on the same inputs (a batch norm
right after a convolution is folded into it), so the probabilities agree with brute force
to float32 rounding (the tests hold it to 1e-5).
Once a box covers the whole map (after global pooling at the latest) the batch is dense
and the remaining layers run as usual. This follows the idea of Krypton (Nakandala,
Kumar & Papakonstantinou, SIGMOD 2019); the code is our own.

Layout matters as much as FLOPs. Every map is kept channels-last, so a box is a set of
pixel rows of ``C`` contiguous floats: reading every window's box from the clean map is
one ``index_select`` of whole rows (padding reads a zero or -inf row kept after the
pixels), and pasting the changed values is one ``index_copy_``. Pooling and convolution
also run faster on channels-last maps on CPU (development machine, 2 threads: max
pooling 10-30x, a 3x3 convolution on a batch of 10x10 crops up to 1.4x).

The walk supports the layers ``occsens.engine.receptive`` lists; a model with its own ``forward``
(torchvision's) runs as the tree ``occsens.engine.graph`` rebuilds from its traced graph, over the
same layer objects. ``supports(model)`` says whether a model qualifies, and ``occlude`` falls back
to brute force when it does not. In-place layers run out of place here (``_call``).
It is exact on GPUs too, but slower there than brute force (many small kernels), so
``engine="auto"`` uses it on CPU only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from occsens.engine.graph import is_tree, structure
from occsens.engine.layers import ChannelsLast, Product, Residual, Scaled, norm_act_children, pointwise
from occsens.engine.receptive import Region, Unsupported, as_pair, global_refusal, walk

_CL = torch.channels_last


def supports(model: object, image_size: tuple[int, int], channels: int, trace: bool = True) -> str | None:
    """None when the incremental engine can run ``model`` exactly; else the reason it cannot.

    The static half of the guard (``occsens.engine.receptive.refusal`` for every layer, and
    ``global_refusal``); ``occsens.engine`` adds the run-time half on every call. A model with its own
    ``forward`` is traced afresh here (``occsens.engine.graph.structure``) and its rebuilt tree walked;
    with ``trace=False`` (``engine="brute"``, which runs only the model's own forward) it is not.
    """
    if not isinstance(model, nn.Module):
        return "the model is not a torch.nn.Module"
    reason = global_refusal()
    if reason is not None:
        return reason
    if not trace and not is_tree(model):
        return "the model has its own forward, which only the incremental engine traces"
    try:
        tree, names = structure(model, fresh=True)
        walk(tree, Region(0, 0, 1, 1, image_size), channels, lambda *a: None, names=names)
    except Unsupported as exc:
        return str(exc)
    return None


def _pixel_rows(maps: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] as [N*H*W, C] (a view when the maps are channels-last)."""
    n, c, h, w = maps.shape
    return maps.permute(0, 2, 3, 1).reshape(n * h * w, c)


@dataclass(frozen=True)
class _Clean:
    """Clean maps [N, C, H, W] stored as pixel rows, followed by the rows that padding reads."""

    rows: torch.Tensor  # [N*H*W + 2, C]: pixels in (n, y, x) order, then a zero row, then a -inf row
    shape: tuple[int, int, int, int]

    @staticmethod
    def of(maps: torch.Tensor) -> _Clean:
        n, c, h, w = maps.shape
        rows = maps.new_empty(n * h * w + 2, c)
        rows[: n * h * w] = _pixel_rows(maps)
        rows[n * h * w] = 0.0
        rows[n * h * w + 1] = float("-inf")
        return _Clean(rows, (n, c, h, w))

    @property
    def maps(self) -> torch.Tensor:
        n, c, h, w = self.shape
        return self.rows[: n * h * w].view(n, h, w, c).permute(0, 3, 1, 2)

    def pad_row(self, value: float) -> int:
        n, _, h, w = self.shape
        return n * h * w + (1 if value == float("-inf") else 0)


class CleanActivations:
    """Every layer's output on the clean images of one group, from one pass, reused by each batch.

    The pass walks the model's layers itself, in the order their ``forward`` would (``_clean_pass``):
    no hooks go on the caller's model, so two threads can share it. Its result, ``logits``, is the
    walk's reconstruction of the model's clean output, which ``occsens.engine`` checks against the
    model's own forward. Entries are keyed by (layer, how often it has run), so a layer used twice
    in a network has two; a sparse pass asks for them in the same order (``_Pass.get``), and one that
    turns dense early asks for fewer entries, never other ones. Passes in several threads may share
    one ``CleanActivations``: each counts its own layer runs, and entries are added under a lock.
    """

    def __init__(self, model: nn.Module, images: torch.Tensor) -> None:
        tree, names = structure(model)
        if tree is not model:  # a traced model: its tree may be a newer trace than the one supports() walked
            size = (int(images.shape[-2]), int(images.shape[-1]))
            walk(tree, Region(0, 0, 1, 1, size), int(images.shape[1]), lambda *a: None, names=names)
        self.tree = tree  # what window_logits runs
        images = images.contiguous(memory_format=_CL)
        self.input = _Clean.of(images)
        self._values: dict[tuple[int, int], _Clean] = {}
        self._folds: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self._lock = threading.Lock()
        runs: dict[int, int] = {}

        def keep(layer: nn.Module, output: torch.Tensor) -> None:
            n = runs.get(id(layer), 0)
            runs[id(layer)] = n + 1
            if output.ndim == 4:  # copied now: a later in-place activation may overwrite the output
                self._values[(id(layer), n)] = _Clean.of(output)

        self.logits = _clean_pass(tree, images, keep)

    def value(self, key: tuple[int, int], compute: Callable[[], torch.Tensor]) -> _Clean:
        """The clean activation of (layer id, run number), computed once if the forward pass missed it."""
        found = self._values.get(key)
        if found is None:  # not reached by the forward pass (a layer used in an unusual way)
            with self._lock:
                found = self._values.get(key)
                if found is None:
                    found = self._values[key] = _Clean.of(compute())
        return found

    def folded(self, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
        """``conv`` and ``bn`` folded into one convolution, once per group of images (issue 28).

        Folded here, from the values the tensors hold now, and kept only as long as this object, which
        lives for one call: a fold kept across calls went stale when a tensor changed without its
        version counter moving (batch-norm running statistics updated in train mode, ``.data`` writes,
        ``torch.nn.utils.vector_to_parameters``). Folding the shipped model's 8 pairs took 0.3-2 ms.
        """
        key = (id(conv), id(bn))
        found = self._folds.get(key)
        if found is None:
            with self._lock:
                found = self._folds.get(key)
                if found is None:
                    found = self._folds[key] = _fold(conv, bn)
        return found


class _Pass:
    """One sparse pass's view of a group's clean activations: its own count of each layer's runs."""

    def __init__(self, clean: CleanActivations) -> None:
        self.clean = clean
        self._asked: dict[int, int] = {}

    def get(self, layer: nn.Module, compute: Callable[[], torch.Tensor]) -> _Clean:
        n = self._asked.get(id(layer), 0)
        self._asked[id(layer)] = n + 1
        return self.clean.value((id(layer), n), compute)


@dataclass
class _Sparse:
    """Window b's full activation: clean map ``image[b]`` with ``patch[b]`` pasted at (top[b], left[b])."""

    clean: _Clean
    patch: torch.Tensor  # [B, C, h, w]
    image: torch.Tensor  # int64 [B]
    top: torch.Tensor  # int64 [B]
    left: torch.Tensor  # int64 [B]
    cache: _Pass

    @property
    def size(self) -> tuple[int, int]:
        return (self.clean.shape[2], self.clean.shape[3])

    def then(self, clean: _Clean, patch: torch.Tensor, top: torch.Tensor, left: torch.Tensor) -> _Sparse:
        return _Sparse(clean, patch, self.image, top, left, self.cache)


def _materialize(
    state: _Sparse, top: torch.Tensor, left: torch.Tensor, h: int, w: int, pad_value: float = 0.0
) -> torch.Tensor:
    """Every window's full activation inside rows [top, top + h) and columns [left, left + w): [B, C, h, w].

    The box may reach past the map's edge (a layer's padding); those pixels read ``pad_value``.
    The result is channels-last.
    """
    _, c, H, W = state.clean.shape
    b, _, ph, pw = state.patch.shape
    dev = state.patch.device
    y = top.view(b, 1, 1) + torch.arange(h, device=dev).view(1, h, 1)
    x = left.view(b, 1, 1) + torch.arange(w, device=dev).view(1, 1, w)
    in_map = (y >= 0) & (y < H) & (x >= 0) & (x < W)
    pixel = (state.image.view(b, 1, 1) * H + y.clamp(0, H - 1)) * W + x.clamp(0, W - 1)
    index = torch.where(in_map, pixel, state.clean.pad_row(pad_value))
    out = state.clean.rows.index_select(0, index.view(-1))  # [B*h*w, C]
    # paste: patch pixel (i, j) of window b lands at box row y - top, column x - left
    dy = (state.top - top).view(b, 1, 1) + torch.arange(ph, device=dev).view(1, ph, 1)
    dx = (state.left - left).view(b, 1, 1) + torch.arange(pw, device=dev).view(1, 1, pw)
    dest = (torch.arange(b, device=dev).view(b, 1, 1) * h + dy) * w + dx
    rows = _pixel_rows(state.patch)
    inside = (dy >= 0) & (dy < h) & (dx >= 0) & (dx < w)
    if bool(inside.all()):
        out.index_copy_(0, dest.view(-1), rows)
    else:  # a strided layer that never reads some changed pixels (e.g. a 1x1 conv at stride 2)
        keep = inside.view(-1)
        out.index_copy_(0, dest.view(-1)[keep], rows[keep])
    return out.view(b, h, w, c).permute(0, 3, 1, 2)


def _dense(state: _Sparse | torch.Tensor) -> torch.Tensor:
    """Every window's whole map, channels-last: its image's clean map with its patch pasted in.

    The same values as ``_materialize`` over the whole map, but the clean maps are copied as one
    block per window instead of row by row (shipped model, 64 windows of an 8x8x192 map: about 4x
    faster). A patch always lies inside its map (every box is clamped to the map where it is made).
    """
    if isinstance(state, torch.Tensor):
        return state
    n, c, H, W = state.clean.shape
    b, _, ph, pw = state.patch.shape
    dev = state.patch.device
    whole = state.clean.rows[: n * H * W].view(n, H * W * c).index_select(0, state.image)
    rows = whole.view(b * H * W, c)
    dy = state.top.view(b, 1, 1) + torch.arange(ph, device=dev).view(1, ph, 1)
    dx = state.left.view(b, 1, 1) + torch.arange(pw, device=dev).view(1, 1, pw)
    dest = (torch.arange(b, device=dev).view(b, 1, 1) * H + dy) * W + dx
    rows.index_copy_(0, dest.view(-1), _pixel_rows(state.patch))
    return rows.view(b, H, W, c).permute(0, 3, 1, 2)


def _call(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)``, never writing into ``x``: an in-place layer gets a copy.

    Kept clean maps are shared by every pass, a residual's input by both branches, and the first
    layer's input is the caller's images; the walk (or the graph's in-place rule) has made sure that
    the model's own in-place writes change nothing another layer reads, so out of place is the same.
    The copy costs nothing measurable (ResNet-18 at 224x224, 729 windows: 5.6 s either way against
    calling ``F.relu`` out of place).
    """
    return module(x.clone() if getattr(module, "inplace", False) else x)


def _out_box(
    lo: torch.Tensor, size: int, length: int, kernel: int, stride: int, pad: int, dilation: int
) -> tuple[torch.Tensor, int, int]:
    """Per-window first output index, the common output extent, and the output length along one axis."""
    reach = dilation * (kernel - 1)
    out_len = (length + 2 * pad - reach - 1) // stride + 1
    first = torch.clamp(torch.div(lo + pad - reach + stride - 1, stride, rounding_mode="floor"), min=0)
    last = torch.clamp(torch.div(lo + size - 1 + pad, stride, rounding_mode="floor"), max=out_len - 1)
    # at least 1: a strided layer may read none of a window's changed pixels (the box then holds clean values)
    extent = min(max(int((last - first).max()) + 1, 1), out_len)
    first = torch.clamp(first, max=out_len - extent)
    return first, extent, out_len


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    assert bn.running_mean is not None and bn.running_var is not None  # walk() refuses batch statistics
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    bias = shift if conv.bias is None else conv.bias * scale + shift
    # channels-last like the maps: a convolution then reads the weight without reordering it first
    return (conv.weight * scale.view(-1, 1, 1, 1)).contiguous(memory_format=_CL), bias


def _sliding(state: _Sparse, module: nn.Module, bn: nn.BatchNorm2d | None = None) -> _Sparse | torch.Tensor:
    """A convolution or pooling layer evaluated only on each window's changed outputs.

    ``bn``: the batch norm right after a convolution, folded into it for the changed boxes (one pass
    over the data instead of two; equal to applying it after, up to float32 rounding).
    """
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
    H, W = state.size
    _, _, h, w = state.patch.shape
    top, oh, out_h = _out_box(state.top, h, H, kh, sh, ph, dh)
    left, ow, out_w = _out_box(state.left, w, W, kw, sw, pw, dw)
    if oh == out_h and ow == out_w:  # the change reaches everywhere: run the layer on dense maps
        return _dense_layer(_dense(state), module, bn)
    in_h, in_w = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
    pad_value = float("-inf") if isinstance(module, nn.MaxPool2d) else 0.0
    crop = _materialize(state, top * sh - ph, left * sw - pw, in_h, in_w, pad_value)
    if isinstance(module, nn.Conv2d):
        weight, bias = (module.weight, module.bias) if bn is None else state.cache.clean.folded(module, bn)
        patch = F.conv2d(crop, weight, bias, (sh, sw), 0, (dh, dw), module.groups)
    elif isinstance(module, nn.MaxPool2d):
        patch = F.max_pool2d(crop, (kh, kw), (sh, sw), 0, (dh, dw))
    else:
        divisor = cast(int | None, module.divisor_override)
        patch = F.avg_pool2d(crop, (kh, kw), (sh, sw), 0, divisor_override=divisor)
    if bn is not None:
        patch = _after_norm(bn, patch)
    if bn is None:
        clean = state.cache.get(module, lambda: module(state.clean.maps))
    else:  # the clean pass keeps only the batch norm's output of a folded pair
        clean = state.cache.get(bn, lambda: bn(module(state.clean.maps)))
    return state.then(clean, patch, top, left)


def _residual(state: _Sparse, module: Residual) -> _Sparse | torch.Tensor:
    # the clean pass's order (shortcut, then body): a layer in both asks for its clean maps in that order
    short = state if module.shortcut is None else _run(module.shortcut, state)
    body = _run(module.body, state)
    if isinstance(body, torch.Tensor) or isinstance(short, torch.Tensor):
        return _dense(short) + _dense(body)
    top, left, h, w = _union_box(short, body)
    patch = _materialize(short, top, left, h, w) + _materialize(body, top, left, h, w)
    clean = state.cache.get(module, lambda: short.clean.maps + body.clean.maps)
    return state.then(clean, patch, top, left)


def _dense_layer(x: torch.Tensor, module: nn.Module, bn: nn.BatchNorm2d | None) -> torch.Tensor:
    """``bn(module(x))`` (or ``module(x)``) on whole maps, as the clean pass and brute force compute it.

    Not folded: on whole maps the batch norm's own pass costs a small share of the convolution's,
    and unfolded the arithmetic is the model's own.
    """
    x = _call(module, x)
    return x if bn is None else bn(x)


def _after_norm(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """What a norm-act layer (timm's BatchNormAct2d, checked by ``occsens.engine.layers.adopt``) runs after
    its batch norm, which the sparse pass folds into the convolution: its drop and act children, in order."""
    for name in norm_act_children(type(bn)):
        x = _call(getattr(bn, name), x)
    return x


def _product(state: _Sparse, module: Product) -> _Sparse | torch.Tensor:
    """``left(x) * right(x)``: on changed boxes while both sides are maps; a gate (a value every window
    changes, such as squeeze-excitation's) is recomputed per window and the product is dense from here."""
    a = state if module.left is None else _run(module.left, state)
    b = state if module.right is None else _run(module.right, state)
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return _dense(a) * _dense(b)
    top, left, h, w = _union_box(a, b)
    patch = _materialize(a, top, left, h, w) * _materialize(b, top, left, h, w)
    clean = state.cache.get(module, lambda: a.clean.maps * b.clean.maps)
    return state.then(clean, patch, top, left)


def _union_box(a: _Sparse, b: _Sparse) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Per-window top and left, and the common height and width, of a box holding both changed boxes."""
    H, W = a.size
    h_a, w_a = a.patch.shape[2:]
    h_b, w_b = b.patch.shape[2:]
    top = torch.minimum(a.top, b.top)
    left = torch.minimum(a.left, b.left)
    h = int((torch.maximum(a.top + h_a, b.top + h_b) - top).max())
    w = int((torch.maximum(a.left + w_a, b.left + w_b) - left).max())
    return torch.clamp(top, max=H - h), torch.clamp(left, max=W - w), h, w


def _run(module: nn.Module, state: _Sparse | torch.Tensor) -> _Sparse | torch.Tensor:
    if isinstance(state, torch.Tensor) and not isinstance(module, (nn.Sequential, Residual, Product)):
        return _call(module, state)
    if isinstance(module, nn.Sequential):
        children, i = list(module), 0
        while i < len(children):
            child, after = children[i], children[i + 1] if i + 1 < len(children) else None
            if isinstance(child, nn.Conv2d) and isinstance(after, nn.BatchNorm2d):
                state = (
                    _dense_layer(state, child, after)
                    if isinstance(state, torch.Tensor)
                    else _sliding(state, child, after)
                )
                i += 2
            else:
                state = _run(child, state)
                i += 1
        return state
    if isinstance(module, Residual):
        if isinstance(state, torch.Tensor):  # Residual.forward's order: shortcut, then body
            short = state if module.shortcut is None else _run(module.shortcut, state)
            return _dense(short) + _dense(_run(module.body, state))
        return _residual(state, module)
    if isinstance(module, Product):
        if isinstance(state, torch.Tensor):
            a = state if module.left is None else _run(module.left, state)
            return _dense(a) * _dense(state if module.right is None else _run(module.right, state))
        return _product(state, module)
    assert isinstance(state, _Sparse)  # dense states returned at the top
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        return _sliding(state, module)
    if isinstance(module, nn.ConstantPad2d):  # the changed values stay, moved by the padding
        sparse, (left, _, top, _) = state, module.padding
        clean = state.cache.get(module, lambda: module(sparse.clean.maps))
        return state.then(clean, state.patch, state.top + top, state.left + left)
    if isinstance(module, (nn.BatchNorm2d, ChannelsLast, Scaled, *pointwise())):
        sparse = state
        clean = state.cache.get(module, lambda: _call(module, sparse.clean.maps))
        return state.then(clean, _call(module, state.patch), state.top, state.left)
    # global pooling and whatever follows it: dense from here on
    return _call(module, _dense(state))


# and the point-wise layers
_KEPT = (
    nn.Conv2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.BatchNorm2d,
    Residual,
    Product,
    ChannelsLast,
    Scaled,
    nn.ConstantPad2d,
)


def _clean_pass(
    module: nn.Module, x: torch.Tensor, keep: Callable[[nn.Module, torch.Tensor], None]
) -> torch.Tensor:
    """``module(x)`` run layer by layer as the walk reads the model, handing ``keep`` each kept output.

    For the layers ``occsens.engine.receptive.walk`` accepts (it refuses custom forwards and hooks) this is
    the same sequence of calls as the model's own forward.
    """
    if isinstance(module, nn.Sequential):
        children = list(module)  # an empty one is the identity
        for child, after in zip(children, [*children[1:], None][: len(children)], strict=True):
            if isinstance(child, nn.Conv2d) and isinstance(after, nn.BatchNorm2d):
                x = child(x)  # folded into its batch norm by the sparse pass (``_run``): not asked for
            else:
                x = _clean_pass(child, x, keep)
        return x
    if isinstance(module, Residual):  # Residual.forward: shortcut first, then body
        short = x if module.shortcut is None else _clean_pass(module.shortcut, x, keep)
        out = short + _clean_pass(module.body, x, keep)
    elif isinstance(module, Product):  # Product.forward: left first, then right
        a = x if module.left is None else _clean_pass(module.left, x, keep)
        out = a * (x if module.right is None else _clean_pass(module.right, x, keep))
    else:
        out = _call(module, x)
    if isinstance(module, (*_KEPT, *pointwise())):
        keep(module, out)
    return out


def window_logits(
    model: nn.Module,
    clean: CleanActivations,
    image: torch.Tensor,
    boxes: torch.Tensor,
    top: torch.Tensor,
    left: torch.Tensor,
) -> torch.Tensor:
    """Logits of ``model`` for clean image ``image[b]`` with box ``boxes[b]`` [C, h, w] pasted at (top, left).

    ``clean`` holds the group of images that ``image`` indexes (and, once computed, their activations),
    made for ``model``: its tree (``model`` itself, or the one rebuilt from its traced graph) runs.
    """
    state = _Sparse(clean.input, boxes.contiguous(memory_format=_CL), image, top, left, _Pass(clean))
    return _dense(_run(clean.tree, state))
