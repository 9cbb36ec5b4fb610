"""A model's real wiring, read from its ``forward``, as the layer tree the walk and the engine run.

The walk (``occsens.engine.receptive``) and the incremental engine (``occsens.engine.incremental``)
run a *tree*: ``nn.Sequential`` containers, ``occsens.engine.layers.Residual`` (``shortcut(x) +
body(x)``) and leaf layers whose arithmetic they state. A model built only of those is run as it is.
Any other model (torchvision's ``ResNet``, ``VGG``, ``MobileNetV2``: a custom ``forward``) is traced
with ``torch.fx`` (through every module but the leaf layers: torch's own ``torch.nn`` layers, the
registered point-wise ones and the other libraries' layers ``occsens.engine.layers.BY_NAME`` knows,
such as timm's ``BatchNormAct2d``), and the traced graph is rebuilt as such a tree (``structure``):

* a call of a leaf layer is that layer, the user's own object (a layer called twice appears twice);
* ``a + b``, ``a += b``, ``torch.add(a, b)``, ``a.add(b)`` of two values computed from the input is a
  ``Residual`` over the part the two share: the steps after their last common value are the two
  branches (addition of floats is commutative, so which branch is which does not matter);
* ``torch.flatten(x, s, e)`` / ``x.flatten(s, e)`` is ``nn.Flatten(s, e)``, ``F.relu`` / ``torch.relu``
  / ``x.relu()`` is ``nn.ReLU()``, ``F.adaptive_avg_pool2d(x, size)`` is ``nn.AdaptiveAvgPool2d(size)``;
  ``torch.sigmoid``, ``F.hardsigmoid``, ``F.silu``, ``F.gelu``... are the ``torch.nn`` layer whose
  forward calls that function; ``F.pad(x, (l, r, t, b), value=v)`` is ``nn.ConstantPad2d``;
  ``x.mean((2, 3))`` is ``GlobalMean``; ``x + 0`` is ``x``;
* ``a * b`` of two values computed from the input is a ``Product`` over the part they share (a
  squeeze-excitation gate ``x * sigmoid(fc(mean(x)))``, whose gate the walk sees change everywhere);
* ``x * p``, ``x + p``, ``x - p``, ``x / p`` for a parameter or buffer ``p`` the forward reads (perhaps
  reshaped: ConvNeXt's ``x.mul(self.gamma.reshape(1, -1, 1, 1))``) is ``Scaled``, which reads ``p``
  from its owner on every call;
* ``x.permute(0, 2, 3, 1)``, layers, ``.permute(0, 3, 1, 2)`` is ``ChannelsLast`` over those layers
  (ConvNeXt's MLP: layer norm and ``nn.Linear`` on each pixel's channels);
* anything else (another function or method, a parameter used otherwise, a constant tensor, more than
  one input, an output that is not one tensor) is refused, naming the node and whose forward calls it.

Refused as well, before tracing: a hook of any kind on any module (root and containers included:
the trace calls their ``forward`` directly), ``forward`` replaced on an instance, a changed
``nn.Module``, and what ``global_refusal`` names; after tracing, the guard's ``refusal`` on every leaf
the graph calls. A forward that cannot be traced (control flow on a tensor's value, for example)
is refused with the tracer's message. In-place writes: the graph has functional semantics, so an
in-place op (a layer with ``inplace=True``, ``+=``, ``F.relu(x, inplace=True)``, ``x.relu_()``)
is accepted only when nothing else reads what it overwrites: the value it writes into, and every
value that may share its memory (through a layer that may return its input or a view of it), has
no other user, and is not the model's input. The engine then runs such layers out of place.

Tracing never changes the model (no hooks, no attributes: a constant tensor, which ``torch.fx``
would store on the root, is refused first; whatever a forward's Python changes while it is traced,
an attribute set to a traced value such as ``self.features = x``, a counter, a flag, a buffer
written in place, is put back (``_State``) and the model refused). ``engine="brute"`` never traces.
``torch.fx`` patches ``nn.Module.__call__`` and ``__getattr__`` for the whole process while it
traces; the tracer here passes other threads' calls through unchanged, and one lock keeps occsens'
own traces apart.

Cost: tracing ResNet-18 takes about 5-13 ms. ``supports`` traces afresh on every call; the engine's
later uses in the same call take the tree kept for the model while a snapshot of it is unchanged
(its modules, the code and plain attributes of every traced-through module, training flags included).
"""

