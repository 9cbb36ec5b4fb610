"""occsens: occlusion sensitivity you can check.

import occsens
res = occsens.occlude(model, images, patch=4)      # the image minus a 4x4 grey window
res.heatmap, res.drop, res.class_map, res.class_counts, res.attribution()
occsens.survey(model, images, out="survey")          # every image of a data set, into a Parquet store

The public names are loaded on first use (PEP 562), so ``import occsens`` and the ``occsens``
command's ``--help`` do not import torch; ``tests/test_packaging.py`` holds that in place.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from occsens.checks import CheckResult, run_checks
    from occsens.datasurvey import survey
    from occsens.engine import (
        ENGINE_TOLERANCE,
        Occlusion,
        Plan,
        as_images,
        as_model,
        engine_tolerance,
        eval_mode,
        notebook_occlude,
        occlude,
        register_pointwise,
    )
    from occsens.errors import OcclusionError
    from occsens.images import read_image, read_images
    from occsens.report.explain import explain

__version__ = "0.1.0"

# Public name -> the module that defines it; imported on first access.
_LAZY = {
    "ENGINE_TOLERANCE": "occsens.engine",
    "CheckResult": "occsens.checks",
    "Occlusion": "occsens.engine",
    "OcclusionError": "occsens.errors",
    "Plan": "occsens.engine",
    "as_images": "occsens.engine",
    "as_model": "occsens.engine",
    "engine_tolerance": "occsens.engine",
    "eval_mode": "occsens.engine",
    "explain": "occsens.report.explain",
    "notebook_occlude": "occsens.engine",
    "occlude": "occsens.engine",
    "read_image": "occsens.images",
    "read_images": "occsens.images",
    "register_pointwise": "occsens.engine",
    "run_checks": "occsens.checks",
    "survey": "occsens.datasurvey",
}
# Subpackages reachable as attributes after a bare `import occsens` (`occsens.engine.sliding_plan`),
# as they were when this module imported them eagerly.
_SUBPACKAGES = ("checks", "cifar", "datasurvey", "engine", "errors", "images", "report")

__all__ = [
    "ENGINE_TOLERANCE",
    "CheckResult",
    "Occlusion",
    "OcclusionError",
    "Plan",
    "__version__",
    "as_images",
    "as_model",
    "engine_tolerance",
    "eval_mode",
    "explain",
    "load_model",
    "notebook_occlude",
    "occlude",
    "read_image",
    "read_images",
    "register_pointwise",
    "run_checks",
    "survey",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    """The public names and subpackages (loaded or not) and the module's dunders, not its helpers."""
    return sorted(set(__all__) | set(_SUBPACKAGES) | {k for k in globals() if k.startswith("__")})


def load_model(name: str = "default"):  # noqa: ANN201 - imported lazily to keep `import occsens` light
    """A shipped CIFAR-10 model ("default" or "greyscale") in eval mode; see ``occsens.cifar.models``."""
    from occsens.cifar.models import load_model as _load

    return _load(name)
