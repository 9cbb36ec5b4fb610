"""``Runs``: every occlusion run of one job, computed on first request and read by everyone after.

A report with its sanity checks asks for the same maps several times over: the main map, the
patch-only view and the compared fills are read by the report, by the checks and by the answers.
They all ask one ``Runs`` store instead of the engine, so each map is computed once. A run is
identified by what decides its numbers:

* the model: the object itself and a hash of its parameters and buffers, so a model changed in
  place (the randomisation check re-initialises layers one by one) is a new model;
* the images: their shape, dtype, device and a hash of their bytes (an equal copy is the same images);
* the settings: the plan's geometry (sliding or notebook, patch, stride), the fill (a name, a
  number, per-channel values, a hash of a baseline image, or the callable itself), reveal, the
  target classes, the batch size, the engine and the output.

The store is behind its callers' doors: it takes images as ``as_images`` returns them and a fill, output
and settings its callers checked (``occsens.run_checks``, the report builder). It checks each model object
once (``validate.model``) and each ``output`` once, resolves each fill once per images (once per image
size for a fill that does not depend on the images' pixels: a number, per-channel values, one baseline
image, noise, a callable), and runs each request through ``occsens.engine.occlusion.compute`` without
knocking on ``occlude``'s door again. Images of another kind (not float32 ``[N, C, H, W]``) are checked
(``as_images``) on the way in.

A run is filed under the classes its heatmap shows: a request with target None (each image's clean
prediction) and one that names those classes are the same request once any run on that model and
those images has told the store the clean predictions. The store keeps what it has
computed (and the models and callables in its keys, so no id is reused) for its own lifetime: one
job. ``made`` lists the key of every engine call it made, in order.
"""

from __future__ import annotations

import hashlib
import itertools
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from occsens.engine import occlusion, validate
from occsens.engine.fill import Fill, resolve_fill
from occsens.engine.model import as_images, check_output, run_device
from occsens.engine.occlusion import Occlusion, Request
from occsens.engine.plan import Pair, Plan, notebook_plan, plan_for
from occsens.engine.validate import check_target
from occsens.errors import integer

Key = tuple