from __future__ import annotations

import operator
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx._symbolic_trace import _constant_attribute_types as _STORED
from torch.fx._symbolic_trace import _proxyable_classes

from occsens.engine import blocks, receptive
from occsens.engine.blocks import ACTIVATIONS, DIV, MEAN, MUL, PAD, PERMUTE, RESHAPE, SUB, arg
from occsens.engine.layers import (
    ChannelsLast,
    Product,
    Residual,
    behaviour,
    named_kind,
    pointwise,
)
from occsens.engine.receptive import Unsupported

Names = dict[int, str]

# Leaf layers whose arithmetic the walk states; with the registered point-wise ones and any other layer
# of torch.nn (which the guard then refuses by name), the tracer does not trace into them.
_LEAVES = tuple(
    cls for cls in receptive._LAYERS if cls not in (nn.Sequential, Residual, Product, ChannelsLast)
)

# Leaf layers known to return a new tensor (never their input or a view of it) when not in place.
_FRESH = (
    nn.Conv2d,
    nn.BatchNorm2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveAvgPool2d,
    nn.ConstantPad2d,
)


def is_leaf(module: nn.Module) -> bool:
    """Whether the trace records a call of ``module`` as one step instead of tracing its ``forward``."""
    if isinstance(module, (*_LEAVES, *pointwise())) or named_kind(type(module)) is not None:
        return True
    return type(module).__module__.startswith(("torch.nn", "torch.ao.nn")) and not isinstance(
        module, nn.Sequential
    )


def _tree(module: nn.Module, classes: dict[type, str | None]) -> bool:
    """Whether ``module`` is already a tree the walk runs (containers whose forward it knows, leaves)."""
    if isinstance(module, (nn.Sequential, Residual)) and receptive.refusal(module, classes) is None:
        return all(_tree(child, classes) for child in module.children())
    return is_leaf(module)


# --------------------------------------------------------------------------- tracing


class _Refused(Exception):
    """Raised inside the trace: (path of the module whose forward did it, what it did)."""


class _Proxy(fx.Proxy):
    """fx's Proxy, but ``a += b`` records an in-place add (fx's own would record ``a + b``)."""

    def __iadd__(self, other: Any) -> fx.Proxy:
        return self.tracer.create_proxy("call_function", operator.iadd, (self, other), {})


