"""Code the user names by ``MODULE:ATTRIBUTE``: ``--model-path MODULE:FACTORY``, ``--output MODULE:FUNCTION``
and the conformance suite's implementations (``occsens conform``, ``occsens.conformance.adapters``).

Naming user code means running it: ``MODULE`` is imported (its top level runs), then the named
attribute is called. The module is found on ``sys.path`` as installed, with the current folder
searched *after* everything else, so a file in the working folder that happens to share a library's
name (``matplotlib.py``, ``torch.py``) never shadows the library; a module of yours that does share
such a name must be renamed. ``python -m occsens`` puts the current folder *first* on ``sys.path``
(Python's rule for ``-m``): ``working_folder_last`` moves it to the end before any library loads.

An exception that escapes the user's code somewhere occsens does not wrap it (a method the model
calls later, a sibling module of theirs) is traced back to it by ``blame``: the command line then
says which of the user's modules raised, instead of a traceback.

Its top level imports no torch: ``occsens.cli.args`` imports it while the parser is built. It knows
nothing of argparse: the command line and the conformance suite both load user code through it.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from occsens.errors import OcclusionError, first_line

# The user's modules this process imported, by file (a package: its folder), and the option that named them
_LOADED: dict[Path, str] = {}


def working_folder_last() -> None:
    """Put the current folder at the end of ``sys.path`` (however it is written there: ``""``, ``"."``
    or its full path), so installed packages win over files in it."""
    cwd = os.getcwd()
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != cwd] + [cwd]


def load_attr(spec: str, option: str, example: str) -> Any:
    """The callable ``ATTR`` of ``MODULE`` named by ``spec = "MODULE:ATTR"`` (for the message: ``option``)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise OcclusionError(f"{option} {spec!r} must look like 'module:name', e.g. {example!r}")
    working_folder_last()  # installed packages win over same-named files in the folder
    try:
        module = importlib.import_module(module_name)
    except SystemExit as exc:  # a script's top level that parses its own arguments, or exits
        raise OcclusionError(
            f"{option} {spec!r}: importing {module_name!r} called sys.exit({exc.code!r}); its top-level code "
            "runs on import, so put a script's own work under if __name__ == '__main__':"
        ) from exc
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the user's module may fail in any way while importing
        raise OcclusionError(f"{option} {spec!r}: cannot import {module_name!r} ({first_line(exc)})") from exc
    file = getattr(module, "__file__", None)
    if file:
        where = Path(file).resolve()
        _LOADED[where.parent if where.name == "__init__.py" else where] = f"{option} {spec}"
    if not hasattr(module, attr):
        raise OcclusionError(
            f"{option} {spec!r}: module {module_name!r} ({file or module_name}) has no {attr!r}"
        )
    found = getattr(module, attr)
    if not callable(found):
        raise OcclusionError(f"{option} {spec!r}: {attr!r} is not callable")
    return found


def blame(exc: BaseException) -> str | None:
    """Which of the user's modules raised ``exc`` (or an exception it was raised from), in words: the
    innermost frame of the traceback in a module ``load_attr`` imported. None when no frame is theirs."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for frame in reversed(traceback.extract_tb(current.__traceback__)):
            file = Path(frame.filename).resolve()
            for where, named in _LOADED.items():
                if file == where or where in file.parents:
                    return (
                        f"your code ({named}) raised {first_line(exc)} "
                        f"(in {frame.name}, {file.name} line {frame.lineno})"
                    )
        current = current.__cause__ or current.__context__
    return None


def model_from_path(spec: str, weights: str | Path | None = None) -> Any:
    """Build a user's model from ``"module:factory"`` (``factory()`` returns it), then load ``weights``.

    Weights are a state dict, read with ``weights_only=True`` (never unpickled).
    """
    from torch import nn

    from occsens.cifar.models import load_weights

    factory = load_attr(spec, "--model-path", "mynet:build")
    try:
        model = factory()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit (a factory that calls sys.exit), GeneratorExit, ...
        raise OcclusionError(
            f"--model-path {spec!r}: {spec.partition(':')[2]}() failed ({type(exc).__name__}: {exc})"
        ) from exc
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
    """``--output`` as the parser took it (``occsens.cli.types.output`` refused anything else): a name of
    ``OUTPUTS`` as it is, ``MODULE:FUNCTION`` the function turning model output into [B, K] scores."""
    return load_attr(text, "--output", "myscores:region_mean") if ":" in text else text