class Runs:
    """The occlusion runs of one job, each computed once (see the module docstring for the key)."""

    def __init__(self) -> None:
        self._done: dict[Key, Occlusion] = {}
        self._held: list[Any] = []  # objects whose id is in a key: alive as long as the store
        self._hashes: dict[int, tuple[torch.Tensor, int, str]] = {}
        self._clean: dict[Key, tuple[int, ...]] = {}  # (model, images, output) -> clean predictions
        self._fills: dict[Key, Fill] = {}  # (fill, images or their size) -> the fill resolved for them
        self._outputs: dict[Any, str] = {}  # output -> its checked name
        self._models: set[int] = set()  # ids of the (held) model objects checked
        self.made: list[Key] = []

    def __len__(self) -> int:
        return len(self.made)

    def occlude(
        self,
        model: Callable,
        images: torch.Tensor,
        *,
        patch: int | Pair,
        stride: int | Pair | None = None,
        fill: Any = 0.5,
        target: Any = None,
        reveal: bool = False,
        batch_size: int | None = None,
        output: Any = "softmax",
        engine: str = "auto",
    ) -> Occlusion:
        """``occsens.occlude`` with these arguments (no progress bar), computed once per key."""
        geometry = ("sliding", _pair(patch), _pair(stride) if stride is not None else _pair(patch))

        def plan(x: torch.Tensor) -> Plan:
            return plan_for((x.shape[2], x.shape[3]), patch, stride)

        return self._get(model, images, geometry, fill, target, reveal, batch_size, output, engine, plan)

    def notebook_occlude(
        self,
        model: Callable,
        images: torch.Tensor,
        *,
        size: int,
        fill: Any = 0.5,
        target: Any = None,
        batch_size: int | None = None,
        output: Any = "softmax",
        engine: str = "auto",
    ) -> Occlusion:
        """``occsens.notebook_occlude`` with these arguments (no progress bar), computed once per key."""
        return self._get(
            model,
            images,
            ("notebook", size),
            fill,
            target,
            False,
            batch_size,
            output,
            engine,
            lambda x: notebook_plan((x.shape[2], x.shape[3]), size),
        )

    def _get(
        self,
        model: Any,
        images: torch.Tensor,
        geometry: tuple,
        fill: Any,
        target: Any,
        reveal: bool,
        batch_size: int | None,
        output: Any,
        engine: str,
        plan: Callable[[torch.Tensor], Plan],
    ) -> Occlusion:
        if not (isinstance(images, torch.Tensor) and images.dtype == torch.float32 and images.ndim == 4):
            images = as_images(images)  # not images as ``as_images`` returns them: checked here
        if batch_size is not None:  # a plain int, checked where it enters the key (explain hands it on)
            batch_size = integer(batch_size, "batch_size", low=1, valid="a positive int or None")
        model_key = self._model(model)
        subject = (model_key, self._images(images), self._held_id(output))
        fill_key = self._fill(fill)
        settings = (geometry, fill_key, bool(reveal), batch_size, engine)
        checked = check_target(target, len(images))
        classes = _classes(checked, len(images))
        if classes is None:  # each image's clean prediction: known once any run on these images is made
            classes = self._clean.get(subject)
        found = None if classes is None else self._done.get((subject, settings, classes))
        if found is not None:
            return found
        if id(model) not in self._models:
            validate.model(model)
            self._models.add(id(model))  # held by its key: the id stays its own
        request = Request(
            model,
            images,
            plan(images),
            self._resolved(fill, fill_key, images, subject[1]),
            checked,
            bool(reveal),
            output,
            self.output_name(output),
            run_device(model, None),
            batch_size,
            False,  # no progress bar: a job shows one of its own
            engine,
        )
        res = occlusion.compute(request)
        self.made.append((subject, settings, classes))
        self._clean.setdefault(subject, tuple(res.clean_probs.argmax(dim=1).tolist()))
        self._done[(subject, settings, tuple(res.target.tolist()))] = res
        return res

    def output_name(self, output: Any) -> str:
        """``check_output(output)``, once per output."""
        key = self._held_id(output)
        if key not in self._outputs:
            self._outputs[key] = check_output(output)
        return self._outputs[key]

    def fill(self, fill: Any, images: torch.Tensor) -> Fill:
        """``resolve_fill(fill, images)``, resolved once (see the module docstring)."""
        return self._resolved(fill, self._fill(fill), images, self._images(images))

    def _resolved(self, fill: Any, fill_key: Any, images: torch.Tensor, images_key: Key) -> Fill:
        by_size = (fill_key, tuple(images.shape[1:]))
        found = self._fills.get(by_size) or self._fills.get((fill_key, images_key))
        if found is None:
            found = resolve_fill(fill, images)
            pixels = found.fn is None and found.description in ("mean", "blur", "baseline images")
            self._fills[(fill_key, images_key) if pixels else by_size] = found
        return found

    def _held_id(self, value: Any) -> Any:
        """A string or number as itself; any other object by its id, kept alive so the id stays its own."""
        if value is None or isinstance(value, (str, bool, numbers.Number)):
            return value
        self._held.append(value)
        return ("object", id(value))

    def _model(self, model: Any) -> Key:
        if not isinstance(model, nn.Module):  # a plain callable: by identity
            return (self._held_id(model), None)
        # by its values, not version counters: writes through .data or vector_to_parameters bump none
        digest = hashlib.sha256()
        for name, tensor in itertools.chain(model.named_parameters(), model.named_buffers()):
            digest.update(name.encode())
            digest.update(_digest(tensor).encode())
        return (self._held_id(model), digest.hexdigest()[:32])

    def _images(self, x: torch.Tensor) -> Key:
        try:
            version = x._version
        except RuntimeError:
            version = -1
        cached = self._hashes.get(id(x))
        if cached is not None and cached[0] is x and cached[1] == version >= 0:
            digest = cached[2]
        else:
            digest = _digest(x)
            self._hashes[id(x)] = (x, version, digest)
        return (tuple(x.shape), str(x.dtype), str(x.device), digest)

    def _fill(self, fill: Any) -> Any:
        if isinstance(fill, (torch.Tensor, np.ndarray)):
            return ("pixels", _digest(torch.as_tensor(fill)))
        if isinstance(fill, numbers.Real) and not isinstance(fill, bool):
            return float(fill)
        if isinstance(fill, (list, tuple)):
            return tuple(self._fill(v) for v in fill)
        return self._held_id(fill)


def _classes(target: int | list[int] | None, n: int) -> tuple[int, ...] | None:
    """A checked target as one class per image; None stays None (each image's clean prediction)."""
    if target is None:
        return None
    return tuple([target] * n) if isinstance(target, int) else tuple(target)


def _pair(value: Any) -> Any:
    """An int patch or stride as the (height, width) pair it means; anything else as it is."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return (int(value), int(value))
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _digest(x: torch.Tensor) -> str:
    data = x.detach().cpu().contiguous().reshape(-1)
    raw = data.view(torch.uint8).numpy()  # the bytes of any dtype (bfloat16 has no numpy twin), not copied
    return f"{tuple(x.shape)}:{x.dtype}:{hashlib.sha256(raw.data).hexdigest()[:32]}"