class _Tracer(fx.Tracer):
    """Traces in one thread; in any other thread the patched ``nn.Module`` methods act as usual."""

    def __init__(self) -> None:
        super().__init__()
        self.owner = threading.get_ident()

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_leaf(m)

    def call_module(self, m: nn.Module, forward: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if threading.get_ident() != self.owner:
            return forward(*args, **kwargs)  # nn.Module.__call__ as it was
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if threading.get_ident() != self.owner:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def create_arg(self, a: Any) -> Any:
        if isinstance(a, _STORED) and not isinstance(a, nn.Parameter) or type(a) in _proxyable_classes:
            # fx would store the value on the root module (an attribute write on the user's model)
            path = list(self.module_stack.values())[-1][0] if self.module_stack else ""
            shape = f" of shape {tuple(a.shape)}" if isinstance(a, torch.Tensor) else ""
            raise _Refused(path, f"uses a constant {type(a).__name__}{shape}")
        return super().create_arg(a)

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _Proxy(node, self)


_TRACE_LOCK = receptive.TRACE_LOCK  # also held by receptive.module_refusal


def _preflight(model: nn.Module) -> str | None:
    """What makes the trace differ from the model's call, checked before tracing (nothing runs on proxies)."""
    reason = receptive.global_refusal() or receptive.module_refusal()
    if reason is not None:
        return reason
    for path, module in model.named_modules():
        where = "model" + (f".{path}" if path else "")
        reason = receptive.hook_refusal(module)
        if reason is not None:
            return f"{reason} at {where}"
        if not is_leaf(module):
            shadowed = sorted({"forward", "__call__", "_call_impl"} & vars(module).keys())
            if shadowed:
                return f"{type(module).__name__}.{shadowed[0]} replaced on the instance at {where}"
    return None


def _trace(model: nn.Module) -> fx.Graph:
    before = _State(model)
    reason: str | None = None
    try:
        graph = _Tracer().trace(model)
    except _Refused as exc:
        path, what = exc.args
        reason = f"{_subject(model, path)}, whose forward {what}"
    except Exception as exc:  # noqa: BLE001 - any failure to trace: brute force decides
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = f"layer {type(model).__name__}: its forward cannot be traced ({type(exc).__name__}: {first})"
    changed = before.restore(model)
    if changed and reason is None:
        path, keys, proxies = changed[0][0], [k for p, k, _ in changed if p == changed[0][0]], changed[0][2]
        kept = ", ".join(f"self.{key}" for key in keys)
        reason = (
            f"{_subject(model, path)}, whose forward stores a traced value in {kept}"
            if proxies
            else f"{_subject(model, path)}, whose forward changes {kept} when it runs (a side effect the "
            "layer walk would not repeat)"
        )
    if reason is not None:
        raise Unsupported(reason)
    return graph


class _State:
    """What a forward may change while it is traced, kept to put back afterwards (issue 28).

    Per module: its attributes (by identity; lists and dicts also by their items' identities), which
    parameters, buffers and submodules it holds, and each buffer's value (a clone: running
    statistics and counters are small). A forward's Python runs once per trace on symbolic values,
    but what it does to plain attributes (``self.calls += 1``, ``self.seen = True``) and to buffers
    (``self.count += 1`` on a real tensor) is real; the trace puts all of it back and is refused.
    Parameters reach the forward as proxies, so an in-place write to one is only recorded.
    """

    def __init__(self, model: nn.Module) -> None:
        self.attributes = {id(m): dict(vars(m)) for m in model.modules()}
        self.items = {(id(m), key): _items(value) for m in model.modules() for key, value in vars(m).items()}
        self.held = {(id(m), key): dict(vars(m)[key]) for m in model.modules() for key in _HELD}
        self.buffers = {
            (id(m), name): (buffer, buffer.clone(), _version(buffer))
            for m in model.modules()
            for name, buffer in m._buffers.items()
            if buffer is not None
        }

    def restore(self, model: nn.Module) -> list[tuple[str, str, bool]]:
        """Put everything back; (module path, attribute, whether a traced value was kept) per change."""
        found: list[tuple[str, str, bool]] = []
        for path, module in model.named_modules():
            then = self.attributes.get(id(module), {})
            for key, value in list(vars(module).items()):
                proxies = isinstance(value, fx.Proxy) or (
                    isinstance(value, list) and any(isinstance(v, fx.Proxy) for v in value)
                )
                if key not in then:
                    del module.__dict__[key]
                elif value is not then[key]:
                    module.__dict__[key] = then[key]
                elif _items(value) == self.items.get((id(module), key)):
                    continue
                elif isinstance(value, list) and proxies:
                    value[:] = [v for v in value if not isinstance(v, fx.Proxy)]  # appended during the trace
                elif key in _HELD:
                    value.clear()
                    value.update(self.held[(id(module), key)])
                else:  # a list or dict changed in place: its old items cannot all be put back
                    proxies = False
                found.append((path, key, proxies))
            for name, buffer in module._buffers.items():
                kept = self.buffers.get((id(module), name))
                if kept is not None and buffer is kept[0] and _version(buffer) != kept[2]:
                    with torch.no_grad():
                        buffer.copy_(kept[1])
                    found.append((path, name, False))
        return found


_HELD = ("_parameters", "_buffers", "_modules")


def _items(value: Any) -> tuple | None:
    """The identities a list or dict holds (a change in place shows here), else None."""
    if isinstance(value, list):
        return tuple(map(id, value))
    if isinstance(value, dict):
        return tuple((k, id(v)) for k, v in value.items())
    return None


def _version(tensor: torch.Tensor) -> int | None:
    try:
        return tensor._version
    except RuntimeError:  # an inference tensor keeps no version (and cannot be written in place)
        return None


# --------------------------------------------------------------------------- graph -> tree


@dataclass(eq=False)
class _Step:
    """One module the tree runs; identity tells two steps apart (a layer called twice is two steps)."""

    module: nn.Module


def _fn_name(target: Any) -> str:
    if isinstance(target, str):
        return f"Tensor.{target}"
    name = getattr(target, "__name__", "")
    if getattr(operator, name, None) is target:
        return f"operator.{name}"
    try:
        return fx.node._get_qualified_name(target)
    except Exception:  # noqa: BLE001 - only a name for a message
        return repr(target)


def _owner_path(node: fx.Node) -> str:
    """Path of the module whose forward made the call ``node`` records ("" for the root)."""
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else ""


def _where(path: str) -> str:
    return "model" + (f".{path}" if path else "")


def _subject(model: nn.Module, path: str) -> str:
    """The module at ``path`` as a refusal's subject: what it is and where."""
    module = model.get_submodule(path) if path else model
    what = receptive.class_refusal(type(module)) or f"layer {type(module).__name__}"
    return f"{what} at {_where(path)}"


_ADD = {operator.add, torch.add, "add"}
_IADD = {operator.iadd, "add_"}
_FLATTEN = {torch.flatten, "flatten"}
_RELU = {F.relu, torch.relu, "relu"}
_RELU_ = {torch.relu_, "relu_"}
_POOL = {F.adaptive_avg_pool2d}


def _kind(node: fx.Node) -> str | None:
    target = node.target
    if node.op not in ("call_function", "call_method"):
        return None
    if node.op == "call_method" and not isinstance(target, str):
        return None
    for kind, targets in (
        ("add", _ADD),
        ("iadd", _IADD),
        ("flatten", _FLATTEN),
        ("relu", _RELU),
        ("relu_", _RELU_),
        ("pool", _POOL),
        ("mul", MUL),
        ("mean", MEAN),
        ("pad", PAD),
        ("permute", PERMUTE),
        ("reshape", RESHAPE),
        ("sub", SUB),
        ("div", DIV),
        ("activation", ACTIVATIONS),
    ):
        try:
            if target in targets:
                return kind
        except TypeError:  # an unhashable target
            return None
    return None


class _Converter:
    """Rebuilds a traced graph as a tree of Sequential and Residual over the user's own layers."""

    def __init__(self, model: nn.Module, graph: fx.Graph) -> None:
        self.model = model
        self.graph = graph
        self.classes: dict[type, str | None] = {}
        self.names: Names = {}
        self.paths: dict[fx.Node, tuple[_Step, ...]] = {}
        self.aliases: dict[fx.Node, fx.Node] = {}  # value -> the value whose memory it may share
        # a tensor the model holds, read directly (ConvNeXt's layer scale): (owner, name, reshaped to)
        self.constants: dict[fx.Node, tuple[nn.Module, str, tuple[int, ...] | None]] = {}
        # a map permuted to channels-last: (the map it came from, the layers run on it since)
        self.segments: dict[fx.Node, tuple[fx.Node, tuple[nn.Module, ...]]] = {}

    def refuse(self, node: fx.Node, what: str) -> Unsupported:
        return Unsupported(
            f"{_subject(self.model, _owner_path(node))}, whose forward {what} (node {node.name})"
        )

    def step(self, node: fx.Node, module: nn.Module, name: str) -> _Step:
        self.names.setdefault(id(module), name)
        return _Step(module)

    def tensor(self, node: fx.Node, value: Any, what: str) -> fx.Node:
        if isinstance(value, fx.Node) and value in self.segments:
            raise self.refuse(node, f"{what} on a map permuted to channels-last ({value.name})")
        if isinstance(value, fx.Node) and value in self.constants:
            raise self.refuse(node, f"{what} on a tensor the model holds ({value.name})")
        if not isinstance(value, fx.Node) or value not in self.paths:
            raise self.refuse(node, f"{what} (an argument that is not a value computed from the input)")
        return value

    def written(self, node: fx.Node, target: fx.Node, what: str) -> None:
        """Refuse an in-place write into ``target`` that another reader of its memory would see."""
        value: fx.Node | None = target
        while value is not None:
            if value.op == "placeholder":
                raise self.refuse(node, f"{what}, overwriting the model's input")
            readers = [user.name for user in value.users]
            if len(readers) > 1:
                raise self.refuse(
                    node,
                    f"{what}, overwriting {value.name}, which {', '.join(readers)} also read (an in-place "
                    "write the graph does not show)",
                )
            value = self.aliases.get(value)

    def convert(self) -> tuple[nn.Module, Names]:
        output: fx.Node | None = None
        for node in self.graph.nodes:
            if node.op == "placeholder":
                if self.paths:
                    raise self.refuse(node, "takes more than one input")
                self.paths[node] = ()
            elif node.op == "call_module":
                self.module_call(node)
            elif node.op == "output":
                output = node
            elif node.op == "get_attr":
                self.constant(node)
            else:
                self.function_call(node)
        assert output is not None
        result = output.args[0]
        if not isinstance(result, fx.Node) or result not in self.paths:
            raise self.refuse(output, "returns something other than one tensor computed from the input")
        return nn.Sequential(*(s.module for s in self.paths[result])), self.names

    def constant(self, node: fx.Node) -> None:
        """A parameter or buffer the forward reads directly (``self.gamma``), kept by owner and name."""
        assert isinstance(node.target, str)
        path, _, name = node.target.rpartition(".")
        owner = self.model.get_submodule(path) if path else self.model
        if name not in owner._parameters and name not in owner._buffers:
            raise self.refuse(node, f"reads {node.target} directly (not a parameter or buffer)")
        self.constants[node] = (owner, name, None)

    def module_call(self, node: fx.Node) -> None:
        assert isinstance(node.target, str)
        module = self.model.get_submodule(node.target)
        where = f"model.{node.target}"
        reason = receptive.refusal(module, self.classes)
        if reason is not None:
            raise Unsupported(f"{reason} at {where}")
        if len(node.args) != 1 or node.kwargs:
            raise self.refuse(node, f"calls {where} with more than one argument")
        segment = node.args[0] if isinstance(node.args[0], fx.Node) else None
        if segment in self.segments:  # a layer on each pixel's channels (checked by the walk)
            if getattr(module, "inplace", False):
                raise self.refuse(node, f"calls {where} in place on a channels-last map")
            base, steps = self.segments[segment]
            self.names.setdefault(id(module), where)
            self.segments[node] = (base, (*steps, module))
            return
        x = self.tensor(node, node.args[0], f"calls {where}")
        if getattr(module, "inplace", False):
            self.written(node, x, f"calls {where} in place")
            self.aliases[node] = x
        elif not isinstance(module, _FRESH):  # Identity, Dropout, Flatten, a registered layer: maybe a view
            self.aliases[node] = x
        self.paths[node] = (*self.paths[x], self.step(node, module, where))

    def function_call(self, node: fx.Node) -> None:
        kind = _kind(node)
        name = _fn_name(node.target)
        if kind is None:
            raise self.refuse(node, f"calls {name}")
        where = f"node {node.name} ({name}) in {_where(_owner_path(node))}"
        if self.special(node, kind, name, where):
            return
        x = self.tensor(node, node.args[0] if node.args else None, f"calls {name}")
        if kind in ("add", "iadd"):
            if len(node.args) != 2 or node.kwargs:
                raise self.refuse(node, f"calls {name} with other than two tensors")
            y = self.tensor(node, node.args[1], f"calls {name}")
            if kind == "iadd":
                self.written(node, x, f"adds in place ({name})")
                self.aliases[node] = x
            self.paths[node] = self.residual(node, x, y, where)
            return
        module: nn.Module
        if kind == "flatten":
            extra = set(node.kwargs) - {"start_dim", "end_dim"}
            if len(node.args) > 3 or extra:
                raise self.refuse(node, f"calls {name} with arguments {sorted(extra)}")
            module = nn.Flatten(arg(node, 1, "start_dim", 0), arg(node, 2, "end_dim", -1))
            self.aliases[node] = x
        elif kind in ("relu", "relu_"):
            inplace = kind == "relu_" or bool(arg(node, 1, "inplace", False))
            if len(node.args) > 2 or set(node.kwargs) - {"inplace"}:
                raise self.refuse(node, f"calls {name} with other arguments")
            if inplace:
                self.written(node, x, f"calls {name} in place")
                self.aliases[node] = x
            module = nn.ReLU()
        else:  # adaptive average pooling
            size = node.args[1] if len(node.args) == 2 and not node.kwargs else None
            sizes = (size,) if isinstance(size, int) else size
            if not isinstance(sizes, (tuple, list)) or not all(v is None or type(v) is int for v in sizes):
                raise self.refuse(node, f"calls {name} with other arguments")
            module = nn.AdaptiveAvgPool2d(size)  # type: ignore[arg-type]
        self.paths[node] = (*self.paths[x], self.step(node, module, where))

    def special(self, node: fx.Node, kind: str, name: str, where: str) -> bool:
        """The calls ``occsens.engine.blocks`` reads (issue 27); False for the others."""
        return blocks.read(self, node, kind, name, where)

    def residual(self, node: fx.Node, a: fx.Node, b: fx.Node, where: str) -> tuple[_Step, ...]:
        """``a + b`` as one Residual step after the steps ``a`` and ``b`` share."""
        pa, pb = self.paths[a], self.paths[b]
        common = 0
        while common < min(len(pa), len(pb)) and pa[common] is pb[common]:
            common += 1
        body, short = pa[common:], pb[common:]
        if len(short) > len(body):
            body, short = short, body
        shortcut = nn.Sequential(*(s.module for s in short)) if short else None
        block = Residual(nn.Sequential(*(s.module for s in body)), shortcut)
        return (*pa[:common], self.step(node, block, where))


# --------------------------------------------------------------------------- the tree for a model


def _plain(value: Any) -> Any:
    """A value as the snapshot keeps it: plain data by value, anything else by identity and type."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple) and all(v is None or isinstance(v, (bool, int, float, str)) for v in value):
        return value
    return ("object", id(value), type(value))


def _snapshot(model: nn.Module) -> tuple:
    """What the trace of ``model`` depends on besides code outside the model (see the module docstring)."""
    items: list[Any] = []
    seen: dict[type, tuple] = {}
    for path, module in model.named_modules():
        items.append((path, id(module), type(module)))
        if is_leaf(module):
            continue
        cls = type(module)
        if cls not in seen:
            seen[cls] = tuple(behaviour(cls).items())
        items.append(seen[cls])
        for key, value in vars(module).items():
            if key in ("_parameters", "_buffers"):
                items.append((key, tuple((n, id(t)) for n, t in value.items())))
            elif key != "_modules":
                items.append((key, _plain(value)))
    return tuple(items)


_KEPT: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, nn.Module, Names]] = weakref.WeakKeyDictionary()


def is_tree(model: nn.Module) -> bool:
    """Whether ``model`` is run as it is, without tracing (containers and leaf layers the walk knows)."""
    return _tree(model, {})


def structure(model: nn.Module, fresh: bool = False) -> tuple[nn.Module, Names | None]:
    """The tree the walk and the engine run for ``model``, and names of its steps for messages.

    ``model`` itself (names None) when it is already such a tree; else its traced graph rebuilt
    (``_Converter``), kept per model while its snapshot is unchanged, retraced when ``fresh``.
    Raises ``Unsupported`` with the reason when the model cannot be traced or rebuilt.
    """
    if _tree(model, {}):
        return model, None
    reason = _preflight(model)
    if reason is not None:
        raise Unsupported(reason)
    with _TRACE_LOCK:
        snapshot = _snapshot(model)
        kept = _KEPT.get(model)
        if kept is not None and not fresh and kept[0] == snapshot:
            return kept[1], kept[2]
        tree, names = _Converter(model, _trace(model)).convert()
        _KEPT[model] = (snapshot, tree, names)
        return tree, names


def leaves(tree: nn.Module) -> Iterable[nn.Module]:
    """The leaf layers a tree runs, in order (a layer called twice appears twice)."""
    if isinstance(tree, Residual):
        yield from leaves(tree.body)
        if tree.shortcut is not None:
            yield from leaves(tree.shortcut)
    elif isinstance(tree, nn.Sequential):
        for child in tree:
            yield from leaves(child)
    else:
        yield tree
