"""Code the user names on the command line: ``--model-path MODULE:FACTORY`` and ``--output MODULE:FUNCTION``.

Naming user code means running it: ``MODULE`` is imported (its top level runs), then the named
attribute is called. The module is found on ``sys.path`` as installed, with the current folder added
*after* everything else, so a file in the working folder that happens to share a library's name
(``matplotlib.py``, ``torch.py``) never shadows the library; a module of yours that does share such a
name must be renamed.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from torch import nn

from occsens.cifar.models import load_weights
from occsens.engine.model import OUTPUTS
from occsens.errors import OcclusionError


def load_attr(spec: str, option: str, example: str) -> Any:
    """The object ``ATTR`` of ``MODULE`` named by ``spec = "MODULE:ATTR"`` (for the message: ``option``)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise OcclusionError(f"{option} {spec!r} must look like 'module:name', e.g. {example!r}")
    cwd = os.getcwd()
    if not any(entry in ("", ".", cwd) for entry in sys.path):
        sys.path.append(cwd)  # last: installed packages win over same-named files in the folder
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may fail in any way while importing
        raise OcclusionError(
            f"{option} {spec!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc})"
        ) from None
    if not hasattr(module, attr):
        where = getattr(module, "__file__", None) or module_name
        raise OcclusionError(f"{option} {spec!r}: module {module_name!r} ({where}) has no {attr!r}")
    return getattr(module, attr)


def model_from_path(spec: str, weights: str | Path | None = None) -> Any:
    """Build a user's model from ``"module:factory"`` (``factory()`` returns it), then load ``weights``.

    Weights are a state dict, read with ``weights_only=True`` (never unpickled).
    """
    factory = load_attr(spec, "--model-path", "mynet:build")
    if not callable(factory):
        raise OcclusionError(f"--model-path {spec!r}: {spec.partition(':')[2]!r} is not callable")
    try:
        model = factory()
    except Exception as exc:
        raise OcclusionError(
            f"--model-path {spec!r}: {spec.partition(':')[2]}() failed ({type(exc).__name__}: {exc})"
        ) from None
    if weights is not None:
        if not isinstance(model, nn.Module):
            raise OcclusionError(f"--weights given but {spec!r} did not return a torch.nn.Module")
        load_weights(model, weights)
    if isinstance(model, nn.Module):
        model.eval()
    elif not callable(model):
        raise OcclusionError(
            f"--model-path {spec!r}: {spec.partition(':')[2]}() returned {type(model).__name__}, not a model"
        )
    return model


def output_from_arg(text: str) -> Any:
    """``--output``: one of ``OUTPUTS``, or ``MODULE:FUNCTION`` turning model output into [B, K] scores."""
    if text in OUTPUTS:
        return text
    if ":" not in text:
        raise OcclusionError(
            f"--output {text!r} is unknown; use {', '.join(OUTPUTS)} or MODULE:FUNCTION, a function "
            "(model output) -> [B, K] scores"
        )
    fn = load_attr(text, "--output", "myscores:region_mean")
    if not callable(fn):
        raise OcclusionError(f"--output {text!r}: {text.partition(':')[2]!r} is not callable")
    return fn
