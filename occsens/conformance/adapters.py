"""Adapters: other people's occlusion, called as ``impl(model, images, *, patch, stride, fill)``.

Each adapter translates the contract's arguments into the library's own and its answer back into
per-pixel scores [N, H, W] with Captum's meaning (mean drop of the clean class's probability over
the windows covering a pixel). The translation is stated in each docstring, with the reason, so a
failed property is the library's, not the adapter's. Libraries are imported on first use.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from occsens.conformance.notebook import notebook_occlusion
from occsens.errors import OcclusionError

Pair = tuple[int, int]


def captum_occlusion(
    model: Callable, images: torch.Tensor, *, patch: Pair, stride: Pair, fill: float
) -> torch.Tensor:
    """Captum's ``Occlusion.attribute``, as its users call it for an image classifier.

    - ``forward_func``: the softmax of the model. Captum attributes whatever the function returns,
      and the contract's drops are of probabilities (handing it the logits is the "unnormalised
      scores" mistake).
    - ``sliding_window_shapes = (C, *patch)`` and ``strides = (C, *stride)``: the window spans every
      channel, as occlusion of an image does; Captum slides over the channel axis too otherwise.
    - ``baselines = fill``: Captum writes the baseline into the window, in the input's (pixel) space.
    - ``target``: each image's clean prediction, computed here: Captum needs it given explicitly.
    - The answer ``[N, C, H, W]`` is the same in every channel (one window spans them); its channel
      mean is the per-pixel score. Captum's sign is already the contract's: clean minus occluded.
    - ``perturbations_per_eval`` stays at Captum's default (1): it changes speed, not values.
    """
    from captum.attr import Occlusion

    def probabilities(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(x), dim=1)

    c = images.shape[1]
    with torch.no_grad():
        target = model(images).argmax(dim=1)
    attr = Occlusion(probabilities).attribute(
        images, sliding_window_shapes=(c, *patch), strides=(c, *stride), baselines=fill, target=target
    )
    return attr.mean(dim=1)


def monai_overlap(patch: int, stride: int) -> float:
    """MONAI's ``overlap`` for a stride: it steps by ``int(patch * (1 - overlap))``.

    ``1 - stride / patch`` can land a hair below ``stride`` in floating point and be truncated one
    short (patch 3, stride 2 -> 1.999... -> 1), so aim at the middle of the step instead.
    """
    return 0.0 if stride == patch else 1 - (stride + 0.5) / patch


def monai_occlusion(
    model: nn.Module, images: torch.Tensor, *, patch: Pair, stride: Pair, fill: float
) -> torch.Tensor:
    """MONAI's ``OcclusionSensitivity``, one image at a time (it refuses batches of more than one).

    - ``mask_size = patch``.
    - ``overlap`` per axis from the stride (``monai_overlap``): MONAI has no stride argument; its
      windows step by ``int(mask_size * (1 - overlap))``.
    - ``mode = float(fill)``: a float is MONAI's constant fill (an int would not be accepted).
    - ``activate=True``, MONAI's default: the softmax of the output, except that MONAI takes the
      sigmoid when the *image* has one channel (it tests ``x.shape[1]``, the input's channels).
    - The answer is MONAI's map of the occluded scores, averaged over the windows covering each pixel,
      per class ``[1, K, H, W]``; the contract's drop is the clean score minus that map at the clean
      prediction, with the clean score put through the same activation MONAI applies, so the two
      are on one scale.
    - ``n_batch=64`` (default 16) and ``verbose=False``: speed and quiet, not values.
    """
    from monai.visualize import OcclusionSensitivity

    # one overlap per axis: MONAI's sliding window takes a sequence (its type hint says float)
    overlap: Any = tuple(monai_overlap(p, s) for p, s in zip(patch, stride, strict=True))
    sens = OcclusionSensitivity(
        model,
        mask_size=tuple(patch),
        n_batch=64,
        verbose=False,
        mode=float(fill),
        overlap=overlap,
        activate=True,
    )
    maps = []
    for x in images:
        with torch.no_grad():
            logits = model(x[None])[0]
        clean = torch.sigmoid(logits) if images.shape[1] == 1 else torch.softmax(logits, dim=0)
        target = int(logits.argmax())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MONAI's own deprecation notes, not the user's business here
            occ, _ = sens(x[None])
        maps.append(clean[target] - torch.as_tensor(occ)[0, target])
    return torch.stack(maps)


def occsens_occlusion(
    model: Callable, images: torch.Tensor, *, patch: Pair, stride: Pair, fill: float
) -> torch.Tensor:
    """occsens: ``occlude(model, images, patch=patch, stride=stride, fill=fill).attribution()``.

    Every argument is occsens' own, one to one; ``engine`` stays "auto", as a user runs it.
    """
    from occsens.engine import occlude

    return occlude(model, images, patch=patch, stride=stride, fill=fill, progress=False).attribution()


ADAPTERS: dict[str, Callable[..., Any]] = {
    "captum": captum_occlusion,
    "monai": monai_occlusion,
    "notebook": notebook_occlusion,
    "occsens": occsens_occlusion,
}
NEEDS = {"captum": "captum", "monai": "monai"}


def load_impl(name: str) -> Callable[..., Any]:
    """The implementation called ``name``: an adapter (``ADAPTERS``) or ``MODULE:FUNCTION`` of yours."""
    if name in ADAPTERS:
        package = NEEDS.get(name)
        if package is not None and importlib.util.find_spec(package) is None:
            raise OcclusionError(
                f"implementation {name!r} needs {package}, which is not installed (pip install {package})"
            )
        return ADAPTERS[name]
    if ":" not in name:
        raise OcclusionError(
            f"implementation {name!r} is unknown; use one of {', '.join(ADAPTERS)} or MODULE:FUNCTION, "
            "a function (model, images, *, patch, stride, fill) -> attribution [N, H, W]"
        )
    from occsens.user_code import load_attr

    return load_attr(name, "implementation", "myocclusion:attribute")
