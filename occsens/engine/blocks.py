"""The calls of modern blocks that ``occsens.engine.graph`` reads into tree nodes (issue 27).

Squeeze-excitation gates and products of maps (``Product``), a parameter the forward reads (``Scaled``),
``permute`` to channels-last and back around per-pixel layers (``ChannelsLast``), constant ``F.pad``,
``x.mean((2, 3))`` (``GlobalMean``), element-wise functions (the ``torch.nn`` layer that calls the same
function), ``x + 0``. The converter's own module docstring states each rule; the walk
(``occsens.engine.receptive``) states what each node changes.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from occsens.engine.layers import ChannelsLast, GlobalMean, Product, Scaled


def arg(node: fx.Node, i: int, name: str, default: Any) -> Any:
    """Argument ``i`` of a call, given by position or by ``name``."""
    return node.args[i] if len(node.args) > i else node.kwargs.get(name, default)


MUL = {operator.mul, torch.mul, "mul"}
MEAN = {torch.mean, "mean"}
PAD = {F.pad}
PERMUTE = {torch.permute, "permute"}
RESHAPE = {torch.reshape, "reshape", "view"}
SUB = {operator.sub, torch.sub, "sub"}
DIV = {operator.truediv, torch.div, "div"}
# Element-wise functions, as the torch.nn layer that calls the same function (nn.Sigmoid.forward is
# torch.sigmoid(x), nn.GELU's F.gelu(x, approximate), ...): (layer, the keyword arguments it takes).
ACTIVATIONS: dict[Any, tuple[type[nn.Module], tuple[str, ...]]] = {
    **dict.fromkeys((torch.sigmoid, F.sigmoid, "sigmoid"), (nn.Sigmoid, ())),
    **dict.fromkeys((torch.tanh, F.tanh, "tanh"), (nn.Tanh, ())),
    **dict.fromkeys((F.hardsigmoid,), (nn.Hardsigmoid, ("inplace",))),
    **dict.fromkeys((F.hardswish,), (nn.Hardswish, ("inplace",))),
    **dict.fromkeys((F.silu,), (nn.SiLU, ("inplace",))),
    **dict.fromkeys((F.relu6,), (nn.ReLU6, ("inplace",))),
    **dict.fromkeys((F.gelu,), (nn.GELU, ("approximate",))),
}


def read(reader: Any, node: fx.Node, kind: str, name: str, where: str) -> bool:
    """Record ``node``, a call of ``kind`` (``occsens.engine.graph._kind``), on ``reader`` (the graph's
    ``_Converter``: its paths, constants, channels-last segments, aliases); True when this module reads
    that kind of call (gates, constants, channels-last runs, padding, element-wise functions, means, x + 0),
    False for the others, which the converter reads itself."""
    first = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
    if kind == "reshape" and first in reader.constants:
        given: Any = node.args[1:] if len(node.args) > 2 else node.args[1:2]
        given = tuple(given[0]) if len(given) == 1 and isinstance(given[0], (tuple, list)) else given
        if node.kwargs or not given or not all(type(v) is int for v in given):
            raise reader.refuse(node, f"calls {name} on a tensor the model holds with other arguments")
        owner, attr, _ = reader.constants[first]
        reader.constants[node] = (owner, attr, tuple(given))
        return True
    if kind == "permute":
        dims: Any = tuple(node.args[1:]) if len(node.args) > 2 else tuple(arg(node, 1, "dims", ()))
        if first in reader.segments and dims == (0, 3, 1, 2):
            base, steps = reader.segments[first]
            block = ChannelsLast(nn.Sequential(*steps))
            reader.paths[node] = (*reader.paths[base], reader.step(node, block, where))
            return True
        x = reader.tensor(node, first, f"calls {name}")
        if dims != (0, 2, 3, 1):
            raise reader.refuse(node, f"calls {name}{dims} (only to channels-last and back)")
        reader.segments[node] = (x, ())
        return True
    if kind in ("add", "iadd") and len(node.args) == 2 and not node.kwargs:
        a, b = node.args
        zero = [v for v in (a, b) if type(v) in (int, float) and v == 0]
        if zero:  # ``x + 0`` (timm's MobileOne starts a sum at 0): x itself, up to the sign of a zero
            x = reader.tensor(node, b if zero[0] is a else a, f"calls {name}")
            reader.paths[node] = reader.paths[x]
            reader.aliases[node] = x
            return True
    if kind in ("mul", "add", "sub", "div") and len(node.args) == 2 and not node.kwargs:
        a, b = node.args
        if b in reader.constants or (kind in ("mul", "add") and a in reader.constants):
            value, held = (a, b) if b in reader.constants else (b, a)
            x = reader.tensor(node, value, f"calls {name}")
            assert isinstance(held, fx.Node)
            owner, attr, shape = reader.constants[held]
            scaled = Scaled(kind, owner, attr, shape)
            reader.paths[node] = (*reader.paths[x], reader.step(node, scaled, where))
            return True
    if kind == "mul":
        if len(node.args) != 2 or node.kwargs:
            raise reader.refuse(node, f"calls {name} with other than two tensors")
        a = reader.tensor(node, node.args[0], f"calls {name}")
        b = reader.tensor(node, node.args[1], f"calls {name}")
        reader.paths[node] = _combine(reader, node, a, b, where)
        return True
    if kind in ("sub", "div"):
        raise reader.refuse(node, f"calls {name} (other than on a tensor the model holds)")
    if kind not in ("mean", "pad", "activation"):
        return False
    x = reader.tensor(node, first, f"calls {name}")
    module: nn.Module
    if kind == "mean":
        dims = arg(node, 1, "dim", None)
        dims = (dims,) if isinstance(dims, int) else dims
        keepdim = arg(node, 2, "keepdim", False)
        extra = set(node.kwargs) - {"dim", "keepdim"}
        if (
            extra
            or len(node.args) > 3
            or not isinstance(dims, (tuple, list))
            or sorted(d % 4 for d in dims) != [2, 3]
            or type(keepdim) is not bool
        ):
            raise reader.refuse(node, f"calls {name} over other than the two spatial axes")
        module = GlobalMean(keepdim)
    elif kind == "pad":
        pad = arg(node, 1, "pad", None)
        mode, value = arg(node, 2, "mode", "constant"), arg(node, 3, "value", None)
        if (
            mode != "constant"
            or not isinstance(pad, (tuple, list))
            or len(pad) != 4
            or not all(type(v) is int for v in pad)
            or not (value is None or isinstance(value, (int, float)))
        ):
            raise reader.refuse(node, f"calls {name} other than constant padding of height and width")
        module = nn.ConstantPad2d(tuple(pad), 0.0 if value is None else float(value))  # type: ignore[arg-type]
    else:
        layer, options = ACTIVATIONS[node.target]
        if len(node.args) > 1 or set(node.kwargs) - set(options):
            raise reader.refuse(node, f"calls {name} with other arguments")
        kwargs = dict(node.kwargs)
        if kwargs.pop("inplace", False):
            reader.written(node, x, f"calls {name} in place")
            reader.aliases[node] = x
        module = layer(**kwargs)
    reader.paths[node] = (*reader.paths[x], reader.step(node, module, where))
    return True


def _combine(reader: Any, node: fx.Node, a: fx.Node, b: fx.Node, where: str) -> tuple[Any, ...]:
    """``a * b`` as one ``Product`` step after the steps ``a`` and ``b`` share."""
    pa, pb = reader.paths[a], reader.paths[b]
    common = 0
    while common < min(len(pa), len(pb)) and pa[common] is pb[common]:
        common += 1
    left = nn.Sequential(*(s.module for s in pa[common:])) if len(pa) > common else None
    right = nn.Sequential(*(s.module for s in pb[common:])) if len(pb) > common else None
    return (*pa[:common], reader.step(node, Product(left, right), where))
